"""Filling a data object list (PDOL, CDOL1, CDOL2) from the data the terminal holds."""

from __future__ import annotations

from collections.abc import Mapping

from app.emv import tags, tlv


def fit(tag: str, value: bytes, length: int) -> bytes:
    """``value`` cut or padded to ``length`` as EMV 4.3 Book 3 5.4 rules for the tag's
    format: numeric keeps its rightmost bytes and pads on the left with 00; compressed
    numeric pads on the right with FF; anything else keeps the leftmost bytes and pads on
    the right with 00."""
    fmt = tags.data_format(tag)
    if len(value) >= length:
        return value[len(value) - length:] if fmt == "n" else value[:length]
    pad = length - len(value)
    if fmt == "n":
        return b"\x00" * pad + value
    if fmt == "cn":
        return value + b"\xff" * pad
    return value + b"\x00" * pad


def fill(dol: bytes, values: Mapping[str, bytes]) -> bytes:
    """The concatenated values the list asks for; zeros for what the terminal does not
    have, and for constructed tags (Book 3 5.4)."""
    out = bytearray()
    for tag, length in tlv.parse_dol(dol):
        value = values.get(tag)
        if value is None or tlv.is_constructed(tag):
            out += b"\x00" * length
        else:
            out += fit(tag, value, length)
    return bytes(out)
