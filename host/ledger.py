"""The host's own ledger: registered terminals and the transactions it answered.

SQLite in HOSTDIR/host.db (WAL, synchronous NORMAL: a simulator, not a bank), schema
versioned by ``PRAGMA user_version``. Terminal keys are sealed with AES-GCM under the host
key file; a card is kept only as a masked PAN and a keyed hash, never in clear, and track
data and PIN blocks are never written at all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Self

import sqlite_utils

from host.errors import DuplicateTransaction, LedgerError
from host.sealing import Sealer, load_or_create_key, mask_pan
from sync.fees import FeeSchedule
from sync.settlement import Totals
from sync.txntypes import TxnType

logger = logging.getLogger(__name__)

DB_NAME = "host.db"
KEY_NAME = "host.key"
RRN_BLOCK = 100          # RRNs reserved per database write
_KEY_COLUMNS = ("tmk", "pik", "mak")
#: Ledger types that count in the settlement totals (sale, completion, offline sale, refund).
COUNTED = tuple(t.key for t in TxnType if t.spec.totals is not None)
_COUNTED_SQL = f"txn_type IN ({', '.join(repr(k) for k in COUNTED)})"


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


def _v3(db: sqlite_utils.Database) -> None:
    # Settlement: the card organisation of F63, where a row came from, its clearing (fee,
    # net, payout), the chip's TC; the merchant's fee schedule; settlements, the records
    # of batch uploads and the differences found between the terminal and the host.
    for column, kind in (("card_org", "TEXT"), ("source", "TEXT NOT NULL DEFAULT 'online'"),
                         ("cleared_date", "TEXT"), ("fee", "INTEGER"), ("net", "INTEGER"),
                         ("payout_date", "TEXT"), ("settlement_id", "INTEGER"),
                         ("tc", "TEXT"), ("tc_cid", "TEXT"), ("tc_atc", "TEXT")):
        db.execute(f"ALTER TABLE transactions ADD COLUMN {column} {kind}")
    db.execute("CREATE INDEX transactions_cleared ON transactions (cleared_date)")
    db.execute("ALTER TABLE terminals ADD COLUMN fees TEXT")
    db.execute("""CREATE TABLE settlements (
        id INTEGER PRIMARY KEY, terminal_id TEXT NOT NULL, batch INTEGER NOT NULL,
        stan INTEGER, operator TEXT, terminal_f48 TEXT NOT NULL, host_f48 TEXT NOT NULL,
        result TEXT NOT NULL, host_f48_after_upload TEXT, result_after_upload TEXT,
        upload_count_claimed INTEGER, upload_count_received INTEGER,
        state TEXT NOT NULL, cleared_date TEXT, opened_utc TEXT NOT NULL,
        upload_started_utc TEXT, closed_utc TEXT)""")
    db.execute("CREATE UNIQUE INDEX settlements_batch ON settlements (terminal_id, batch)")
    db.execute("""CREATE TABLE upload_records (
        id INTEGER PRIMARY KEY, settlement_id INTEGER NOT NULL, terminal_id TEXT NOT NULL,
        batch INTEGER NOT NULL, stan INTEGER NOT NULL, area TEXT NOT NULL, kind TEXT NOT NULL,
        amount INTEGER NOT NULL, pan_masked TEXT, transaction_id INTEGER,
        message_stan INTEGER, received_utc TEXT NOT NULL)""")
    db.execute("CREATE UNIQUE INDEX upload_records_stan ON upload_records"
               " (terminal_id, batch, stan)")
    db.execute("""CREATE TABLE differences (
        id INTEGER PRIMARY KEY, terminal_id TEXT NOT NULL, batch INTEGER NOT NULL,
        stan INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
        resolution TEXT NOT NULL, transaction_id INTEGER, created_utc TEXT NOT NULL)""")
    db.execute("CREATE UNIQUE INDEX differences_once ON differences"
               " (terminal_id, batch, stan, kind)")


#: Migration n brings the schema from version n to n + 1; append, never edit.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3]


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
                 *, replace: bool = False, fees: FeeSchedule | None = None) -> dict[str, Any]:
        """Register a terminal with its master key; with ``replace``, re-register it.

        Re-registering installs the new TMK and drops the working keys (the terminal must
        sign on again); its batch number and its transactions stay, and so does its fee
        schedule unless ``fees`` gives a new one. A new terminal without ``fees`` gets the
        default schedule (T1, card 0.60%, QR 0.38%).
        """
        utc, _ = stamp(datetime.now(UTC))
        row = {"terminal_id": terminal_id, "merchant_id": merchant_id,
               "merchant_name": merchant_name,
               "tmk_sealed": self._sealer.seal(tmk, self._aad(terminal_id, "tmk")),
               "pik_sealed": None, "mak_sealed": None, "signed_on_utc": None}
        if fees is not None:
            row["fees"] = json.dumps(fees.as_json())
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
                    " batch, registered_utc, fees) VALUES (?, ?, ?, ?, 1, ?, ?)",
                    (terminal_id, merchant_id, merchant_name, row["tmk_sealed"], utc,
                     json.dumps((fees or FeeSchedule()).as_json())))
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

    def fee_schedule(self, terminal_id: str) -> FeeSchedule:
        """The merchant's fees and payout mode (the default schedule if none is stored)."""
        row = self._conn.execute("SELECT fees FROM terminals WHERE terminal_id = ?",
                                 (terminal_id,)).fetchone()
        if row is None or row[0] is None:
            return FeeSchedule()
        return FeeSchedule.from_json(json.loads(row[0]))

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
               original_id: int | None = None, card_org: str | None = None,
               source: str = "online") -> dict[str, Any]:
        """Record one answered request; DuplicateTransaction if terminal+batch+STAN+MTI exists.

        ``pan`` is taken in clear and stored only masked and hashed. ``source`` is "online"
        for a request the host answered, "upload" for a row re-created from a batch upload.
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
               "reversal_reason": None, "original_id": original_id, "card_org": card_org,
               "source": source}
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

    def forget(self, txn_id: int) -> None:
        """Delete a transaction row, as a host whose write was lost (the ``forget`` fault)."""
        self._conn.execute("DELETE FROM transactions WHERE id = ?", (txn_id,))

    def update(self, txn_id: int, **columns: Any) -> None:
        """Set some columns of one transaction (the settlement's repairs)."""
        sets = ", ".join(f"{k} = ?" for k in columns)
        self._conn.execute(f"UPDATE transactions SET {sets} WHERE id = ?",
                           (*columns.values(), txn_id))

    # -- one ledger transaction ----------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT around a block; ROLLBACK (and re-raise) on any error."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            # RRNs reserved inside the block were rolled back with it: reserve afresh.
            self._rrn_next = self._rrn_limit = 0
            raise
        self._conn.execute("COMMIT")

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cursor = self._conn.execute(sql, args)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    # -- settlement ----------------------------------------------------------------------

    def at_stan(self, terminal_id: str, batch: int, stan: int) -> list[dict[str, Any]]:
        """Every row of this terminal, batch and STAN (at most one per MTI), oldest first."""
        return self._rows("SELECT * FROM transactions WHERE terminal_id = ? AND batch = ?"
                          " AND stan = ? ORDER BY id", (terminal_id, batch, stan))

    def batch_totals(self, terminal_id: str, batch: int) -> Totals:
        """The host's settlement totals of a batch: its approved rows that count."""
        return Totals.count(self._conn.execute(
            "SELECT txn_type, card_org, amount FROM transactions WHERE terminal_id = ?"
            " AND batch = ? AND state = 'approved'", (terminal_id, batch)))

    def settlement(self, terminal_id: str, batch: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM settlements WHERE terminal_id = ? AND batch = ?",
                          (terminal_id, batch))
        return rows[0] if rows else None

    def settlements(self, terminal_id: str | None = None) -> list[dict[str, Any]]:
        if terminal_id is None:
            return self._rows("SELECT * FROM settlements ORDER BY id")
        return self._rows("SELECT * FROM settlements WHERE terminal_id = ? ORDER BY id",
                          (terminal_id,))

    def open_settlement(self, terminal_id: str, batch: int, **columns: Any) -> int:
        """Create or replace the (not yet uploading) settlement of a batch; its id."""
        found = self._conn.execute(
            "SELECT id FROM settlements WHERE terminal_id = ? AND batch = ?",
            (terminal_id, batch)).fetchone()
        if found is not None:
            self.update_settlement(found[0], **columns)
            return int(found[0])
        row = {"terminal_id": terminal_id, "batch": batch, **columns}
        cursor = self._conn.execute(
            f"INSERT INTO settlements ({', '.join(row)})"
            f" VALUES ({', '.join(':' + k for k in row)})", row)
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def update_settlement(self, settlement_id: int, **columns: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in columns)
        self._conn.execute(f"UPDATE settlements SET {sets} WHERE id = ?",
                           (*columns.values(), settlement_id))

    def at_stans(self, terminal_id: str, batch: int,
                 stans: list[int]) -> dict[int, list[dict[str, Any]]]:
        """The rows of these STANs of a batch (what an upload record is compared with),
        by STAN, oldest first; one indexed query for a whole upload message."""
        found: dict[int, list[dict[str, Any]]] = {}
        for row in self._rows(
                "SELECT id, stan, txn_type, amount, state, card_org, pan_hash, pan_masked"
                " FROM transactions WHERE terminal_id = ? AND batch = ?"
                f" AND stan IN ({', '.join('?' * len(stans))}) ORDER BY id",
                (terminal_id, batch, *stans)):
            found.setdefault(row["stan"], []).append(row)
        return found

    def uploaded(self, terminal_id: str, batch: int, stans: list[int]) -> set[int]:
        """Which of these STANs already have a kept batch-upload record."""
        return {stan for (stan,) in self._conn.execute(
            "SELECT stan FROM upload_records WHERE terminal_id = ? AND batch = ?"
            f" AND stan IN ({', '.join('?' * len(stans))})", (terminal_id, batch, *stans))}

    def keep_uploads(self, rows: list[dict[str, Any]]) -> None:
        """Keep batch-upload records (once per terminal, batch and STAN)."""
        if not rows:
            return
        self._conn.executemany(
            f"INSERT OR IGNORE INTO upload_records ({', '.join(rows[0])})"
            f" VALUES ({', '.join(':' + k for k in rows[0])})", rows)

    def uploads_received(self, terminal_id: str, batch: int) -> int:
        (count,) = self._conn.execute(
            "SELECT count(*) FROM upload_records WHERE terminal_id = ? AND batch = ?",
            (terminal_id, batch)).fetchone()
        return int(count)

    def note_difference(self, *, terminal_id: str, batch: int, stan: int, kind: str,
                        detail: str, resolution: str, transaction_id: int | None,
                        moment: datetime) -> bool:
        """Record a difference once per (terminal, batch, STAN, kind); False if it was known."""
        utc, _ = stamp(moment)
        cursor = self._conn.execute(
            "INSERT OR IGNORE INTO differences (terminal_id, batch, stan, kind, detail,"
            " resolution, transaction_id, created_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (terminal_id, batch, stan, kind, detail, resolution, transaction_id, utc))
        return cursor.rowcount == 1

    def hold_not_uploaded(self, terminal_id: str, batch: int, moment: datetime) -> int:
        """Counted approved rows of a batch that no upload record names: a difference
        ``not_in_upload`` each and state 'held' (not cleared; a person looks at them)."""
        utc, _ = stamp(moment)
        missing = (f"FROM transactions t WHERE t.terminal_id = ? AND t.batch = ?"
                   f" AND t.state = 'approved' AND t.{_COUNTED_SQL} AND NOT EXISTS"
                   " (SELECT 1 FROM upload_records u WHERE u.terminal_id = t.terminal_id"
                   " AND u.batch = t.batch AND u.stan = t.stan)")
        self._conn.execute(
            "INSERT OR IGNORE INTO differences (terminal_id, batch, stan, kind, detail,"
            " resolution, transaction_id, created_utc)"
            " SELECT t.terminal_id, t.batch, t.stan, 'not_in_upload',"
            " 'approved ' || t.txn_type || ' of ' || printf('%d.%02d', t.amount / 100,"
            " t.amount % 100) || ' not in the terminal''s upload', 'held for review', t.id, ? "
            + missing, (utc, terminal_id, batch))
        cursor = self._conn.execute(
            "UPDATE transactions SET state = 'held' WHERE id IN (SELECT t.id " + missing + ")",
            (terminal_id, batch))
        return cursor.rowcount

    def clear_batch(self, terminal_id: str, batch: int, settlement_id: int,
                    fees: FeeSchedule, cleared: date) -> int:
        """Clear a batch: every approved counted row gets its cleared date, fee, net, payout
        date and settlement; the terminal's batch moves past it (only forward). The rows
        cleared."""
        payout = fees.payout_date(cleared).isoformat()
        rows = self._conn.execute(
            f"SELECT id, txn_type, amount, entry_mode FROM transactions WHERE terminal_id = ?"
            f" AND batch = ? AND state = 'approved' AND cleared_date IS NULL AND {_COUNTED_SQL}",
            (terminal_id, batch)).fetchall()
        updates = []
        for txn_id, txn_type, amount, entry_mode in rows:
            line = fees.line(TxnType[txn_type.upper()].spec.totals or "debit", amount or 0,
                             entry_mode)
            updates.append((cleared.isoformat(), line.fee, line.net, payout, settlement_id,
                            txn_id))
        self._conn.executemany(
            "UPDATE transactions SET cleared_date = ?, fee = ?, net = ?, payout_date = ?,"
            " settlement_id = ? WHERE id = ?", updates)
        self._conn.execute("UPDATE terminals SET batch = ? WHERE terminal_id = ? AND batch < ?",
                           (batch + 1, terminal_id, batch + 1))
        return len(updates)

    def unsettled(self, terminal_id: str) -> int:
        """How many approved counted transactions of the terminal wait for clearing."""
        (count,) = self._conn.execute(
            f"SELECT count(*) FROM transactions WHERE terminal_id = ? AND state = 'approved'"
            f" AND cleared_date IS NULL AND {_COUNTED_SQL}", (terminal_id,)).fetchone()
        return int(count)

    def differences(self, terminal_id: str | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT terminal_id, batch, stan, kind, detail, resolution, transaction_id,"
               " created_utc FROM differences")
        if terminal_id is None:
            return self._rows(sql + " ORDER BY id")
        return self._rows(sql + " WHERE terminal_id = ? ORDER BY id", (terminal_id,))

    def cleared(self, cleared_date: str, terminal_id: str | None = None) -> list[dict[str, Any]]:
        """Transactions cleared on a date (YYYY-MM-DD), with whether an upload adjusted them,
        in terminal, batch and STAN order (the statement's lines)."""
        sql = ("SELECT t.*, EXISTS (SELECT 1 FROM differences d WHERE d.terminal_id ="
               " t.terminal_id AND d.batch = t.batch AND d.stan = t.stan AND d.kind IN"
               " ('amount_differs', 'state_differs', 'area_differs')) AS adjusted"
               " FROM transactions t WHERE t.cleared_date = ?")
        args: tuple[Any, ...] = (cleared_date,)
        if terminal_id is not None:
            sql += " AND t.terminal_id = ?"
            args += (terminal_id,)
        return self._rows(sql + " ORDER BY t.terminal_id, t.batch, t.stan, t.id", args)

    # -- reference numbers ---------------------------------------------------------------

    def next_rrn(self) -> str:
        """A 12-digit retrieval reference number never given before by this host.

        Numbers are reserved from the database a block at a time, so a restart skips the
        rest of a block rather than repeat one.
        """
        if self._rrn_next >= self._rrn_limit:
            # Inside ``transaction()`` the reservation commits (or rolls back) with the block.
            inside = self._conn.in_transaction
            if not inside:
                self._conn.execute("BEGIN IMMEDIATE")
            try:
                (value,) = self._conn.execute(
                    "SELECT value FROM counters WHERE name = 'rrn'").fetchone()
                self._conn.execute("UPDATE counters SET value = ? WHERE name = 'rrn'",
                                   (value + RRN_BLOCK,))
            except BaseException:
                if not inside:
                    self._conn.execute("ROLLBACK")
                raise
            if not inside:
                self._conn.execute("COMMIT")
            self._rrn_next, self._rrn_limit = value + 1, value + RRN_BLOCK + 1
        rrn = self._rrn_next
        self._rrn_next += 1
        return f"{rrn % 10**12:012d}"
