"""Protection of card data at rest: AES-GCM sealing, PAN masking, keyed PAN fingerprints, key wrapping.

All keys come from the terminal's root key (see storage.keyfile) through HKDF-SHA256, one
subkey per purpose, so a leak of one use (e.g. a fingerprint) says nothing about the others.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.errors import KeyFileError, StorageError

NONCE_BYTES = 12
_INFO_PAN_ENC = b"posterm pan-enc"
_INFO_PAN_HASH = b"posterm pan-hash"
_INFO_KEY_WRAP = b"posterm key-wrap"


def _derive(root_key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(root_key)


class CardDataProtector:
    """Seals card data and terminal keys under subkeys of the root key, and fingerprints PANs."""

    def __init__(self, root_key: bytes):
        if not isinstance(root_key, (bytes, bytearray)) or len(root_key) != 32:
            raise KeyFileError("root key must be exactly 32 bytes")
        self._enc = AESGCM(_derive(bytes(root_key), _INFO_PAN_ENC))
        self._hash_key = _derive(bytes(root_key), _INFO_PAN_HASH)
        self._wrap = AESGCM(_derive(bytes(root_key), _INFO_KEY_WRAP))

    def __repr__(self) -> str:
        return "CardDataProtector(<keys hidden>)"

    def seal(self, text: str, *, aad: bytes = b"") -> bytes:
        """Encrypt `text` with AES-GCM; returns 12-byte random nonce || ciphertext || tag."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._enc.encrypt(nonce, text.encode("utf-8"), aad)

    def open(self, blob: bytes, *, aad: bytes = b"") -> str:
        """Decrypt a blob made by seal(); StorageError if the key or the blob or the aad is wrong."""
        try:
            clear = self._enc.decrypt(bytes(blob[:NONCE_BYTES]), bytes(blob[NONCE_BYTES:]), aad)
        except (InvalidTag, ValueError):
            raise StorageError("card data cannot be decrypted: wrong key file or damaged row") from None
        return clear.decode("utf-8")

    def fingerprint(self, pan: str) -> str:
        """Keyed hash (HMAC-SHA256, hex) of a PAN: equal PANs match, without storing the PAN."""
        return hmac.new(self._hash_key, pan.strip().encode("ascii"), hashlib.sha256).hexdigest()

    def key_check(self) -> str:
        """A short value that identifies the root key without revealing it (for a journal to notice a swapped key file)."""
        return hmac.new(self._hash_key, b"posterm root key check", hashlib.sha256).hexdigest()[:16]

    def wrap_key(self, name: str, key: bytes) -> bytes:
        """Encrypt terminal key material under the key-wrap subkey, bound to its name."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._wrap.encrypt(nonce, bytes(key), name.encode("utf-8"))

    def unwrap_key(self, name: str, blob: bytes) -> bytes:
        """Decrypt key material made by wrap_key() under the same name."""
        try:
            return self._wrap.decrypt(bytes(blob[:NONCE_BYTES]), bytes(blob[NONCE_BYTES:]), name.encode("utf-8"))
        except (InvalidTag, ValueError):
            raise StorageError(f"key {name!r} cannot be decrypted: wrong key file or damaged row") from None


def mask_pan(pan: str) -> str:
    """Mask a PAN for screens and receipts: first 6 and last 4 shown, '*' between, same length.

    PANs shorter than 13 digits show only the last 4.
    """
    pan = pan.strip()
    if len(pan) < 13:
        keep = min(4, len(pan))
        return "*" * (len(pan) - keep) + pan[len(pan) - keep:]
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
