"""Message authentication codes of the dialect (field 64).

The UnionPay "ECB" MAC is no standard mode any library offers (it mixes hex expansion
into the chaining), so it is written here from the published description; X9.19 (retail
MAC) is the configurable alternative.
"""

from __future__ import annotations

from sync import crypto
from sync.errors import MessageError

ALGORITHMS = ("ecb", "x919")


def _blocks(data: bytes) -> list[bytes]:
    padded = data + bytes(-len(data) % 8)
    return [padded[i:i + 8] for i in range(0, len(padded), 8)] or [bytes(8)]


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def ecb_mac(key: bytes, data: bytes) -> bytes:
    """UnionPay ECB MAC: XOR the blocks, hex-expand, encrypt/XOR/encrypt, keep 8 hex chars."""
    folded = bytes(8)
    for block in _blocks(data):
        folded = _xor(folded, block)
    hexed = folded.hex().upper().encode("ascii")
    first = crypto.encrypt(key, hexed[:8])
    second = crypto.encrypt(key, _xor(first, hexed[8:]))
    return second.hex().upper().encode("ascii")[:8]


def x919_mac(key: bytes, data: bytes) -> bytes:
    """ANSI X9.19 retail MAC: single-DES CBC under K1, last block decrypt K2, encrypt K1."""
    if len(key) != 16:
        raise MessageError("X9.19 needs a double-length (16-byte) key")
    k1, k2 = key[:8], key[8:]
    chain = bytes(8)
    for block in _blocks(data):
        chain = crypto.encrypt(k1, _xor(chain, block))
    return crypto.encrypt(k1, crypto.decrypt(k2, chain))


def compute(algorithm: str, key: bytes, data: bytes) -> bytes:
    """The 8 bytes of field 64 over ``data`` (the message from MTI through the field before 64)."""
    if algorithm == "ecb":
        return ecb_mac(key, data)
    if algorithm == "x919":
        return x919_mac(key, data)
    raise MessageError(f"unknown MAC algorithm {algorithm!r}: use one of {', '.join(ALGORITHMS)}")
