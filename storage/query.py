"""Transaction query (流水查询): the journal's rows that pass a filter, newest first.

Every condition is a SQL clause with its values as parameters, so a query over a large
journal reads only the rows it returns. Times are compared on the journal's local
wall-clock text (``created_local``), which is what a cashier means by "yesterday".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from storage.errors import StorageError
from storage.journal import _RECORD_SQL, TransactionRecord, _record

if TYPE_CHECKING:
    from storage.journal import Journal

#: What a person filters by; 'voided' is an approved row a void has undone, and 'approved'
#: means approved and still standing.
STATUSES = ("approved", "declined", "reversed", "voided", "pending", "failed")

_STATUS_SQL = {
    "approved": "(t.state = 'APPROVED' AND t.voided_by IS NULL)",
    "voided": "(t.state = 'APPROVED' AND t.voided_by IS NOT NULL)",
    "declined": "t.state = 'DECLINED'",
    "reversed": "t.state = 'REVERSED'",
    "pending": "t.state = 'PENDING'",
    "failed": "t.state = 'FAILED'",
}
_MOMENT = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}))?$")


class InvalidFilter(StorageError):
    """A filter value that cannot mean anything; ``field`` names the TxnFilter field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def local_moment(text: str, field: str = "date") -> str:
    """``'2026-11-22'`` or ``'2026-11-22 08:30'`` as the journal's local-time prefix
    (``'2026-11-22'``, ``'2026-11-22T08:30'``); InvalidFilter for anything else."""
    match = _MOMENT.match(text.strip())
    if not match:
        raise InvalidFilter(field, f"{text!r} is not a date: use YYYY-MM-DD or "
                                   "\"YYYY-MM-DD HH:MM\"")
    day, clock = match.groups()
    try:
        datetime.strptime(f"{day} {clock or '00:00'}", "%Y-%m-%d %H:%M")
    except ValueError:
        raise InvalidFilter(field, f"{text!r} is not a real date or time") from None
    return day if clock is None else f"{day}T{clock}"


@dataclass(frozen=True)
class TxnFilter:
    """Which journal rows to return. Every field is optional; set ones must all hold.

    Dates are local, ``YYYY-MM-DD`` (the whole day) or ``YYYY-MM-DD HH:MM`` (that minute),
    both ends inclusive. Amounts are fen, inclusive. ``types`` are journal type keys
    (``sale``, ``refund``...), ``statuses`` values of STATUSES; several of either mean any
    of them. ``limit`` caps the rows returned (the newest).
    """

    date_from: str | None = None
    date_to: str | None = None
    min_amount: int | None = None
    max_amount: int | None = None
    card_last4: str | None = None
    types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    batch: int | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        start = None if self.date_from is None else local_moment(self.date_from, "date_from")
        end = None if self.date_to is None else local_moment(self.date_to, "date_to")
        if start is not None and end is not None and end < start[:len(end)]:
            raise InvalidFilter("date_to", f"{self.date_to} is before {self.date_from}")
        for name in ("min_amount", "max_amount", "batch", "limit"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < (0 if name.endswith("amount") else 1)):
                raise InvalidFilter(name, f"{value!r} is not a "
                                          + ("number of fen" if name.endswith("amount")
                                             else "positive whole number"))
        if (self.min_amount is not None and self.max_amount is not None
                and self.min_amount > self.max_amount):
            raise InvalidFilter("max_amount", f"{self.max_amount} fen is below the minimum "
                                              f"{self.min_amount} fen")
        if self.card_last4 is not None and not re.fullmatch(r"\d{4}", self.card_last4):
            raise InvalidFilter("card_last4", f"{self.card_last4!r} is not four digits")
        if isinstance(self.types, str) or isinstance(self.statuses, str):
            raise InvalidFilter("types" if isinstance(self.types, str) else "statuses",
                                "give a tuple of values, not one string")
        unknown = [s for s in self.statuses if s not in STATUSES]
        if unknown:
            raise InvalidFilter("statuses", f"unknown status {unknown[0]!r}: use "
                                            + ", ".join(STATUSES))

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition over ``transactions AS t`` and its parameters."""
        clauses: list[str] = []
        args: list[Any] = []
        if self.date_from is not None:
            # The stored text starts with the prefix, so it sorts at or after it.
            clauses.append("t.created_local >= ?")
            args.append(local_moment(self.date_from))
        if self.date_to is not None:
            end = local_moment(self.date_to)
            clauses.append("substr(t.created_local, 1, ?) <= ?")
            args += [len(end), end]
        if self.min_amount is not None:
            clauses.append("t.amount >= ?")
            args.append(self.min_amount)
        if self.max_amount is not None:
            clauses.append("t.amount <= ?")
            args.append(self.max_amount)
        if self.card_last4 is not None:
            clauses.append("substr(t.pan_masked, -4) = ?")
            args.append(self.card_last4)
        if self.types:
            clauses.append(f"t.txn_type IN ({', '.join('?' * len(self.types))})")
            args += list(self.types)
        if self.statuses:
            clauses.append("(" + " OR ".join(_STATUS_SQL[s] for s in dict.fromkeys(
                self.statuses)) + ")")
        if self.batch is not None:
            clauses.append("t.batch = ?")
            args.append(self.batch)
        return " AND ".join(clauses) or "1", args


def search(journal: Journal, flt: TxnFilter, *,
           before_id: int | None = None) -> list[TransactionRecord]:
    """The journal rows that pass ``flt``, newest first (at most ``flt.limit``); with
    ``before_id``, only rows older than that row id (the next page of a long list, read
    without counting the rows before it)."""
    where, args = flt.where()
    if before_id is not None:
        where += " AND t.id < ?"
        args.append(before_id)
    sql = f"{_RECORD_SQL} WHERE {where} ORDER BY t.id DESC"
    if flt.limit is not None:
        sql += " LIMIT ?"
        args.append(flt.limit)
    with journal._read() as conn:
        return [_record(row) for row in conn.execute(sql, args)]


def count(journal: Journal, flt: TxnFilter) -> int:
    """How many rows pass ``flt``, ignoring its limit (e.g. to say a list was cut short)."""
    where, args = flt.where()
    with journal._read() as conn:
        (found,) = conn.execute(f"SELECT count(*) FROM transactions AS t WHERE {where}",
                                args).fetchone()
    return int(found)
