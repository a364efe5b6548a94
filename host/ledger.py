"""The host's own ledger: registered terminals and the transactions it answered.

SQLite in HOSTDIR/host.db (WAL, synchronous NORMAL: a simulator, not a bank), schema
versioned by ``PRAGMA user_version``. Terminal keys are sealed with AES-GCM under the host
key file; a card is kept only as a masked PAN and a keyed hash, never in clear, and track
data and PIN blocks are never written at all.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import sqlite_utils

from host.errors import DuplicateTransaction, LedgerError
from host.sealing import Sealer, load_or_create_key, mask_pan

logger = logging.getLogger(__name__)

DB_NAME = "host.db"
KEY_NAME = "host.key"
RRN_BLOCK = 100          # RRNs reserved per database write
_KEY_COLUMNS = ("tmk", "pik", "mak")


def _v1(db: sqlite_utils.Database) -> None:
    db["terminals"].create({
        "terminal_id": str, "merchant_id": str, "merchant_name": str,
        "tmk_sealed": bytes, "pik_sealed": bytes, "mak_sealed": bytes,
        "batch": int, "signed_on_utc": str, "registered_utc": str,
    }, pk="terminal_id", not_null={"merchant_id", "tmk_sealed", "batch", "registered_utc"},
        defaults={"batch": 1, "merchant_name": ""})
    db["transactions"].create({
        "id": int, "terminal_id": str, "merchant_id": str, "batch": int, "stan": int,
        "mti": str, "txn_type": str, "processing_code": str, "amount": int, "currency": str,
        "pan_masked": str, "pan_hash": str, "entry_mode": str, "response_code": str,
        "rrn": str, "auth_code": str, "state": str, "created_utc": str, "created_local": str,
        "settlement_date": str, "reversal_reason": str,
    }, pk="id", not_null={"terminal_id", "batch", "stan", "mti", "txn_type", "response_code",
                          "state", "created_utc"})
    db.execute("CREATE UNIQUE INDEX transactions_message ON transactions"
               " (terminal_id, batch, stan, mti)")
    db.execute("CREATE INDEX transactions_rrn ON transactions (rrn)")
    db["counters"].create({"name": str, "value": int}, pk="name")
    db["counters"].insert({"name": "rrn", "value": 0})


def _v2(db: sqlite_utils.Database) -> None:
    # A void, refund or completion points at the transaction it acts on.
    db.execute("ALTER TABLE transactions ADD COLUMN original_id INTEGER")
    db.execute("CREATE INDEX transactions_auth ON transactions (terminal_id, auth_code)")


#: Migration n brings the schema from version n to n + 1; append, never edit.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2]


@dataclass(frozen=True)
class TerminalKeys:
    """A terminal's keys in clear, for the server only (pik/mak None before its first sign-on)."""

    tmk: bytes
    pik: bytes | None
    mak: bytes | None

    def __repr__(self) -> str:
        return f"TerminalKeys(<hidden>, signed_on={self.mak is not None})"


def stamp(moment: datetime) -> tuple[str, str]:
    """(UTC ISO with 'Z', local ISO with offset), seconds precision, as the terminal stores them."""
    moment = moment.replace(microsecond=0)
    return (moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            moment.astimezone().isoformat())


class Ledger:
    """One open host.db; keep one per process (the server keeps it for its whole life)."""

    def __init__(self, db: sqlite_utils.Database, sealer: Sealer):
        self.db = db
        self._conn: sqlite3.Connection = db.conn
        self._sealer = sealer
        self._rrn_next = 0
        self._rrn_limit = 0

    @classmethod
    def open(cls, hostdir: Path | str) -> Ledger:
        """Open (creating if needed) HOSTDIR/host.db and HOSTDIR/host.key and migrate the schema."""
        hostdir = Path(hostdir)
        try:
            hostdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(
                f"cannot create host data directory {hostdir}: {exc.strerror}") from None
        if not hostdir.is_dir():
            raise LedgerError(f"host data path {hostdir} is not a directory")
        sealer = Sealer(load_or_create_key(hostdir / KEY_NAME))
        try:
            conn = sqlite3.connect(hostdir / DB_NAME, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open host ledger {hostdir / DB_NAME}: {exc}") from None
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            ledger = cls(sqlite_utils.Database(conn), sealer)
            ledger._migrate()
        except sqlite3.Error as exc:
            conn.close()
            raise LedgerError(f"cannot open host ledger {hostdir / DB_NAME}: {exc}") from None
        except BaseException:
            conn.close()
            raise
        return ledger

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise LedgerError(f"host.db has schema version {version}, newer than this "
                              f"posterm-host ({len(MIGRATIONS)})")
        for number in range(version, len(MIGRATIONS)):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                MIGRATIONS[number](self.db)
                self._conn.execute(f"PRAGMA user_version = {number + 1}")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            logger.info("host ledger migrated to schema version %d", number + 1)

    # -- terminals ---------------------------------------------------------------------

    def register(self, terminal_id: str, merchant_id: str, merchant_name: str, tmk: bytes,
                 *, replace: bool = False) -> dict[str, Any]:
        """Register a terminal with its master key; with ``replace``, re-register it.

        Re-registering installs the new TMK and drops the working keys (the terminal must
        sign on again); its batch number and its transactions stay.
        """
        utc, _ = stamp(datetime.now(UTC))
        row = {"terminal_id": terminal_id, "merchant_id": merchant_id,
               "merchant_name": merchant_name,
               "tmk_sealed": self._sealer.seal(tmk, self._aad(terminal_id, "tmk")),
               "pik_sealed": None, "mak_sealed": None, "signed_on_utc": None}
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            exists = self._conn.execute("SELECT 1 FROM terminals WHERE terminal_id = ?",
                                        (terminal_id,)).fetchone()
            if exists and not replace:
                raise LedgerError(f"terminal {terminal_id} is already registered "
                                  '(send "replace": true to re-register it)')
            if exists:
                sets = ", ".join(f"{k} = :{k}" for k in row if k != "terminal_id")
                self._conn.execute(f"UPDATE terminals SET {sets} WHERE terminal_id = :terminal_id",
                                   row)
            else:
                self._conn.execute(
                    "INSERT INTO terminals (terminal_id, merchant_id, merchant_name, tmk_sealed,"
                    " batch, registered_utc) VALUES (?, ?, ?, ?, 1, ?)",
                    (terminal_id, merchant_id, merchant_name, row["tmk_sealed"], utc))
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        logger.info("terminal %s %s for merchant %s", terminal_id,
                    "re-registered" if exists else "registered", merchant_id)
        terminal = self.terminal(terminal_id)
        assert terminal is not None
        return terminal

    def terminal(self, terminal_id: str) -> dict[str, Any] | None:
        """A terminal's public row (no key material), or None if it is not registered."""
        row = self._conn.execute(
            "SELECT terminal_id, merchant_id, merchant_name, batch, signed_on_utc,"
            " registered_utc FROM terminals WHERE terminal_id = ?", (terminal_id,)).fetchone()
        if row is None:
            return None
        keys = ("terminal_id", "merchant_id", "merchant_name", "batch", "signed_on_utc",
                "registered_utc")
        return dict(zip(keys, row))

    def terminals(self) -> list[dict[str, Any]]:
        ids = [r[0] for r in self._conn.execute(
            "SELECT terminal_id FROM terminals ORDER BY terminal_id")]
        return [t for t in (self.terminal(i) for i in ids) if t is not None]

    def keys(self, terminal_id: str) -> TerminalKeys | None:
        """The terminal's keys in clear, or None if it is not registered."""
        row = self._conn.execute(
            "SELECT tmk_sealed, pik_sealed, mak_sealed FROM terminals WHERE terminal_id = ?",
            (terminal_id,)).fetchone()
        if row is None:
            return None
        clear = [None if blob is None else self._sealer.open(blob, self._aad(terminal_id, name))
                 for name, blob in zip(_KEY_COLUMNS, row)]
        assert clear[0] is not None
        return TerminalKeys(clear[0], clear[1], clear[2])

    def store_working_keys(self, terminal_id: str, pik: bytes, mak: bytes) -> None:
        """Keep the PIK and MAK just sent at sign-on (sealed) and note the sign-on time."""
        utc, _ = stamp(datetime.now(UTC))
        self._conn.execute(
            "UPDATE terminals SET pik_sealed = ?, mak_sealed = ?, signed_on_utc = ?"
            " WHERE terminal_id = ?",
            (self._sealer.seal(pik, self._aad(terminal_id, "pik")),
             self._sealer.seal(mak, self._aad(terminal_id, "mak")), utc, terminal_id))

    @staticmethod
    def _aad(terminal_id: str, column: str) -> bytes:
        return f"terminals/{terminal_id}/{column}".encode()

    # -- transactions ------------------------------------------------------------------

    def record(self, *, terminal_id: str, merchant_id: str, batch: int, stan: int, mti: str,
               txn_type: str, processing_code: str | None, amount: int | None,
               currency: str | None, pan: str | None, entry_mode: str | None,
               response_code: str, rrn: str, auth_code: str | None, state: str,
               settlement_date: str, moment: datetime | None = None,
               original_id: int | None = None) -> dict[str, Any]:
        """Record one answered request; DuplicateTransaction if terminal+batch+STAN+MTI exists.

        ``pan`` is taken in clear and stored only masked and hashed.
        """
        utc, local = stamp(moment or datetime.now(UTC))
        row = {"terminal_id": terminal_id, "merchant_id": merchant_id, "batch": batch,
               "stan": stan, "mti": mti, "txn_type": txn_type,
               "processing_code": processing_code, "amount": amount, "currency": currency,
               "pan_masked": mask_pan(pan) if pan else None,
               "pan_hash": self._sealer.pan_hash(pan) if pan else None,
               "entry_mode": entry_mode, "response_code": response_code, "rrn": rrn,
               "auth_code": auth_code, "state": state, "created_utc": utc,
               "created_local": local, "settlement_date": settlement_date,
               "reversal_reason": None, "original_id": original_id}
        columns = ", ".join(row)
        try:
            cursor = self._conn.execute(
                f"INSERT INTO transactions ({columns}) VALUES ({', '.join(':' + k for k in row)})",
                row)
        except sqlite3.IntegrityError:
            raise DuplicateTransaction(
                f"terminal {terminal_id} batch {batch:06d} STAN {stan:06d} MTI {mti} "
                "is already recorded") from None
        return {"id": cursor.lastrowid, **row}

    def find(self, terminal_id: str, batch: int, stan: int,
             mti: str | None = None) -> dict[str, Any] | None:
        """The recorded request of this terminal, batch and STAN (of ``mti`` if given)."""
        sql = "terminal_id = ? AND batch = ? AND stan = ?"
        args: list[Any] = [terminal_id, batch, stan]
        if mti is not None:
            sql += " AND mti = ?"
            args.append(mti)
        rows = list(self.db["transactions"].rows_where(sql, args, order_by="id"))
        return rows[0] if rows else None

    def find_where(self, terminal_id: str, *, txn_types: tuple[str, ...], rrn: str | None = None,
                   auth_code: str | None = None, batch: int | None = None,
                   stan: int | None = None) -> dict[str, Any] | None:
        """The newest transaction of these types matching every reference given."""
        sql = f"terminal_id = ? AND txn_type IN ({', '.join('?' * len(txn_types))})"
        args: list[Any] = [terminal_id, *txn_types]
        for column, value in (("rrn", rrn), ("auth_code", auth_code), ("batch", batch),
                              ("stan", stan)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        rows = list(self.db["transactions"].rows_where(sql, args, order_by="id desc", limit=1))
        return rows[0] if rows else None

    def get(self, txn_id: int) -> dict[str, Any]:
        return self.db["transactions"].get(txn_id)

    def set_state(self, txn_id: int, state: str, *, only_from: str) -> None:
        """Move a transaction from ``only_from`` to ``state`` (voided, completed, back)."""
        self._conn.execute("UPDATE transactions SET state = ? WHERE id = ? AND state = ?",
                           (state, txn_id, only_from))

    def refunded(self, original_id: int) -> int:
        """Fen already refunded against a transaction (approved refunds)."""
        (total,) = self._conn.execute(
            "SELECT coalesce(sum(amount), 0) FROM transactions WHERE original_id = ?"
            " AND txn_type = 'refund' AND state = 'approved'", (original_id,)).fetchone()
        return int(total)

    def mark_reversed(self, txn_id: int, reason: str) -> None:
        """Mark an approved transaction reversed (reason = the reversal's F39)."""
        self._conn.execute(
            "UPDATE transactions SET state = 'reversed', reversal_reason = ?"
            " WHERE id = ? AND state = 'approved'", (reason, txn_id))

    def note_reversal(self, txn_id: int, reason: str) -> None:
        """A declined transaction reversed: nothing to undo, the reason is kept."""
        self._conn.execute(
            "UPDATE transactions SET reversal_reason = ? WHERE id = ? AND reversal_reason IS NULL",
            (reason, txn_id))

    def transactions(self, terminal_id: str | None = None) -> list[dict[str, Any]]:
        """Recorded transactions, oldest first; of one terminal if ``terminal_id`` is given."""
        table = self.db["transactions"]
        if terminal_id is None:
            return list(table.rows_where(order_by="id"))
        return list(table.rows_where("terminal_id = ?", [terminal_id], order_by="id"))

    def pan_hash(self, pan: str) -> str:
        """The keyed hash the ledger stores for ``pan`` (to look a card up)."""
        return self._sealer.pan_hash(pan)

    # -- reference numbers ---------------------------------------------------------------

    def next_rrn(self) -> str:
        """A 12-digit retrieval reference number never given before by this host.

        Numbers are reserved from the database a block at a time, so a restart skips the
        rest of a block rather than repeat one.
        """
        if self._rrn_next >= self._rrn_limit:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                (value,) = self._conn.execute(
                    "SELECT value FROM counters WHERE name = 'rrn'").fetchone()
                self._conn.execute("UPDATE counters SET value = ? WHERE name = 'rrn'",
                                   (value + RRN_BLOCK,))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            self._rrn_next, self._rrn_limit = value + 1, value + RRN_BLOCK + 1
        rrn = self._rrn_next
        self._rrn_next += 1
        return f"{rrn % 10**12:012d}"
