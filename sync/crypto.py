"""DES/TDES primitives of the dialect: key check values, keys under the master key, PIN blocks.

TDES comes from cryptography's ``decrepit`` module: the card world still runs on it.
Double-length keys are expanded to K1K2K1 so no deprecated two-key form is used.
"""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from sync.errors import KeyCheckError, MessageError


def _key(key: bytes) -> bytes:
    if len(key) == 8:
        return key * 3
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 24:
        return key
    raise MessageError(f"a DES key is 8, 16 or 24 bytes, not {len(key)}")


def encrypt(key: bytes, data: bytes) -> bytes:
    """DES (8-byte key) or TDES (16/24) ECB over whole 8-byte blocks."""
    enc = Cipher(TripleDES(_key(key)), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def decrypt(key: bytes, data: bytes) -> bytes:
    dec = Cipher(TripleDES(_key(key)), modes.ECB()).decryptor()
    return dec.update(data) + dec.finalize()


def check_value(key: bytes) -> bytes:
    """Key check value: the first 4 bytes of 8 zero bytes encrypted under the key."""
    return encrypt(key, bytes(8))[:4]


def unwrap_working_key(master: bytes, encrypted: bytes, kcv: bytes, name: str) -> bytes:
    """Decrypt a working key delivered under the master key and verify its check value."""
    key = decrypt(master, encrypted)
    if check_value(key) != kcv:
        raise KeyCheckError(f"{name} check value does not match: key refused")
    return key


def pan_block(pan: str) -> bytes:
    """The ISO 9564 format 0 PAN field: 0000 + the 12 rightmost digits before the check digit."""
    return bytes.fromhex("0000" + pan[:-1][-12:].rjust(12, "0"))


def clear_pin_from_block(pin_key: bytes, block: bytes, pan: str) -> str:
    """Recover the PIN from an ISO 9564-0 block (host side: the issuer's PIN check)."""
    clear = bytes(a ^ b for a, b in zip(decrypt(pin_key, block), pan_block(pan)))
    digits = clear.hex().upper()
    if digits[0] != "0":
        raise MessageError("PIN block is not ISO 9564 format 0")
    length = int(digits[1], 16)
    if not 4 <= length <= 12 or not digits[2:2 + length].isdigit():
        raise MessageError("PIN block does not decode to a PIN")
    return digits[2:2 + length]
