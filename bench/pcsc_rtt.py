"""Benchmark: round-trip time of an APDU through pcscd (SELECT of the PSE), median and p99.

Against a bench reader (``--url pcsc:ACS``) or, by default, pcscd + vsmartcard's vpcd with
the virtual card, which it starts (and stops again, by PID) if they are not running.

    .venv/bin/python bench/pcsc_rtt.py [--url pcsc:...] [-n 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from stats import percentile

from hal.interfaces import CardReader, ContactlessReader
from hal.registry import DeviceContext, open_device

SELECT_PSE = bytes.fromhex("00A404000E315041592E5359532E444446303100")
SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")



def apdu_round_trips(url: str, n: int = 1000, *, role: str = "card_reader") -> list[float]:
    """Seconds per SELECT round trip through the reader at ``url`` (card powered once first)."""
    with tempfile.TemporaryDirectory(prefix="posterm-bench-") as tmp:
        reader = open_device(role, url, context=DeviceContext(data_dir=Path(tmp)))
        try:
            if isinstance(reader, ContactlessReader):
                reader.poll(10)
                command = SELECT_PPSE
            else:
                assert isinstance(reader, CardReader)
                reader.wait_for_card(10)
                command = SELECT_PSE
            reader.transceive(command)  # warm-up
            times: list[float] = []
            for _ in range(n):
                t0 = time.perf_counter()
                answer = reader.transceive(command)
                times.append(time.perf_counter() - t0)
                if answer[-2:] != b"\x90\x00":
                    raise SystemExit(f"SELECT answered {answer[-2:].hex().upper()}")
            return times
        finally:
            reader.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="reader URL (default: the virtual card in pcscd's vpcd)")
    parser.add_argument("-n", type=int, default=1000, help="round trips (default %(default)s)")
    args = parser.parse_args(argv)

    daemon = cards = None
    url = args.url
    if url is None:
        # Reuse pcscd and a card already in vpcd's first reader; else start what is missing,
        # with the HIL suite's process control (hil/ is not installed, so from the checkout).
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from hil.pcsc_fixtures import PcscDaemon, VirtualCards, reader_state

        daemon = PcscDaemon()
        daemon.ensure()
        state = reader_state(0)
        if state is not None and state[1]:
            url = f"pcsc:{state[0]}"
        else:
            cards = VirtualCards(daemon)
            url = cards.start("unionpay-debit-chip").url
    try:
        times = apdu_round_trips(url, args.n)
    finally:
        if cards is not None:
            cards.close()
        if daemon is not None:
            daemon.close()
    print(f"APDU round trip through pcscd ({url}, {len(times)} SELECTs): "
          f"median {statistics.median(times) * 1000:.3f} ms, "
          f"p99 {percentile(times, 99) * 1000:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
