"""Encrypted journal backups on real SQLite files: round trip, tampering, keys, terminals,
the exclusive lock of a restore, rotation, and the backup before a schema upgrade."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import backup as store
from storage.journal import Journal, NewTransaction
from storage.migrations import LATEST_VERSION, MIGRATIONS

ROOT_KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
PAN = "6226090000000048"
TID, MID = "12345678", "898310048990001"

SALE = NewTransaction(
    txn_type="sale", amount=12345, currency="156", stan=1, batch=1,
    terminal_id=TID, merchant_id=MID, operator="01",
    pan=PAN, expiry="2812", card_org="CUP", entry_mode="051", card_seq="001",
    pin_entered=True, extra={"aid": "A000000333010101"},
)
#: Every table of the journal but the audit log and its head (a restore adds one row).
TABLES = ("meta", "counters", "keys", "transactions", "reversals", "operators", "advices",
          "settlements", "recon_runs", "recon_items")


def add_sales(journal: Journal, count: int, *, first_stan: int = 1) -> None:
    for i in range(count):
        txn_id = journal.begin(replace(SALE, stan=first_stan + i, amount=100 + i))
        journal.complete(txn_id, approved=True, response_code="00", rrn=f"{first_stan + i:012d}",
                         auth_code="123456")


def rows(db: Path, table: str) -> list[tuple]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()


def dump(db: Path) -> dict[str, list[tuple]]:
    return {t: rows(db, t) for t in TABLES}


def make(journal_path: Path, backups: Path, *, kind: str = "daily", terminal_id: str = TID,
         key: bytes = ROOT_KEY, clock=None) -> store.BackupFile:
    with closing(store.connect(journal_path)) as conn:
        return store.create(conn, backups, key, kind=kind, terminal_id=terminal_id,
                            merchant_id=MID, posterm_version="0.1.0", clock=clock)


def do_restore(backup: Path, journal_path: Path, backups: Path, *, terminal_id: str = TID,
               force: bool = False, key: bytes = ROOT_KEY) -> store.RestoreResult:
    return store.restore(backup, journal_path, key, terminal_id=terminal_id, merchant_id=MID,
                         directory=backups, posterm_version="0.1.0", force=force,
                         actor="test")


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    journal_path, backups = tmp_path / "posterm.db", tmp_path / "backups"
    with Journal.open(journal_path, ROOT_KEY) as journal:
        add_sales(journal, 5)
        journal.put_key("mak", bytes(16), kcv="000000")
    return journal_path, backups


# ---------------------------------------------------------------------- round trip

def test_a_backup_verifies_and_says_what_it_holds(paths):
    journal_path, backups = paths
    made = make(journal_path, backups)
    header, contents = store.verify(made.path, ROOT_KEY, backups)
    assert (header.terminal_id, header.merchant_id, header.kind) == (TID, MID, "daily")
    assert header.schema_version == LATEST_VERSION == contents.schema_version
    assert header.created_utc.endswith("Z")
    assert datetime.fromisoformat(header.created_local).utcoffset() is not None
    assert contents.integrity == "ok"
    assert contents.transactions == header.transactions == 5
    assert contents.open_batch == 1
    assert contents.audit_rows > 0 and contents.audit_problems == ()
    assert [p.name for p in backups.iterdir() if not p.name.startswith(".")] == [made.path.name]


def test_restore_gives_back_the_journal_as_it_was_when_backed_up(paths, tmp_path):
    journal_path, backups = paths
    made = make(journal_path, backups)
    before, audit_before = dump(journal_path), rows(journal_path, "audit")
    with Journal.open(journal_path, ROOT_KEY) as journal:           # the day goes on
        add_sales(journal, 3, first_stan=6)
        journal.set_batch(2)
    assert dump(journal_path) != before

    result = do_restore(made.path, journal_path, backups)

    assert dump(journal_path) == before                              # same rows, by SQL
    audit_after = rows(journal_path, "audit")
    assert audit_after[:len(audit_before)] == audit_before
    (restore_row,) = audit_after[len(audit_before):]
    assert restore_row[3:5] == ("test", "backup.restore")
    assert made.path.name in restore_row[5] and result.previous.name in restore_row[5]
    # the replaced journal is kept: 8 transactions and batch 2, as before the restore
    assert result.previous_kind == "pre-restore"
    _, kept = store.verify(result.previous, ROOT_KEY, backups)
    assert (kept.transactions, kept.open_batch) == (8, 2)
    with Journal.open(journal_path, ROOT_KEY) as journal:            # opens, chain intact
        assert journal.root_key_matches and journal.verify_audit() == []
        assert journal.card_for(1)[0] == PAN
        assert len(journal.transactions()) == 5


def test_the_snapshot_is_consistent_while_another_connection_writes(paths):
    journal_path, backups = paths
    writer = sqlite3.connect(journal_path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE counters SET value = 77 WHERE name = 'batch'")
        made = make(journal_path, backups)                   # not blocked by the writer
        writer.execute("COMMIT")
    finally:
        writer.close()
    _, contents = store.verify(made.path, ROOT_KEY, backups)
    assert contents.open_batch == 1                          # the uncommitted change is not in it


def test_the_file_is_private_and_holds_no_clear_journal(paths):
    journal_path, backups = paths
    made = make(journal_path, backups)
    assert stat.S_IMODE(made.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(backups.stat().st_mode) == 0o700
    raw = made.path.read_bytes()
    assert b"SQLite format 3" not in raw and b"CREATE TABLE" not in raw
    assert PAN.encode() not in raw
    assert not [p for p in backups.iterdir() if p.name.startswith(".") and p.suffix != ".lock"]


def test_clear_copies_left_by_a_killed_process_are_swept_after_a_day(paths):
    journal_path, backups = paths
    make(journal_path, backups)
    old = [backups / ".snapshot-0123456789ab.db", journal_path.parent / ".restore-0123.db",
           backups / f".posterm-x{store.SUFFIX}.abcd.tmp"]
    fresh = backups / ".snapshot-ba9876543210.db"
    for path in [*old, fresh]:
        path.write_bytes(b"clear")
    day_ago = time.time() - 86400 - 60
    for path in old:
        os.utime(path, (day_ago, day_ago))
    made = make(journal_path, backups)
    do_restore(made.path, journal_path, backups)
    assert [p.exists() for p in old] == [False, False, False]
    assert fresh.exists()                       # maybe another backup's, still running


# ---------------------------------------------------------------------- tampering

def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def header_end(path: Path) -> int:
    data = path.read_bytes()
    return len(store.MAGIC) + 4 + int.from_bytes(data[len(store.MAGIC):len(store.MAGIC) + 4], "big")


@pytest.mark.parametrize("where", ["first ciphertext byte", "middle", "last byte (tag)",
                                   "header value", "magic"])
def test_one_changed_byte_anywhere_fails_verification(paths, where):
    journal_path, backups = paths
    made = make(journal_path, backups)
    size, start = made.path.stat().st_size, header_end(made.path)
    text = made.path.read_bytes()[:start]
    offset = {"first ciphertext byte": start, "middle": (start + size) // 2,
              "last byte (tag)": size - 1,
              "header value": text.index(b'"created_utc":"') + len(b'"created_utc":"') + 3,
              "magic": 0}[where]
    flip(made.path, offset)
    with pytest.raises(store.BackupDamaged) as failed:
        store.verify(made.path, ROOT_KEY, backups)
    message = str(failed.value)
    assert "\n" not in message and made.path.name in message
    assert "damaged" in message or "not a posterm backup" in message
    assert not [p for p in backups.iterdir() if p.name.startswith(".restore")]   # cleaned up


def test_a_backup_cut_short_or_with_chunks_reordered_fails(tmp_path):
    journal_path, backups = tmp_path / "big.db", tmp_path / "backups"
    with Journal.open(journal_path, ROOT_KEY) as journal:            # > 2 chunks of 1 MiB
        journal.set_meta("padding", os.urandom(1_300_000).hex())
        add_sales(journal, 2)
    made = make(journal_path, backups)
    assert made.header.size > 2 * store.CHUNK
    store.verify(made.path, ROOT_KEY, backups)
    start, sealed = header_end(made.path), store.CHUNK + store.TAG_BYTES
    data = made.path.read_bytes()
    chunks = [data[start + i * sealed:start + (i + 1) * sealed]
              for i in range((len(data) - start + sealed - 1) // sealed)]
    assert len(chunks) >= 3
    variants = {
        "last chunk dropped": data[:start] + b"".join(chunks[:-1]),
        "cut mid-chunk": data[: start + sealed + 100],
        "two chunks swapped": data[:start] + chunks[1] + chunks[0] + b"".join(chunks[2:]),
        "header only": data[:start],
    }
    for name, content in variants.items():
        target = backups / f"{name.replace(' ', '-')}{store.SUFFIX}"
        target.write_bytes(content)
        with pytest.raises(store.BackupDamaged):
            store.verify(target, ROOT_KEY, backups)


def test_another_key_file_is_named_as_such(paths):
    journal_path, backups = paths
    made = make(journal_path, backups)
    with pytest.raises(store.WrongBackupKey, match="another key file"):
        store.verify(made.path, OTHER_KEY, backups)


def test_a_file_that_is_no_backup_is_refused(paths, tmp_path):
    _, backups = paths
    stray = tmp_path / f"stray{store.SUFFIX}"
    stray.write_bytes(b"hello")
    with pytest.raises(store.BackupDamaged, match="not a posterm backup"):
        store.verify(stray, ROOT_KEY, backups)
    with pytest.raises(store.BackupError, match="no backup file"):
        store.verify(tmp_path / "missing.ptbak", ROOT_KEY, backups)


# ---------------------------------------------------------------------- restore refusals

def test_a_backup_of_another_terminal_is_refused_unless_forced(paths):
    journal_path, backups = paths
    made = make(journal_path, backups, terminal_id="OTHER001")
    before = dump(journal_path)
    with pytest.raises(store.OtherTerminal, match="terminal OTHER001") as refused:
        do_restore(made.path, journal_path, backups)
    assert "--force" in str(refused.value)
    assert dump(journal_path) == before and not list(backups.glob("*pre-restore*"))
    result = do_restore(made.path, journal_path, backups, force=True)
    assert result.forced
    assert '"forced":true' in rows(journal_path, "audit")[-1][5]


def test_a_restore_is_refused_while_another_connection_has_the_journal_open(paths):
    journal_path, backups = paths
    made = make(journal_path, backups)
    with Journal.open(journal_path, ROOT_KEY) as journal:
        add_sales(journal, 1, first_stan=50)
        before = dump(journal_path)
        with pytest.raises(store.JournalBusy, match="open in another posterm process"):
            do_restore(made.path, journal_path, backups)
        assert len(journal.transactions()) == 6                  # still usable
    assert dump(journal_path) == before
    assert not list(backups.glob("*pre-restore*"))
    do_restore(made.path, journal_path, backups)                 # closed: it goes through
    assert len(rows(journal_path, "transactions")) == 5


def test_a_damaged_journal_is_moved_aside_and_replaced(paths):
    journal_path, backups = paths
    made = make(journal_path, backups)
    expected = dump(journal_path)
    journal_path.write_bytes(b"this is not a database" * 500)
    result = do_restore(made.path, journal_path, backups)
    assert result.previous_kind == "damaged"
    assert result.previous.read_bytes().startswith(b"this is not a database")
    assert dump(journal_path) == expected
    with Journal.open(journal_path, ROOT_KEY) as journal:
        assert journal.verify_audit() == []


def test_a_journal_that_cannot_be_opened_is_not_taken_for_damaged(paths, tmp_path):
    journal_path, backups = paths
    made = make(journal_path, backups)
    in_the_way = tmp_path / "in-the-way.db"
    in_the_way.mkdir()                                  # a directory where the journal is
    with pytest.raises(store.BackupError, match="cannot open the journal"):
        do_restore(made.path, in_the_way, backups)
    assert in_the_way.is_dir() and not list(tmp_path.glob("*.damaged-*"))


def test_a_missing_journal_is_restored(paths):
    journal_path, backups = paths
    made = make(journal_path, backups)
    expected = dump(journal_path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{journal_path}{suffix}").unlink(missing_ok=True)
    result = do_restore(made.path, journal_path, backups)
    assert result.previous is None and dump(journal_path) == expected


def test_a_backup_newer_than_this_build_is_not_restored(paths):
    journal_path, backups = paths
    with closing(sqlite3.connect(journal_path)) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    made = make(journal_path, backups)
    with closing(sqlite3.connect(journal_path)) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION}")
    with pytest.raises(store.BackupError, match="newer than this posterm"):
        do_restore(made.path, journal_path, backups)


# ---------------------------------------------------------------------- rotation

def clock_at(moment: datetime):
    return lambda: moment


def test_rotation_keeps_the_newest_backup_of_each_of_the_last_n_days(paths):
    journal_path, backups = paths
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    made = []
    for day in range(10):
        for hour in (0, 6):                       # two a day
            made.append(make(journal_path, backups,
                             clock=clock_at(start + timedelta(days=day, hours=hour))))
    other = make(journal_path, backups, terminal_id="OTHER001",
                 clock=clock_at(start - timedelta(days=30)))
    upgrade = make(journal_path, backups, kind="upgrade", clock=clock_at(start))
    removed = store.rotate(backups, terminal_id=TID, kind="daily", keep=7)
    left = {f.path for f in store.list_backups(backups)}
    newest_of_last_7_days = {made[2 * day + 1].path for day in range(3, 10)}
    assert left == newest_of_last_7_days | {other.path, upgrade.path}
    assert len(removed) == 20 - 7


def test_upgrade_backups_rotate_apart_from_daily_ones(paths):
    journal_path, backups = paths
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ups = [make(journal_path, backups, kind="upgrade", clock=clock_at(start + timedelta(days=d)))
           for d in range(5)]
    daily = make(journal_path, backups, clock=clock_at(start))
    store.rotate(backups, terminal_id=TID, kind="upgrade", keep=3)
    assert {f.path for f in store.list_backups(backups)} == {u.path for u in ups[2:]} | {daily.path}


def test_list_shows_an_unreadable_file_without_failing(paths):
    journal_path, backups = paths
    made = make(journal_path, backups)
    (backups / f"broken{store.SUFFIX}").write_bytes(b"nope")
    listed = store.list_backups(backups)
    assert [f.path.name for f in listed if f.header] == [made.path.name]
    (bad,) = [f for f in listed if f.header is None]
    assert "not a posterm backup" in bad.error
    store.rotate(backups, terminal_id=TID, kind="daily", keep=1)
    assert (backups / f"broken{store.SUFFIX}").exists()             # never rotated out


# ---------------------------------------------------------------------- upgrade

def old_journal(path: Path, version: int) -> None:
    """A journal made by an older build: the migrations up to `version`, and a row in it."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for migration in MIGRATIONS[:version]:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {migration.version}")
        conn.execute("INSERT INTO meta (key, value) VALUES ('made_by', 'an older posterm')")


def test_an_older_journal_is_backed_up_once_before_its_upgrade(tmp_path):
    journal_path, backups = tmp_path / "posterm.db", tmp_path / "backups"
    old_journal(journal_path, 3)
    made = store.backup_before_upgrade(journal_path, backups, ROOT_KEY, terminal_id=TID,
                                       merchant_id=MID, posterm_version="0.1.0")
    assert made is not None and made.header.kind == "upgrade"
    assert made.header.schema_version == 3 and f"3-to-{LATEST_VERSION}" in made.path.name
    Journal.open(journal_path, ROOT_KEY).close()                 # migrates
    assert store.backup_before_upgrade(journal_path, backups, ROOT_KEY, terminal_id=TID,
                                       merchant_id=MID, posterm_version="0.1.0") is None
    assert len(store.list_backups(backups)) == 1
    with store.opened(made.path, ROOT_KEY, backups) as (_, plain), \
            closing(sqlite3.connect(plain)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (3,)
        assert conn.execute("SELECT value FROM meta WHERE key = 'made_by'").fetchone() == (
            "an older posterm",)
    # the journal's audit log says the upgrade backup was made
    assert any(r[4] == "backup.create" and made.path.name in r[5]
               for r in rows(journal_path, "audit"))


@pytest.mark.parametrize("version", [None, 0, LATEST_VERSION])
def test_no_upgrade_backup_for_a_new_or_current_journal(tmp_path, version):
    journal_path, backups = tmp_path / "posterm.db", tmp_path / "backups"
    if version == 0:
        sqlite3.connect(journal_path).close()
    elif version == LATEST_VERSION:
        Journal.open(journal_path, ROOT_KEY).close()
    assert store.backup_before_upgrade(journal_path, backups, ROOT_KEY, terminal_id=TID,
                                       merchant_id=MID, posterm_version="0.1.0") is None
    assert store.list_backups(backups) == []
