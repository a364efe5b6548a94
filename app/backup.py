"""Backups of the terminal's journal as the CLI and the start-up use them (storage/backup.py
does the work): the directory and rotation from posterm.toml's [backup], the terminal's ids
and root key, the audit actor, and the backup taken before a schema upgrade.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

from app import version
from app.config import Config
from app.errors import InputError, Refused
from storage import backup as store
from storage.keyfile import load_key_file
from storage.migrations import LATEST_VERSION

log = logging.getLogger(__name__)

#: Storage refusals the CLI reports with exit 1 (a refusal, not a usage error).
REFUSALS = (store.BackupDamaged, store.WrongBackupKey, store.OtherTerminal, store.JournalBusy)


def actor() -> str:
    """Who the audit log names for a backup or restore: the operating-system user."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return "os:unknown"


@contextmanager
def refusals_as_exit_1() -> Iterator[None]:
    """A damaged backup, another key or terminal, a busy journal: Refused (exit 1)."""
    try:
        yield
    except REFUSALS as exc:
        raise Refused(str(exc)) from None


def _ids(config: Config) -> tuple[str, str]:
    t = config["terminal"]
    return t["terminal_id"], t["merchant_id"]


def create(term) -> tuple[store.BackupFile, list[Path]]:
    """A daily backup of the terminal's journal, audited; then the daily rotation. Returns
    the new file and the files rotated out."""
    term.journal  # noqa: B018 - opened first: the right key, and an upgrade done before
    config = term.config
    terminal_id, merchant_id = _ids(config)
    root_key = load_key_file(config.key_path)
    with closing(store.connect(config.db_path)) as conn:
        made = store.create(conn, config.backup_dir, root_key, kind="daily",
                            terminal_id=terminal_id, merchant_id=merchant_id,
                            posterm_version=version())
        store.audit_created(conn, made, actor=actor())
    removed = store.rotate(config.backup_dir, terminal_id=terminal_id, kind="daily",
                           keep=config["backup"]["keep_daily"])
    return made, removed


def resolve(config: Config, name: str | None) -> Path:
    """A backup named on the command line: a path, a file name in the backup directory, or
    (None) this terminal's newest backup."""
    if name is None:
        terminal_id, _ = _ids(config)
        for item in store.list_backups(config.backup_dir):
            if item.header is not None and item.header.terminal_id == terminal_id:
                return item.path
        raise InputError(f"no backup of terminal {terminal_id} in {config.backup_dir} / "
                         f"{config.backup_dir} 中没有本终端的备份")
    path = Path(name)
    if path.exists():
        return path
    inside = config.backup_dir / name
    if inside.exists():
        return inside
    raise InputError(f"no backup {name} (nor in {config.backup_dir}) / 找不到备份 {name}")


def verify(config: Config, path: Path) -> tuple[store.BackupHeader, store.Contents]:
    """Decrypt, authenticate and integrity-check a backup (in a temporary file)."""
    with refusals_as_exit_1():
        return store.verify(path, load_key_file(config.key_path), config.backup_dir)


def restore(config: Config, path: Path, *, force: bool) -> store.RestoreResult:
    """Replace the journal with the backup (see storage.backup.restore for what is refused)."""
    terminal_id, merchant_id = _ids(config)
    with refusals_as_exit_1():
        return store.restore(path, config.db_path, load_key_file(config.key_path),
                             terminal_id=terminal_id, merchant_id=merchant_id,
                             directory=config.backup_dir, posterm_version=version(),
                             force=force, actor=actor())


@contextmanager
def upgrade_guard(config: Config, root_key: bytes) -> Iterator[None]:
    """Around the journal's opening (which migrates it): if its schema is older than this
    build's, an "upgrade" backup is written first, once, under a lock held until the
    migration is done, so a second process starting together finds it migrated. A backup
    that cannot be written stops the start: no migration without one."""
    schema = store.schema_version_of(config.db_path)
    if schema is None or schema == 0 or schema >= LATEST_VERSION:
        yield
        return
    terminal_id, merchant_id = _ids(config)
    with ExitStack() as held:
        try:
            held.enter_context(store.directory_lock(config.backup_dir))
            made = store.backup_before_upgrade(
                config.db_path, config.backup_dir, root_key, terminal_id=terminal_id,
                merchant_id=merchant_id, posterm_version=version(), actor=actor(),
                keep=config["backup"]["keep_upgrade"])
        except store.BackupError as exc:
            raise store.BackupError(
                f"the journal needs an upgrade (schema {schema} to {LATEST_VERSION}) "
                f"and its backup failed: {exc.en}",
                f"日志数据库需要升级（版本 {schema} 到 {LATEST_VERSION}），但升级前的备份"
                f"失败：{exc.zh}") from None
        if made is not None:
            log.info("journal at schema %d backed up to %s before its upgrade", schema,
                     made.path)
        yield
