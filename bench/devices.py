"""Benchmark: device round trips, median and p99 over 1,000 exchanges each.

An APDU through pcscd (SELECT, vpcd's virtual card unless ``--pcsc URL``) and an ABECS
command through the PIN pad's serial line (the virtual pad on a pty unless ``--pinpad URL``).

    .venv/bin/python bench/devices.py [--pcsc pcsc:NAME] [--pinpad serial:...] [-n 1000]
"""

from __future__ import annotations

import argparse
import sys

import abecs_rtt
import pcsc_rtt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pcsc", help="reader URL (default: the virtual card in vpcd)")
    parser.add_argument("--pinpad", help="PIN pad URL (default: the virtual pad on a pty)")
    parser.add_argument("-n", type=int, default=1000, help="exchanges each (default 1000)")
    args = parser.parse_args(argv)
    status = pcsc_rtt.main((["--url", args.pcsc] if args.pcsc else []) + ["-n", str(args.n)])
    status |= abecs_rtt.main(([args.pinpad] if args.pinpad else []) + ["--count", str(args.n)])
    return status


if __name__ == "__main__":
    sys.exit(main())
