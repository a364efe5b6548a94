"""The journal on real SQLite files: schema, pragmas, counters, the transaction and reversal state machines."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from storage.errors import CorruptDatabase, InvalidTransition, StorageError
from storage.journal import Journal, NewTransaction
from storage.migrations import LATEST_VERSION

ROOT_KEY = bytes(range(32))
PAN = "6226090000000048"

SALE = NewTransaction(
    txn_type="sale", amount=12345, currency="156", stan=1, batch=1,
    terminal_id="12345678", merchant_id="898310048990001", operator="01",
    pan=PAN, expiry="2812", card_org="CUP", entry_mode="051", card_seq="001",
    pin_entered=True, extra={"aid": "A000000333010101"},
)


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "journal.db"


@pytest.fixture
def journal(db_path):
    j = Journal.open(db_path, ROOT_KEY)
    yield j
    j.close()


def peek(db_path, sql, args=()):
    """Read the file through a second, independent connection."""
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# ---------------------------------------------------------------- schema and pragmas

def test_open_creates_the_schema_and_records_user_version(journal, db_path):
    tables = {r[0] for r in peek(db_path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "counters", "keys", "transactions", "reversals", "audit", "audit_head"} <= tables
    assert peek(db_path, "PRAGMA user_version") == [(LATEST_VERSION,)]


def test_reopening_is_idempotent(db_path):
    Journal.open(db_path, ROOT_KEY).close()
    schema = peek(db_path, "SELECT sql FROM sqlite_master ORDER BY name")
    j = Journal.open(db_path, ROOT_KEY)
    j.close()
    assert peek(db_path, "SELECT sql FROM sqlite_master ORDER BY name") == schema
    assert peek(db_path, "PRAGMA user_version") == [(LATEST_VERSION,)]
    assert peek(db_path, "SELECT value FROM counters WHERE name = 'batch'") == [(1,)]


def test_wal_synchronous_full_and_foreign_keys_are_in_effect(journal, db_path):
    assert journal.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert journal.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert peek(db_path, "PRAGMA journal_mode") == [("wal",)]  # persistent in the file


def test_a_file_newer_than_this_build_is_refused(db_path):
    Journal.open(db_path, ROOT_KEY).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    conn.close()
    with pytest.raises(StorageError, match="newer than this posterm"):
        Journal.open(db_path, ROOT_KEY)


def test_a_garbage_file_is_a_corrupt_database_naming_the_path(db_path):
    db_path.write_bytes(b"this is not a database, it is a receipt\n" * 200)
    with pytest.raises(CorruptDatabase) as info:
        Journal.open(db_path, ROOT_KEY)
    assert str(db_path) in str(info.value) and "\n" not in str(info.value)


def test_a_damaged_database_is_a_corrupt_database(db_path):
    j = Journal.open(db_path, ROOT_KEY)
    for stan in range(1, 200):
        j.begin(replace(SALE, stan=stan))
    j.close()
    data = bytearray(db_path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[2 * page:4 * page] = b"\xa5" * (2 * page)  # scribble over b-tree pages
    db_path.write_bytes(bytes(data))
    with pytest.raises(CorruptDatabase, match=str(db_path)):
        Journal.open(db_path, ROOT_KEY)


# ---------------------------------------------------------------- counters and settings

def test_first_stan_is_1_and_each_is_committed(journal, db_path):
    assert journal.next_stan() == 1
    assert journal.next_stan() == 2
    assert peek(db_path, "SELECT value FROM counters WHERE name = 'stan'") == [(2,)]


def test_stan_wraps_from_999999_to_1_and_persists_across_reopen(db_path):
    Journal.open(db_path, ROOT_KEY).close()
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE counters SET value = 999998 WHERE name = 'stan'")
    conn.close()
    j = Journal.open(db_path, ROOT_KEY)
    assert j.next_stan() == 999999
    assert j.next_stan() == 1
    j.close()
    j = Journal.open(db_path, ROOT_KEY)
    assert j.next_stan() == 2
    j.close()


def test_batch_starts_at_1_and_set_batch_persists(db_path):
    j = Journal.open(db_path, ROOT_KEY)
    assert j.current_batch() == 1
    j.set_batch(42)
    j.close()
    j = Journal.open(db_path, ROOT_KEY)
    assert j.current_batch() == 42
    for bad in (0, 1_000_000):
        with pytest.raises(ValueError):
            j.set_batch(bad)
    j.close()


def test_meta_round_trip(journal):
    assert journal.get_meta("signed_on") is None
    journal.set_meta("signed_on", "yes")
    journal.set_meta("signed_on", "no")
    assert journal.get_meta("signed_on") == "no"


def test_keys_are_stored_wrapped_and_read_back(journal, db_path):
    mak = bytes.fromhex("0123456789abcdeffedcba9876543210")
    journal.put_key("mak", mak, kcv="82E13665")
    assert journal.get_key("mak") == mak
    assert journal.get_key("pik") is None
    (sealed, kcv), = peek(db_path, "SELECT sealed, kcv FROM keys WHERE name = 'mak'")
    assert mak not in sealed and kcv == "82E13665"


# ---------------------------------------------------------------- transactions

def test_begin_writes_pending_and_armed_reversal_visible_to_another_connection(journal, db_path):
    txn_id = journal.begin(SALE)
    assert peek(db_path, "SELECT state, amount, pan_masked FROM transactions WHERE id = ?", (txn_id,)) == [
        ("PENDING", 12345, "622609******0048")]
    assert peek(db_path, "SELECT state, reason, attempts FROM reversals WHERE txn_id = ?", (txn_id,)) == [
        ("ARMED", "98", 0)]
    assert [r.txn_id for r in journal.pending_reversals()] == [txn_id]


def test_begin_and_complete_are_one_commit_each(journal):
    """Trace the SQL the journal's own connection runs: one BEGIN IMMEDIATE and one COMMIT per call."""
    statements: list[str] = []
    journal.db.conn.set_trace_callback(statements.append)
    try:
        txn_id = journal.begin(SALE)
        begin_sql, statements[:] = list(statements), []
        journal.complete(txn_id, approved=True, response_code="00", rrn="1", auth_code="1")
        complete_sql = list(statements)
    finally:
        journal.db.conn.set_trace_callback(None)
    for sql in (begin_sql, complete_sql):
        keywords = [s.split()[0].upper() for s in sql]
        assert keywords.count("BEGIN") == 1 and keywords.count("COMMIT") == 1
        assert keywords[0] == "BEGIN" and keywords[-1] == "COMMIT"
    assert any("INSERT INTO [reversals]" in s or "INSERT INTO reversals" in s for s in begin_sql)


def test_begin_rolls_back_everything_if_any_part_fails(journal, db_path):
    # The audit step refuses a detail that looks like a PAN; by then the transaction and the
    # reversal rows are inserted, so this proves they go back out with it.
    bad = replace(SALE, txn_type="sale " + PAN)
    with pytest.raises(StorageError):
        journal.begin(bad)
    assert peek(db_path, "SELECT count(*) FROM transactions") == [(0,)]
    assert peek(db_path, "SELECT count(*) FROM reversals") == [(0,)]
    assert peek(db_path, "SELECT count(*) FROM audit") == [(0,)]
    assert journal.begin(SALE) == 1 and journal.verify_audit() == []


def test_non_reversible_transaction_arms_no_reversal(journal):
    txn_id = journal.begin(replace(SALE, txn_type="refund", reversible=False))
    assert journal.pending_reversals() == []
    assert journal.get(txn_id).reversal_state is None


def test_record_reads_back_every_field(journal):
    txn_id = journal.begin(SALE)
    r = journal.get(txn_id)
    assert (r.txn_type, r.state, r.amount, r.currency, r.stan, r.batch) == ("sale", "PENDING", 12345, "156", 1, 1)
    assert (r.terminal_id, r.merchant_id, r.operator) == ("12345678", "898310048990001", "01")
    assert (r.card_org, r.entry_mode, r.card_seq, r.pin_entered) == ("CUP", "051", "001", True)
    assert r.pan_masked == "622609******0048"
    assert r.pan_hash == journal.protector.fingerprint(PAN)
    assert (r.reversal_state, r.reversal_reason) == ("ARMED", "98")
    assert r.extra == {"aid": "A000000333010101"}
    assert not hasattr(r, "pan")


def test_timestamps_are_utc_z_with_local_beside(db_path):
    moment = datetime(2026, 11, 21, 23, 58, 47, 123456, tzinfo=UTC)
    j = Journal.open(db_path, ROOT_KEY, clock=lambda: moment)
    r = j.get(j.begin(SALE))
    j.close()
    assert r.created_utc == "2026-11-21T23:58:47Z"
    local = datetime.fromisoformat(r.created_local)
    assert local.utcoffset() is not None and local == moment.replace(microsecond=0)


def test_complete_approves_and_disarms_the_reversal(journal, db_path):
    txn_id = journal.begin(SALE)
    r = journal.complete(txn_id, approved=True, response_code="00", rrn="123456789012",
                         auth_code="A12345", settlement_date="1122", extra={"tc": "ABCD"})
    assert (r.state, r.response_code, r.rrn, r.auth_code, r.settlement_date) == (
        "APPROVED", "00", "123456789012", "A12345", "1122")
    assert r.extra == {"aid": "A000000333010101", "tc": "ABCD"}
    assert r.reversal_state == "CANCELLED"
    assert journal.pending_reversals() == []
    assert peek(db_path, "SELECT state FROM reversals WHERE txn_id = ?", (txn_id,)) == [("CANCELLED",)]


def test_complete_declined(journal):
    r = journal.complete(journal.begin(SALE), approved=False, response_code="51", rrn="1", auth_code=None)
    assert (r.state, r.response_code, r.reversal_state) == ("DECLINED", "51", "CANCELLED")


def test_completing_twice_is_an_invalid_transition(journal):
    txn_id = journal.begin(SALE)
    journal.complete(txn_id, approved=True, response_code="00", rrn="1", auth_code="1")
    with pytest.raises(InvalidTransition, match=f"transaction {txn_id} is APPROVED, not PENDING"):
        journal.complete(txn_id, approved=False, response_code="05", rrn="1", auth_code=None)
    assert journal.get(txn_id).state == "APPROVED"


def test_unknown_transaction_is_a_storage_error(journal):
    with pytest.raises(StorageError, match="not in the journal"):
        journal.get(99)
    with pytest.raises(StorageError, match="not in the journal"):
        journal.complete(99, approved=True, response_code="00", rrn=None, auth_code=None)


def test_fail_unsent_marks_failed_and_cancels_the_reversal(journal):
    txn_id = journal.begin(SALE)
    r = journal.fail_unsent(txn_id, "connect refused")
    assert (r.state, r.reversal_state) == ("FAILED", "CANCELLED")
    assert r.extra["fail_reason"] == "connect refused"
    assert journal.pending_reversals() == []
    with pytest.raises(InvalidTransition):
        journal.fail_unsent(txn_id, "again")
    with pytest.raises(InvalidTransition):
        journal.complete(txn_id, approved=True, response_code="00", rrn=None, auth_code=None)


# ---------------------------------------------------------------- reversals

def test_reversal_of_a_pending_transaction_with_reason_changed_to_a0(journal):
    txn_id = journal.begin(SALE)
    journal.set_reversal_reason(txn_id, "A0")
    (rev,) = journal.pending_reversals()
    assert (rev.txn_id, rev.reason, rev.attempts, rev.state) == (txn_id, "A0", 0, "ARMED")
    journal.reversal_attempted(rev.id)
    journal.reversal_attempted(rev.id)
    assert journal.pending_reversals()[0].attempts == 2
    r = journal.reversal_done(rev.id, "00")
    assert (r.state, r.reversal_state, r.reversal_reason) == ("REVERSED", "DONE", "A0")
    assert journal.pending_reversals() == []
    with pytest.raises(InvalidTransition, match="DONE, not ARMED"):
        journal.reversal_done(rev.id, "00")
    with pytest.raises(InvalidTransition):
        journal.complete(txn_id, approved=True, response_code="00", rrn=None, auth_code=None)


def test_arm_reversal_after_approval_when_the_card_declines(journal):
    txn_id = journal.begin(SALE)
    with pytest.raises(InvalidTransition, match="not APPROVED"):
        journal.arm_reversal(txn_id, "06")  # still PENDING, its reversal is already armed
    journal.complete(txn_id, approved=True, response_code="00", rrn="1", auth_code="1")
    journal.arm_reversal(txn_id, "06")
    assert journal.get(txn_id).reversal_state == "ARMED"
    with pytest.raises(InvalidTransition, match="already has an armed reversal"):
        journal.arm_reversal(txn_id, "06")
    (rev,) = journal.pending_reversals()
    assert rev.reason == "06"
    assert journal.reversal_done(rev.id, "00").state == "REVERSED"


def test_arm_reversal_refused_for_declined(journal):
    txn_id = journal.begin(SALE)
    journal.complete(txn_id, approved=False, response_code="05", rrn=None, auth_code=None)
    with pytest.raises(InvalidTransition):
        journal.arm_reversal(txn_id, "06")
    with pytest.raises(InvalidTransition, match="no armed reversal"):
        journal.set_reversal_reason(txn_id, "A0")


def test_reversal_failed_leaves_the_transaction_for_manual_handling(journal):
    txn_id = journal.begin(SALE)
    (rev,) = journal.pending_reversals()
    journal.reversal_failed(rev.id)
    r = journal.get(txn_id)
    assert (r.state, r.reversal_state) == ("PENDING", "FAILED")
    assert journal.pending_reversals() == []
    with pytest.raises(InvalidTransition):
        journal.reversal_attempted(rev.id)


def test_pending_reversals_oldest_first_and_survive_reopen(db_path):
    j = Journal.open(db_path, ROOT_KEY)
    ids = [j.begin(replace(SALE, stan=s)) for s in (1, 2, 3)]
    j.complete(ids[1], approved=True, response_code="00", rrn=None, auth_code=None)
    j.close()
    j = Journal.open(db_path, ROOT_KEY)
    assert [r.txn_id for r in j.pending_reversals()] == [ids[0], ids[2]]
    j.close()


# ---------------------------------------------------------------- queries

def test_find_and_transactions_newest_first(journal):
    a = journal.begin(replace(SALE, stan=7, batch=1))
    b = journal.begin(replace(SALE, stan=8, batch=1))
    c = journal.begin(replace(SALE, stan=7, batch=2))
    assert journal.find(stan=7).id == c
    assert journal.find(stan=7, batch=1).id == a
    assert journal.find(stan=9) is None
    assert [r.id for r in journal.transactions()] == [c, b, a]
    assert [r.id for r in journal.transactions(batch=1)] == [b, a]
    assert [r.id for r in journal.transactions(limit=1)] == [c]


def test_new_transaction_rejects_bad_values_without_echoing_the_pan():
    with pytest.raises(ValueError):
        replace(SALE, amount=0)
    with pytest.raises(ValueError):
        replace(SALE, amount=1.5)
    with pytest.raises(ValueError):
        replace(SALE, stan=0)
    with pytest.raises(ValueError) as info:
        replace(SALE, pan="62260900000000X8")
    assert "62260900000000X8" not in str(info.value)
    assert PAN not in repr(SALE)


def test_a_killed_process_leaves_the_pending_row_and_armed_reversal(db_path):
    """begin() in a child that dies without closing (os._exit): the next start sees the reversal to send."""
    import subprocess
    import sys
    from pathlib import Path

    child = f"""
import os
from storage.journal import Journal, NewTransaction
j = Journal.open({str(db_path)!r}, bytes(range(32)))
txn_id = j.begin(NewTransaction(
    txn_type="sale", amount=500, currency="156", stan=j.next_stan(), batch=j.current_batch(),
    terminal_id="12345678", merchant_id="898310048990001", operator="01", pan={PAN!r},
    expiry="2812", card_org="CUP", entry_mode="071", card_seq=None, pin_entered=False))
os._exit(0)  # no close, no checkpoint: as if the power went
"""
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", child], check=True, cwd=root, env={"PYTHONPATH": str(root)})
    j = Journal.open(db_path, ROOT_KEY)
    try:
        (rev,) = j.pending_reversals()
        r = j.get(rev.txn_id)
        assert (r.state, r.amount, r.stan, rev.reason) == ("PENDING", 500, 1, "98")
        assert j.card_for(rev.txn_id) == (PAN, "2812")
        assert j.verify_audit() == []
    finally:
        j.close()


def test_a_new_journal_and_its_wal_are_private_whatever_the_umask(tmp_path):
    import os
    import stat

    from storage.journal import Journal
    old = os.umask(0o022)
    try:
        journal = Journal.open(tmp_path / "posterm.db", b"\x01" * 32)
        journal.set_meta("x", "1")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
        journal.close()
    finally:
        os.umask(old)
    assert modes["posterm.db"] == 0o600
    assert all(mode == 0o600 for name, mode in modes.items() if name.startswith("posterm.db")), modes
