"""Operators on a real journal file: codes and roles, the counted lockout under a fixed
clock, password changes and resets, removal, the audit rows, and the schema-6 upgrade."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from storage.journal import Journal
from storage.migrations import MIGRATIONS
from storage.operators import (
    OperatorCodeError,
    OperatorError,
    OperatorExists,
    OperatorInactive,
    OperatorLocked,
    PasswordPolicy,
    PasswordPolicyError,
    UnknownOperator,
    WrongPassword,
    role_for,
)
from storage.passwords import check_password

ROOT_KEY = bytes(range(32))
POLICY = PasswordPolicy(max_failures=5, lock_minutes=15)
START = datetime(2026, 11, 21, 13, 50, 0, tzinfo=UTC)


class FixedClock:
    """A clock the test moves by hand."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **kw: float) -> None:
        self.moment += timedelta(**kw)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def journal(tmp_path, clock):
    j = Journal.open(tmp_path / "j.db", ROOT_KEY, clock=clock)
    j.set_operator("99", role="supervisor", name="Boss", password="boss-password")
    j.operators.add("01", name="Li 李", password="0000", actor="init")
    yield j
    j.close()


def audit_rows(journal):
    with journal._read() as conn:
        return conn.execute("SELECT actor, action, detail FROM audit ORDER BY id").fetchall()


def stored_hash(journal, code):
    with journal._read() as conn:
        return conn.execute("SELECT password_hash FROM operators WHERE code = ?",
                            (code,)).fetchone()[0]


# ---------------------------------------------------------------- codes and roles

@pytest.mark.parametrize("code, role", [("01", "cashier"), ("42", "cashier"),
                                        ("98", "cashier"), ("99", "supervisor")])
def test_the_role_is_the_codes(code, role):
    assert role_for(code) == role


@pytest.mark.parametrize("code", ["00", "1", "001", "100", "ab", "", "9 "])
def test_codes_other_than_01_to_99_are_refused(code):
    with pytest.raises(OperatorCodeError):
        role_for(code)


def test_a_role_the_code_does_not_have_is_refused(journal):
    with pytest.raises(OperatorCodeError, match="99 is the supervisor"):
        journal.set_operator("05", role="supervisor", name="X", password="whatever-1")
    with pytest.raises(OperatorCodeError):
        journal.set_operator("99", role="cashier", name="X", password="whatever-1")


# ---------------------------------------------------------------- adding

def test_an_added_operator_keeps_only_a_salted_hash_and_must_change_it(journal):
    record = journal.operators.get("01")
    assert (record.role, record.name, record.active, record.must_change) == (
        "cashier", "Li 李", True, True)
    stored = stored_hash(journal, "01")
    scheme, *_, salt, digest = stored.split("$")
    assert scheme == "scrypt" and len(salt) == 32 and len(digest) == 64
    assert "0000" not in stored.split("$")
    assert check_password("0000", stored)
    assert record.password_changed_utc == "2026-11-21T13:50:00Z"


def test_adding_an_active_code_again_is_refused(journal):
    with pytest.raises(OperatorExists, match="operator 01 already exists"):
        journal.operators.add("01", name="Other", password="1234", actor="99")


def test_the_policy_checks_an_added_password_length(journal):
    with pytest.raises(PasswordPolicyError) as caught:
        journal.operators.add("02", name="Wang", password="12", actor="99", policy=POLICY)
    assert caught.value.reason == "too_short" and caught.value.min_length == 4
    assert journal.operators.find("02") is None


# ---------------------------------------------------------------- the lockout

def test_the_fifth_wrong_password_locks_for_the_configured_time(journal):
    book = journal.operators
    for remaining in (4, 3, 2, 1):
        with pytest.raises(WrongPassword) as caught:
            book.verify("01", "9999", POLICY)
        assert caught.value.remaining == remaining
    with pytest.raises(OperatorLocked) as locked:
        book.verify("01", "9999", POLICY)
    assert locked.value.just_locked
    assert locked.value.until_utc == "2026-11-21T14:05:00Z"
    record = book.get("01")
    assert record.failed_count == 5 and record.locked(journal._now()[0])
    # The right password is refused while the lock lasts, and counts nothing more.
    with pytest.raises(OperatorLocked) as again:
        book.verify("01", "0000", POLICY)
    assert not again.value.just_locked and again.value.until_utc == "2026-11-21T14:05:00Z"
    assert book.get("01").failed_count == 5


def test_the_lock_expires_and_the_count_starts_again(journal, clock):
    book = journal.operators
    for _ in range(5):
        with pytest.raises((WrongPassword, OperatorLocked)):
            book.verify("01", "bad", POLICY)
    clock.advance(minutes=14, seconds=59)
    with pytest.raises(OperatorLocked):
        book.verify("01", "0000", POLICY)
    clock.advance(seconds=1)
    with pytest.raises(WrongPassword) as caught:      # the first failure of a new count
        book.verify("01", "bad", POLICY)
    assert caught.value.remaining == 4
    record = book.verify("01", "0000", POLICY)
    assert record.failed_count == 0 and record.locked_until_utc is None
    assert record.last_signon_utc == "2026-11-21T14:05:00Z"


def test_a_right_password_resets_the_count(journal):
    book = journal.operators
    for _ in range(4):
        with pytest.raises(WrongPassword):
            book.verify("01", "bad", POLICY)
    book.verify("01", "0000", POLICY)
    with pytest.raises(WrongPassword) as caught:
        book.verify("01", "bad", POLICY)
    assert caught.value.remaining == 4


def test_failures_are_counted_in_the_file_across_journal_handles(journal, tmp_path, clock):
    other = Journal.open(tmp_path / "j.db", ROOT_KEY, clock=clock)
    try:
        for i in range(4):
            with pytest.raises(WrongPassword):
                (journal if i % 2 else other).operators.verify("01", "bad", POLICY)
        with pytest.raises(OperatorLocked):
            other.operators.verify("01", "bad", POLICY)
        with pytest.raises(OperatorLocked):
            journal.operators.verify("01", "0000", POLICY)
    finally:
        other.close()


def test_a_smaller_configured_limit_locks_sooner(journal):
    strict = PasswordPolicy(max_failures=2, lock_minutes=60)
    with pytest.raises(WrongPassword):
        journal.operators.verify("01", "bad", strict)
    with pytest.raises(OperatorLocked) as locked:
        journal.operators.verify("01", "bad", strict)
    assert locked.value.until_utc == "2026-11-21T14:50:00Z"


def test_unknown_and_removed_operators_are_refused(journal):
    with pytest.raises(UnknownOperator, match="unknown operator 07"):
        journal.operators.verify("07", "0000", POLICY)
    journal.operators.remove("01", actor="99")
    with pytest.raises(OperatorInactive):
        journal.operators.verify("01", "0000", POLICY)
    with pytest.raises(OperatorInactive):
        journal.operators.remove("01", actor="99")


# ---------------------------------------------------------------- changing passwords

def test_change_password_verifies_the_old_and_clears_must_change(journal, clock):
    book = journal.operators
    clock.advance(days=1)
    record = book.change_password("01", "0000", "2468", POLICY)
    assert not record.must_change and record.password_changed_utc == "2026-11-22T13:50:00Z"
    assert book.verify("01", "2468", POLICY).code == "01"
    with pytest.raises(WrongPassword):
        book.verify("01", "0000", POLICY)


def test_a_wrong_old_password_counts_as_a_failure(journal):
    with pytest.raises(WrongPassword) as caught:
        journal.operators.change_password("01", "1111", "2468", POLICY)
    assert caught.value.remaining == 4
    assert journal.operators.get("01").must_change
    assert check_password("0000", stored_hash(journal, "01"))


def test_the_policy_refuses_a_short_or_unchanged_password_without_counting(journal):
    book = journal.operators
    with pytest.raises(PasswordPolicyError) as short:
        book.change_password("01", "0000", "12", POLICY)
    assert short.value.reason == "too_short"
    with pytest.raises(PasswordPolicyError) as same:
        book.change_password("01", "0000", "0000", POLICY)
    assert same.value.reason == "same_as_old"
    with pytest.raises(PasswordPolicyError) as supervisor:
        book.change_password("99", "boss-password", "12345", POLICY)   # supervisors need 6
    assert supervisor.value.min_length == 6
    assert book.get("01").failed_count == 0 and book.get("99").failed_count == 0


def test_a_reset_sets_must_change_and_lifts_the_lock(journal):
    book = journal.operators
    book.change_password("01", "0000", "2468", POLICY)
    for _ in range(5):
        with pytest.raises((WrongPassword, OperatorLocked)):
            book.verify("01", "bad", POLICY)
    record = book.reset_password("01", "1357", actor="99", policy=POLICY)
    assert record.must_change and record.failed_count == 0 and record.locked_until_utc is None
    assert book.verify("01", "1357", POLICY).must_change


def test_unlock_lifts_a_lock_and_forgets_the_failures(journal):
    book = journal.operators
    for _ in range(5):
        with pytest.raises((WrongPassword, OperatorLocked)):
            book.verify("01", "bad", POLICY)
    record = book.unlock("01", actor="99")
    assert record.failed_count == 0 and not record.locked(journal._now()[0])
    assert book.verify("01", "0000", POLICY).code == "01"


def test_the_password_expires_after_the_configured_days(journal, clock):
    record = journal.operators.get("99")
    assert not record.password_expired(clock() + timedelta(days=3650), 0)   # 0: never
    assert not record.password_expired(clock() + timedelta(days=89, hours=23), 90)
    assert record.password_expired(clock() + timedelta(days=90), 90)


# ---------------------------------------------------------------- removing

def test_a_removed_code_keeps_its_row_and_can_be_taken_again(journal):
    book = journal.operators
    book.remove("01", actor="99")
    assert [(r.code, r.active) for r in book.all()] == [("01", False), ("99", True)]
    assert [r.code for r in book.all(include_removed=False)] == ["99"]
    record = book.add("01", name="Zhao", password="5555", actor="99")
    assert record.active and record.name == "Zhao" and record.must_change
    assert book.verify("01", "5555", POLICY).code == "01"


def test_the_supervisor_cannot_be_removed(journal):
    with pytest.raises(OperatorError, match="supervisor and cannot be removed"):
        journal.operators.remove("99", actor="99")


# ---------------------------------------------------------------- audit

def test_every_change_and_failure_is_audited_without_the_password(journal):
    book = journal.operators
    book.verify("01", "0000", POLICY)
    for _ in range(5):
        with pytest.raises((WrongPassword, OperatorLocked)):
            book.verify("01", "wrong-pass", POLICY)
    book.unlock("01", actor="99")
    book.change_password("01", "0000", "2468", POLICY)
    book.reset_password("01", "1357", actor="99")
    book.remove("01", actor="99")
    rows = audit_rows(journal)
    actions = [action for _, action, _ in rows if action.startswith("operator.")]
    assert actions == (["operator.set", "operator.added", "operator.signon"]
                       + ["operator.password_failed"] * 5
                       + ["operator.locked", "operator.unlocked", "operator.password_changed",
                          "operator.password_reset", "operator.removed"])
    assert ("99", "operator.removed") in [(a, b) for a, b, _ in rows]
    text = repr(rows)
    for secret in ("0000", "wrong-pass", "2468", "1357", "boss-password", "scrypt$"):
        assert secret not in text
    assert journal.verify_audit() == []


def test_check_supervisor_still_finds_the_active_supervisor(journal):
    assert journal.check_supervisor("boss-password") == "99"
    assert journal.check_supervisor("0000") is None


# ---------------------------------------------------------------- upgrade

def test_a_schema_5_journal_keeps_its_operators_through_migration_6(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:5]:
        for statement in migration.statements:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 5")
    conn.execute("INSERT INTO operators (code, role, name, password_hash, created_utc,"
                 " created_local, updated_utc, updated_local) VALUES ('99', 'supervisor',"
                 " 'Boss', 'scrypt$x', '2026-01-01T00:00:00Z', '2026-01-01T08:00:00+08:00',"
                 " '2026-02-01T00:00:00Z', '2026-02-01T08:00:00+08:00')")
    conn.close()
    journal = Journal.open(path, ROOT_KEY)
    try:
        record = journal.operators.get("99")
        assert record.active and not record.must_change and record.failed_count == 0
        assert record.password_changed_utc == "2026-02-01T00:00:00Z"
    finally:
        journal.close()
