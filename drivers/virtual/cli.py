"""``posterm-virtual card|nfc|pinpad|printer ...``: the virtual devices as programs.

Each kind is its own module with a ``main(argv)``; this only picks it, so ``posterm-virtual
card --help`` shows the card's own options.
"""

from __future__ import annotations

import importlib
import sys

KINDS = {
    "card": ("drivers.virtual.card", "EMV card for pcscd's vpcd reader (profile or trace)"),
    "nfc": ("drivers.virtual.nfc", "contactless card on nfcpy's udp driver"),
    "pinpad": ("drivers.virtual.pinpad", "ABECS PIN pad on a pseudo-terminal"),
    "printer": ("drivers.virtual.printer", "raw TCP ESC/POS printer that decodes to text"),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in KINDS:
        print("usage: posterm-virtual KIND [options]   (KIND --help for its options)\n")
        for kind, (_, what) in KINDS.items():
            print(f"  {kind:<8} {what}")
        return 0 if args and args[0] in ("-h", "--help") else 2
    module = importlib.import_module(KINDS[args[0]][0])
    return int(module.main(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
