"""Operators (操作员) of one journal: codes, roles, scrypt password hashes, lockout and
password age.

Codes follow UnionPay terminals: cashiers 01-98, the supervisor (主管) 99; the role is
the code's, so there is exactly one supervisor. A wrong password is counted in the same
commit that reads the row, so two processes cannot both get a "last try"; reaching the
caller's limit locks the operator until a time. A removed operator keeps its row (the
journal's transactions and audit rows name it) with ``active = 0``. Every change, sign-on,
failure and lock is an audit row; no password, clear or hashed, is ever in one.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage.errors import StorageError
from storage.passwords import check_password, hash_password
from storage.timestamps import stamp

if TYPE_CHECKING:
    from storage.journal import Journal

#: The supervisor's code; every other valid code (01-98) is a cashier's.
SUPERVISOR_CODE = "99"
ROLES = ("cashier", "supervisor")

_CODE = re.compile(r"[0-9]{2}")
_COLUMNS = ("code", "role", "name", "active", "must_change", "failed_count",
            "locked_until_utc", "locked_until_local", "password_changed_utc",
            "password_changed_local", "last_signon_utc", "last_signon_local", "created_utc",
            "created_local", "updated_utc", "updated_local")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM operators"


# ------------------------------------------------------------------ errors

class OperatorError(StorageError):
    """An operator action refused; ``code`` is the operator it was about."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class OperatorCodeError(OperatorError):
    """Not a valid operator code (two digits, 01-99), or a role the code does not have."""


class UnknownOperator(OperatorError):
    """No operator with this code."""


class OperatorInactive(OperatorError):
    """The operator was removed."""


class OperatorExists(OperatorError):
    """An active operator already has this code."""


class OperatorLocked(OperatorError):
    """Too many wrong passwords: refused until ``until_local`` (``just_locked``: by this try)."""

    def __init__(self, message: str, code: str, *, until_utc: str, until_local: str,
                 just_locked: bool) -> None:
        super().__init__(message, code)
        self.until_utc = until_utc
        self.until_local = until_local
        self.just_locked = just_locked


class WrongPassword(OperatorError):
    """The password did not match; ``remaining`` tries are left before the lock."""

    def __init__(self, message: str, code: str, *, failures: int, remaining: int) -> None:
        super().__init__(message, code)
        self.failures = failures
        self.remaining = remaining


class PasswordPolicyError(OperatorError):
    """A new password the policy refuses: ``reason`` is 'too_short' or 'same_as_old'."""

    def __init__(self, message: str, code: str, *, reason: str, min_length: int) -> None:
        super().__init__(message, code)
        self.reason = reason
        self.min_length = min_length


# ------------------------------------------------------------------ values

def role_for(code: str) -> str:
    """The role of a code: 'supervisor' for 99, 'cashier' for 01-98; OperatorCodeError else."""
    if not isinstance(code, str) or not _CODE.fullmatch(code) or code == "00":
        raise OperatorCodeError(f"operator code {code!r} is not 01-98 (cashier) or 99 "
                                "(supervisor)", str(code))
    return "supervisor" if code == SUPERVISOR_CODE else "cashier"


@dataclass(frozen=True)
class PasswordPolicy:
    """What the caller (from its configuration) allows: the lockout and the password rules."""

    max_failures: int = 5          # wrong passwords in a row that lock the operator
    lock_minutes: int = 15         # how long the lock lasts
    password_days: int = 0         # a password older than this must be changed; 0 = never
    cashier_min_length: int = 4
    supervisor_min_length: int = 6

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.lock_minutes < 1 or self.password_days < 0:
            raise ValueError("max_failures and lock_minutes must be at least 1, "
                             "password_days at least 0")
        if self.cashier_min_length < 1 or self.supervisor_min_length < 1:
            raise ValueError("a minimum password length must be at least 1")

    def min_length(self, role: str) -> int:
        return self.supervisor_min_length if role == "supervisor" else self.cashier_min_length


@dataclass(frozen=True)
class OperatorRecord:
    """One operator as stored, without its password hash."""

    code: str
    role: str
    name: str
    active: bool
    must_change: bool
    failed_count: int
    locked_until_utc: str | None
    locked_until_local: str | None
    password_changed_utc: str | None
    password_changed_local: str | None
    last_signon_utc: str | None
    last_signon_local: str | None
    created_utc: str
    created_local: str
    updated_utc: str
    updated_local: str

    def locked(self, now_utc: str) -> bool:
        """Whether a lock is in force at ``now_utc`` (the stored 'YYYY-MM-DDTHH:MM:SSZ' form)."""
        return self.locked_until_utc is not None and now_utc < self.locked_until_utc

    def password_expired(self, now: datetime, days: int) -> bool:
        """Whether the password is older than ``days`` at ``now`` (never when days is 0)."""
        if days <= 0 or self.password_changed_utc is None:
            return False
        changed = datetime.fromisoformat(self.password_changed_utc)
        return now >= changed + timedelta(days=days)


def _row(values: tuple) -> OperatorRecord:
    data = dict(zip(_COLUMNS, values))
    data["active"] = bool(data["active"])
    data["must_change"] = bool(data["must_change"])
    return OperatorRecord(**data)


def check_new_password(code: str, role: str, new: str, policy: PasswordPolicy,
                       old: str | None = None) -> None:
    """PasswordPolicyError unless ``new`` is long enough and (given ``old``) differs from it."""
    need = policy.min_length(role)
    if len(new) < need:
        raise PasswordPolicyError(f"the password of operator {code} needs at least {need} "
                                  "characters", code, reason="too_short", min_length=need)
    if old is not None and new == old:
        raise PasswordPolicyError(f"the new password of operator {code} must differ from the "
                                  "old one", code, reason="same_as_old", min_length=need)


# ------------------------------------------------------------------ the book

class OperatorBook:
    """The operators of one journal (``journal.operators``)."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    # ---------------------------------------------------------- reading

    def find(self, code: str) -> OperatorRecord | None:
        with self._journal._read() as conn:
            return self._find(conn, code)

    def get(self, code: str) -> OperatorRecord:
        """The operator with ``code`` (removed ones too); UnknownOperator if there is none."""
        found = self.find(code)
        if found is None:
            raise UnknownOperator(f"unknown operator {code}", code)
        return found

    def all(self, *, include_removed: bool = True) -> list[OperatorRecord]:
        """All operators by code."""
        where = "" if include_removed else " WHERE active = 1"
        with self._journal._read() as conn:
            return [_row(r) for r in conn.execute(f"{_SELECT}{where} ORDER BY code")]

    def now(self) -> datetime:
        """The journal's clock (tests fix it)."""
        return self._journal._clock()

    # ---------------------------------------------------------- changes

    def put(self, code: str, *, role: str, name: str, password: str, must_change: bool = False,
            actor: str = "system") -> OperatorRecord:
        """Create or overwrite an operator (active, unlocked, the password changed now).

        The low-level form behind ``Journal.set_operator`` and ``posterm init``: no policy
        check. Refuses a role the code does not have.
        """
        self._check_role(code, role)
        hashed = hash_password(password)
        when = self._journal._now()
        with self._journal._write() as conn:
            conn.execute(
                "INSERT INTO operators (code, role, name, password_hash, created_utc,"
                " created_local, updated_utc, updated_local, active, must_change, failed_count,"
                " locked_until_utc, locked_until_local, password_changed_utc,"
                " password_changed_local) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, 0, NULL, NULL,"
                " ?, ?) ON CONFLICT (code) DO UPDATE SET role = excluded.role,"
                " name = excluded.name, password_hash = excluded.password_hash,"
                " updated_utc = excluded.updated_utc, updated_local = excluded.updated_local,"
                " active = 1, must_change = excluded.must_change, failed_count = 0,"
                " locked_until_utc = NULL, locked_until_local = NULL,"
                " password_changed_utc = excluded.password_changed_utc,"
                " password_changed_local = excluded.password_changed_local",
                (code, role, name, hashed, *when, *when, int(must_change), *when))
            self._journal._audit(conn, "operator.set", actor,
                                 {"code": code, "role": role, "must_change": must_change}, when)
            return self._require(conn, code)

    def add(self, code: str, *, name: str, password: str, actor: str,
            policy: PasswordPolicy | None = None, must_change: bool = True) -> OperatorRecord:
        """A new operator (role from the code) whose first password someone else chose, so it
        must be changed at the first sign-on; a removed code is taken again.

        OperatorExists for an active code. With ``policy`` the password's length is checked.
        """
        role = role_for(code)
        name = name.strip()
        if not name:
            raise OperatorError(f"operator {code} needs a name", code)
        if policy is not None:
            check_new_password(code, role, password, policy)
        hashed = hash_password(password)
        when = self._journal._now()
        with self._journal._write() as conn:
            existing = self._find(conn, code)
            if existing is not None and existing.active:
                raise OperatorExists(f"operator {code} already exists ({existing.name})", code)
            conn.execute(
                "INSERT INTO operators (code, role, name, password_hash, created_utc,"
                " created_local, updated_utc, updated_local, active, must_change, failed_count,"
                " password_changed_utc, password_changed_local) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
                " 1, ?, 0, ?, ?) ON CONFLICT (code) DO UPDATE SET role = excluded.role,"
                " name = excluded.name, password_hash = excluded.password_hash,"
                " updated_utc = excluded.updated_utc, updated_local = excluded.updated_local,"
                " active = 1, must_change = excluded.must_change, failed_count = 0,"
                " locked_until_utc = NULL, locked_until_local = NULL,"
                " password_changed_utc = excluded.password_changed_utc,"
                " password_changed_local = excluded.password_changed_local,"
                " last_signon_utc = NULL, last_signon_local = NULL",
                (code, role, name, hashed, *when, *when, int(must_change), *when))
            self._journal._audit(conn, "operator.added", actor,
                                 {"code": code, "role": role, "name": name,
                                  "readded": existing is not None}, when)
            return self._require(conn, code)

    def verify(self, code: str, password: str, policy: PasswordPolicy, *,
               purpose: str = "signon", actor: str | None = None) -> OperatorRecord:
        """Check ``code``'s password, counting a failure in the same commit.

        ``purpose`` ('signon', 'supervisor', 'change') goes into the audit rows; a successful
        'signon' records the sign-on time. Raises UnknownOperator, OperatorInactive,
        OperatorLocked (already locked, or locked by this failure) or WrongPassword; each
        failure is committed before the exception leaves.
        """
        outcome: OperatorError | None = None
        when = self._journal._now()
        with self._journal._write() as conn:
            record, stored = self._for_check(conn, code, when)
            if check_password(password, stored):
                if purpose == "signon":
                    conn.execute("UPDATE operators SET failed_count = 0, last_signon_utc = ?,"
                                 " last_signon_local = ? WHERE code = ?", (*when, code))
                    self._journal._audit(conn, "operator.signon", actor or code,
                                         {"code": code, "role": record.role}, when)
                elif record.failed_count:
                    conn.execute("UPDATE operators SET failed_count = 0 WHERE code = ?", (code,))
                return self._require(conn, code)
            outcome = self._count_failure(conn, record, policy, purpose, actor or code, when)
        raise outcome

    def change_password(self, code: str, old: str, new: str,
                        policy: PasswordPolicy) -> OperatorRecord:
        """The operator changes their own password: ``old`` is verified (a failure counts),
        ``new`` must follow the policy and differ from ``old``. Clears must_change."""
        record = self.get(code)
        check_new_password(code, record.role, new, policy, old)
        hashed = hash_password(new)
        outcome: OperatorError | None = None
        when = self._journal._now()
        with self._journal._write() as conn:
            record, stored = self._for_check(conn, code, when)
            if check_password(old, stored):
                conn.execute("UPDATE operators SET password_hash = ?, must_change = 0,"
                             " failed_count = 0, password_changed_utc = ?,"
                             " password_changed_local = ?, updated_utc = ?, updated_local = ?"
                             " WHERE code = ?", (hashed, *when, *when, code))
                self._journal._audit(conn, "operator.password_changed", code,
                                     {"code": code, "was_required": record.must_change}, when)
                return self._require(conn, code)
            outcome = self._count_failure(conn, record, policy, "change", code, when)
        raise outcome

    def reset_password(self, code: str, new: str, *, actor: str,
                       policy: PasswordPolicy | None = None) -> OperatorRecord:
        """Someone else (the supervisor) sets a password: it must be changed at the next
        sign-on; the lock and the failures are cleared."""
        record = self.get(code)
        if not record.active:
            raise OperatorInactive(f"operator {code} was removed", code)
        if policy is not None:
            check_new_password(code, record.role, new, policy)
        hashed = hash_password(new)
        when = self._journal._now()
        with self._journal._write() as conn:
            conn.execute("UPDATE operators SET password_hash = ?, must_change = 1,"
                         " failed_count = 0, locked_until_utc = NULL, locked_until_local = NULL,"
                         " password_changed_utc = ?, password_changed_local = ?,"
                         " updated_utc = ?, updated_local = ? WHERE code = ?",
                         (hashed, *when, *when, code))
            self._journal._audit(conn, "operator.password_reset", actor, {"code": code}, when)
            return self._require(conn, code)

    def unlock(self, code: str, *, actor: str) -> OperatorRecord:
        """Lift a lock and forget the failures before it."""
        when = self._journal._now()
        with self._journal._write() as conn:
            record = self._require(conn, code)
            conn.execute("UPDATE operators SET failed_count = 0, locked_until_utc = NULL,"
                         " locked_until_local = NULL, updated_utc = ?, updated_local = ?"
                         " WHERE code = ?", (*when, code))
            self._journal._audit(conn, "operator.unlocked", actor,
                                 {"code": code, "was_locked": record.locked(when[0]),
                                  "failures": record.failed_count}, when)
            return self._require(conn, code)

    def remove(self, code: str, *, actor: str) -> OperatorRecord:
        """Disable an operator (the row stays); the supervisor cannot be removed."""
        if code == SUPERVISOR_CODE:
            raise OperatorError(f"operator {code} is the supervisor and cannot be removed", code)
        when = self._journal._now()
        with self._journal._write() as conn:
            record = self._require(conn, code)
            if not record.active:
                raise OperatorInactive(f"operator {code} was already removed", code)
            conn.execute("UPDATE operators SET active = 0, updated_utc = ?, updated_local = ?"
                         " WHERE code = ?", (*when, code))
            self._journal._audit(conn, "operator.removed", actor,
                                 {"code": code, "name": record.name}, when)
            return self._require(conn, code)

    # ---------------------------------------------------------- internals

    def _find(self, conn: sqlite3.Connection, code: str) -> OperatorRecord | None:
        found = conn.execute(f"{_SELECT} WHERE code = ?", (code,)).fetchone()
        return None if found is None else _row(found)

    def _require(self, conn: sqlite3.Connection, code: str) -> OperatorRecord:
        found = self._find(conn, code)
        if found is None:
            raise UnknownOperator(f"unknown operator {code}", code)
        return found

    @staticmethod
    def _check_role(code: str, role: str) -> None:
        if role not in ROLES:
            raise OperatorCodeError(f"role must be cashier or supervisor, not {role!r}", code)
        if role_for(code) != role:
            raise OperatorCodeError(f"operator {code} is a {role_for(code)}, not a {role} "
                                    "(99 is the supervisor, 01-98 are cashiers)", code)

    def _for_check(self, conn: sqlite3.Connection, code: str,
                   when: tuple[str, str]) -> tuple[OperatorRecord, str]:
        """The row and its hash, ready for a password check: refused when unknown, removed
        or locked; a lock whose time has passed is lifted (failures start again at 0)."""
        found = conn.execute("SELECT password_hash FROM operators WHERE code = ?",
                             (code,)).fetchone()
        if found is None:
            raise UnknownOperator(f"unknown operator {code}", code)
        record = self._require(conn, code)
        if not record.active:
            raise OperatorInactive(f"operator {code} was removed", code)
        if record.locked(when[0]):
            assert record.locked_until_utc is not None and record.locked_until_local is not None
            raise OperatorLocked(f"operator {code} is locked until {record.locked_until_local}",
                                 code, until_utc=record.locked_until_utc,
                                 until_local=record.locked_until_local, just_locked=False)
        if record.locked_until_utc is not None:
            conn.execute("UPDATE operators SET failed_count = 0, locked_until_utc = NULL,"
                         " locked_until_local = NULL WHERE code = ?", (code,))
            record = self._require(conn, code)
        return record, str(found[0])

    def _count_failure(self, conn: sqlite3.Connection, record: OperatorRecord,
                       policy: PasswordPolicy, purpose: str, actor: str,
                       when: tuple[str, str]) -> OperatorError:
        """Count one wrong password (locking at the limit) and say what to raise."""
        code = record.code
        failures = record.failed_count + 1
        detail = {"code": code, "purpose": purpose, "failures": failures}
        self._journal._audit(conn, "operator.password_failed", actor, detail, when)
        if failures < policy.max_failures:
            conn.execute("UPDATE operators SET failed_count = ? WHERE code = ?",
                         (failures, code))
            return WrongPassword(f"wrong password for operator {code}, "
                                 f"{policy.max_failures - failures} tries left", code,
                                 failures=failures, remaining=policy.max_failures - failures)
        moment = datetime.fromisoformat(when[0])
        until = stamp(moment + timedelta(minutes=policy.lock_minutes))
        conn.execute("UPDATE operators SET failed_count = ?, locked_until_utc = ?,"
                     " locked_until_local = ? WHERE code = ?", (failures, *until, code))
        self._journal._audit(conn, "operator.locked", actor,
                             {"code": code, "failures": failures, "until_utc": until[0],
                              "minutes": policy.lock_minutes}, when)
        return OperatorLocked(f"wrong password: operator {code} is locked until {until[1]}",
                              code, until_utc=until[0], until_local=until[1], just_locked=True)
