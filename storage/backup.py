"""Encrypted backups of the journal: SQLite's online backup, sealed in AES-GCM chunks.

A backup file is ``MAGIC``, a 4-byte big-endian length, a JSON header (terminal, merchant,
schema version, when, the SHA-256 of the snapshot, a random salt), then the snapshot in
chunks of ``CHUNK`` bytes, each sealed with AES-256-GCM under a key derived (HKDF-SHA256)
from the terminal's root key and the file's salt. Every chunk's nonce is its number and a
last-chunk flag, and its associated data is the whole header, so a changed header, a chunk
moved, dropped or cut short, or one flipped byte anywhere makes the file fail to open (the
STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár). The header is readable
without the key, so a list shows what each file holds; nothing in it is secret.

The snapshot is a consistent copy taken while other processes write (``Connection.backup``
in one step holds a single read transaction of the WAL journal). A restore copies the
decrypted snapshot back with the same API into the journal, under SQLite's exclusive lock:
one write transaction, so the journal is either the old one or the restored one, never half
of each, and it is refused while another process has the journal open.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import sqlite3
import struct
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage import audit as audit_log
from storage.errors import StorageError
from storage.keyfile import fsync_dir
from storage.migrations import LATEST_VERSION
from storage.pan import CardDataProtector
from storage.timestamps import Clock, stamp, utc_now

logger = logging.getLogger(__name__)

FORMAT = 1
MAGIC = b"POSTERM-BACKUP\n"
SUFFIX = ".ptbak"
CHUNK = 1 << 20                      # plaintext bytes per sealed chunk
TAG_BYTES = 16
MAX_HEADER = 64 * 1024
KINDS = ("daily", "upgrade", "pre-restore")
LOCK_NAME = ".posterm-backup.lock"
_INFO = b"posterm backup"
_BUSY_S = 2.0
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


class BackupError(StorageError):
    """A backup that cannot be made, read or restored; str() is one line, English / 中文."""

    def __init__(self, en: str, zh: str) -> None:
        super().__init__(f"{en} / {zh}")
        self.en, self.zh = en, zh


class BackupDamaged(BackupError):
    """The file fails authentication, its digest, or SQLite's integrity check."""


class WrongBackupKey(BackupError):
    """The backup was sealed under another root key file."""


class OtherTerminal(BackupError):
    """The backup belongs to another terminal id (restore needs force)."""


class JournalBusy(BackupError):
    """Another process has the journal open; a restore must wait for it to close."""


@dataclass(frozen=True)
class BackupHeader:
    """What a backup file says about itself (clear, authenticated by every chunk)."""

    format: int
    kind: str
    terminal_id: str
    merchant_id: str
    schema_version: int
    created_utc: str
    created_local: str
    sha256: str                 # of the SQLite snapshot (the plaintext)
    size: int                   # the snapshot's bytes
    chunk_size: int
    salt: str                   # hex, 16 bytes: makes the file's own key
    key_check: str              # identifies the root key (as the journal's meta does)
    posterm_version: str
    transactions: int
    open_batch: int | None
    note: str = ""              # e.g. "schema 3 -> 6" for an upgrade backup


@dataclass(frozen=True)
class BackupFile:
    """One file in the backup directory: its header, or why it cannot be read."""

    path: Path
    file_size: int
    header: BackupHeader | None
    error: str | None = None


@dataclass(frozen=True)
class Contents:
    """What a decrypted snapshot holds, read by SQLite."""

    schema_version: int
    integrity: str              # "ok" or SQLite's first complaint
    transactions: int
    open_batch: int | None
    last_transaction_local: str | None
    last_settled_batch: int | None
    audit_rows: int
    audit_problems: tuple[str, ...]


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did: from which backup, and where the replaced journal went."""

    header: BackupHeader
    contents: Contents
    previous: Path | None       # the pre-restore backup, or the damaged file moved aside
    previous_kind: str          # "pre-restore", "damaged" or "none"
    forced: bool


# ---------------------------------------------------------------------- keys and format

def _file_key(root_key: bytes, salt: bytes) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO)
                  .derive(bytes(root_key)))


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _key_check(root_key: bytes) -> str:
    return CardDataProtector(root_key).key_check()


def _header_bytes(header: BackupHeader) -> bytes:
    body = json.dumps(asdict(header), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")
    return MAGIC + struct.pack(">I", len(body)) + body


def _read_header(fh: Any, path: Path) -> tuple[BackupHeader, bytes]:
    """The header and its exact bytes (the associated data of every chunk)."""
    magic = fh.read(len(MAGIC))
    if magic != MAGIC:
        raise BackupDamaged(f"{path.name} is not a posterm backup",
                            f"{path.name} 不是 posterm 备份文件")
    raw_len = fh.read(4)
    if len(raw_len) != 4 or not 0 < struct.unpack(">I", raw_len)[0] <= MAX_HEADER:
        raise BackupDamaged(f"backup {path.name} is damaged: bad header length",
                            f"备份 {path.name} 已损坏：文件头长度错误")
    (length,) = struct.unpack(">I", raw_len)
    body = fh.read(length)
    try:
        fields = json.loads(body.decode("utf-8"))
        header = BackupHeader(**fields)
    except (UnicodeDecodeError, ValueError, TypeError):
        raise BackupDamaged(f"backup {path.name} is damaged: unreadable header",
                            f"备份 {path.name} 已损坏：文件头无法读取") from None
    if header.format != FORMAT:
        raise BackupError(f"backup {path.name} has format {header.format}; this posterm reads "
                          f"format {FORMAT}: use a newer posterm",
                          f"备份 {path.name} 的格式为 {header.format}，本版本只能读取格式 "
                          f"{FORMAT}：请使用更新的 posterm")
    return header, MAGIC + raw_len + body


def read_header(path: Path) -> BackupHeader:
    """The header of a backup file, without decrypting it."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return _read_header(fh, path)[0]
    except FileNotFoundError:
        raise BackupError(f"no backup file {path}", f"备份文件 {path} 不存在") from None
    except OSError as e:
        raise BackupError(f"cannot read backup {path}: {e.strerror}",
                          f"无法读取备份 {path}：{e.strerror}") from None


# ---------------------------------------------------------------------- files

def _create_private(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def _remove_db(path: Path) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        p.unlink(missing_ok=True)


def ensure_directory(directory: Path) -> Path:
    """Create the backup directory (mode 0700) if needed."""
    directory = Path(directory)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise BackupError(f"cannot create backup directory {directory}: {e.strerror}",
                          f"无法创建备份目录 {directory}：{e.strerror}") from None
    return directory


def _temp_db(directory: Path, label: str) -> Path:
    """An empty, private (0600) file for a clear snapshot; the caller removes it."""
    path = directory / f".{label}-{secrets.token_hex(6)}.db"
    os.close(_create_private(path))
    return path


def _sweep(directory: Path, max_age_s: float = 86400.0) -> None:
    """Remove clear snapshots and half-written files a killed process left behind (a day old:
    never one that a running backup or restore is using)."""
    now = time.time()
    for pattern in (".snapshot-*", ".restore-*", f".*{SUFFIX}.*.tmp"):
        for path in directory.glob(pattern):
            try:
                if now - path.stat().st_mtime > max_age_s:
                    path.unlink()
                    logger.warning("removed %s, left behind by an interrupted backup", path)
            except OSError:
                pass


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------- snapshot

def connect(journal_path: Path) -> sqlite3.Connection:
    """A plain connection to the journal for a snapshot (no migration, no checks)."""
    journal_path = Path(journal_path)
    if not journal_path.exists():
        raise BackupError(f"no journal at {journal_path}", f"日志数据库 {journal_path} 不存在")
    return sqlite3.connect(str(journal_path), timeout=10.0, isolation_level=None,
                           check_same_thread=False)


def snapshot(source: sqlite3.Connection, dest: Path) -> None:
    """Copy the database on `source` into the file `dest` (online backup API, one step, so
    one consistent read of the journal even while others write); `dest` ends up one
    self-contained file (rollback-journal mode)."""
    with closing(sqlite3.connect(str(dest), isolation_level=None)) as target:
        source.backup(target)
        target.execute("PRAGMA journal_mode = DELETE")


def inspect(db_path: Path, *, full_check: bool = True) -> Contents:
    """What a snapshot file holds: integrity, transactions, open batch, the audit chain."""
    with closing(sqlite3.connect(str(db_path), isolation_level=None)) as conn:
        pragma = "integrity_check" if full_check else "quick_check"
        result = conn.execute(f"PRAGMA {pragma}").fetchall()
        integrity = "ok" if result == [("ok",)] else str(result[0][0] if result else "no result")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        count, last, batch, settled, audit_rows = 0, None, None, None, 0
        problems: list[str] = []
        if integrity == "ok" and "transactions" in tables:
            count, last = conn.execute(
                "SELECT count(*), max(created_local) FROM transactions").fetchone()
            row = conn.execute("SELECT value FROM counters WHERE name = 'batch'").fetchone()
            batch = int(row[0]) if row else None
            if "settlements" in tables:
                row = conn.execute("SELECT max(batch) FROM settlements WHERE step = 'closed'"
                                   ).fetchone()
                settled = row[0]
            audit_rows = conn.execute("SELECT count(*) FROM audit").fetchone()[0]
            problems = audit_log.verify(conn)
    return Contents(version, integrity, int(count), batch, last, settled, int(audit_rows),
                    tuple(problems))


# ---------------------------------------------------------------------- create

def _name(terminal_id: str, created_utc: str, kind: str, note: str) -> str:
    when = created_utc.replace("-", "").replace(":", "")
    extra = ""
    if kind == "upgrade" and note:
        extra = "-" + re.sub(r"[^0-9a-z]+", "-", note.lower()).strip("-")
    return f"posterm-{terminal_id}-{when}-{kind}{extra}{SUFFIX}"


def _seal(plain: Path, out_fd: int, header: BackupHeader, root_key: bytes) -> None:
    head = _header_bytes(header)
    aead = _file_key(root_key, bytes.fromhex(header.salt))
    with open(plain, "rb") as src, os.fdopen(out_fd, "wb", closefd=False) as out:
        out.write(head)
        index, done = 0, 0
        while True:
            block = src.read(CHUNK)
            done += len(block)
            last = done >= header.size
            out.write(aead.encrypt(_nonce(index, last), block, head))
            index += 1
            if last:
                break
        out.flush()
        os.fsync(out.fileno())


def create(source: sqlite3.Connection, directory: Path, root_key: bytes, *, kind: str,
           terminal_id: str, merchant_id: str, posterm_version: str, note: str = "",
           clock: Clock | None = None) -> BackupFile:
    """Snapshot the journal on `source` into a new encrypted file in `directory` (mode 0600)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    directory = ensure_directory(directory)
    _sweep(directory)
    plain = _temp_db(directory, "snapshot")
    try:
        try:
            snapshot(source, plain)
        except sqlite3.Error as e:
            raise BackupError(f"cannot take a snapshot of the journal: {e}",
                              f"无法为日志数据库做快照：{e}") from None
        contents = inspect(plain, full_check=False)
        if contents.integrity != "ok":
            raise BackupError(f"the journal is damaged ({contents.integrity}): not backed up",
                              f"日志数据库已损坏（{contents.integrity}）：未备份")
        utc, local = stamp((clock or utc_now)())
        header = BackupHeader(
            format=FORMAT, kind=kind, terminal_id=terminal_id, merchant_id=merchant_id,
            schema_version=contents.schema_version, created_utc=utc, created_local=local,
            sha256=_sha256_file(plain), size=plain.stat().st_size, chunk_size=CHUNK,
            salt=secrets.token_bytes(16).hex(), key_check=_key_check(root_key),
            posterm_version=posterm_version, transactions=contents.transactions,
            open_batch=contents.open_batch, note=note)
        name = _name(terminal_id, utc, kind, note)
        tmp = directory / f".{name}.{secrets.token_hex(4)}.tmp"
        fd = _create_private(tmp)
        try:
            _seal(plain, fd, header, root_key)
            os.close(fd)
            fd = -1
            final = _link_new(tmp, directory, name)
        finally:
            if fd >= 0:
                os.close(fd)
            tmp.unlink(missing_ok=True)
        fsync_dir(directory)
    except OSError as e:
        raise BackupError(f"cannot write a backup in {directory}: {e.strerror}",
                          f"无法在 {directory} 写入备份：{e.strerror}") from None
    finally:
        _remove_db(plain)
    logger.info("backup %s written (%s, %d transactions)", final.name, kind,
                header.transactions)
    return BackupFile(final, final.stat().st_size, header)


def _link_new(tmp: Path, directory: Path, name: str) -> Path:
    """Give the finished file its name without ever replacing another backup."""
    stem = name[: -len(SUFFIX)]
    for n in range(1, 100):
        final = directory / (name if n == 1 else f"{stem}-{n}{SUFFIX}")
        try:
            os.link(tmp, final)
        except FileExistsError:
            continue
        except OSError:                    # no hard links (a FAT stick): reserve, then rename
            try:
                os.close(_create_private(final))
            except FileExistsError:
                continue
            os.replace(tmp, final)
        return final
    raise BackupError(f"too many backups named {name} in {directory}",
                      f"{directory} 中同名备份过多：{name}")


def audit_created(journal: sqlite3.Connection, made: BackupFile, *, actor: str,
                  clock: Clock | None = None) -> None:
    """Record in the journal's audit log that a backup of it was written."""
    header = made.header
    assert header is not None
    utc, local = stamp((clock or utc_now)())
    _append_audit(journal, actor, "backup.create", {
        "file": made.path.name, "kind": header.kind, "sha256": header.sha256[:12],
        "transactions": header.transactions, "schema": header.schema_version}, utc, local)


def _append_audit(conn: sqlite3.Connection, actor: str, action: str, detail: dict[str, Any],
                  utc: str, local: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        audit_log.append(conn, ts_utc=utc, ts_local=local, actor=actor, action=action,
                         detail=detail)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


# ---------------------------------------------------------------------- read back

def decrypt_to(path: Path, root_key: bytes, dest: Path) -> BackupHeader:
    """Authenticate and decrypt the backup at `path` into the file `dest` (created 0600 by
    the caller); BackupDamaged names what failed, WrongBackupKey a different key file."""
    path = Path(path)
    try:
        total = path.stat().st_size
        with open(path, "rb") as fh, open(dest, "wb") as out:
            header, head = _read_header(fh, path)
            if header.key_check != _key_check(root_key):
                raise WrongBackupKey(
                    f"backup {path.name} was sealed with another key file than this "
                    "terminal's: restore the matching key file first",
                    f"备份 {path.name} 由另一个密钥文件加密：请先恢复对应的密钥文件")
            aead = _file_key(root_key, bytes.fromhex(header.salt))
            digest, index, written = hashlib.sha256(), 0, 0
            while True:
                sealed = fh.read(header.chunk_size + TAG_BYTES)
                last = fh.tell() >= total
                try:
                    block = aead.decrypt(_nonce(index, last), sealed, head)
                except (InvalidTag, ValueError):
                    raise BackupDamaged(
                        f"backup {path.name} is damaged or was altered (chunk {index + 1} "
                        "fails authentication): use another backup",
                        f"备份 {path.name} 已损坏或被改动（第 {index + 1} 块校验失败）："
                        "请使用其他备份") from None
                digest.update(block)
                out.write(block)
                written += len(block)
                index += 1
                if last:
                    break
            out.flush()
            os.fsync(out.fileno())
    except FileNotFoundError:
        raise BackupError(f"no backup file {path}", f"备份文件 {path} 不存在") from None
    except OSError as e:
        raise BackupError(f"cannot read backup {path}: {e.strerror}",
                          f"无法读取备份 {path}：{e.strerror}") from None
    if written != header.size or digest.hexdigest() != header.sha256:
        raise BackupDamaged(f"backup {path.name} is damaged: its content differs from the "
                            "digest in its header",
                            f"备份 {path.name} 已损坏：内容与文件头中的摘要不符")
    return header


@contextmanager
def opened(path: Path, root_key: bytes, work_dir: Path) -> Iterator[tuple[BackupHeader, Path]]:
    """The backup decrypted into a private temporary file in `work_dir`, removed afterwards."""
    plain = _temp_db(ensure_directory(work_dir), "restore")
    try:
        header = decrypt_to(path, root_key, plain)
        yield header, plain
    finally:
        _remove_db(plain)


def verify(path: Path, root_key: bytes, work_dir: Path) -> tuple[BackupHeader, Contents]:
    """Decrypt and authenticate, then run PRAGMA integrity_check on the copy; BackupDamaged
    when any of it fails."""
    with opened(path, root_key, work_dir) as (header, plain):
        contents = _inspect_restored(Path(path), plain)
    return header, contents


def _inspect_restored(path: Path, plain: Path) -> Contents:
    try:
        contents = inspect(plain)
    except sqlite3.DatabaseError as e:
        contents = Contents(0, str(e), 0, None, None, None, 0, ())
    _check_contents(path, contents)
    return contents


def _check_contents(path: Path, contents: Contents) -> None:
    if contents.integrity != "ok":
        raise BackupDamaged(f"backup {path.name} decrypts but SQLite finds it damaged "
                            f"({contents.integrity})",
                            f"备份 {path.name} 可解密，但 SQLite 检查发现损坏"
                            f"（{contents.integrity}）")


def list_backups(directory: Path) -> list[BackupFile]:
    """Every backup file in `directory`, newest first; an unreadable one carries its error."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found: list[BackupFile] = []
    for path in directory.glob(f"*{SUFFIX}"):
        try:
            size = path.stat().st_size
            found.append(BackupFile(path, size, read_header(path)))
        except (BackupError, OSError) as e:
            found.append(BackupFile(path, path.stat().st_size if path.exists() else 0, None,
                                    str(e)))
    return sorted(found, key=lambda f: (f.header.created_utc if f.header else "", f.path.name),
                  reverse=True)


# ---------------------------------------------------------------------- rotation

def rotate(directory: Path, *, terminal_id: str, kind: str, keep: int) -> list[Path]:
    """Delete this terminal's old backups of `kind`; returns the deleted paths.

    daily: the newest backup of each of the `keep` newest local days is kept (as
    ``borg prune --keep-daily``); upgrade: the `keep` newest. Files whose header cannot be
    read, other terminals' files and other kinds are never touched.
    """
    mine = [f for f in list_backups(directory)
            if f.header is not None and f.header.kind == kind
            and f.header.terminal_id == terminal_id]
    keep_paths: set[Path] = set()
    if kind == "daily":
        days: list[str] = []
        for f in mine:                              # newest first
            assert f.header is not None
            day = f.header.created_local[:10]
            if day not in days:
                days.append(day)
                if len(days) <= keep:
                    keep_paths.add(f.path)
    else:
        keep_paths = {f.path for f in mine[:keep]}
    removed = []
    for f in mine:
        if f.path not in keep_paths:
            f.path.unlink(missing_ok=True)
            removed.append(f.path)
            logger.info("backup %s rotated out", f.path.name)
    if removed:
        fsync_dir(Path(directory))
    return removed


# ---------------------------------------------------------------------- upgrade

def schema_version_of(journal_path: Path) -> int | None:
    """The schema version in the journal file (None when there is no file yet)."""
    journal_path = Path(journal_path)
    if not journal_path.exists():
        return None
    try:
        with closing(sqlite3.connect(str(journal_path), timeout=10.0)) as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error:
        return None          # Journal.open says what is wrong with it


@contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) on the backup directory's lock file, so two
    processes starting together make one upgrade backup, not two."""
    directory = ensure_directory(directory)
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise BackupError(f"cannot open {directory / LOCK_NAME}: {e.strerror}",
                          f"无法打开 {directory / LOCK_NAME}：{e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def backup_before_upgrade(journal_path: Path, directory: Path, root_key: bytes, *,
                          terminal_id: str, merchant_id: str, posterm_version: str,
                          actor: str = "system", clock: Clock | None = None,
                          keep: int = 3) -> BackupFile | None:
    """If the journal's schema is older than this build's, write its upgrade backup (kind
    "upgrade", named with both versions, rotated apart from the daily ones) and return it;
    None when no upgrade is due. The caller holds directory_lock and migrates afterwards,
    still holding it."""
    version = schema_version_of(journal_path)
    if version is None or version == 0 or version >= LATEST_VERSION:
        return None
    note = f"schema {version} to {LATEST_VERSION}"
    with closing(connect(journal_path)) as conn:
        made = create(conn, directory, root_key, kind="upgrade", terminal_id=terminal_id,
                      merchant_id=merchant_id, posterm_version=posterm_version, note=note,
                      clock=clock)
        audit_created(conn, made, actor=actor, clock=clock)
    rotate(directory, terminal_id=terminal_id, kind="upgrade", keep=keep)
    return made


# ---------------------------------------------------------------------- restore

def _exclusive(journal_path: Path) -> sqlite3.Connection:
    """The journal under SQLite's exclusive lock, held until the connection closes; JournalBusy
    if another connection (another posterm process) has it open."""
    conn = sqlite3.connect(str(journal_path), timeout=_BUSY_S, isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute("COMMIT")
    except sqlite3.OperationalError as e:
        conn.close()
        if "locked" in str(e) or "busy" in str(e):
            raise JournalBusy(
                f"the journal {journal_path.name} is open in another posterm process (the "
                "cashier app, a command, the backup timer): close it, then restore",
                f"日志数据库 {journal_path.name} 正被另一个 posterm 进程使用（收银程序、命令或"
                "定时备份）：请先关闭，再恢复") from None
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def restore(path: Path, journal_path: Path, root_key: bytes, *, terminal_id: str,
            merchant_id: str, directory: Path, posterm_version: str, force: bool = False,
            actor: str = "system", clock: Clock | None = None) -> RestoreResult:
    """Replace the journal with the backup at `path`.

    Refused: a backup of another terminal id (unless `force`), one with a newer schema than
    this build, a damaged one, and while another process has the journal open. The current
    journal is first saved as a "pre-restore" backup in `directory`, or, if SQLite cannot
    read it, moved aside as ``<journal>.damaged-<time>``. The restored journal's audit log
    gets a "backup.restore" row in the same transaction that restores it.
    """
    path, journal_path = Path(path), Path(journal_path)
    header = read_header(path)
    if header.terminal_id != terminal_id and not force:
        raise OtherTerminal(
            f"backup {path.name} is of terminal {header.terminal_id}, this is terminal "
            f"{terminal_id}: refused (--force restores it anyway)",
            f"备份 {path.name} 属于终端 {header.terminal_id}，本机为终端 {terminal_id}："
            "已拒绝（--force 强制恢复）")
    if header.schema_version > LATEST_VERSION:
        raise BackupError(
            f"backup {path.name} has schema version {header.schema_version}, newer than this "
            f"posterm (knows up to {LATEST_VERSION}): upgrade posterm first",
            f"备份 {path.name} 的数据库版本 {header.schema_version} 高于本版本 posterm（最高 "
            f"{LATEST_VERSION}）：请先升级 posterm")
    work_dir = journal_path.parent
    _sweep(work_dir)
    with opened(path, root_key, work_dir) as (header, plain):
        contents = _inspect_restored(path, plain)
        utc, local = stamp((clock or utc_now)())
        detail: dict[str, Any] = {
            "file": path.name, "sha256": header.sha256[:12], "backup_terminal":
            header.terminal_id, "backup_created_utc": header.created_utc,
            "transactions": contents.transactions, "forced": bool(force
                                                                 and header.terminal_id
                                                                 != terminal_id)}
        current = _open_current(journal_path)
        if current is None:
            previous, previous_kind = _place(plain, journal_path, detail, actor, utc, local,
                                             moved_aside=None)
        elif isinstance(current, Path):
            previous, previous_kind = _place(plain, journal_path, detail, actor, utc, local,
                                             moved_aside=current)
        else:
            with closing(current):
                before = create(current, directory, root_key, kind="pre-restore",
                                terminal_id=terminal_id, merchant_id=merchant_id,
                                posterm_version=posterm_version, clock=clock)
                previous, previous_kind = before.path, "pre-restore"
                detail["previous"] = before.path.name
                try:
                    with closing(sqlite3.connect(str(plain), isolation_level=None)) as src:
                        _append_audit(src, actor, "backup.restore", detail, utc, local)
                        src.backup(current)      # one write transaction into the journal
                except sqlite3.Error as e:
                    raise BackupError(f"the restore failed and the journal is unchanged: {e}",
                                      f"恢复失败，日志数据库未改变：{e}") from None
                current.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    logger.info("journal %s restored from %s (previous: %s)", journal_path, path.name,
                previous)
    return RestoreResult(header, contents, previous, previous_kind, bool(detail["forced"]))


def _open_current(journal_path: Path) -> sqlite3.Connection | Path | None:
    """The current journal under the exclusive lock; None if there is none; the path it was
    moved aside to if SQLite cannot read it (a damaged journal cannot be backed up)."""
    if not journal_path.exists():
        return None
    conn = None
    try:
        conn = _exclusive(journal_path)
        result = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as e:
        if conn is not None:
            conn.close()
        if not _is_corrupt(e):
            raise BackupError(f"cannot open the journal {journal_path}: {e}",
                              f"无法打开日志数据库 {journal_path}：{e}") from None
        result = None
    if result == [("ok",)]:
        assert conn is not None
        return conn
    if conn is not None:
        conn.close()
    stamp_utc = stamp(utc_now())[0].replace("-", "").replace(":", "")
    aside = journal_path.with_name(f"{journal_path.name}.damaged-{stamp_utc}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{journal_path}{suffix}")
        if src.exists():
            os.replace(src, Path(f"{aside}{suffix}"))
    logger.warning("damaged journal %s moved aside to %s", journal_path, aside)
    return aside


def _is_corrupt(e: sqlite3.DatabaseError) -> bool:
    code = (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF
    return code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in str(e) \
        or "not a database" in str(e)


def _place(plain: Path, journal_path: Path, detail: dict[str, Any], actor: str, utc: str,
           local: str, *, moved_aside: Path | None) -> tuple[Path | None, str]:
    """No usable journal: the restored copy becomes the journal by an atomic rename."""
    if moved_aside is not None:
        detail["previous"] = moved_aside.name
    with closing(sqlite3.connect(str(plain), isolation_level=None)) as src:
        _append_audit(src, actor, "backup.restore", detail, utc, local)
        src.execute("PRAGMA journal_mode = DELETE")
    staged = journal_path.with_name(f".{journal_path.name}.{secrets.token_hex(4)}.restored")
    os.link(plain, staged)
    with open(staged, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(staged, journal_path)
    fsync_dir(journal_path.parent)
    return moved_aside, ("damaged" if moved_aside is not None else "none")

