"""BER-TLV as EMV uses it (EMV 4.3 Book 3 Annex B): parse keeping order and duplicates, build.

Why not ``pyemv.tlv``: its ``decode`` returns a dict, which loses repeated tags (a PPSE
lists one ``61`` entry per application, a PSE directory record may hold several) and their
order (the priority of entries without tag 87 is their order); its ``encode`` takes a dict
too, and wants a dict (not the bytes we have) for a constructed tag's value. So both
directions are here; pyemv stays the library for keys and cryptograms.

:func:`parse` raises :class:`TlvError` and nothing else, whatever the bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from app.emv.errors import TlvError
from hal.tlv import encode

#: Deeper nesting than any EMV template uses; bounds recursion on hostile input.
MAX_DEPTH = 16
#: Tags longer than this many bytes do not occur in EMV (Book 3 Annex B1: 1-3 bytes).
MAX_TAG_BYTES = 4


@dataclass(frozen=True)
class Tlv:
    """One data object; ``children`` holds the parsed content of a constructed one."""

    tag: str                      # upper-case hex, e.g. "9F38"
    value: bytes
    children: tuple[Tlv, ...] = ()

    @property
    def constructed(self) -> bool:
        return is_constructed(self.tag)

    def __repr__(self) -> str:
        # A value may be a PAN or track data: never in a repr that could reach a log.
        return f"Tlv({self.tag}, {len(self.value)} bytes)"


def is_constructed(tag: str) -> bool:
    """Bit 6 of a tag's first byte marks a constructed object (Book 3 Annex B1)."""
    return bool(int(tag[:2], 16) & 0x20)


def read_tag(data: bytes, i: int) -> tuple[str, int]:
    """The tag starting at ``data[i]`` and the index after it."""
    if i >= len(data):
        raise TlvError("card data ends inside a tag")
    start = i
    if data[i] & 0x1F == 0x1F:        # more tag bytes follow, each with bit 8 set but the last
        i += 1
        while i < len(data) and data[i] & 0x80:
            i += 1
        if i >= len(data):
            raise TlvError("card data ends inside a tag")
    i += 1
    if i - start > MAX_TAG_BYTES:
        raise TlvError("card data has a tag longer than EMV allows")
    return data[start:i].hex().upper(), i


def _read_length(data: bytes, i: int) -> tuple[int, int]:
    if i >= len(data):
        raise TlvError("card data ends before a length")
    first = data[i]
    if first < 0x80:
        return first, i + 1
    count = first & 0x7F
    if count == 0 or count > 3:       # indefinite form, or absurdly long: not EMV
        raise TlvError("card data has a length form EMV does not use")
    if i + 1 + count > len(data):
        raise TlvError("card data ends inside a length")
    return int.from_bytes(data[i + 1:i + 1 + count], "big"), i + 1 + count


def parse(data: bytes, *, _depth: int = 0) -> list[Tlv]:
    """Every object in ``data``, in order, duplicates kept; constructed ones parsed inside.

    ``00`` and ``FF`` bytes between objects are padding (Book 3 Annex B, ISO 7816-4 5.2.2).
    """
    if _depth > MAX_DEPTH:
        raise TlvError("card data nests templates deeper than EMV does")
    data = bytes(data)
    out: list[Tlv] = []
    i = 0
    while i < len(data):
        if data[i] in (0x00, 0xFF):
            i += 1
            continue
        tag, i = read_tag(data, i)
        length, i = _read_length(data, i)
        if i + length > len(data):
            raise TlvError(f"card data object {tag} is cut short")
        value = data[i:i + length]
        i += length
        children = tuple(parse(value, _depth=_depth + 1)) if is_constructed(tag) else ()
        out.append(Tlv(tag, value, children))
    return out


def walk(objects: Iterable[Tlv]) -> Iterator[Tlv]:
    """Every object, depth first, templates before their contents."""
    for obj in objects:
        yield obj
        yield from walk(obj.children)


def find(objects: Iterable[Tlv], tag: str) -> Tlv | None:
    """The first object with ``tag`` at any depth, or None."""
    return next((obj for obj in walk(objects) if obj.tag == tag), None)


def find_all(objects: Iterable[Tlv], tag: str) -> list[Tlv]:
    """Every object with ``tag`` at any depth, in order."""
    return [obj for obj in walk(objects) if obj.tag == tag]


def value(objects: Iterable[Tlv], tag: str) -> bytes | None:
    """The value of the first object with ``tag``, or None."""
    obj = find(objects, tag)
    return None if obj is None else obj.value


def primitives(objects: Sequence[Tlv]) -> list[tuple[str, bytes]]:
    """The primitive objects at any depth, in order, as (tag, value) pairs."""
    return [(obj.tag, obj.value) for obj in walk(objects) if not obj.constructed]


def encode_all(items: Iterable[tuple[str, bytes]]) -> bytes:
    """Several objects in order (a tag may repeat)."""
    return b"".join(encode(tag, val) for tag, val in items)


def parse_dol(dol: bytes) -> list[tuple[str, int]]:
    """A data object list (PDOL, CDOL1/2, DDOL): (tag, length) pairs (Book 3 5.4)."""
    entries: list[tuple[str, int]] = []
    i = 0
    while i < len(dol):
        tag, i = read_tag(dol, i)
        if i >= len(dol):
            raise TlvError(f"data object list ends before the length of {tag}")
        entries.append((tag, dol[i]))
        i += 1
    return entries
