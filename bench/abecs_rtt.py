"""Benchmark: round trip of one ABECS command (DSP) through the driver and a serial line.

With no URL it starts the virtual PIN pad on a pseudo-terminal and measures through that;
with a URL (``serial:/dev/ttyUSB0?baudrate=19200``) it measures a real pad.

    .venv/bin/python bench/abecs_rtt.py [--count 1000] [URL]
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stats import percentile

from hal.interfaces import PinPad
from hal.registry import DeviceContext, open_device

_REPO = Path(__file__).resolve().parent.parent


def command_round_trips(url: str, n: int = 1000) -> list[float]:
    """Seconds for each of ``n`` DSP commands (packet, ACK, response) to the pad at ``url``."""
    with tempfile.TemporaryDirectory(prefix="posterm-bench-") as tmp:
        pad = open_device("pinpad", url, context=DeviceContext(Path(tmp)))
        assert isinstance(pad, PinPad)
        try:
            pad.display("BENCH")  # the first command also opens the port (CAN, OPN)
            times = []
            for i in range(n):
                started = time.perf_counter()
                pad.display(f"ROUND TRIP\n{i:>16}")
                times.append(time.perf_counter() - started)
            return times
        finally:
            pad.close()


@contextmanager
def virtual_pinpad() -> Iterator[str]:
    """The virtual PIN pad as a subprocess; yields its URL, stops it by PID."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivers.virtual.pinpad"], cwd=_REPO,
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(15.0):
                raise RuntimeError("the virtual PIN pad did not start within 15 s")
        line = proc.stdout.readline().split()
        if line[:3] != ["virtual", "pinpad", "on"]:
            raise RuntimeError(f"the virtual PIN pad did not start: {' '.join(line)!r}")
        yield f"serial:{line[3]}?baudrate=19200"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(5)



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="PIN pad URL (default: the virtual pad on a pty)")
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.url:
        times, where = command_round_trips(args.url, args.count), args.url
    else:
        with virtual_pinpad() as url:
            times, where = command_round_trips(url, args.count), f"virtual pad {url}"
    print(f"ABECS DSP round trip through {where}, {len(times)} commands: "
          f"median {statistics.median(times) * 1000:.3f} ms, "
          f"p99 {percentile(times, 99) * 1000:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
