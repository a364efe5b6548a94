"""Reading an acquirer's statement file through its profile, one line at a time.

``open_statement(path, profile).lines()`` is a generator of ``StatementLine`` (money in
signed fen, dates ISO, the card masked) and ``Unparseable`` (a line that could not be read,
with its line, column and reason), in file order and without holding the file in memory.
The statement's own totals are in ``reader.summary`` once the lines are exhausted. A problem
with the whole file (missing, empty, wrong encoding, a mapped column not in the header, no
such sheet) is a ``StatementError``: one line naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from itertools import chain, compress, count, repeat
from operator import eq, itemgetter
from pathlib import Path
from typing import Any

from app.errors import InputError
from app.recon.model import LINE_FIELDS, LineBlock, StatementLine, SummaryFigures, Unparseable
from app.recon.profile import Column, Profile
from app.redaction import redact
from storage.pan import mask_pan

_BOM = b"\xef\xbb\xbf"
_ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "gbk": "GBK", "gb18030": "GB18030"}
#: Money as banks print it: sign, currency, thousands separators, a trailing minus.
_MONEY = re.compile(r"(?P<sign>[-+])?(?:[¥￥]|RMB|CNY)?\s*(?P<sign2>[-+])?"
                    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d*)?\s*(?:元|RMB|CNY)?"
                    r"(?P<sign3>-)?", re.IGNORECASE)
_PLAIN_YUAN = re.compile(r"-?\d+\.\d\d")
_THIRD_LAST = itemgetter(-3)
_CARD_SEPARATORS = str.maketrans({" ": None, "-": None, "x": "*", "X": "*", "#": "*"})
_CARD = re.compile(r"[0-9*]+")
#: The usual patterns, read without strptime (which is slow for a million lines).
_FAST_DATES = {"%Y-%m-%d": re.compile(r"(\d{4})-(\d\d)-(\d\d)"),
               "%Y%m%d": re.compile(r"(\d{4})(\d\d)(\d\d)"),
               "%Y/%m/%d": re.compile(r"(\d{4})/(\d\d)/(\d\d)")}
_FAST_TIMES = {"%H:%M:%S": re.compile(r"(\d\d):(\d\d):(\d\d)"),
               "%H%M%S": re.compile(r"(\d\d)(\d\d)(\d\d)")}


#: Yielded by ``items()`` after every unit of lines when the work is shared (``share``).
UNIT_END: Any = type("UnitEnd", (), {"__repr__": lambda self: "UNIT_END"})()


class StatementError(InputError):
    """The statement file cannot be read at all: one line naming the file, line and column."""


class _Bad(Exception):
    """One cell could not be converted; the message is the Unparseable's reason."""


def open_statement(path: Path, profile: Profile) -> StatementReader:
    """A reader of ``path`` through ``profile``; StatementError if the file cannot be read."""
    return StatementReader(path, profile)


class StatementReader:
    """Reads one statement file; ``lines()`` streams it, then ``summary`` holds its totals."""

    def __init__(self, path: Path, profile: Profile):
        self.path = Path(path)
        self.profile = profile
        #: The statement's own totals, set while ``lines()`` reads the end of the file.
        self.summary: SummaryFigures | None = None
        #: The profile declares a summary (so its absence is worth reporting).
        self.summary_expected = profile.summary is not None
        #: Physical lines (rows of a sheet) read so far, header and summary included.
        self.lines_read = 0
        #: (k, n): convert only the k-th of every n units of lines and mark the end of
        #: every unit with UNIT_END (``_data``); None: every line, no marks.
        self.share: tuple[int, int] | None = None
        self._cells = _Cells(profile)
        self._check_file()

    def _fail(self, what: str, line: int | None = None) -> StatementError:
        where = f"line {line}: " if line is not None else ""
        return StatementError(f"{self.path.name}: {where}{what}")

    def _check_file(self) -> None:
        try:
            with self.path.open("rb") as stream:
                start = stream.read(4096)
        except FileNotFoundError:
            raise self._fail("no such file") from None
        except IsADirectoryError:
            raise self._fail("is a folder, not a statement file") from None
        except OSError as exc:
            raise self._fail(f"cannot be read: {exc.strerror}") from None
        if not start.removeprefix(_BOM).strip():
            raise self._fail("the file is empty")

    # -- the rows of each format -------------------------------------------------------------

    def _blocks(self) -> Iterator[tuple[list[int], list[Any]]]:
        """(line numbers, rows) of consecutive physical lines, a block at a time: a row is a
        list of cells, or the text line of a fixed-width file."""
        if self.profile.format == "xlsx":
            yield from _blocks_of(self._sheet_rows())
            return
        try:
            yield from self._text_blocks()
        except UnicodeDecodeError:
            raise self._encoding_error() from None

    def _text_blocks(self) -> Iterator[tuple[list[int], list[Any]]]:
        profile = self.profile
        encoding = "utf-8-sig" if profile.encoding.startswith("utf-8") else profile.encoding
        if encoding != "utf-8-sig":
            with self.path.open("rb") as stream:
                if stream.read(3) == _BOM:
                    raise self._fail("the file starts with a UTF-8 byte-order mark but the"
                                     f" profile's encoding is {profile.encoding}; set encoding"
                                     " = \"utf-8\"", 1)
        delimiter, quote = profile.delimiter, profile.quote
        with self.path.open(encoding=encoding, newline="") as stream:
            number = 0
            while text := stream.read(_BLOCK_CHARACTERS):
                if not text.endswith("\n"):
                    text += stream.readline()          # blocks end at a line end
                if not quote or quote not in text:
                    # Lines end all in CRLF (Windows exports) or all in LF: split on that
                    # end as it is; mixed ends are made LF first (two copies of the text).
                    returns = text.count("\r")
                    if returns and returns == text.count("\r\n"):
                        end = "\r\n"
                    else:
                        end = "\n"
                        if returns:
                            text = text.replace("\r\n", "\n").replace("\r", "\n")
                    body = text.removesuffix(end)
                    lines = body.split(end)
                    first, number = number + 1, number + len(lines)
                    self.lines_read = number
                    yield (list(range(first, number + 1)),
                           _split(body, lines, delimiter, end) if delimiter else lines)
                    continue
                # A quoted cell may hold the delimiter or even a line end: those lines go
                # through the csv module, which reads on (into the file) while a quote is open.
                numbers, rows = [], []
                pending = iter(io.StringIO(text, newline=""))
                for line in pending:
                    number += 1
                    numbers.append(number)
                    if quote not in line:
                        rows.append(line.rstrip("\r\n").split(delimiter))
                        continue
                    reader = csv.reader(chain((line,), pending, stream), delimiter=delimiter,
                                        quotechar=quote, strict=False)
                    rows.append(next(reader, []))
                    number += reader.line_num - 1
                self.lines_read = number
                yield numbers, rows

    def _sheet_rows(self) -> Iterator[tuple[int, Any]]:
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            book = load_workbook(self.path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError):
            raise self._fail("not an XLSX file (the profile's format is xlsx)") from None
        try:
            sheet = self.profile.sheet
            names = book.sheetnames
            if isinstance(sheet, int):
                if sheet > len(names):
                    raise self._fail(f"no sheet number {sheet}; the workbook has {len(names)}"
                                     f" sheet(s): {', '.join(names)}")
                name = names[sheet - 1]
            elif sheet not in names:
                raise self._fail(f"no sheet '{sheet}'; the workbook has: {', '.join(names)}")
            else:
                name = sheet
            for number, row in enumerate(book[name].iter_rows(values_only=True), 1):
                self.lines_read = number
                yield number, list(row)
        finally:
            book.close()

    def _encoding_error(self) -> StatementError:
        """The first line the profile's encoding cannot decode, found by reading the bytes
        again line by line (the fast path decodes in blocks and does not know the line)."""
        codec = self.profile.encoding
        label = _ENCODING_NAMES[codec]
        hint = "; check the profile's encoding"
        with self.path.open("rb") as stream:
            head = stream.read(4)
            if head.startswith(b"PK\x03\x04"):
                hint += " (this looks like an XLSX file: its profile needs format = \"xlsx\")"
            stream.seek(0)
            for number, raw in enumerate(stream, 1):
                if number == 1 and raw.startswith(_BOM) and codec.startswith("utf-8"):
                    raw = raw[3:]
                try:
                    raw.decode(codec)
                except UnicodeDecodeError as exc:
                    column = len(raw[:exc.start].decode(codec, errors="replace")) + 1
                    return self._fail(f"not valid {label} text (byte 0x{raw[exc.start]:02X}"
                                      f" at column {column}){hint}", number)
        return self._fail(f"not valid {label} text{hint}")

    # -- the lines -------------------------------------------------------------------------------

    def lines(self) -> Iterator[StatementLine | Unparseable]:
        """Every transaction line in file order, read or not; then ``summary`` is set."""
        for item in self.items():
            if isinstance(item, LineBlock):
                yield from item.lines()
            else:
                yield item

    def items(self) -> Iterator[StatementLine | Unparseable | LineBlock]:
        """The lines as ``lines()`` gives them, except that runs of lines that all converted
        come as a LineBlock (columns, no object per line): what the matcher takes.

        Not yielded: the skipped rows, the header, blank lines (inside the data when
        ``end`` is not "blank"), and everything after the data's end (footer, summary),
        except a line there that reads as a whole transaction, which is an Unparseable.
        """
        profile = self.profile
        self.summary, self.lines_read = None, 0
        cursor = _Cursor(self._blocks())
        for skipped in range(profile.skip_rows):
            if cursor.next() is None:
                raise self._fail(f"the file ends after {skipped} line(s), within the"
                                 f" {profile.skip_rows} skipped before the data (skip_rows)")
        header: list[str] = []
        if profile.header:
            while (found := cursor.next()) is not None and _blank(found[1]):
                pass
            if found is None:
                raise self._fail(f"no header line after the {profile.skip_rows} skipped"
                                 " line(s)")
            number, row = found
            header = [self._cells.clean(cell) for cell in row]
            parse = _LineParser(self, _locate(self, number, header), header)
        else:
            parse = _LineParser(self, dict(profile.columns), header)
        yield from self._data(cursor.rest(), parse)

    def _data(self, blocks: Iterator[tuple[list[int], list[Any]]],
              parse: _LineParser) -> Iterator[StatementLine | Unparseable]:
        """The data lines, in units (a batch of plain lines, or a block that holds the
        data's end). With ``share = (k, n)`` only every n-th unit from the k-th is converted
        and yielded, and UNIT_END follows every unit, so that n readers of the same file
        share the work and their parts can be put back in order."""
        profile = self.profile
        summary_of = self._summary_reader()
        end_at_blank = profile.end == "blank"
        footer: list[tuple[int, Any]] = []
        if profile.footer_rows:
            blocks = _blocks_of(_holding_back(_rows_of(blocks), profile.footer_rows, footer))
        plain = self._plain_test(parse, summary_of)
        mine, every = self.share or (0, 1)
        marked = self.share is not None
        unit = 0
        trailing = False
        for numbers, rows in blocks:
            if not trailing and plain(rows):
                for start in range(0, len(rows), _BATCH):
                    if unit % every == mine:
                        yield from parse.many(numbers[start:start + _BATCH],
                                              rows[start:start + _BATCH])
                    unit += 1
                    if marked:
                        yield UNIT_END
                continue
            # A block holding the data's end: every reader follows it (the state it leaves
            # decides what comes after), the unit's owner yields its lines.
            out: list[StatementLine | Unparseable | LineBlock] = []
            kept: list[int] = []
            batch: list[Any] = []
            for number, row in zip(numbers, rows):
                if trailing:
                    out.extend(self._trailing(number, row, parse, summary_of))
                    continue
                if _blank(row):
                    trailing = end_at_blank
                elif self._ends_data(row, parse, summary_of):
                    out.extend(parse.many(kept, batch))
                    kept, batch, trailing = [], [], True
                    out.extend(self._trailing(number, row, parse, summary_of))
                else:
                    kept.append(number)
                    batch.append(row)
                if trailing or len(batch) >= _BATCH:
                    out.extend(parse.many(kept, batch))
                    kept, batch = [], []
            out.extend(parse.many(kept, batch))
            if unit % every == mine:
                yield from out
            unit += 1
            if marked:
                yield UNIT_END
        out = []
        for number, row in footer:
            out.extend(self._trailing(number, row, parse, summary_of))
        if unit % every == mine:
            yield from out
        if marked:
            yield UNIT_END

    def _ends_data(self, row: Any, parse: _LineParser,
                   summary_of: Callable[[Any], dict[str, Any] | None] | None) -> bool:
        """The row is the end marker or a summary line (data never follows either)."""
        marker = self.profile.end_marker
        return bool((marker is not None and marker.search(parse.first_cell(row)))
                    or (summary_of is not None and summary_of(row) is not None))

    def _plain_test(self, parse: _LineParser,
                    summary_of: Callable[[Any], dict[str, Any] | None] | None,
                    ) -> Callable[[list[Any]], bool]:
        """A test that a block holds only data rows (no blank, end marker or summary line),
        done for the block at once: such a block is converted without looking at each row."""
        spec = self.profile.summary
        marker = self.profile.end_marker
        if parse.pad:
            return lambda rows: False
        if parse.fixed:
            row_marker = spec.marker if spec is not None and spec.style == "row" else None
            label = spec.label if spec is not None and spec.style == "labels" else None

            def plain_lines(rows: list[str]) -> bool:
                stripped = [row.rstrip() for row in rows]
                if "" in stripped:
                    return False
                for pattern in (marker, row_marker):
                    if pattern is not None and any(map(pattern.search, stripped)):
                        return False
                if spec is not None and isinstance(label, tuple):
                    found = {row[label[0] - 1:label[1]].strip().rstrip(":：").strip()
                             for row in rows}
                    return found.isdisjoint(spec.labels)
                return True
            return plain_lines
        # Whether a row ends the data depends only on its first cell (and the summary's
        # label cell): remembered per value, as a statement repeats its merchant id.
        label_at = spec.label - 1 if (spec is not None and spec.style == "labels"
                                      and isinstance(spec.label, int)) else 0
        known: dict[Any, bool] = {}

        def plain_cells(rows: list[list[str]] | _FlatRows) -> bool:
            keys: set[Any]
            if isinstance(rows, _FlatRows):
                if rows.width <= label_at:
                    return False
                keys = (set(rows.column(0)) if not label_at
                        else set(zip(rows.column(0), rows.column(label_at))))
            else:
                if min(map(len, rows)) <= label_at:
                    return False
                keys = ({row[0] for row in rows} if not label_at
                        else {(row[0], row[label_at]) for row in rows})
            for key in keys:
                stop = known.get(key)
                if stop is None:
                    head = key[0] if label_at else key
                    if not isinstance(head, str) or not head.strip():
                        return False
                    row = [head, *[""] * (label_at - 1), key[1]] if label_at else [head]
                    if len(known) > 10_000:
                        known.clear()
                    stop = known[key] = self._ends_data(row, parse, summary_of)
                if stop:
                    return False
            return True
        return plain_cells

    def _trailing(self, number: int, row: Any, parse: _LineParser,
                  summary_of: Callable[[Any], dict[str, Any] | None] | None,
                  ) -> Iterator[Unparseable]:
        """A row after the data: a summary line, or a whole transaction the profile's end
        left out (reported), or anything else (a footer: not read)."""
        if _blank(row):
            return
        figures = summary_of(row) if summary_of is not None else None
        if figures is not None:
            yield from self._take_summary(number, figures)
            return
        line = parse(number, row)
        if isinstance(line, StatementLine):
            yield Unparseable(number, None, "a transaction line after the end of the data"
                              " (check the profile's end, footer_rows and summary)",
                              parse.line_text(row))

    def _summary_reader(self) -> Callable[[Any], dict[str, Any] | None] | None:
        """A function giving the summary figures' raw cells a row holds, or None for a row
        that is not a summary line."""
        spec = self.profile.summary
        if spec is None:
            return None
        fetch = _fetcher(self.profile)
        clean = self._cells.clean
        if spec.style == "row":
            marker = spec.marker
            assert marker is not None
            columns = {figure: _zero_based(ref) for figure, ref in spec.columns.items()}

            def row_figures(row: Any) -> dict[str, Any] | None:
                if not marker.search(_first_cell(row, clean)):
                    return None
                return {figure: fetch(row, ref) for figure, ref in columns.items()}
            return row_figures
        assert spec.label is not None and spec.value is not None
        label, value, labels = _zero_based(spec.label), _zero_based(spec.value), spec.labels

        def label_figures(row: Any) -> dict[str, Any] | None:
            text = clean(fetch(row, label)).rstrip(":：").strip()
            figure = labels.get(text)
            return None if figure is None else {figure: fetch(row, value)}
        return label_figures

    def _take_summary(self, number: int, figures: dict[str, Any]) -> Iterator[Unparseable]:
        summary = self.summary or SummaryFigures(number)
        self.summary = summary
        for figure, raw in figures.items():
            text = self._cells.clean(raw)
            try:
                if figure == "count":
                    digits = text.replace(",", "").removesuffix("笔").strip()
                    if not digits.isdigit():
                        raise _Bad(f"summary count '{text}' is not a whole number")
                    summary.count = int(digits)
                else:
                    setattr(summary, figure, self._cells.money(figure, text, required=False))
            except _Bad as bad:
                yield Unparseable(number, f"summary {figure}", str(bad), redact(text))


# -- one data line ---------------------------------------------------------------------------

_BLOCK_CHARACTERS = 1 << 18      # text read at a time (about 1,700 statement lines)
_BATCH = 1024                   # rows converted together, column by column
_CACHE_LIMIT = 200_000
_TEXT_FIELDS = ("terminal_id", "merchant_id", "rrn", "auth_code")
_INT_FIELDS = ("stan", "batch")
_MONEY_FIELDS = ("amount", "fee", "net")
#: Profile fields whose cell gives two of the line's fields.
_PAIRS = {"card": ("card_masked", "card_last4"), "datetime": ("date", "time")}


class _LineParser:
    """Turns one row into a StatementLine, or an Unparseable saying which cell and why."""

    def __init__(self, reader: StatementReader, columns: dict[str, Column],
                 header: list[str]):
        profile = reader.profile
        self.cells = reader._cells
        self.fetch = _fetcher(profile)
        self.fixed = profile.format == "fixed"
        self.bytes = profile.positions == "bytes"
        self.pad = profile.format == "xlsx"
        self.header_width = len(header)
        self.locations = {name: _zero_based(ref) for name, ref in columns.items()}
        self.labels = {name: _column_label(ref, header) for name, ref in columns.items()}
        if self.fixed:
            self.need = max(ref[0] for ref in self.locations.values()) + 1
        else:
            self.need = max(ref for ref in self.locations.values()) + 1
        self.card_location = self.locations.get("card")
        order = ("terminal_id", "merchant_id", "datetime", "date", "time", "stan", "batch",
                 "rrn", "auth_code", "card", "type", "status", "amount", "fee", "net",
                 "settlement_date")
        self.plan = [(name, self.locations[name]) for name in order if name in self.locations]
        # Columns of text (not spreadsheet cells, not byte positions) convert in batches.
        self.columnar = not self.pad and not self.bytes
        cells = self.cells
        self.converters: dict[str, Callable[[Any], Any]] = {
            "date": lambda raw: cells.date("date", raw),
            "settlement_date": lambda raw: cells.date("settlement_date", raw),
            "time": cells.time, "datetime": cells.datetime, "card": cells.card,
            "type": lambda raw: cells.lookup("type", "types", raw, cells.types),
            "status": lambda raw: cells.lookup("status", "statuses", raw, cells.statuses)}
        self.caches: dict[str, Any] = {name: ({}, {}) if name in _PAIRS else {}
                                       for name in self.converters}

    def first_cell(self, row: Any) -> str:
        return _first_cell(row, self.cells.clean)

    def line_text(self, row: Any) -> str:
        """The row as one line of text for a report, with the card cell masked."""
        if self.fixed:
            text = row
            if self.card_location is not None and not self.bytes:
                start, end = self.card_location
                text = text[:start] + _masked_text(text[start:end]) + text[end:]
            return redact(text.rstrip())
        cells = [self.cells.clean(cell) for cell in row]
        if self.card_location is not None and self.card_location < len(cells):
            cells[self.card_location] = _masked_text(cells[self.card_location])
        return redact(",".join(cells).rstrip(","))

    def _length(self, row: Any) -> int:
        if self.fixed and self.bytes:
            return len(row.encode(self.cells.encoding))
        return len(row)

    def __call__(self, number: int, row: Any) -> StatementLine | Unparseable:
        length = self._length(row)
        if length < self.need:
            if self.pad:
                row = row + [None] * (self.need - length)
            else:
                return Unparseable(number, None, self._short(length), self.line_text(row))
        if (self.header_width and length > self.header_width
                and any(self.cells.clean(cell) for cell in row[self.header_width:])):
            return Unparseable(number, None, f"{length} columns where the header has"
                               f" {self.header_width}", self.line_text(row))
        cells, fetch = self.cells, self.fetch
        values: dict[str, Any] = {}
        name = ""
        try:
            for name, location in self.plan:
                raw = fetch(row, location)
                if name in _TEXT_FIELDS:
                    values[name] = cells.clean(raw) or None
                elif name in _MONEY_FIELDS:
                    values[name] = cells.money(name, cells.clean(raw), required=name == "amount")
                elif name in _INT_FIELDS:
                    values[name] = cells.number(name, raw)
                elif name == "date" or name == "settlement_date":
                    values[name] = cells.date(name, raw)
                elif name == "time":
                    values[name] = cells.time(raw)
                elif name == "datetime":
                    values["date"], values["time"] = cells.datetime(raw)
                elif name == "card":
                    values["card_masked"], values["card_last4"] = cells.card(raw)
                elif name == "type":
                    values["txn_type"] = cells.lookup("type", "types", raw, cells.types)
                else:
                    values["status"] = cells.lookup("status", "statuses", raw, cells.statuses)
        except _Bad as bad:
            try:
                text = cells.clean(fetch(row, self.locations[name]))
            except _Bad:
                text = ""
            shown = _masked_text(text) if name == "card" else redact(text)
            return Unparseable(number, self.labels[name], str(bad), shown)
        if values.get("txn_type") == "refund":
            for key in _MONEY_FIELDS:
                if values.get(key) is not None:
                    values[key] = -abs(values[key])
        return StatementLine(number, **values)

    def many(self, numbers: list[int], rows: list[Any],
             ) -> list[StatementLine | Unparseable | LineBlock]:
        """The rows as lines, converted column by column (the fast path for big files);
        a row with any cell that does not convert is read again on its own by __call__,
        which says what is wrong with it."""
        if not len(rows):
            return []
        lengths = [rows.width] if isinstance(rows, _FlatRows) else list(map(len, rows))
        if (not self.columnar or min(lengths) < self.need
                or (self.header_width and max(lengths) > self.header_width)):
            return [self(number, row) for number, row in zip(numbers, rows)]
        if isinstance(rows, _FlatRows):
            columns = {name: rows.column(index) for name, index in self.plan}
        elif self.fixed:
            columns = {name: [row[a:b] for row in rows] for name, (a, b) in self.plan}
        elif min(lengths) == max(lengths):
            flat = list(chain.from_iterable(rows))
            width = lengths[0]
            columns = {name: flat[index::width] for name, index in self.plan}
        else:
            transposed = list(zip(*rows))
            columns = {name: transposed[index] for name, index in self.plan}
        bad: set[int] = set()
        values: dict[str, list[Any]] = {}
        cells = self.cells
        for name, column in columns.items():
            if name in _TEXT_FIELDS:
                values[name] = _texts(column, cells.clean)
            elif name in _MONEY_FIELDS:
                values[name] = self._money_column(name, column, bad)
            elif name in _INT_FIELDS:
                values[name] = self._int_column(name, column, bad)
            else:
                pair = _PAIRS.get(name)
                if pair is not None:
                    firsts, seconds = self.caches[name]
                    values[pair[0]], values[pair[1]] = _cached_pair(
                        column, firsts, seconds, self.converters[name], bad)
                else:
                    values[_LINE_FIELD.get(name, name)] = _cached(
                        column, self.caches[name], self.converters[name], bad)
        types = values.get("txn_type")
        if types is not None and "refund" in types:
            # the refunds' rows found by C loops (a Python loop over every row costs 0.6 s
            # a million lines)
            refunds = list(compress(count(), map(eq, types, repeat("refund"))))
            for key in _MONEY_FIELDS:
                money = values.get(key)
                if money is not None:
                    for index in refunds:
                        if money[index] is not None:
                            money[index] = -abs(money[index])
        nothing = [None] * len(rows)
        if not bad:
            return [LineBlock(list(numbers), {name: values.get(name, nothing)
                                              for name in _LINE_ORDER})]
        lines: list[StatementLine | Unparseable] = list(map(
            StatementLine, numbers, *(values.get(name, nothing) for name in _LINE_ORDER)))
        for index in bad:
            lines[index] = self(numbers[index], rows[index])
        return lines

    def _money_column(self, name: str, column: Any, bad: set[int]) -> list[int | None]:
        if self.cells.unit == "yuan":
            fen = _plain_yuan(column)
            if fen is not None:
                return fen
        required = name == "amount"
        return _each(column, lambda raw: self.cells.money(name, self.cells.clean(raw),
                                                          required=required), bad)

    def _int_column(self, name: str, column: Any, bad: set[int]) -> list[int | None]:
        joined = "".join(column)
        if joined.isascii() and joined.isdecimal() and "" not in column:
            return list(map(int, column))
        return _each(column, lambda raw: self.cells.number(name, raw), bad)

    def _short(self, length: int) -> str:
        if self.fixed:
            unit = "bytes" if self.bytes else "characters"
            name, (start, end) = next((n, loc) for n, loc in self.plan if loc[0] >= length)
            return (f"the line is {length} {unit} long and ends before {name} at"
                    f" {start + 1}-{end} (a truncated line?)")
        return (f"{length} column(s) where {self.need} are needed"
                + (f" (the header has {self.header_width})" if self.header_width else "")
                + "; a truncated line?")


class _Cells:
    """Cell cleaning and conversion for one profile, with caches for repeated values."""

    def __init__(self, profile: Profile):
        self.encoding = profile.encoding
        self.unit = profile.amount_unit
        self.types = profile.types
        self.statuses = profile.statuses
        self.date_formats = profile.date_formats
        self.time_formats = profile.time_formats
        self.datetime_formats = profile.datetime_formats
        self._money = lru_cache(maxsize=65536)(self._parse_money)
        self._date = lru_cache(maxsize=4096)(self._parse_date)
        self._time = lru_cache(maxsize=100_000)(self._parse_time)
        self._datetime = lru_cache(maxsize=100_000)(self._parse_datetime)
        self._card = lru_cache(maxsize=65536)(_card)

    @staticmethod
    def clean(value: Any) -> str:
        """A cell as text: spaces stripped; ="…" (Excel formula text) and a leading ` or '
        (kept-leading-zeros exports) read as the text inside."""
        if value is None:
            return ""
        if not isinstance(value, str):
            return _cell_text(value)
        text = value.strip()
        if text and text[0] in "=`'":
            if text.startswith('="') and text.endswith('"') and len(text) >= 3:
                text = text[2:-1].strip()
            elif text[0] in "`'":
                text = text[1:].strip()
        return text

    def money(self, name: str, text: str, *, required: bool) -> int | None:
        if not text:
            if required:
                raise _Bad(f"{name} is empty")
            return None
        try:
            return self._money(text)
        except _Bad as bad:
            raise _Bad(f"{name} {bad}") from None

    def _parse_money(self, text: str) -> int:
        if self.unit == "yuan" and _PLAIN_YUAN.fullmatch(text):
            return int(text.replace(".", ""))
        negative = text.startswith("(") and text.endswith(")")
        body = text[1:-1].strip() if negative else text
        match = _MONEY.fullmatch(body)
        if match is None:
            raise _Bad(f"'{text}' is not a number of {self.unit}")
        signs = [s for s in (match["sign"], match["sign2"], match["sign3"]) if s]
        if len(signs) > 1 or (negative and signs):
            raise _Bad(f"'{text}' has more than one sign")
        negative = negative or signs == ["-"]
        number = Decimal(match["int"].replace(",", "") + (match["frac"] or "").rstrip("."))
        scaled = number * 100 if self.unit == "yuan" else number
        if scaled != scaled.to_integral_value():
            raise _Bad(f"'{text}' has more than 2 decimals" if self.unit == "yuan"
                       else f"'{text}' is not a whole number of fen")
        return -int(scaled) if negative else int(scaled)

    def number(self, name: str, raw: Any) -> int | None:
        text = self.clean(raw)
        if not text:
            return None
        if not text.isdigit():
            raise _Bad(f"{name} '{text}' is not a number")
        return int(text)

    def date(self, name: str, raw: Any) -> str | None:
        if isinstance(raw, datetime):
            return raw.date().isoformat()
        if isinstance(raw, date):
            return raw.isoformat()
        text = self.clean(raw)
        if not text:
            return None
        try:
            return self._date(text)
        except _Bad as bad:
            raise _Bad(f"{name} {bad}") from None

    def _parse_date(self, text: str) -> str:
        for pattern in self.date_formats:
            fast = _FAST_DATES.get(pattern)
            if fast is not None and (match := fast.fullmatch(text)):
                try:
                    return date(*map(int, match.groups())).isoformat()
                except ValueError:
                    continue
            try:
                return datetime.strptime(text, pattern).date().isoformat()
            except ValueError:
                continue
        raise _Bad(f"'{text}' is not a date written as {' or '.join(self.date_formats)}")

    def time(self, raw: Any) -> str | None:
        if isinstance(raw, (datetime, time)):
            return raw.strftime("%H:%M:%S")
        text = self.clean(raw)
        return self._time(text) if text else None

    def _parse_time(self, text: str) -> str:
        for pattern in self.time_formats:
            fast = _FAST_TIMES.get(pattern)
            if fast is not None and (match := fast.fullmatch(text)):
                hour, minute, second = match.groups()
                if hour < "24" and minute < "60" and second < "60":
                    return f"{hour}:{minute}:{second}"
                continue
            try:
                return datetime.strptime(text, pattern).strftime("%H:%M:%S")
            except ValueError:
                continue
        raise _Bad(f"time '{text}' is not a time written as {' or '.join(self.time_formats)}")

    def datetime(self, raw: Any) -> tuple[str | None, str | None]:
        if isinstance(raw, datetime):
            return raw.date().isoformat(), raw.strftime("%H:%M:%S")
        text = self.clean(raw)
        return self._datetime(text) if text else (None, None)

    def _parse_datetime(self, text: str) -> tuple[str, str]:
        for pattern in self.datetime_formats:
            try:
                moment = datetime.strptime(text, pattern)
            except ValueError:
                continue
            return moment.date().isoformat(), moment.strftime("%H:%M:%S")
        raise _Bad(f"datetime '{text}' is not a date and time written as"
                   f" {' or '.join(self.datetime_formats)}")

    def card(self, raw: Any) -> tuple[str | None, str | None]:
        text = self.clean(raw)
        return self._card(text) if text else (None, None)

    def lookup(self, name: str, section: str, raw: Any, table: dict[str, str]) -> str:
        text = self.clean(raw)
        found = table.get(text)
        if found is None:
            known = ", ".join(repr(key) for key in table)
            raise _Bad(f"{name} '{text}' is not in the profile's [{section}] (it has: {known})")
        return found


#: StatementLine's fields after line_no, in order; and profile fields named otherwise there.
_LINE_ORDER = LINE_FIELDS
_LINE_FIELD = {"type": "txn_type"}


def _texts(column: Any, clean: Callable[[Any], str]) -> list[str | None]:
    """Text cells stripped (cleaned in full only where a column has a ="…", ` or ' in it)."""
    joined = "".join(column)
    if "=" in joined or "'" in joined or "`" in joined:
        return [clean(cell) or None for cell in column]
    if "" not in column and joined.isalnum():
        return list(column)
    return [cell.strip() or None for cell in column]


def _plain_yuan(column: Any) -> list[int] | None:
    """The column in fen if every cell is plain yuan with 2 decimals ("12.34", "-0.15"),
    else None; checked and converted by C loops over the whole column (a regex per cell
    costs seconds over a million lines)."""
    try:
        if set(map(_THIRD_LAST, column)) != {"."}:
            return None
    except IndexError:                           # a cell shorter than "1.00" or empty
        return None
    fen = "\n".join(column)
    if fen.count(".") != len(column):
        return None
    fen = fen.replace(".", "")
    digits = fen.replace("\n-", "\n").removeprefix("-").replace("\n", "")
    if not (digits.isascii() and digits.isdigit()):
        return None
    return list(map(int, fen.split("\n")))


def _cached(column: Any, cache: dict[Any, Any], convert: Callable[[Any], Any],
            bad: set[int]) -> list[Any]:
    """``convert`` over a column, each distinct cell converted once; the rows whose cell
    does not convert go into ``bad``."""
    if len(cache) > _CACHE_LIMIT:
        cache.clear()
    failed = set()
    for text in set(column).difference(cache):
        try:
            cache[text] = convert(text)
        except _Bad:
            failed.add(text)
    if failed:
        bad.update(index for index, text in enumerate(column) if text in failed)
        return [cache.get(text) for text in column]
    return list(map(cache.__getitem__, column))


def _cached_pair(column: Any, firsts: dict[Any, Any], seconds: dict[Any, Any],
                 convert: Callable[[Any], tuple[Any, Any]], bad: set[int],
                 ) -> tuple[list[Any], list[Any]]:
    """As :func:`_cached` for a converter giving a pair (a card's masked number and last
    four), as two columns: each part has its cache, so a column is one C loop."""
    if len(firsts) > _CACHE_LIMIT:
        firsts.clear()
        seconds.clear()
    failed = set()
    for text in set(column).difference(firsts):
        try:
            firsts[text], seconds[text] = convert(text)
        except _Bad:
            failed.add(text)
    if failed:
        bad.update(index for index, text in enumerate(column) if text in failed)
        return [firsts.get(text) for text in column], [seconds.get(text) for text in column]
    return list(map(firsts.__getitem__, column)), list(map(seconds.__getitem__, column))


def _each(column: Any, convert: Callable[[Any], Any], bad: set[int]) -> list[Any]:
    out = []
    for index, cell in enumerate(column):
        try:
            out.append(convert(cell))
        except _Bad:
            bad.add(index)
            out.append(None)
    return out


def _card(text: str) -> tuple[str | None, str | None]:
    """(masked, last four) of whatever a statement prints for the card: a full number is
    masked to first 6 / last 4; a masked one is normalised to '*' between them."""
    compact = text.translate(_CARD_SEPARATORS)
    if not _CARD.fullmatch(compact):
        raise _Bad(f"card '{_masked_text(text)}' is not a card number")
    if compact.isdigit():
        if len(compact) <= 4:
            return None, compact if len(compact) == 4 else None
        return mask_pan(compact), compact[-4:]
    head = len(compact) - len(compact.lstrip("0123456789"))
    tail = len(compact) - len(compact.rstrip("0123456789"))
    head, tail = min(head, 6), min(tail, 4)
    last4 = compact[-4:] if tail == 4 else None
    masked = compact[:head] + "*" * (len(compact) - head - tail) + compact[len(compact) - tail:]
    return masked, last4


def _masked_text(text: str) -> str:
    """Any text from a card cell, safe to show: only its last four digits are left."""
    digits = [i for i, ch in enumerate(text) if ch.isdigit()]
    hide = set(digits[:-4]) if len(digits) > 4 else set()
    keep_head = set(digits[:6]) if len(digits) >= 13 else set()
    return "".join("*" if i in hide and i not in keep_head else ch for i, ch in enumerate(text))


# -- helpers on rows -------------------------------------------------------------------------

def _fetcher(profile: Profile) -> Callable[[Any, Any], Any]:
    """fetch(row, location): the raw cell at a 0-based column or a (start, end) slice."""
    if profile.format != "fixed":
        def cell(row: list[Any], index: int) -> Any:
            return row[index] if index < len(row) else None
        return cell
    if profile.positions == "bytes":
        encoding = profile.encoding

        def byte_slice(row: str, where: tuple[int, int]) -> str:
            try:
                return row.encode(encoding)[where[0]:where[1]].decode(encoding)
            except UnicodeDecodeError:
                raise _Bad(f"positions {where[0] + 1}-{where[1]} cut a character in"
                           " two; check the profile's positions") from None
        return byte_slice

    def text_slice(row: str, where: tuple[int, int]) -> str:
        return row[where[0]:where[1]]
    return text_slice


def _split(body: str, lines: list[str], delimiter: str, end: str) -> list[list[str]] | _FlatRows:
    """The lines (``body`` joined by ``end``) split into cells. Lines with equally many
    cells (a block of data, the usual case) are split all at once into one flat list,
    without a list per line."""
    counts = set(map(str.count, lines, repeat(delimiter)))
    if len(counts) != 1:
        return [line.split(delimiter) for line in lines]
    return _FlatRows(body.replace(end, delimiter).split(delimiter), counts.pop() + 1)


class _FlatRows:
    """Rows of equal width kept as one flat list of cells; a row is made only when asked
    for (the converter takes whole columns as slices of the flat list)."""

    __slots__ = ("flat", "width")

    def __init__(self, flat: list[str], width: int):
        self.flat = flat
        self.width = width

    def __len__(self) -> int:
        return len(self.flat) // self.width

    def __getitem__(self, index: Any) -> Any:
        width = self.width
        if isinstance(index, slice):
            start, stop, _ = index.indices(len(self))
            return _FlatRows(self.flat[start * width:stop * width], width)
        if index < 0:
            index += len(self)
        return self.flat[index * width:(index + 1) * width]

    def __iter__(self) -> Iterator[list[str]]:
        flat, width = self.flat, self.width
        for start in range(0, len(flat), width):
            yield flat[start:start + width]

    def column(self, index: int) -> list[str]:
        return self.flat[index::self.width]


class _Cursor:
    """Rows one at a time from blocks (for the lines before the data), then the rest of
    the blocks."""

    def __init__(self, blocks: Iterator[tuple[list[int], list[Any]]]):
        self.blocks = blocks
        self.numbers: list[int] = []
        self.rows: list[Any] = []
        self.at = 0

    def next(self) -> tuple[int, Any] | None:
        while self.at >= len(self.rows):
            block = next(self.blocks, None)
            if block is None:
                return None
            (self.numbers, self.rows), self.at = block, 0
        self.at += 1
        return self.numbers[self.at - 1], self.rows[self.at - 1]

    def rest(self) -> Iterator[tuple[list[int], list[Any]]]:
        if self.at < len(self.rows):
            yield self.numbers[self.at:], self.rows[self.at:]
        yield from self.blocks


def _blocks_of(rows: Iterator[tuple[int, Any]]) -> Iterator[tuple[list[int], list[Any]]]:
    numbers: list[int] = []
    block: list[Any] = []
    for number, row in rows:
        numbers.append(number)
        block.append(row)
        if len(block) >= _BATCH:
            yield numbers, block
            numbers, block = [], []
    if block:
        yield numbers, block


def _rows_of(blocks: Iterator[tuple[list[int], list[Any]]]) -> Iterator[tuple[int, Any]]:
    for numbers, rows in blocks:
        yield from zip(numbers, rows)


def _holding_back(rows: Iterator[tuple[int, Any]], count: int,
                  held: list[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """The rows but the last ``count`` non-blank ones (and blank rows among them), which are
    put in ``held`` once ``rows`` is exhausted: the footer."""
    buffer: deque[tuple[int, Any]] = deque()
    filled = 0
    for number, row in rows:
        buffer.append((number, row))
        if not _blank(row):
            filled += 1
        while filled > count:
            number, row = buffer.popleft()
            if not _blank(row):
                filled -= 1
            yield number, row
    held.extend(buffer)


def _zero_based(ref: Any) -> Any:
    return (ref[0] - 1, ref[1]) if isinstance(ref, tuple) else ref - 1


def _column_label(ref: Column, header: list[str]) -> str:
    if isinstance(ref, tuple):
        return f"positions {ref[0]}-{ref[1]}"
    if isinstance(ref, str):
        return ref
    if header and ref <= len(header) and header[ref - 1]:
        return header[ref - 1]
    return f"column {ref}"


def _locate(reader: StatementReader, number: int, header: list[str]) -> dict[str, Column]:
    """The profile's columns as 1-based numbers in this header; StatementError if one is
    missing."""
    located: dict[str, Column] = {}
    for name, ref in reader.profile.columns.items():
        if isinstance(ref, str):
            if ref not in header:
                shown = ", ".join(f"'{h}'" for h in header if h)
                raise reader._fail(f"no column '{ref}' ({name}) in the header; the header has:"
                                   f" {shown}", number)
            located[name] = header.index(ref) + 1
        else:
            if isinstance(ref, int) and ref > len(header):
                raise reader._fail(f"column {ref} ({name}) is beyond the header's"
                                   f" {len(header)} columns", number)
            located[name] = ref
    return located


def _blank(row: Any) -> bool:
    if isinstance(row, str):
        return not row.strip()
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in row)


def _first_cell(row: Any, clean: Callable[[Any], str]) -> str:
    """The first non-empty cell of a row (a fixed-width line: the line without its trailing
    spaces), which markers are matched against."""
    if isinstance(row, str):
        return row.rstrip()
    for cell in row:
        text = clean(cell)
        if text:
            return text
    return ""


def _cell_text(value: Any) -> str:
    """A spreadsheet cell that is not text, as text: whole floats without '.0', other floats
    through their shortest decimal form (never float arithmetic on money)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        try:
            return format(Decimal(repr(value)), "f")
        except InvalidOperation:
            return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)
