"""The host key file and what is derived from it: AES-GCM sealing of terminal keys and
keyed PAN hashes.

HOSTDIR/host.key holds 32 random bytes as 64 hex characters, created with mode 0600. Each
use gets its own subkey through HKDF-SHA256, so the PAN hash key says nothing about the
key that seals the terminal master keys.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from host.errors import HostKeyError

logger = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
_INFO_SEAL = b"posterm-host key-seal"
_INFO_PAN_HASH = b"posterm-host pan-hash"


def load_or_create_key(path: Path) -> bytes:
    """The 32-byte host key in ``path``; a fresh one (mode 0600 from the start) if absent."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load(path)
    except OSError as exc:
        raise HostKeyError(f"cannot create host key file {path}: {exc.strerror}") from None
    key = secrets.token_bytes(KEY_BYTES)
    try:
        os.write(fd, (key.hex() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    logger.info("created host key file %s", path)
    return key


def _load(path: Path) -> bytes:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not a key file"
        raise HostKeyError(f"cannot read host key file {path}: {reason}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise HostKeyError(f"host key file {path} is not a key file: expected 64 hex characters")
    if mode & 0o077:
        logger.warning("host key file %s has mode %o; it should be 600", path, mode)
    return key


def _derive(root: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(root)


class Sealer:
    """Seals key material with AES-GCM and hashes PANs, both under subkeys of the host key."""

    def __init__(self, root: bytes):
        self._aead = AESGCM(_derive(root, _INFO_SEAL))
        self._hash_key = _derive(root, _INFO_PAN_HASH)

    def __repr__(self) -> str:
        return "Sealer(<keys hidden>)"

    def seal(self, clear: bytes, aad: bytes) -> bytes:
        """12-byte nonce || ciphertext || tag; ``aad`` binds the blob to its row and column."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, clear, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError):
            raise HostKeyError(
                "a sealed key cannot be opened: wrong host.key or damaged row") from None

    def pan_hash(self, pan: str) -> str:
        """HMAC-SHA256 (hex) of the PAN: equal PANs match without the PAN being stored."""
        return hmac.new(self._hash_key, pan.encode("ascii"), hashlib.sha256).hexdigest()


def mask_pan(pan: str) -> str:
    """First 6 and last 4 digits, '*' between, same length (as the terminal masks it)."""
    if len(pan) < 13:
        keep = min(4, len(pan))
        return "*" * (len(pan) - keep) + pan[len(pan) - keep:]
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
