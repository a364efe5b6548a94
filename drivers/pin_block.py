"""TDES key handling and ISO 9564 format 0 PIN blocks, as a PIN pad computes them.

Used by the mock PIN pad (and the PIN pad emulators); a real pad does this inside its
secure processor. Nothing here logs; keys and PINs are never part of an error message.
"""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from hal.errors import DeviceError, InvalidKey

__all__ = ["check_value", "iso0_pin_block", "tdes_decrypt", "tdes_encrypt"]


def _expand(key: bytes) -> bytes:
    """A 16-byte (double-length) key as k1 k2 k1, the 24-byte form that avoids the
    cryptography library's deprecation of 16-byte TripleDES keys; 24-byte keys pass as they are."""
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 24:
        return key
    raise InvalidKey(f"a TDES key is 16 or 24 bytes, not {len(key)}")


def _cipher(key: bytes) -> Cipher[modes.ECB]:
    try:
        return Cipher(TripleDES(_expand(key)), modes.ECB())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidKey("the key is not a usable TDES key") from exc


def tdes_encrypt(key: bytes, data: bytes) -> bytes:
    """TDES ECB encryption of whole 8-byte blocks."""
    if len(data) % 8:
        raise DeviceError("TDES data must be whole 8-byte blocks")
    encryptor = _cipher(key).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def tdes_decrypt(key: bytes, data: bytes) -> bytes:
    """TDES ECB decryption of whole 8-byte blocks."""
    if len(data) % 8:
        raise DeviceError("TDES data must be whole 8-byte blocks")
    decryptor = _cipher(key).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def check_value(key: bytes, length: int = 4) -> bytes:
    """The key check value: 8 zero bytes encrypted under ``key``, first ``length`` bytes."""
    return tdes_encrypt(key, bytes(8))[:length]


def iso0_pin_block(pin: str, pan: str) -> bytes:
    """The clear ISO 9564 format 0 PIN block (8 bytes) for ``pin`` and ``pan``.

    PIN field ``0 L P..P F..F`` XOR PAN field ``0000`` + the 12 rightmost PAN digits
    excluding the check digit.
    """
    if not (pin.isdigit() and pin.isascii() and 4 <= len(pin) <= 12):
        raise ValueError("a PIN is 4 to 12 digits")
    if not (pan.isdigit() and pan.isascii() and 13 <= len(pan) <= 19):
        raise ValueError("a PAN is 13 to 19 digits")
    pin_field = bytes.fromhex(f"0{len(pin):X}{pin}".ljust(16, "F"))
    pan_field = bytes.fromhex("0000" + pan[-13:-1])
    return bytes(a ^ b for a, b in zip(pin_field, pan_field))
