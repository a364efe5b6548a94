"""Benchmark: time from card present to ARQC (selection, GPO, records, the terminal's checks
and the first GENERATE AC), median and p99, on the mock reader and through pcscd with the
virtual card (started, and stopped again by PID, as bench/pcsc_rtt.py does).

    .venv/bin/python bench/emv.py [-n 200] [--profile unionpay-debit-chip] [--url pcsc:...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from stats import percentile

from app.emv.kernel import EmvKernel
from app.emv.params import TerminalParams
from hal.interfaces import CardReader, TestCardSlot
from hal.registry import DeviceContext, open_device
from hal.testcards import test_card


def card_to_arqc(url: str, n: int, profile: str) -> list[float]:
    """Seconds from the card being there (powered: ATR read) to the ARQC, ``n`` times."""
    card = test_card(profile)
    with tempfile.TemporaryDirectory(prefix="posterm-bench-") as tmp:
        reader = open_device("card_reader", url, context=DeviceContext(data_dir=Path(tmp)))
        try:
            assert isinstance(reader, CardReader)
            times: list[float] = []
            for _ in range(n + 1):                    # the first run warms up
                if isinstance(reader, TestCardSlot):
                    reader.present(card)
                t0 = time.perf_counter()
                reader.wait_for_card(10)
                kernel = EmvKernel(reader.transceive, TerminalParams(), contactless=False,
                                   amount=1250)
                kernel.read()
                kernel.processing_restrictions()
                kernel.verify_cardholder(pin_pad=True)
                ac = kernel.cryptogram()
                times.append(time.perf_counter() - t0)
                reader.power_off()
                if ac.kind != "ARQC":
                    raise SystemExit(f"the card answered {ac.kind}, not an ARQC")
            return times[1:]
        finally:
            reader.close()


def _report(where: str, times: list[float]) -> None:
    print(f"card present -> ARQC, {where} ({len(times)} runs): "
          f"median {statistics.median(times) * 1000:.2f} ms, "
          f"p99 {percentile(times, 99) * 1000:.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="transactions (default %(default)s)")
    parser.add_argument("--profile", default="unionpay-debit-chip", help="test card profile")
    parser.add_argument("--url", help="a bench reader instead of pcscd's virtual card")
    args = parser.parse_args(argv)
    # The card emulator's TDES (pyemv over cryptography) warns on every call: not ours.
    warnings.simplefilter("ignore")

    _report("mock reader", card_to_arqc("mock:", args.n, args.profile))

    daemon = cards = None
    url = args.url
    if url is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from hil.pcsc_fixtures import PcscDaemon, VirtualCards

        daemon = PcscDaemon()
        daemon.ensure()
        cards = VirtualCards(daemon)
        url = cards.start(args.profile).url
    try:
        _report(f"pcscd + virtual card ({url})", card_to_arqc(url, args.n, args.profile))
    finally:
        if cards is not None:
            cards.close()
        if daemon is not None:
            daemon.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
