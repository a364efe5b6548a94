"""The settlement's saved state: one row per attempt, its step committed before each send.

A settlement walks ``started -> flushed -> totals -> [uploading -> upload_end]
-> [tc_upload -> tc_end] -> host_done -> closed`` (or ends ``failed``); each step's results
are committed with the step, so a process killed anywhere is resumed from the row by the
next ``posterm settle`` without sending twice what the host already took. Closing the
settlement and opening the next batch number are one commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storage.errors import InvalidTransition

if TYPE_CHECKING:
    from storage.journal import Journal

STEPS = ("started", "flushed", "totals", "uploading", "upload_end", "tc_upload", "tc_end",
         "host_done", "closed", "failed")
FINISHED = ("closed", "failed")
#: Transaction types whose approval moves money (the settlement's totals).
COUNTED_TYPES = ("sale", "completion", "offline_sale", "refund")

_COLUMNS = ("id", "batch", "step", "stan", "totals", "host_totals", "result",
            "result_after_upload", "settlement_date", "upload_total", "upload_cursor",
            "uploaded", "tc_total", "tc_cursor", "problems", "error", "report",
            "report_printed", "operator", "started_utc", "started_local", "updated_utc",
            "updated_local", "finished_utc", "finished_local")
_UPDATABLE = frozenset(_COLUMNS) - {"id", "batch", "step", "operator", "started_utc",
                                    "started_local", "updated_utc", "updated_local"}


@dataclass(frozen=True)
class SettlementRow:
    """One settlement attempt as saved."""

    id: int
    batch: int
    step: str
    stan: int | None
    totals: str | None            # our field 48 (62 digits), frozen at the 'totals' step
    host_totals: str | None       # the host's field 48 in the 0510
    result: str | None
    result_after_upload: str | None
    settlement_date: str | None   # MMDD from the 0510
    upload_total: int
    upload_cursor: int            # records of the upload list already answered
    uploaded: int                 # records the host took
    tc_total: int
    tc_cursor: int
    problems: list[dict[str, Any]]
    error: str | None
    report: str | None
    report_printed: bool
    operator: str
    started_utc: str
    started_local: str
    updated_utc: str
    updated_local: str
    finished_utc: str | None
    finished_local: str | None

    @property
    def finished(self) -> bool:
        return self.step in FINISHED


@dataclass(frozen=True)
class CountedRow:
    """A transaction that counts in the totals, as the upload needs it (no PAN)."""

    id: int
    txn_type: str
    card_org: str
    entry_mode: str
    stan: int
    amount: int


def _row(values: tuple) -> SettlementRow:
    data = dict(zip(_COLUMNS, values))
    data["problems"] = json.loads(data["problems"] or "[]")
    data["report_printed"] = bool(data["report_printed"])
    return SettlementRow(**data)


class SettlementBook:
    """Settlement rows of one journal (``journal.settlements``)."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def _select(self, where: str, args: tuple = ()) -> SettlementRow | None:
        with self._journal._read() as conn:
            found = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM settlements WHERE {where}"
                                 " ORDER BY id DESC LIMIT 1", args).fetchone()
        return None if found is None else _row(found)

    def active(self) -> SettlementRow | None:
        """The settlement under way (not closed, not failed), if any."""
        return self._select("step NOT IN ('closed', 'failed')")

    def last(self, *, closed_only: bool = True) -> SettlementRow | None:
        return self._select("step = 'closed'" if closed_only else "1")

    def of_batch(self, batch: int) -> SettlementRow | None:
        return self._select("batch = ? AND step != 'failed'", (batch,))

    def get(self, settlement_id: int) -> SettlementRow:
        row = self._select("id = ?", (settlement_id,))
        if row is None:
            raise InvalidTransition(f"settlement {settlement_id} does not exist")
        return row

    def start(self, operator: str) -> SettlementRow:
        """Begin settling the open batch (refused if one is under way)."""
        journal = self._journal
        when = journal._now()
        with journal._write() as conn:
            batch = int(conn.execute(
                "SELECT value FROM counters WHERE name = 'batch'").fetchone()[0])
            busy = conn.execute("SELECT id FROM settlements WHERE step NOT IN ('closed',"
                                " 'failed')").fetchone()
            if busy is not None:
                raise InvalidTransition(f"settlement {busy[0]} is under way")
            cursor = conn.execute(
                "INSERT INTO settlements (batch, step, operator, started_utc, started_local,"
                " updated_utc, updated_local) VALUES (?, 'started', ?, ?, ?, ?, ?)",
                (batch, operator, when[0], when[1], when[0], when[1]))
            settlement_id = int(cursor.lastrowid or 0)
            journal._audit(conn, "settlement.started", operator,
                           {"settlement_id": settlement_id, "batch": batch}, when)
        return self.get(settlement_id)

    def advance(self, settlement_id: int, step: str, *, audit: bool = True,
                **values: Any) -> SettlementRow:
        """Save ``values`` and move to ``step`` in one commit (never backwards past closed)."""
        if step not in STEPS or step == "closed":
            raise ValueError(f"cannot advance a settlement to {step!r}")
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise ValueError(f"not settlement columns: {', '.join(sorted(unknown))}")
        if "problems" in values:
            values["problems"] = json.dumps(values["problems"], ensure_ascii=False)
        journal = self._journal
        when = journal._now()
        with journal._write() as conn:
            current = conn.execute("SELECT step FROM settlements WHERE id = ?",
                                   (settlement_id,)).fetchone()
            if current is None or current[0] in FINISHED:
                raise InvalidTransition(f"settlement {settlement_id} is "
                                        f"{'missing' if current is None else current[0]}")
            sets = ", ".join(f"{k} = ?" for k in values)
            conn.execute(f"UPDATE settlements SET step = ?, updated_utc = ?, updated_local = ?"
                         f"{', ' + sets if sets else ''}"
                         f"{', finished_utc = ?, finished_local = ?' if step == 'failed' else ''}"
                         " WHERE id = ?",
                         (step, when[0], when[1], *values.values(),
                          *(when if step == "failed" else ()), settlement_id))
            if audit:
                detail = {"settlement_id": settlement_id, "step": step,
                          **{k: v for k, v in values.items()
                             if k in ("result", "result_after_upload", "uploaded", "error")}}
                journal._audit(conn, "settlement." + step, "system", detail, when)
        return self.get(settlement_id)

    def close(self, settlement_id: int, report: str) -> SettlementRow:
        """Keep the report, close the settlement and open the next batch: one commit."""
        from storage.journal import BATCH_MAX
        journal = self._journal
        when = journal._now()
        with journal._write() as conn:
            found = conn.execute("SELECT step, batch FROM settlements WHERE id = ?",
                                 (settlement_id,)).fetchone()
            if found is None or found[0] != "host_done":
                raise InvalidTransition(f"settlement {settlement_id} cannot close from "
                                        f"{'nothing' if found is None else found[0]}")
            batch = int(found[1])
            following = 1 if batch >= BATCH_MAX else batch + 1
            conn.execute("UPDATE settlements SET step = 'closed', report = ?,"
                         " finished_utc = ?, finished_local = ?, updated_utc = ?,"
                         " updated_local = ? WHERE id = ?",
                         (report, when[0], when[1], when[0], when[1], settlement_id))
            conn.execute("UPDATE counters SET value = ? WHERE name = 'batch' AND value = ?",
                         (following, batch))
            journal._audit(conn, "settlement.closed", "system",
                           {"settlement_id": settlement_id, "batch": batch,
                            "next_batch": following}, when)
        return self.get(settlement_id)

    def mark_printed(self, settlement_id: int) -> None:
        with self._journal._write() as conn:
            conn.execute("UPDATE settlements SET report_printed = 1 WHERE id = ?",
                         (settlement_id,))

    def counted(self, batch: int) -> list[CountedRow]:
        """The batch's transactions that count in the totals, oldest first: approved,
        neither voided nor reversed."""
        marks = ", ".join("?" * len(COUNTED_TYPES))
        with self._journal._read() as conn:
            rows = conn.execute(
                "SELECT id, txn_type, card_org, entry_mode, stan, amount FROM transactions"
                f" WHERE batch = ? AND state = 'APPROVED' AND voided_by IS NULL"
                f" AND txn_type IN ({marks}) ORDER BY id", (batch, *COUNTED_TYPES)).fetchall()
        return [CountedRow(*row) for row in rows]

    def opened_at(self, batch: int) -> str | None:
        """When the batch's first transaction was made (UTC ISO), or None if it has none."""
        with self._journal._read() as conn:
            (first,) = conn.execute("SELECT min(created_utc) FROM transactions WHERE batch = ?",
                                    (batch,)).fetchone()
        return first
