"""Password hashing for operators and supervisors: scrypt (hashlib), salted, constant-time check.

Stored as ``scrypt$N$r$p$SALT$HASH`` (hex) so the cost can be raised later without
invalidating existing passwords.
"""

from __future__ import annotations

import hashlib
import hmac
import os

_N, _R, _P = 2 ** 14, 8, 1
_LEN = 32


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` in the self-describing stored form."""
    if not password:
        raise ValueError("a password may not be empty")
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; False for any malformed stored value."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        candidate = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n),
                                   r=int(r), p=int(p), dklen=len(bytes.fromhex(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate, bytes.fromhex(digest))
