"""Framing around the ISO message: 2-byte big-endian length, 5-byte TPDU, 6-byte header."""

from __future__ import annotations

from dataclasses import dataclass

from sync.errors import MessageError

TPDU_LEN = 5
HEADER_LEN = 6


@dataclass(frozen=True)
class Frame:
    """One message on the wire, split into its parts (tpdu/header None when absent)."""

    tpdu: bytes | None
    header: bytes | None
    iso: bytes


def wrap(iso: bytes, tpdu: bytes, header: bytes) -> bytes:
    """Length-prefixed bytes for the socket."""
    body = tpdu + header + iso
    if len(body) > 0xFFFF:
        raise MessageError("message too long for a 2-byte length")
    return len(body).to_bytes(2, "big") + body


def split_body(body: bytes) -> Frame:
    """A received body (after the length) as TPDU, header and ISO message."""
    if len(body) < TPDU_LEN + HEADER_LEN + 10:
        raise MessageError(f"message too short ({len(body)} bytes)")
    if body[0] != 0x60:
        raise MessageError(f"TPDU must start with 60, got {body[0]:02X}")
    return Frame(body[:TPDU_LEN], body[TPDU_LEN:TPDU_LEN + HEADER_LEN],
                 body[TPDU_LEN + HEADER_LEN:])


def swap_tpdu(tpdu: bytes) -> bytes:
    """The reply's TPDU: destination and source NII swapped."""
    return tpdu[:1] + tpdu[3:5] + tpdu[1:3]


def candidates(data: bytes) -> list[Frame]:
    """Every way ``data`` could be framed, most complete first (for ``posterm iso decode``).

    A 2-byte length prefix counts only when it equals the rest's length; a TPDU only when
    it starts with 60 and the 6-byte header follows it.
    """
    bodies = [data]
    if len(data) > 2 and int.from_bytes(data[:2], "big") == len(data) - 2:
        bodies.insert(0, data[2:])
    frames: list[Frame] = []
    for body in bodies:
        if len(body) > TPDU_LEN + HEADER_LEN and body[0] == 0x60:
            frames.append(Frame(body[:TPDU_LEN], body[TPDU_LEN:TPDU_LEN + HEADER_LEN],
                                body[TPDU_LEN + HEADER_LEN:]))
        frames.append(Frame(None, None, body))
    return frames
