"""Reconciliation runs and their differences, kept in the journal (tables recon_runs and
recon_items, migration 5), and the journal's transactions streamed as the matcher reads them.

A run is one statement file reconciled against the journal: saved with all its items in one
commit, so a run is either whole or absent. Only differences are items (matched lines are
counted); a supervisor resolves each one with a note, audited. No clear card number is ever
stored: an item's card is the masked form, and a value that looks like a clear number is
refused.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storage.errors import StorageError
from storage.pan import mask_pan

if TYPE_CHECKING:
    from storage.journal import Journal

#: Classes an item can have (every class but ``matched``, which is only counted).
ITEM_CLASSES = ("probable", "amount_mismatch", "journal_only", "statement_only",
                "status_mismatch", "fee_mismatch", "unparseable")
SUMMARY_CHECKS = ("ok", "mismatch", "absent")

#: Column order of ``ReconBook.journal_rows`` tuples (the matcher unpacks them in this order).
#: Compact on purpose: every value costs the same to bring out of SQLite, and reconciliation
#: reads a million rows, so batch, STAN and the state travel packed in one integer ``key``
#: (see ``unpack_key``) and date and time in ``created_local``.
JOURNAL_ROW_COLUMNS = ("txn_id", "rrn", "amount", "created_local", "pan_masked", "key",
                       "terminal_id", "txn_type", "entry_mode")
#: Status of a row from its state, as ``unpack_key`` names it (a void wins over all).
KEY_STATUSES = ("settled", "reversed", "declined", "pending", "failed")
KEY_CLOSED = 1          # bit 0: the row's batch is closed (not the journal's open batch)
KEY_VOIDED = 2          # bit 1: an approved void points at the row
KEY_SETTLED_MASK = 30   # bits 1-4: zero when the row is settled (approved, not voided)

# key = (batch * 1,000,000 + stan) * 64 + state index * 4 + voided * 2 + batch closed
_JOURNAL_ROWS_SQL = """
SELECT id, rrn, amount, created_local, pan_masked,
       (batch * 1000000 + stan) * 64 + (batch != ?) + (voided_by IS NOT NULL) * 2
       + CASE state WHEN 'APPROVED' THEN 0 WHEN 'REVERSED' THEN 4 WHEN 'DECLINED' THEN 8
                    WHEN 'PENDING' THEN 12 ELSE 16 END,
       terminal_id, txn_type, entry_mode
FROM transactions
"""


def unpack_key(key: int) -> tuple[int, int, str, bool]:
    """(batch, stan, status, batch_closed) of a ``journal_rows`` key; status is 'voided'
    when the row was voided, else settled / reversed / declined / pending / failed."""
    batch, stan = divmod(key >> 6, 1_000_000)
    status = "voided" if key & KEY_VOIDED else KEY_STATUSES[(key >> 2) & 7]
    return batch, stan, status, bool(key & KEY_CLOSED)


_RUN_COLUMNS = ("id", "file_name", "file_hash", "file_size", "profile", "period_from",
                "period_to", "statement_lines", "journal_rows", "counts", "summary_check",
                "summary", "other_terminal_lines", "forced", "operator", "created_utc",
                "created_local")
#: Item columns a caller fills (``cls`` is the column ``class``), in insert order.
ITEM_FIELDS = ("cls", "line_no", "txn_id", "terminal_id", "batch", "stan", "rrn", "txn_date",
               "txn_time", "card_masked", "txn_type", "journal_amount", "statement_amount",
               "journal_status", "statement_status", "fee_expected", "fee_statement",
               "net_expected", "net_statement", "detail", "detail_zh")
_ITEM_COLUMNS = ("id", "run_id", *("class" if f == "cls" else f for f in ITEM_FIELDS),
                 "resolution_note", "resolved_by", "resolved_utc", "resolved_local")

_CLEAR_NUMBER = re.compile(r"\d{12,}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HASH = re.compile(r"[0-9a-f]{64}")
_PAN_LIKE = re.compile(r"(?<!\d)\d{13,19}(?!\d)")


class ReconError(StorageError):
    """A reconciliation run or item refused: unknown, already resolved, or bad values."""


@dataclass(frozen=True)
class ReconRun:
    """One saved reconciliation run (``unresolved``: its items still without a resolution)."""

    id: int
    file_name: str
    file_hash: str
    file_size: int
    profile: str
    period_from: str | None
    period_to: str | None
    statement_lines: int
    journal_rows: int
    counts: dict[str, int]
    summary_check: str
    summary: dict[str, Any]
    other_terminal_lines: int
    forced: bool
    operator: str
    created_utc: str
    created_local: str
    items_total: int = 0
    unresolved: int = 0


@dataclass(frozen=True)
class ReconItem:
    """One difference of a run as saved; money in signed fen, card masked."""

    id: int
    run_id: int
    cls: str
    line_no: int | None
    txn_id: int | None
    terminal_id: str | None
    batch: int | None
    stan: int | None
    rrn: str | None
    txn_date: str | None
    txn_time: str | None
    card_masked: str | None
    txn_type: str | None
    journal_amount: int | None
    statement_amount: int | None
    journal_status: str | None
    statement_status: str | None
    fee_expected: int | None
    fee_statement: int | None
    net_expected: int | None
    net_statement: int | None
    detail: str
    detail_zh: str
    resolution_note: str | None
    resolved_by: str | None
    resolved_utc: str | None
    resolved_local: str | None

    @property
    def resolved(self) -> bool:
        return self.resolved_utc is not None


def _run(values: tuple) -> ReconRun:
    data = dict(zip((*_RUN_COLUMNS, "items_total", "unresolved"), values))
    data["counts"] = json.loads(data["counts"])
    data["summary"] = json.loads(data["summary"] or "{}")
    data["forced"] = bool(data["forced"])
    return ReconRun(**data)


def _item(values: tuple) -> ReconItem:
    return ReconItem(*values)


def _audit_text(text: str) -> str:
    """``text`` with any run of digits that could be a card number masked (audit rows are
    refused if they hold one; a merchant id in a file name can look like one)."""
    return _PAN_LIKE.sub(lambda m: mask_pan(m.group()), text)


def _grouped_hash(file_hash: str) -> str:
    # In groups of 8, so that a run of hex digits that happen to be decimal is never taken
    # for a card number by the audit log's guard.
    return " ".join(file_hash[i:i + 8] for i in range(0, len(file_hash), 8))


class ReconBook:
    """Reconciliation runs of one journal: ``ReconBook(term.journal)``."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    # ------------------------------------------------------------ the journal, streamed

    def journal_rows(self, *, since: str | None = None,
                     until: str | None = None) -> Iterator[tuple]:
        """Every transaction as a tuple in ``JOURNAL_ROW_COLUMNS`` order, oldest first, streamed.

        (txn_id, rrn, amount (positive fen as stored), created_local
        ('YYYY-MM-DDTHH:MM:SS+08:00': local date is [:10], time [11:19]), pan_masked, key
        (batch, STAN, status and batch-closed packed; ``unpack_key``), terminal_id, txn_type,
        entry_mode). ``since``/``until`` keep local dates in that range (inclusive). One
        query on a read-only connection of its own, so the journal stays usable (and
        writable) while the rows are read.
        """
        for value, name in ((since, "since"), (until, "until")):
            if value is not None and not _DATE.fullmatch(value):
                raise ReconError(f"{name} must be a date YYYY-MM-DD, not {value!r}")
        from storage.journal import BUSY_TIMEOUT_S, _translated
        path = self._journal.path
        clauses, args = [], []
        if since is not None:
            clauses.append("substr(created_local, 1, 10) >= ?")
            args.append(since)
        if until is not None:
            clauses.append("substr(created_local, 1, 10) <= ?")
            args.append(until)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with _translated(path):
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True,
                                   timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
        try:
            with _translated(path):
                conn.execute("BEGIN")   # one snapshot: the counter and the rows agree
                (batch,) = conn.execute(
                    "SELECT value FROM counters WHERE name = 'batch'").fetchone()
                cursor = conn.execute(f"{_JOURNAL_ROWS_SQL}{where} ORDER BY id",
                                      (batch, *args))
                while True:
                    chunk = cursor.fetchmany(4096)
                    if not chunk:
                        break
                    yield from chunk
        finally:
            conn.close()

    # ------------------------------------------------------------ runs

    def _runs(self, where: str, args: tuple, limit: int | None = None) -> list[ReconRun]:
        sql = (f"SELECT {', '.join('r.' + c for c in _RUN_COLUMNS)},"
               " (SELECT count(*) FROM recon_items AS i WHERE i.run_id = r.id),"
               " (SELECT count(*) FROM recon_items AS i WHERE i.run_id = r.id"
               "  AND i.resolved_utc IS NULL)"
               f" FROM recon_runs AS r WHERE {where} ORDER BY r.id DESC")
        if limit is not None:
            sql += f" LIMIT {int(limit):d}"
        with self._journal._read() as conn:
            return [_run(row) for row in conn.execute(sql, args).fetchall()]

    def find_by_hash(self, file_hash: str) -> ReconRun | None:
        """The newest run of the file with this SHA-256 (hex), or None."""
        found = self._runs("r.file_hash = ?", (file_hash.lower(),), 1)
        return found[0] if found else None

    def runs(self, limit: int = 20) -> list[ReconRun]:
        """The newest runs first, at most ``limit``."""
        return self._runs("1", (), limit)

    def get_run(self, run_id: int) -> ReconRun:
        """One run by id; ReconError if there is none."""
        found = self._runs("r.id = ?", (run_id,), 1)
        if not found:
            raise ReconError(f"reconciliation run {run_id} does not exist")
        return found[0]

    def save_run(self, *, file_name: str, file_hash: str, file_size: int, profile: str,
                 period_from: str | None, period_to: str | None, statement_lines: int,
                 journal_rows: int, counts: dict[str, int], summary_check: str,
                 summary: dict[str, Any] | None, other_terminal_lines: int, forced: bool,
                 operator: str, items: Iterable[Any]) -> int:
        """Save a run and all its items in one commit (plus a 'recon.run' audit row); returns
        the run id.

        ``items`` are objects with the attributes ``ITEM_FIELDS`` names (``cls`` for the
        class), such as the matcher's items or ReconItem. A bad class or summary check, a
        hash that is not SHA-256 hex, or a card that looks like a clear number refuses the
        whole run (nothing is saved).
        """
        file_hash = file_hash.lower()
        if not _HASH.fullmatch(file_hash):
            raise ReconError(f"file hash must be 64 hex digits (SHA-256), not {file_hash!r}")
        if summary_check not in SUMMARY_CHECKS:
            raise ReconError(f"summary check must be one of {', '.join(SUMMARY_CHECKS)}, "
                             f"not {summary_check!r}")
        for value, name in ((period_from, "period_from"), (period_to, "period_to")):
            if value is not None and not _DATE.fullmatch(value):
                raise ReconError(f"{name} must be a date YYYY-MM-DD, not {value!r}")
        rows = [self._item_values(item) for item in items]
        journal = self._journal
        when = journal._now()
        counts = {str(k): int(v) for k, v in counts.items()}
        marks = ", ".join("?" * (len(ITEM_FIELDS) + 1))
        with journal._write() as conn:
            cursor = conn.execute(
                f"INSERT INTO recon_runs ({', '.join(_RUN_COLUMNS[1:])})"
                f" VALUES ({', '.join('?' * (len(_RUN_COLUMNS) - 1))})",
                (file_name, file_hash, int(file_size), profile, period_from, period_to,
                 int(statement_lines), int(journal_rows),
                 json.dumps(counts, ensure_ascii=False),
                 summary_check, json.dumps(summary or {}, ensure_ascii=False, sort_keys=True),
                 int(other_terminal_lines), int(bool(forced)), operator, when[0], when[1]))
            run_id = int(cursor.lastrowid or 0)
            conn.executemany(
                f"INSERT INTO recon_items (run_id, class, {', '.join(ITEM_FIELDS[1:])})"
                f" VALUES ({marks})", ((run_id, *row) for row in rows))
            journal._audit(conn, "recon.run", operator, {
                "run_id": run_id, "file": _audit_text(file_name),
                "sha256": _grouped_hash(file_hash), "profile": _audit_text(profile),
                "counts": counts, "items": len(rows), "forced": bool(forced),
                "summary_check": summary_check}, when)
        return run_id

    @staticmethod
    def _item_values(item: Any) -> tuple:
        values = tuple(getattr(item, name) for name in ITEM_FIELDS)
        cls, card = values[0], values[ITEM_FIELDS.index("card_masked")]
        if cls not in ITEM_CLASSES:
            raise ReconError(f"item class must be one of {', '.join(ITEM_CLASSES)}, "
                             f"not {cls!r}")
        if card is not None and _CLEAR_NUMBER.search(str(card)):
            raise ReconError(f"item of line {values[1]} holds a card number that is not "
                             "masked; only the first 6 and last 4 digits may be stored")
        return values

    # ------------------------------------------------------------ items

    def items(self, run_id: int, *, classes: Iterable[str] | None = None,
              unresolved: bool = False) -> list[ReconItem]:
        """The run's items in the order they were saved, optionally of some classes only and
        only those not yet resolved."""
        clauses, args = ["run_id = ?"], [run_id]
        if classes is not None:
            wanted = list(classes)
            unknown = [c for c in wanted if c not in ITEM_CLASSES]
            if unknown:
                raise ReconError(f"unknown item class {unknown[0]!r}; classes are "
                                 f"{', '.join(ITEM_CLASSES)}")
            clauses.append(f"class IN ({', '.join('?' * len(wanted))})")
            args += wanted
        if unresolved:
            clauses.append("resolved_utc IS NULL")
        with self._journal._read() as conn:
            rows = conn.execute(f"SELECT {', '.join(_ITEM_COLUMNS)} FROM recon_items"
                                f" WHERE {' AND '.join(clauses)} ORDER BY id", args).fetchall()
        return [_item(row) for row in rows]

    def get_item(self, item_id: int) -> ReconItem:
        """One item by id; ReconError if there is none."""
        with self._journal._read() as conn:
            found = self._get_item(conn, item_id)
        return found

    def _get_item(self, conn: sqlite3.Connection, item_id: int) -> ReconItem:
        row = conn.execute(f"SELECT {', '.join(_ITEM_COLUMNS)} FROM recon_items WHERE id = ?",
                           (item_id,)).fetchone()
        if row is None:
            raise ReconError(f"reconciliation item {item_id} does not exist")
        return _item(row)

    def resolve(self, item_id: int, *, note: str, actor: str) -> ReconItem:
        """Close a difference with a person's note (one commit, audited 'recon.resolve').

        Refused: an unknown item, an empty note, an item already resolved.
        """
        note = " ".join(str(note or "").split())
        if not note:
            raise ReconError(f"resolving item {item_id} needs a note saying what was done")
        journal = self._journal
        when = journal._now()
        with journal._write() as conn:
            item = self._get_item(conn, item_id)
            if item.resolved:
                raise ReconError(f"item {item_id} was already resolved by {item.resolved_by} "
                                 f"at {item.resolved_local}")
            conn.execute("UPDATE recon_items SET resolution_note = ?, resolved_by = ?,"
                         " resolved_utc = ?, resolved_local = ? WHERE id = ?",
                         (note, actor, when[0], when[1], item_id))
            journal._audit(conn, "recon.resolve", actor, {
                "item_id": item_id, "run_id": item.run_id, "class": item.cls,
                "line_no": item.line_no, "txn_id": item.txn_id, "note": note}, when)
            return self._get_item(conn, item_id)
