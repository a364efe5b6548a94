"""The shapes reconciliation passes between its parts: a statement line as read through a
profile, a line that could not be read, the statement's own totals, a journal row as the
matcher sees it, and the classes every line lands in.

Money is signed fen from the merchant's side (a refund is negative); dates are
``YYYY-MM-DD`` and times ``HH:MM:SS`` as local wall-clock text. No field ever holds a clear
card number: the reader masks whatever the file printed and keeps the last four digits.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

#: Every class a line can land in, in report order. ``probable`` is a match made by amount,
#: time window and card last four only: flagged for a person to confirm.
CLASSES = ("matched", "probable", "amount_mismatch", "journal_only", "statement_only",
           "status_mismatch", "fee_mismatch", "unparseable")
CLASS_ZH = {"matched": "相符", "probable": "疑似相符", "amount_mismatch": "错单(金额不符)",
            "journal_only": "漏单(本机有,对账单无)", "statement_only": "对账单有,本机无",
            "status_mismatch": "状态不符", "fee_mismatch": "手续费/净额不符",
            "unparseable": "无法解析"}

#: Canonical transaction types (a profile's [types] map file values onto these).
TYPES = ("sale", "completion", "offline_sale", "refund", "void", "preauth",
         "preauth_void", "completion_void")
#: Canonical statuses (a profile's [statuses] map file values onto these). ``settled``
#: means money moved (the bank cleared it); the others mean it did not.
STATUSES = ("settled", "voided", "reversed", "declined")


@dataclass(slots=True)
class StatementLine:
    """One transaction line of a statement, converted through its profile."""

    line_no: int                 # 1-based line of a text file, row of a sheet
    amount: int                  # fen, signed: negative for a refund
    terminal_id: str | None = None
    merchant_id: str | None = None
    date: str | None = None      # YYYY-MM-DD
    time: str | None = None      # HH:MM:SS
    stan: int | None = None
    batch: int | None = None
    rrn: str | None = None
    auth_code: str | None = None
    card_masked: str | None = None   # first 6 / last 4 at most, '*' between
    card_last4: str | None = None
    txn_type: str | None = None      # one of TYPES
    status: str | None = None        # one of STATUSES; None when the file has no status
    fee: int | None = None           # fen, signed like the amount
    net: int | None = None
    settlement_date: str | None = None


@dataclass(slots=True)
class Unparseable:
    """A line the profile could not read: where, which column, and why (one line of text)."""

    line_no: int
    column: str | None           # the profile's field name or the file's column heading
    reason: str                  # e.g. "amount 'abc' is not a number of yuan"
    text: str = ""               # the offending cell (card numbers masked), for the report


@dataclass(slots=True)
class SummaryFigures:
    """The statement's own totals, as printed in its summary lines (any may be absent)."""

    line_no: int
    count: int | None = None
    amount: int | None = None
    fee: int | None = None
    net: int | None = None


@dataclass(slots=True)
class JournalLine:
    """A journal row as the matcher needs it (nothing card-sensitive beyond the mask)."""

    txn_id: int
    terminal_id: str
    batch: int
    stan: int
    date: str                    # local date of the transaction, YYYY-MM-DD
    time: str                    # local time, HH:MM:SS
    rrn: str | None
    auth_code: str | None
    card_masked: str
    card_last4: str
    txn_type: str                # journal type key: sale, refund, completion, offline_sale, ...
    status: str                  # settled | voided | reversed | declined | pending | failed
    amount: int                  # fen, signed: negative for a refund
    entry_mode: str
    batch_closed: bool           # the batch has been settled (only then is it on a statement)


#: StatementLine's fields after line_no, in order (a LineBlock's column names).
LINE_FIELDS = ("amount", "terminal_id", "merchant_id", "date", "time", "stan", "batch", "rrn",
               "auth_code", "card_masked", "card_last4", "txn_type", "status", "fee", "net",
               "settlement_date")


class LineBlock:
    """Consecutive statement lines that all converted, held column by column: how a big
    file travels from the reader to the matcher without an object per line (a million
    objects cost seconds). ``line(k)`` makes the k-th one a StatementLine when needed.

    Pickled (from a reading process), each column travels as one object (``_pack``) and
    is rebuilt only when asked for (``column``): the matcher's common case reads 7 of the
    16 columns, and pickling a million separate strings cost the reader more than a second
    and the matcher two."""

    __slots__ = ("_columns", "_packed", "numbers")

    def __init__(self, numbers: list[int], columns: dict[str, list]) -> None:
        self.numbers = numbers
        self._columns = columns
        self._packed: dict[str, tuple] = {}

    def __len__(self) -> int:
        return len(self.numbers)

    @property
    def columns(self) -> dict[str, list]:
        """Every name of LINE_FIELDS -> one value per line (a field the file lacks: Nones)."""
        for name in list(self._packed):
            self.column(name)
        return self._columns

    def column(self, name: str) -> list:
        """One column (rebuilt from its packed form the first time)."""
        found = self._columns.get(name)
        if found is None:
            found = self._columns[name] = _unpack(self._packed.pop(name))
        return found

    def __getstate__(self) -> tuple[bytes, dict[str, tuple]]:
        packed = {name: _pack(column) for name, column in self._columns.items()}
        return array("q", self.numbers).tobytes(), {**packed, **self._packed}

    def __setstate__(self, state: tuple[bytes, dict[str, tuple]]) -> None:
        numbers = array("q")
        numbers.frombytes(state[0])
        self.numbers = numbers.tolist()
        self._columns, self._packed = {}, state[1]

    def line(self, k: int) -> StatementLine:
        c = self.columns
        return StatementLine(self.numbers[k], *(c[name][k] for name in LINE_FIELDS))

    def lines(self) -> list[StatementLine]:
        c = self.columns
        return list(map(StatementLine, self.numbers, *(c[name] for name in LINE_FIELDS)))

    @classmethod
    def of(cls, lines: list[StatementLine]) -> LineBlock:
        """The block of some StatementLine objects (the reader's slow path, small files)."""
        columns = {name: [getattr(line, name) for line in lines] for name in LINE_FIELDS}
        return cls([line.line_no for line in lines], columns)


_NUL = "\x00"


def _pack(column: list) -> tuple:
    """A column as one object for pickling, with C loops only: one value repeated (the
    terminal id), integers as array bytes (amounts), texts joined by NUL (RRNs, times);
    a column mixing None with values (or holding a NUL) as it is."""
    n = len(column)
    if n and column.count(column[0]) == n:
        return ("same", column[0], n)
    try:
        return ("int", array("q", column).tobytes())
    except (TypeError, OverflowError):
        pass
    try:
        joined = _NUL.join(column)
    except TypeError:
        return ("list", column)
    return ("text", joined) if joined.count(_NUL) == n - 1 else ("list", column)


def _unpack(packed: tuple) -> list:
    kind = packed[0]
    if kind == "same":
        return [packed[1]] * packed[2]
    if kind == "int":
        numbers = array("q")
        numbers.frombytes(packed[1])
        return numbers.tolist()
    if kind == "text":
        return packed[1].split(_NUL)
    return packed[1]
