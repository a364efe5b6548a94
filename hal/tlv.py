"""Writing one BER-TLV object (EMV Book 3 Annex B): shared by the card emulator in drivers
and the terminal's EMV kernel in app, the two sides of the same card conversation."""

from __future__ import annotations


def encode(tag: str, *values: bytes) -> bytes:
    """One object: ``tag`` (hex) over the concatenated ``values``, length in BER form
    (Book 3 Annex B2: one byte up to 127, then 81 xx, 82 xxxx)."""
    value = b"".join(values)
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n <= 0xFF:
        length = b"\x81" + bytes([n])
    elif n <= 0xFFFF:
        length = b"\x82" + n.to_bytes(2, "big")
    else:
        raise ValueError(f"a TLV value of {n} bytes is too long")
    return bytes.fromhex(tag) + length + value
