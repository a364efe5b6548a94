"""The acquirer's statement: the transactions cleared on one date, as CSV, XLSX or text.

One line per cleared transaction with its fee, net and payout date, then a summary (count
and the totals of amount, fee and net). Money is yuan with 2 decimals, signed from the
merchant's side (a refund is negative). The layout is a contract: reconciliation profiles
read it (docs/statement.md); change it only with that document.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sync.txntypes import TxnType

FORMATS = ("csv", "xlsx", "txt")

#: (column, TXT heading, TXT width, right-aligned in TXT); width 0: not in the TXT layout.
COLUMNS: tuple[tuple[str, str, int, bool], ...] = (
    ("merchant_id", "MERCHANT", 15, False),
    ("terminal_id", "TERMINAL", 8, False),
    ("txn_date", "DATE", 10, False),
    ("txn_time", "TIME", 8, False),
    ("stan", "STAN", 6, False),
    ("batch", "BATCH", 6, False),
    ("rrn", "RRN", 12, False),
    ("auth_code", "AUTH", 6, False),
    ("card", "CARD", 19, False),
    ("type", "TYPE", 12, False),
    ("type_zh", "", 0, False),       # CSV and XLSX only: the TXT layout is ASCII
    ("status", "STATUS", 8, False),
    ("amount", "AMOUNT", 14, True),
    ("fee", "FEE", 12, True),
    ("net", "NET", 14, True),
    ("payout_date", "PAYOUT", 10, False),
)
NAMES = tuple(column[0] for column in COLUMNS)
MONEY = ("amount", "fee", "net")
SUMMARY = ("count", "amount", "fee", "net")
TXT_LABEL_WIDTH = 10
TXT_VALUE_WIDTH = 16


def yuan(fen: int) -> str:
    """Signed fen as yuan with 2 decimals: -1234 -> '-12.34'."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def status_of(row: dict[str, Any]) -> str:
    """'added' (re-created from the terminal's batch upload), 'adjusted' (the upload changed
    its amount, state or area) or 'approved' (as the host approved it)."""
    if row["source"] == "upload":
        return "added"
    return "adjusted" if row["adjusted"] else "approved"


@dataclass
class Statement:
    """The lines (fen for money) and the summary of one date's cleared transactions."""

    date: str
    terminal_id: str | None
    lines: list[dict[str, Any]]

    @classmethod
    def from_rows(cls, date: str, terminal_id: str | None,
                  rows: Iterable[dict[str, Any]]) -> Statement:
        lines = []
        for row in rows:
            txn = TxnType[row["txn_type"].upper()]
            sign = -1 if txn.spec.totals == "credit" else 1
            local = row["created_local"] or ""
            lines.append({
                "merchant_id": row["merchant_id"] or "", "terminal_id": row["terminal_id"],
                "txn_date": local[:10], "txn_time": local[11:19],
                "stan": f"{row['stan']:06d}", "batch": f"{row['batch']:06d}",
                "rrn": row["rrn"] or "", "auth_code": row["auth_code"] or "",
                "card": row["pan_masked"] or "", "type": txn.key, "type_zh": txn.spec.label_zh,
                "status": status_of(row), "amount": sign * (row["amount"] or 0),
                "fee": row["fee"] or 0, "net": row["net"] or 0,
                "payout_date": row["payout_date"] or ""})
        return cls(date, terminal_id, lines)

    def totals(self) -> dict[str, int]:
        return {"count": len(self.lines),
                **{m: sum(line[m] for line in self.lines) for m in MONEY}}

    def texts(self) -> list[list[str]]:
        """The lines as text cells, in column order (money as yuan)."""
        return [[yuan(line[n]) if n in MONEY else str(line[n]) for n in NAMES]
                for line in self.lines]

    def summary_texts(self) -> list[str]:
        totals = self.totals()
        return [str(totals["count"])] + [yuan(totals[m]) for m in MONEY]

    # -- the formats ---------------------------------------------------------------------

    def write(self, path: Path, fmt: str) -> None:
        """Write the statement to ``path`` as ``fmt`` (csv, xlsx or txt); OSError passes."""
        {"csv": self._csv, "xlsx": self._xlsx, "txt": self._txt}[fmt](path)

    def _csv(self, path: Path) -> None:
        # UTF-8 with a BOM so that spreadsheet programs read the Chinese names right.
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(NAMES)
            writer.writerows(self.texts())
            writer.writerow([])
            writer.writerow(["summary", *SUMMARY])
            writer.writerow(["total", *self.summary_texts()])

    def _xlsx(self, path: Path) -> None:
        from openpyxl import Workbook
        from openpyxl.styles import Font

        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = "statement"
        sheet.append(list(NAMES))
        for line in self.lines:
            sheet.append([Decimal(line[n]) / 100 if n in MONEY else line[n] for n in NAMES])
        sheet.append([])
        sheet.append(["summary", *SUMMARY])
        totals = self.totals()
        sheet.append(["total", totals["count"], *(Decimal(totals[m]) / 100 for m in MONEY)])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        money_columns = [NAMES.index(m) + 1 for m in MONEY]
        for row in sheet.iter_rows(min_row=2, max_row=len(self.lines) + 1):
            for index in money_columns:
                row[index - 1].number_format = "0.00"
        for cell in sheet[sheet.max_row][2:]:
            cell.number_format = "0.00"
        book.save(path)

    def _txt(self, path: Path) -> None:
        scope = f"terminal {self.terminal_id}" if self.terminal_id else "all terminals"
        fields = [(n, h, w, right) for n, h, w, right in COLUMNS if w]
        header = " ".join(h.rjust(w) if right else h.ljust(w) for _, h, w, right in fields)
        rule = "-" * len(header)
        out = [f"POSTERM-HOST STATEMENT  cleared {self.date}  {scope}", header, rule]
        for line in self.texts():
            cells = dict(zip(NAMES, line))
            out.append(" ".join(cells[n][:w].rjust(w) if right else cells[n][:w].ljust(w)
                                for n, _, w, right in fields))
        out.append(rule)
        for label, value in zip(SUMMARY, self.summary_texts()):
            out.append(label.upper().ljust(TXT_LABEL_WIDTH) + value.rjust(TXT_VALUE_WIDTH))
        path.write_text("\n".join(out) + "\n", encoding="ascii")


def txt_positions() -> list[tuple[str, int, int]]:
    """(column, first, last) character positions (1-based) of the TXT layout's lines."""
    positions, start = [], 1
    for name, _, width, _ in COLUMNS:
        if width:
            positions.append((name, start, start + width - 1))
            start += width + 1
    return positions
