"""The EMV kernel: application selection, reading the card, the terminal's checks and the
GENERATE AC exchanges, for contact chip (EMV 4.3 Books 1-4) and contactless (qPBOC/qVSDC).

The kernel talks to a card through one callable, ``transceive(apdu) -> response``, so the
same code runs on a real reader, the mock readers, pcscd's virtual card, the NFC emulator
and a replayed trace.
"""
