"""The one table writer behind every export (transaction list, reconciliation report...):
CSV, XLSX, aligned TXT or JSON from the same column definitions and rows.

A file is written beside its destination under a temporary name and renamed into place, so
a failed export never leaves half a file where the merchant expects one. Money arrives as
int fen and leaves as yuan (CSV, TXT), as an exact decimal number (XLSX) or as fen (JSON).
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.amount import format_yuan
from app.errors import InputError
from hal.document import text_width

KINDS = ("text", "money", "int", "date")
FORMATS = ("csv", "xlsx", "txt", "json")
LANGUAGES = ("zh", "en")
_SUFFIXES = {f".{f}": f for f in FORMATS}
_WIDTH_SAMPLE = 500        # XLSX rows looked at for column widths (the rest stream through)
_MAX_XLSX_WIDTH = 60


class ExportError(InputError):
    """An export that cannot be made (unknown file type, unwritable path, bad cell value)."""


@dataclass(frozen=True)
class Column:
    """One column of an export: the row key it reads, its heading in each language, and
    its kind — ``text``, ``money`` (int fen), ``int`` or ``date`` (a date, datetime or ISO
    text; shown as local wall-clock time)."""

    key: str
    head_en: str
    head_zh: str
    kind: str = "text"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.key}: kind {self.kind!r} is not one of "
                             + ", ".join(KINDS))

    def head(self, language: str) -> str:
        return self.head_zh if language == "zh" else self.head_en


def format_for(path: Path | None, fmt: str | None) -> str:
    """The export format: ``fmt`` when given, else the file's suffix; one clear line for
    anything else."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ExportError(f"unknown export format {fmt!r}: use {', '.join(FORMATS)}")
        return fmt
    if path is None:
        raise ExportError("no file and no format: give -o FILE or --format")
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise ExportError(f"{path}: cannot tell the format from "
                          f"{repr(path.suffix) if path.suffix else 'a name without a suffix'}"
                          f": use .csv, .xlsx, .txt or .json (or --format)")
    return found


def write_table(path: Path, columns: Sequence[Column], rows: Iterable[dict], *,
                language: str, title: str | None = None,
                footer: list[tuple[str, str]] | None = None, fmt: str | None = None) -> int:
    """Write ``rows`` (dicts keyed by the columns' keys; missing keys are blank) to ``path``
    as ``fmt`` (default: from the suffix), headings in ``language``; returns the rows
    written. ``footer`` is (label, value) lines after the table, e.g. totals."""
    fmt = format_for(path, fmt)
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    writer = {"csv": _write_csv, "xlsx": _write_xlsx, "txt": _write_txt,
              "json": _write_json_table}[fmt]
    with _atomic(path) as tmp:
        return writer(tmp, list(columns), rows, language=language, title=title,
                      footer=footer or [])


def write_json(path: Path, document: Any) -> None:
    """One JSON document to ``path`` (UTF-8, readable Chinese), replaced in one rename."""
    with _atomic(path) as tmp:
        tmp.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n",
                       encoding="utf-8")


def render_txt(columns: Sequence[Column], rows: Iterable[dict], *, language: str,
               title: str | None = None, footer: list[tuple[str, str]] | None = None) -> str:
    """The table as aligned text for people: CJK characters take two columns, money and
    numbers are right-aligned; a title line above, footer lines below."""
    columns = list(columns)
    cells = [[_text(c, row.get(c.key), grouped=True) for c in columns] for row in rows]
    heads = [c.head(language) for c in columns]
    widths = [max([text_width(h)] + [text_width(r[i]) for r in cells])
              for i, h in enumerate(heads)]
    right = [c.kind in ("money", "int") for c in columns]

    def line(values: list[str]) -> str:
        return "  ".join(_pad(v, w, r) for v, w, r in zip(values, widths, right)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [title] if title else []
    out += [line(heads), rule, *(line(r) for r in cells)]
    if footer:
        label_width = max(text_width(label) for label, _ in footer)
        out.append(rule)
        out += [f"{_pad(label, label_width, False)}  {value}".rstrip()
                for label, value in footer]
    return "\n".join(out) + "\n"


# -- the formats --------------------------------------------------------------------------------

def _write_csv(tmp: Path, columns: list[Column], rows: Iterable[dict], *, language: str,
               title: str | None, footer: list[tuple[str, str]]) -> int:
    # UTF-8 with a BOM and CRLF: what Excel on a Chinese Windows opens without mojibake.
    written = 0
    with open(tmp, "w", encoding="utf-8-sig", newline="") as f:
        out = csv.writer(f, lineterminator="\r\n")
        out.writerow([c.head(language) for c in columns])
        for row in rows:
            out.writerow([_text(c, row.get(c.key)) for c in columns])
            written += 1
        if footer:
            out.writerow([])
            out.writerows([label, value] for label, value in footer)
        f.flush()
        os.fsync(f.fileno())
    return written


def _write_txt(tmp: Path, columns: list[Column], rows: Iterable[dict], *, language: str,
               title: str | None, footer: list[tuple[str, str]]) -> int:
    rows = list(rows)
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(render_txt(columns, rows, language=language, title=title, footer=footer))
        f.flush()
        os.fsync(f.fileno())
    return len(rows)


def _write_json_table(tmp: Path, columns: list[Column], rows: Iterable[dict], *,
                      language: str, title: str | None,
                      footer: list[tuple[str, str]]) -> int:
    items = [{c.key: _json_value(c, row.get(c.key)) for c in columns} for row in rows]
    document = {"title": title,
                "columns": [{"key": c.key, "head": c.head(language), "kind": c.kind}
                            for c in columns],
                "rows": items,
                "footer": [{"label": label, "value": value} for label, value in footer]}
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(document, ensure_ascii=False, indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return len(items)


def _write_xlsx(tmp: Path, columns: list[Column], rows: Iterable[dict], *, language: str,
                title: str | None, footer: list[tuple[str, str]]) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_sheet_name(title))
    if title:
        workbook.properties.title = title
    # Write-only sheets need widths and panes before the first row: size the columns from
    # the headings and a sample of rows, then stream the sample and the rest.
    iterator = iter(rows)
    sample = list(itertools.islice(iterator, _WIDTH_SAMPLE))
    heads = [c.head(language) for c in columns]
    for i, (column, head) in enumerate(zip(columns, heads), start=1):
        width = max([text_width(head)] + [text_width(_text(column, r.get(column.key),
                                                           grouped=True)) for r in sample])
        sheet.column_dimensions[get_column_letter(i)].width = min(width + 2, _MAX_XLSX_WIDTH)
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)

    def cell(value: Any, *, text: bool = False, font: Font | None = None,
             number_format: str | None = None) -> WriteOnlyCell:
        c = WriteOnlyCell(sheet, value=value)
        if text and value is not None:
            c.data_type = "s"          # never a formula or a number: "000123" stays as typed
            c.number_format = "@"
        if font is not None:
            c.font = font
        if number_format is not None:
            c.number_format = number_format
        return c

    sheet.append([cell(h, text=True, font=bold) for h in heads])
    written = 0
    for row in itertools.chain(sample, iterator):
        sheet.append([_xlsx_cell(cell, c, row.get(c.key)) for c in columns])
        written += 1
    if footer:
        sheet.append([])
        for label, value in footer:
            sheet.append([cell(label, text=True, font=bold), cell(value, text=True)])
    workbook.save(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    return written


def _xlsx_cell(cell: Any, column: Column, value: Any) -> Any:
    if value is None or value == "":
        return None
    if column.kind == "money":
        # An exact decimal: the file holds "12.50", not a float's nearest neighbour.
        return cell(Decimal(_fen(column, value)).scaleb(-2), number_format="0.00")
    if column.kind == "int":
        return cell(_int(column, value), number_format="0")
    if column.kind == "date":
        moment = _moment(column, value)
        if isinstance(moment, datetime):
            return cell(moment.replace(tzinfo=None), number_format="yyyy-mm-dd hh:mm:ss")
        return cell(moment, number_format="yyyy-mm-dd")
    return cell(str(value), text=True)


# -- cell values --------------------------------------------------------------------------------

def _text(column: Column, value: Any, *, grouped: bool = False) -> str:
    """A cell as text: yuan with two decimals for money, local wall-clock for dates."""
    if value is None or value == "":
        return ""
    if column.kind == "money":
        return format_yuan(_fen(column, value), grouped=grouped)
    if column.kind == "int":
        return str(_int(column, value))
    if column.kind == "date":
        moment = _moment(column, value)
        return (moment.strftime("%Y-%m-%d %H:%M:%S") if isinstance(moment, datetime)
                else moment.isoformat())
    # Line breaks or tabs inside a cell would break the TXT columns.
    return " ".join(str(value).split()) if not str(value).isprintable() else str(value)


def _json_value(column: Column, value: Any) -> Any:
    if value is None or value == "":
        return None
    if column.kind == "money":
        return _fen(column, value)
    if column.kind == "int":
        return _int(column, value)
    return _text(column, value)


def _fen(column: Column, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExportError(f"column {column.key}: money must be whole fen, not {value!r}")
    return value


def _int(column: Column, value: Any) -> int:
    if isinstance(value, bool):
        raise ExportError(f"column {column.key}: {value!r} is not a whole number")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ExportError(f"column {column.key}: {value!r} is not a whole number") from None


def _moment(column: Column, value: Any) -> date | datetime:
    if isinstance(value, (date, datetime)):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise ExportError(f"column {column.key}: {value!r} is not a date") from None


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(0, width - text_width(text))
    return gap + text if right else text + gap


def _sheet_name(title: str | None) -> str:
    """Excel's rules: at most 31 characters, none of []:*?/\\ ."""
    name = "".join(" " if ch in "[]:*?/\\" else ch for ch in (title or "posterm")).strip()
    return name[:31] or "posterm"


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path``, renamed onto it when the block succeeds and
    removed when it fails; an OS error becomes one line naming the file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
