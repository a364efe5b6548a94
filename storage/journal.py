"""The transaction journal: one SQLite file holding counters, keys, transactions, reversals and the audit log.

Every state change is committed (WAL, synchronous=FULL, so durable) before the method returns,
which is what lets a restarted terminal finish or undo whatever was under way: a transaction
is written PENDING with its reversal ARMED before anything goes to the host. The clear PAN
never reaches the file: it is sealed (AES-GCM) together with the expiry, next to a masked
form and a keyed fingerprint.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import sqlite_utils

from storage import audit as audit_log
from storage.errors import CorruptDatabase, DiskFull, InvalidTransition, StorageError
from storage.migrations import migrate
from storage.pan import CardDataProtector, mask_pan
from storage.passwords import check_password
from storage.settlements import SettlementBook
from storage.timestamps import Clock, stamp, utc_now

if TYPE_CHECKING:
    from storage.operators import OperatorBook

logger = logging.getLogger(__name__)

STAN_MAX = 999999
BATCH_MAX = 999999
BUSY_TIMEOUT_S = 10.0
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
#: What a write the disk refused means (DiskFull's reason) and what to do.
_UNWRITABLE = {
    "full": "the disk is full: nothing was written; free space on it (posterm doctor shows"
            " how much is left)",
    "read-only": "the disk is read-only: nothing was written; check the disk and remount"
                 " it read-write (posterm doctor)",
    "I/O error": "the disk failed a write: nothing was written; check the disk and its free"
                 " space (posterm doctor)",
}
#: SQLite's primary result codes of a refused write: FULL, READONLY, IOERR, CANTOPEN
#: (a -wal or -shm file that cannot be made); the disk itself says which it is.
_SQLITE_FULL, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CANTOPEN = 13, 8, 10, 14
#: Less free space than this on the journal's disk counts as full (SQLite needs a few pages).
_FULL_BYTES = 256 * 1024


def _unwritable(path: Path, code: int) -> str | None:
    """Why the disk refused a write to the journal at ``path`` (a key of _UNWRITABLE), or
    None if the error is not the disk's. The file system is asked first: SQLite reports a
    full disk as an I/O error when the -shm file cannot grow, for instance."""
    if code not in (_SQLITE_FULL, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CANTOPEN):
        return None
    try:
        disk = os.statvfs(path.parent)
    except OSError:
        disk = None
    if disk is not None and disk.f_flag & os.ST_RDONLY:
        return "read-only"
    if code == _SQLITE_FULL or (disk is not None and disk.f_bavail * disk.f_frsize < _FULL_BYTES):
        return "full"
    return {_SQLITE_READONLY: "read-only", _SQLITE_IOERR: "I/O error"}.get(code)

# Reason codes (F39 of the 0400) a reversal is armed with.
REVERSAL_NO_RESPONSE = "98"
REVERSAL_MAC_ERROR = "A0"
REVERSAL_CARD_DECLINED = "06"


@dataclass(frozen=True)
class NewTransaction:
    """A transaction about to be sent; the clear PAN and expiry live only in this object, in memory."""

    txn_type: str
    amount: int
    currency: str
    stan: int
    batch: int
    terminal_id: str
    merchant_id: str
    operator: str
    pan: str = field(repr=False)
    expiry: str | None = field(repr=False)
    card_org: str
    entry_mode: str
    card_seq: str | None
    pin_entered: bool
    reversible: bool = True
    extra: dict | None = None
    original_id: int | None = None   # the transaction a void, refund or completion acts on

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount <= 0:
            raise ValueError("amount must be a positive int of fen")
        if not 1 <= self.stan <= STAN_MAX:
            raise ValueError(f"stan must be 1..{STAN_MAX}, not {self.stan}")
        if not 1 <= self.batch <= BATCH_MAX:
            raise ValueError(f"batch must be 1..{BATCH_MAX}, not {self.batch}")
        if not re.fullmatch(r"\d{12,19}", self.pan or ""):
            raise ValueError("pan must be 12 to 19 digits")  # never echo the PAN
        if self.expiry is not None and not re.fullmatch(r"\d{4}", self.expiry):
            raise ValueError("expiry must be YYMM")


@dataclass(frozen=True)
class TransactionRecord:
    """One journal row as read back; there is no clear PAN here (use Journal.card_for)."""

    id: int
    txn_type: str
    state: str
    amount: int
    currency: str
    stan: int
    batch: int
    terminal_id: str
    merchant_id: str
    operator: str
    pan_masked: str
    pan_hash: str
    card_org: str
    entry_mode: str
    card_seq: str | None
    pin_entered: bool
    response_code: str | None
    rrn: str | None
    auth_code: str | None
    settlement_date: str | None
    created_utc: str
    created_local: str
    updated_utc: str
    updated_local: str
    reversal_state: str | None
    reversal_reason: str | None
    receipt_state: str | None    # None (no slip for it), 'printed', 'unprinted'
    original_id: int | None      # the transaction this one acts on (void, refund, completion)
    voided_by: int | None        # the approved void of this transaction
    advice_state: str | None     # offline transactions: 'QUEUED', 'SENT', 'FAILED'
    extra: dict


@dataclass(frozen=True)
class KeyCheck:
    """What may be shown of a stored key: its name, check value and when it was stored
    (local ISO time); never the key."""

    name: str
    kcv: str | None
    updated_local: str


@dataclass(frozen=True)
class Advice:
    """One entry of the store-and-forward queue (an offline transaction to tell the host)."""

    id: int
    txn_id: int
    state: str
    attempts: int
    created_utc: str


@dataclass(frozen=True)
class Reversal:
    """One entry of the reversal queue."""

    id: int
    txn_id: int
    reason: str
    attempts: int
    state: str
    created_utc: str


_RECORD_SQL = """
SELECT t.id, t.txn_type, t.state, t.amount, t.currency, t.stan, t.batch, t.terminal_id,
       t.merchant_id, t.operator, t.pan_masked, t.pan_hash, t.card_org, t.entry_mode,
       t.card_seq, t.pin_entered, t.response_code, t.rrn, t.auth_code, t.settlement_date,
       t.created_utc, t.created_local, t.updated_utc, t.updated_local,
       r.state, r.reason, t.receipt_state, t.original_id, t.voided_by, a.state, t.extra
FROM transactions AS t
LEFT JOIN reversals AS r ON r.id = (SELECT max(id) FROM reversals WHERE txn_id = t.id)
LEFT JOIN advices AS a ON a.txn_id = t.id
"""


def _record(row: tuple) -> TransactionRecord:
    values = list(row)
    values[15] = bool(values[15])
    values[-1] = json.loads(values[-1]) if values[-1] else {}
    return TransactionRecord(*values)


def _card_aad(txn_id: int) -> bytes:
    # Binds the sealed card to its row: a blob copied into another row will not open.
    return f"posterm txn {txn_id} card".encode("ascii")


class Journal:
    """The terminal's journal on one SQLite file; one instance per process, safe to share between threads."""

    path: Path
    protector: CardDataProtector
    db: sqlite_utils.Database
    root_key_matches: bool

    def __init__(self, path: Path, conn: sqlite3.Connection, protector: CardDataProtector,
                 clock: Clock) -> None:
        """Use Journal.open(); this wraps an already configured and migrated connection."""
        self.path = path
        self.protector = protector
        self._conn = conn
        self.db = sqlite_utils.Database(conn, execute_plugins=False)
        self._clock = clock
        self._lock = threading.RLock()
        self._closed = False
        self._transactions = self.db.table("transactions")
        self._meta = self.db.table("meta")
        self._keys = self.db.table("keys")
        self.root_key_matches = True

    @cached_property
    def settlements(self) -> SettlementBook:
        """The settlement rows (their steps, so an interrupted settlement resumes)."""
        return SettlementBook(self)

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: Path, root_key: bytes, *, clock: Clock | None = None,
             check: bool = True) -> Journal:
        """Open (creating if absent) and migrate the journal at `path`.

        A file that is not SQLite or fails SQLite's quick_check raises CorruptDatabase.
        ``check=False`` skips the quick_check (seconds for a million rows) for a caller that
        reads every row itself.
        `clock` returns an aware datetime; tests pass a fixed one.
        """
        path = Path(path)
        protector = CardDataProtector(root_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # A new journal is private from its first byte (its -wal and -shm files take the
            # file's mode), whatever the umask of the person who ran ``posterm init``.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except OSError as e:
            raise StorageError(f"cannot create journal {path}: {e.strerror}") from None
        try:
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open journal {path}: {e}") from None
        try:
            with _translated(path):
                _configure(conn, path, check=check)
                migrate(conn, str(path))
            journal = cls(path, conn, protector, clock or utc_now)
            journal._check_root_key()
        except BaseException:
            conn.close()
            raise
        logger.info("journal %s open", path)
        return journal

    def close(self) -> None:
        """Checkpoint the WAL and close the file; closing twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as e:
                logger.warning("journal %s: checkpoint at close failed: %s", self.path, e)
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_root_key(self) -> None:
        check = self.protector.key_check()
        stored = self.get_meta("root_key_check")
        if stored is None:
            self.set_meta("root_key_check", check)
        elif stored != check:
            self.root_key_matches = False
            logger.error(
                "journal %s was created with a different root key file; stored card data and keys will not decrypt",
                self.path,
            )

    # ------------------------------------------------------------ plumbing

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT); sqlite errors become StorageError."""
        with self._lock, _translated(self.path):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _translated(self.path):
            yield self._conn

    def _now(self) -> tuple[str, str]:
        return stamp(self._clock())

    def _audit(self, conn: sqlite3.Connection, action: str, actor: str, detail: dict[str, Any],
               when: tuple[str, str]) -> None:
        audit_log.append(conn, ts_utc=when[0], ts_local=when[1], actor=actor, action=action, detail=detail)

    # ------------------------------------------------------------ counters

    def next_stan(self) -> int:
        """Take the next System Trace Audit Number: 1..999999, then 1 again."""
        with self._write() as conn:
            (value,) = conn.execute(
                "UPDATE counters SET value = CASE WHEN value >= ? THEN 1 ELSE value + 1 END"
                " WHERE name = 'stan' RETURNING value",
                (STAN_MAX,),
            ).fetchone()
        return int(value)

    def last_stan(self) -> int:
        """The STAN taken last (0 before the first), read only."""
        with self._read() as conn:
            (value,) = conn.execute("SELECT value FROM counters WHERE name = 'stan'").fetchone()
        return int(value)

    def current_batch(self) -> int:
        """The open batch number (starts at 1)."""
        with self._read() as conn:
            return int(conn.execute("SELECT value FROM counters WHERE name = 'batch'").fetchone()[0])

    def set_batch(self, batch: int) -> None:
        """Set the open batch number (1..999999), e.g. after settlement or as the host assigns it."""
        if not 1 <= batch <= BATCH_MAX:
            raise ValueError(f"batch must be 1..{BATCH_MAX}, not {batch}")
        when = self._now()
        with self._write() as conn:
            old = conn.execute("SELECT value FROM counters WHERE name = 'batch'").fetchone()[0]
            conn.execute("UPDATE counters SET value = ? WHERE name = 'batch'", (batch,))
            self._audit(conn, "batch.set", "system", {"from": old, "to": batch}, when)

    # ------------------------------------------------------------ settings

    def get_meta(self, key: str) -> str | None:
        """A small setting by key, or None."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def check_writable(self) -> None:
        """Commit one small write (meta 'write_check': the time): a full, read-only or
        failing disk shows here as DiskFull before a transaction starts (and before its
        card is asked for), not once its PENDING row cannot be committed."""
        self.set_meta("write_check", self._now()[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a small non-secret setting."""
        with self._write():
            self._meta.upsert({"key": key, "value": value}, pk="key")

    # ------------------------------------------------------------ keys

    def put_key(self, name: str, key: bytes, *, kcv: str | None = None) -> None:
        """Store terminal key material (e.g. 'tmk', 'pik', 'mak') wrapped under the root key."""
        when = self._now()
        sealed = self.protector.wrap_key(name, key)
        with self._write() as conn:
            self._keys.upsert(
                {"name": name, "sealed": sealed, "kcv": kcv, "updated_utc": when[0], "updated_local": when[1]},
                pk="name",
            )
            self._audit(conn, "key.put", "system", {"name": name, "kcv": kcv}, when)
        logger.info("key %s stored (kcv %s)", name, kcv or "-")

    def get_key(self, name: str) -> bytes | None:
        """Unwrapped key material by name, or None if there is no such key."""
        with self._read() as conn:
            row = conn.execute("SELECT sealed FROM keys WHERE name = ?", (name,)).fetchone()
        return None if row is None else self.protector.unwrap_key(name, row[0])

    def key_checks(self) -> list[KeyCheck]:
        """Name, check value and time of every stored key, by name; the key material is
        neither read nor unwrapped."""
        with self._read() as conn:
            rows = conn.execute("SELECT name, kcv, updated_local FROM keys ORDER BY name")
            return [KeyCheck(name, kcv, updated) for name, kcv, updated in rows.fetchall()]

    # ------------------------------------------------------------ transactions

    def begin(self, txn: NewTransaction) -> int:
        """Journal a transaction PENDING and, if reversible, its reversal ARMED (reason '98'), in one commit.

        Call before the request leaves the terminal; when this returns the row is on disk.
        """
        when = self._now()
        with self._write() as conn:
            txn_id = self._insert(conn, txn, "PENDING", when)
            if txn.reversible:
                self._insert_reversal(conn, txn_id, REVERSAL_NO_RESPONSE, when)
            self._audit(conn, "txn.begin", txn.operator, {
                "txn_id": txn_id, "type": txn.txn_type, "amount": txn.amount, "currency": txn.currency,
                "stan": txn.stan, "batch": txn.batch, "pan": mask_pan(txn.pan),
                "reversal_armed": bool(txn.reversible),
            }, when)
        logger.info("txn %d %s %d fen stan %06d batch %06d PENDING", txn_id, txn.txn_type, txn.amount,
                    txn.stan, txn.batch)
        return txn_id

    def _insert(self, conn: sqlite3.Connection, txn: NewTransaction, state: str,
                when: tuple[str, str]) -> int:
        """Insert one transaction row (card sealed, masked, hashed); returns its id."""
        card_json = json.dumps({"pan": txn.pan, "expiry": txn.expiry}, separators=(",", ":"))
        txn_id = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM transactions").fetchone()[0])
        self._transactions.insert({
            "id": txn_id, "txn_type": txn.txn_type, "state": state, "amount": txn.amount,
            "currency": txn.currency, "stan": txn.stan, "batch": txn.batch,
            "terminal_id": txn.terminal_id, "merchant_id": txn.merchant_id, "operator": txn.operator,
            "pan_masked": mask_pan(txn.pan), "pan_hash": self.protector.fingerprint(txn.pan),
            "card": self.protector.seal(card_json, aad=_card_aad(txn_id)),
            "card_org": txn.card_org, "entry_mode": txn.entry_mode, "card_seq": txn.card_seq,
            "pin_entered": int(bool(txn.pin_entered)), "reversible": int(bool(txn.reversible)),
            "extra": json.dumps(txn.extra or {}, sort_keys=True),
            "original_id": txn.original_id,
            "created_utc": when[0], "created_local": when[1],
            "updated_utc": when[0], "updated_local": when[1],
        })
        return txn_id

    def complete(self, txn_id: int, *, approved: bool, response_code: str, rrn: str | None,
                 auth_code: str | None, settlement_date: str | None = None,
                 extra: dict | None = None, voids: bool = False) -> TransactionRecord:
        """Record the host's answer: PENDING -> APPROVED or DECLINED, reversal CANCELLED; `extra` is merged.

        ``voids``: this transaction voids its original; when approved, the original is marked
        voided in the same commit.
        """
        state = "APPROVED" if approved else "DECLINED"
        when = self._now()
        with self._write() as conn:
            current = self._state_for_update(conn, txn_id)
            if current != "PENDING":
                raise InvalidTransition(f"transaction {txn_id} is {current}, not PENDING; cannot complete it")
            merged = self._merged_extra(conn, txn_id, extra)
            # An approval owes the customer a slip: unprinted until the printer says otherwise,
            # so a crash between this commit and the printer leaves it offered for reprint.
            conn.execute(
                "UPDATE transactions SET state = ?, response_code = ?, rrn = ?, auth_code = ?,"
                " settlement_date = ?, extra = ?, updated_utc = ?, updated_local = ?,"
                " receipt_state = ? WHERE id = ?",
                (state, response_code, rrn, auth_code, settlement_date, merged, when[0], when[1],
                 "unprinted" if approved else None, txn_id),
            )
            cancelled = self._cancel_reversal(conn, txn_id, when)
            voided = None
            if voids and approved:
                (voided,) = conn.execute("SELECT original_id FROM transactions WHERE id = ?",
                                         (txn_id,)).fetchone()
                if voided is None:
                    raise InvalidTransition(f"transaction {txn_id} has no original to void")
                conn.execute("UPDATE transactions SET voided_by = ?, updated_utc = ?,"
                             " updated_local = ? WHERE id = ?", (txn_id, when[0], when[1], voided))
            self._audit(conn, "txn.complete", "system", {
                "txn_id": txn_id, "state": state, "response_code": response_code, "rrn": rrn,
                "auth_code": auth_code, "reversal_cancelled": cancelled, "voided": voided,
            }, when)
            record = self._get(conn, txn_id)
        logger.info("txn %d %s (%s)", txn_id, state, response_code)
        return record

    def fail_unsent(self, txn_id: int, reason: str) -> TransactionRecord:
        """The request provably never left (e.g. connect failed): PENDING -> FAILED, reversal CANCELLED.

        The reason is kept in extra['fail_reason'] and in the audit log.
        """
        when = self._now()
        with self._write() as conn:
            current = self._state_for_update(conn, txn_id)
            if current != "PENDING":
                raise InvalidTransition(f"transaction {txn_id} is {current}, not PENDING; cannot mark it unsent")
            merged = self._merged_extra(conn, txn_id, {"fail_reason": reason})
            conn.execute(
                "UPDATE transactions SET state = 'FAILED', extra = ?, updated_utc = ?, updated_local = ?"
                " WHERE id = ?",
                (merged, when[0], when[1], txn_id),
            )
            cancelled = self._cancel_reversal(conn, txn_id, when)
            self._audit(conn, "txn.fail_unsent", "system",
                        {"txn_id": txn_id, "reason": reason, "reversal_cancelled": cancelled}, when)
            record = self._get(conn, txn_id)
        logger.info("txn %d FAILED, never sent: %s", txn_id, reason)
        return record

    # ------------------------------------------------------------ reversals

    def set_reversal_reason(self, txn_id: int, reason: str) -> None:
        """Change the reason of the transaction's armed reversal (e.g. 'A0' after a MAC failure)."""
        when = self._now()
        with self._write() as conn:
            row = conn.execute("SELECT id, reason FROM reversals WHERE txn_id = ? AND state = 'ARMED'",
                               (txn_id,)).fetchone()
            if row is None:
                self._state_for_update(conn, txn_id)  # unknown txn -> StorageError
                raise InvalidTransition(f"transaction {txn_id} has no armed reversal to change")
            conn.execute("UPDATE reversals SET reason = ?, updated_utc = ?, updated_local = ? WHERE id = ?",
                         (reason, when[0], when[1], row[0]))
            self._audit(conn, "reversal.reason", "system",
                        {"txn_id": txn_id, "reversal_id": row[0], "from": row[1], "to": reason}, when)

    def arm_reversal(self, txn_id: int, reason: str) -> None:
        """Arm a reversal for an APPROVED transaction (e.g. reason '06': the card declined after approval)."""
        when = self._now()
        with self._write() as conn:
            current = self._state_for_update(conn, txn_id)
            if current != "APPROVED":
                raise InvalidTransition(f"transaction {txn_id} is {current}, not APPROVED; cannot arm a reversal")
            if conn.execute("SELECT 1 FROM reversals WHERE txn_id = ? AND state = 'ARMED'", (txn_id,)).fetchone():
                raise InvalidTransition(f"transaction {txn_id} already has an armed reversal")
            reversal_id = self._insert_reversal(conn, txn_id, reason, when)
            self._audit(conn, "reversal.arm", "system",
                        {"txn_id": txn_id, "reversal_id": reversal_id, "reason": reason}, when)
        logger.info("txn %d reversal armed (%s)", txn_id, reason)

    def pending_reversals(self) -> list[Reversal]:
        """Armed reversals, oldest first: these go out before any other message."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, txn_id, reason, attempts, state, created_utc FROM reversals"
                " WHERE state = 'ARMED' ORDER BY id"
            ).fetchall()
        return [Reversal(*row) for row in rows]

    def reversal_attempted(self, reversal_id: int) -> None:
        """Count one more send of the reversal; call before sending it."""
        when = self._now()
        with self._write() as conn:
            txn_id = self._armed_reversal(conn, reversal_id, "count an attempt on")
            conn.execute(
                "UPDATE reversals SET attempts = attempts + 1, updated_utc = ?, updated_local = ? WHERE id = ?",
                (when[0], when[1], reversal_id),
            )
            self._audit(conn, "reversal.attempt", "system", {"txn_id": txn_id, "reversal_id": reversal_id}, when)

    def reversal_done(self, reversal_id: int, response_code: str) -> TransactionRecord:
        """The host acknowledged the reversal: reversal DONE and its transaction REVERSED, one commit."""
        when = self._now()
        with self._write() as conn:
            txn_id = self._armed_reversal(conn, reversal_id, "complete")
            conn.execute(
                "UPDATE reversals SET state = 'DONE', response_code = ?, updated_utc = ?, updated_local = ?"
                " WHERE id = ?",
                (response_code, when[0], when[1], reversal_id),
            )
            current = self._state_for_update(conn, txn_id)
            if current not in ("PENDING", "APPROVED"):
                raise InvalidTransition(f"transaction {txn_id} is {current}; it cannot be reversed")
            conn.execute(
                "UPDATE transactions SET state = 'REVERSED', updated_utc = ?, updated_local = ? WHERE id = ?",
                (when[0], when[1], txn_id),
            )
            # A reversed void no longer voids its original.
            conn.execute("UPDATE transactions SET voided_by = NULL WHERE voided_by = ?", (txn_id,))
            self._audit(conn, "reversal.done", "system", {
                "txn_id": txn_id, "reversal_id": reversal_id, "response_code": response_code, "from": current,
            }, when)
            record = self._get(conn, txn_id)
        logger.info("txn %d REVERSED (reversal %d, %s)", txn_id, reversal_id, response_code)
        return record

    def reversal_failed(self, reversal_id: int) -> None:
        """Give up on the reversal after the last try: FAILED, to be handled by hand; the transaction keeps its state."""
        when = self._now()
        with self._write() as conn:
            txn_id = self._armed_reversal(conn, reversal_id, "fail")
            conn.execute(
                "UPDATE reversals SET state = 'FAILED', updated_utc = ?, updated_local = ? WHERE id = ?",
                (when[0], when[1], reversal_id),
            )
            self._audit(conn, "reversal.failed", "system", {"txn_id": txn_id, "reversal_id": reversal_id}, when)
        logger.warning("txn %d reversal %d FAILED: handle manually", txn_id, reversal_id)

    # ------------------------------------------------------------ reading

    def card_for(self, txn_id: int) -> tuple[str, str | None]:
        """(clear PAN, expiry) of a transaction, decrypted in memory only (e.g. to build its reversal)."""
        with self._read() as conn:
            row = conn.execute("SELECT card FROM transactions WHERE id = ?", (txn_id,)).fetchone()
        if row is None:
            raise StorageError(f"transaction {txn_id} is not in the journal")
        card = json.loads(self.protector.open(row[0], aad=_card_aad(txn_id)))
        return card["pan"], card["expiry"]

    def get(self, txn_id: int) -> TransactionRecord:
        """One transaction by id; StorageError if there is none."""
        with self._read() as conn:
            return self._get(conn, txn_id)

    def find(self, *, stan: int | None = None, batch: int | None = None) -> TransactionRecord | None:
        """The newest transaction with this STAN (and batch, if given), or None."""
        if stan is None and batch is None:
            raise ValueError("find() needs stan, batch or both")
        where, args = _where(stan=stan, batch=batch)
        with self._read() as conn:
            row = conn.execute(f"{_RECORD_SQL} WHERE {where} ORDER BY t.id DESC LIMIT 1", args).fetchone()
        return None if row is None else _record(row)

    def transactions(self, *, batch: int | None = None, limit: int | None = None) -> list[TransactionRecord]:
        """Transactions newest first, optionally of one batch and at most `limit` of them."""
        where, args = _where(batch=batch)
        sql = f"{_RECORD_SQL} WHERE {where} ORDER BY t.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._read() as conn:
            return [_record(row) for row in conn.execute(sql, args)]

    def record_offline(self, txn: NewTransaction, *, auth_code: str) -> int:
        """An offline approval (below the floor limit): the row APPROVED and its advice
        QUEUED for the host, in one commit; nothing to reverse."""
        when = self._now()
        with self._write() as conn:
            txn_id = self._insert(conn, replace(txn, reversible=False), "APPROVED", when)
            conn.execute("UPDATE transactions SET response_code = 'Y1', auth_code = ?,"
                         " receipt_state = 'unprinted' WHERE id = ?", (auth_code, txn_id))
            conn.execute("INSERT INTO advices (txn_id, state, attempts, created_utc,"
                         " created_local, updated_utc, updated_local)"
                         " VALUES (?, 'QUEUED', 0, ?, ?, ?, ?)",
                         (txn_id, when[0], when[1], when[0], when[1]))
            self._audit(conn, "txn.offline", txn.operator, {
                "txn_id": txn_id, "amount": txn.amount, "auth_code": auth_code,
                "advice": "QUEUED"}, when)
        return txn_id

    def queue_advice(self, txn_id: int) -> None:
        """Queue a transaction for store-and-forward (an advice whose answer did not come):
        it is sent again, flagged as a repeat, until the host answers."""
        when = self._now()
        with self._write() as conn:
            self._state_for_update(conn, txn_id)
            conn.execute("INSERT INTO advices (txn_id, state, attempts, created_utc,"
                         " created_local, updated_utc, updated_local)"
                         " VALUES (?, 'QUEUED', 1, ?, ?, ?, ?) ON CONFLICT (txn_id) DO NOTHING",
                         (txn_id, when[0], when[1], when[0], when[1]))
            self._audit(conn, "advice.queued", "system", {"txn_id": txn_id}, when)

    def pending_advices(self) -> list[Advice]:
        """Queued advices, oldest first: the host hears of them in this order."""
        with self._read() as conn:
            rows = conn.execute("SELECT id, txn_id, state, attempts, created_utc FROM advices"
                                " WHERE state = 'QUEUED' ORDER BY id").fetchall()
        return [Advice(*row) for row in rows]

    def advice_attempted(self, advice_id: int) -> int:
        """Count one more send of the advice; returns the attempts so far (2+ = a repeat)."""
        when = self._now()
        with self._write() as conn:
            conn.execute("UPDATE advices SET attempts = attempts + 1, updated_utc = ?,"
                         " updated_local = ? WHERE id = ? AND state = 'QUEUED'",
                         (when[0], when[1], advice_id))
            (attempts,) = conn.execute("SELECT attempts FROM advices WHERE id = ?",
                                       (advice_id,)).fetchone()
        return int(attempts)

    def advice_done(self, advice_id: int, response_code: str, *, rrn: str | None = None,
                    sent: bool = True) -> None:
        """The host took the advice (SENT) or refused it for good (FAILED); one commit."""
        when = self._now()
        state = "SENT" if sent else "FAILED"
        with self._write() as conn:
            row = conn.execute("SELECT txn_id FROM advices WHERE id = ? AND state = 'QUEUED'",
                               (advice_id,)).fetchone()
            if row is None:
                raise InvalidTransition(f"advice {advice_id} is not queued")
            conn.execute("UPDATE advices SET state = ?, response_code = ?, updated_utc = ?,"
                         " updated_local = ? WHERE id = ?",
                         (state, response_code, when[0], when[1], advice_id))
            if rrn:
                conn.execute("UPDATE transactions SET rrn = ? WHERE id = ?", (rrn, row[0]))
            self._audit(conn, "advice." + state.lower(), "system", {
                "txn_id": row[0], "advice_id": advice_id, "response_code": response_code}, when)

    def find_by_rrn(self, rrn: str) -> TransactionRecord | None:
        """The newest transaction with this retrieval reference number."""
        with self._read() as conn:
            row = conn.execute(f"{_RECORD_SQL} WHERE t.rrn = ? ORDER BY t.id DESC LIMIT 1",
                               (rrn,)).fetchone()
        return None if row is None else _record(row)

    def approved_total(self, txn_type: str, *, local_date: str) -> tuple[int, int]:
        """(count, fen) of approved, unreversed transactions of a type on a local date
        (``YYYY-MM-DD``): for per-day limits such as refunds."""
        with self._read() as conn:
            count, total = conn.execute(
                "SELECT count(*), coalesce(sum(amount), 0) FROM transactions WHERE txn_type = ?"
                " AND state = 'APPROVED' AND substr(created_local, 1, 10) = ?",
                (txn_type, local_date)).fetchone()
        return int(count), int(total)

    # ------------------------------------------------------------ operators

    @cached_property
    def operators(self) -> OperatorBook:
        """The operators: codes, password hashes, lockout, password age (storage/operators.py)."""
        from storage.operators import OperatorBook
        return OperatorBook(self)

    def set_operator(self, code: str, *, role: str, name: str, password: str,
                     must_change: bool = False) -> None:
        """Create or overwrite an operator; only the password's salted scrypt hash is kept.
        The role must be the code's (99 supervisor, 01-98 cashier)."""
        if role not in ("cashier", "supervisor"):
            raise ValueError("role must be cashier or supervisor")
        self.operators.put(code, role=role, name=name, password=password,
                           must_change=must_change)

    def check_supervisor(self, password: str) -> str | None:
        """The code of the (active) supervisor whose password this is, or None. Counts no
        failure: app.supervisor.approve goes through the operator book's lockout instead."""
        with self._read() as conn:
            rows = conn.execute("SELECT code, password_hash FROM operators"
                                " WHERE role = 'supervisor' AND active = 1"
                                " ORDER BY code").fetchall()
        return next((code for code, stored in rows if check_password(password, stored)), None)

    def annotate(self, txn_id: int, extra: dict) -> TransactionRecord:
        """Merge non-sensitive data into a row's ``extra`` (e.g. the card's final cryptogram
        after the second GENERATE AC); the state does not change."""
        when = self._now()
        with self._write() as conn:
            self._state_for_update(conn, txn_id)
            merged = self._merged_extra(conn, txn_id, extra)
            conn.execute("UPDATE transactions SET extra = ?, updated_utc = ?, updated_local = ?"
                         " WHERE id = ?", (merged, when[0], when[1], txn_id))
            self._audit(conn, "txn.annotate", "system",
                        {"txn_id": txn_id, "keys": sorted(extra)}, when)
            return self._get(conn, txn_id)

    def set_receipt_state(self, txn_id: int, printed: bool, *, error: str | None = None) -> None:
        """Record whether the transaction's slip came out; an unprinted one is offered again."""
        when = self._now()
        state = "printed" if printed else "unprinted"
        with self._write() as conn:
            self._state_for_update(conn, txn_id)
            conn.execute(
                "UPDATE transactions SET receipt_state = ?, updated_utc = ?, updated_local = ? WHERE id = ?",
                (state, when[0], when[1], txn_id),
            )
            detail: dict[str, Any] = {"txn_id": txn_id, "receipt": state}
            if error:
                detail["error"] = error
            self._audit(conn, "receipt." + state, "system", detail, when)

    def unprinted_receipts(self) -> list[TransactionRecord]:
        """Transactions whose slip could not be printed, oldest first."""
        with self._read() as conn:
            rows = conn.execute(f"{_RECORD_SQL} WHERE t.receipt_state = 'unprinted' ORDER BY t.id")
            return [_record(row) for row in rows]

    # ------------------------------------------------------------ audit

    def audit(self, action: str, *, actor: str, detail: dict) -> None:
        """Append one row to the hash-chained audit log in its own commit. Never put a clear PAN in detail."""
        when = self._now()
        with self._write() as conn:
            self._audit(conn, action, actor, detail, when)

    def verify_audit(self) -> list[str]:
        """Check the audit chain: [] when intact, else one line per broken, edited or deleted row."""
        with self._read() as conn:
            return audit_log.verify(conn)

    # ------------------------------------------------------------ internals

    def _get(self, conn: sqlite3.Connection, txn_id: int) -> TransactionRecord:
        row = conn.execute(f"{_RECORD_SQL} WHERE t.id = ?", (txn_id,)).fetchone()
        if row is None:
            raise StorageError(f"transaction {txn_id} is not in the journal")
        return _record(row)

    def _state_for_update(self, conn: sqlite3.Connection, txn_id: int) -> str:
        row = conn.execute("SELECT state FROM transactions WHERE id = ?", (txn_id,)).fetchone()
        if row is None:
            raise StorageError(f"transaction {txn_id} is not in the journal")
        return str(row[0])

    def _merged_extra(self, conn: sqlite3.Connection, txn_id: int, extra: dict | None) -> str:
        (text,) = conn.execute("SELECT extra FROM transactions WHERE id = ?", (txn_id,)).fetchone()
        merged = json.loads(text) if text else {}
        merged.update(extra or {})
        return json.dumps(merged, sort_keys=True)

    def _insert_reversal(self, conn: sqlite3.Connection, txn_id: int, reason: str, when: tuple[str, str]) -> int:
        cursor = conn.execute(
            "INSERT INTO reversals (txn_id, reason, state, attempts, created_utc, created_local,"
            " updated_utc, updated_local) VALUES (?, ?, 'ARMED', 0, ?, ?, ?, ?)",
            (txn_id, reason, when[0], when[1], when[0], when[1]),
        )
        return int(cursor.lastrowid or 0)

    def _cancel_reversal(self, conn: sqlite3.Connection, txn_id: int, when: tuple[str, str]) -> bool:
        cursor = conn.execute(
            "UPDATE reversals SET state = 'CANCELLED', updated_utc = ?, updated_local = ?"
            " WHERE txn_id = ? AND state = 'ARMED'",
            (when[0], when[1], txn_id),
        )
        return cursor.rowcount > 0

    def _armed_reversal(self, conn: sqlite3.Connection, reversal_id: int, verb: str) -> int:
        row = conn.execute("SELECT txn_id, state FROM reversals WHERE id = ?", (reversal_id,)).fetchone()
        if row is None:
            raise StorageError(f"reversal {reversal_id} is not in the journal")
        if row[1] != "ARMED":
            raise InvalidTransition(f"reversal {reversal_id} is {row[1]}, not ARMED; cannot {verb} it")
        return int(row[0])


def _where(*, stan: int | None = None, batch: int | None = None) -> tuple[str, list[Any]]:
    clauses, args = ["1"], []
    if stan is not None:
        clauses.append("t.stan = ?")
        args.append(stan)
    if batch is not None:
        clauses.append("t.batch = ?")
        args.append(batch)
    return " AND ".join(clauses), args


def _configure(conn: sqlite3.Connection, path: Path, *, check: bool = True) -> None:
    """Set the pragmas the journal relies on and make sure the file is sound."""
    conn.execute("PRAGMA foreign_keys = ON")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StorageError(f"journal {path}: cannot switch to WAL mode (got {mode})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    if not check:
        return
    result = conn.execute("PRAGMA quick_check").fetchall()
    if result != [("ok",)]:
        first = str(result[0][0]) if result else "no result"
        raise CorruptDatabase(f"journal {path} is damaged ({first}); restore it from a backup")


@contextmanager
def _translated(path: Path) -> Iterator[None]:
    """Turn sqlite3 errors into StorageError / CorruptDatabase with one line naming the file."""
    try:
        yield
    except sqlite3.DatabaseError as e:
        code = (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF
        if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in str(e) or "not a database" in str(e):
            raise CorruptDatabase(f"journal {path} is not a usable SQLite database ({e}); restore it from a backup") from None
        reason = _unwritable(path, code)
        if reason is not None:
            raise DiskFull(f"journal {path}: {_UNWRITABLE[reason]}", reason) from None
        raise StorageError(f"journal {path}: {e}") from None
    except sqlite3.Error as e:
        raise StorageError(f"journal {path}: {e}") from None
