"""The terminal's root key file.

On a POS box without a secure element this file is the root of trust: every key that
encrypts card data, wraps terminal keys or fingerprints PANs is derived from the 32 bytes
in it. Anyone who reads it together with the journal can decrypt the stored PANs, so it
lives outside the database, is created with mode 0600 and never leaves the box (a backup
of the journal is useless without it, which is the point). It holds 64 hex characters and
a newline.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from storage.errors import KeyFileError

logger = logging.getLogger(__name__)

KEY_BYTES = 32


def create_key_file(path: Path, *, force: bool = False) -> None:
    """Write 32 fresh random bytes as hex to `path`, mode 0600; refuse an existing file unless force.

    The file is opened with O_CREAT|O_EXCL and mode 0o600, so it is never readable by others,
    not even for an instant. With force, the new key goes to a temporary file that then
    replaces the old one atomically.
    """
    path = Path(path)
    content = (secrets.token_bytes(KEY_BYTES).hex() + "\n").encode("ascii")
    if path.exists() and not force:
        raise KeyFileError(f"key file {path} already exists; refusing to overwrite it")
    target = path if not path.exists() else path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key file {path} already exists; refusing to overwrite it") from None
    except OSError as e:
        raise KeyFileError(f"cannot create key file {path}: {e.strerror}") from None
    try:
        os.write(fd, content)
        os.fsync(fd)
    except OSError as e:
        os.close(fd)
        target.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write key file {path}: {e.strerror}") from None
    os.close(fd)
    if target != path:
        os.replace(target, path)
    fsync_dir(path.parent)
    logger.info("created root key file %s", path)


def load_key_file(path: Path) -> bytes:
    """Read the 32-byte root key from `path`; warn if the file is readable by group or others."""
    path = Path(path)
    try:
        st = path.stat()
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except PermissionError:
        raise KeyFileError(f"key file {path} cannot be read: permission denied") from None
    except UnicodeDecodeError:
        raise KeyFileError(f"key file {path} is not a key file: expected 64 hex characters") from None
    except OSError as e:
        raise KeyFileError(f"key file {path} cannot be read: {e.strerror}") from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        logger.warning(
            "key file %s has mode %o; it should be 600 (chmod 600 %s)",
            path, stat.S_IMODE(st.st_mode), path,
        )
    text = text.strip()
    if len(text) != 2 * KEY_BYTES:
        raise KeyFileError(f"key file {path} is not a key file: expected 64 hex characters")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"key file {path} is not a key file: expected 64 hex characters") from None


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (best effort: not every file
    system lets a directory be synced)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
