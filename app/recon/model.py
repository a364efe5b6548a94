"""The shapes reconciliation passes between its parts: a statement line as read through a
profile, a line that could not be read, the statement's own totals, a journal row as the
matcher sees it, and the classes every line lands in.

Money is signed fen from the merchant's side (a refund is negative); dates are
``YYYY-MM-DD`` and times ``HH:MM:SS`` as local wall-clock text. No field ever holds a clear
card number: the reader masks whatever the file printed and keeps the last four digits.
"""

from __future__ import annotations

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
    objects cost seconds). ``line(k)`` makes the k-th one a StatementLine when needed."""

    __slots__ = ("columns", "numbers")

    def __init__(self, numbers: list[int], columns: dict[str, list]) -> None:
        self.numbers = numbers
        #: every name of LINE_FIELDS -> one value per line (a field the file lacks: Nones)
        self.columns = columns

    def __len__(self) -> int:
        return len(self.numbers)

    def __getstate__(self) -> tuple[list[int], dict[str, list]]:
        return self.numbers, self.columns

    def __setstate__(self, state: tuple[list[int], dict[str, list]]) -> None:
        self.numbers, self.columns = state

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
