"""Statement profiles: the layout of one acquirer's statement file, described in TOML.

A profile says how to read a bank's file (format, encoding, where the header and the data
are, which column holds which field, how amounts, dates, types and statuses are written,
where the statement's own totals are), so that a new bank's file needs a new profile and no
code. ``load_profile`` reads and checks one; every bad value is refused with one line that
names the file, the section and the key (docs/reconcile.md is the reference).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from app.errors import InputError
from app.recon.model import STATUSES, TYPES

FORMATS = ("csv", "delimited", "fixed", "xlsx")
ENCODINGS = ("utf-8", "utf-8-sig", "gbk", "gb18030")
#: Fields a [columns] table may map, in StatementLine order of interest.
FIELDS = ("terminal_id", "merchant_id", "date", "time", "datetime", "stan", "batch", "rrn",
          "auth_code", "card", "type", "status", "amount", "fee", "net", "settlement_date")
SUMMARY_FIGURES = ("count", "amount", "fee", "net")
UNITS = ("yuan", "fen")
POSITIONS = ("characters", "bytes")
DELIMITER_NAMES = {"tab": "\t", "comma": ",", "pipe": "|", "semicolon": ";"}
#: The bundled profile picked for a statement file by its suffix when none is named.
BY_SUFFIX = {".csv": "posterm-host-csv", ".txt": "posterm-host-txt",
             ".xlsx": "posterm-host-xlsx"}

DEFAULT_DATES = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d")
DEFAULT_TIMES = ("%H:%M:%S", "%H%M%S")
DEFAULT_DATETIMES = ("%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S", "%Y/%m/%d %H:%M:%S",
                     "%Y-%m-%dT%H:%M:%S")

_TOP_KEYS = ("name", "description", "format", "encoding", "delimiter", "quote", "sheet",
             "positions", "skip_rows", "header", "end", "footer_rows", "columns", "amounts",
             "dates", "types", "statuses", "summary")
_SAMPLE = datetime(2026, 11, 20, 14, 30, 5)

#: A column: a header name, a 1-based column number, or 1-based inclusive positions (fixed).
Column = str | int | tuple[int, int]


class ProfileError(InputError):
    """A profile that cannot be used: one line naming the file, the section and the key."""


@dataclass(frozen=True)
class SummarySpec:
    """Where the statement's own totals are: a marked row, or label/value lines."""

    style: str                                  # "row" | "labels"
    marker: re.Pattern[str] | None = None       # row: the first cell (fixed: the line) matches
    columns: dict[str, Column] = field(default_factory=dict)  # row: figure -> column
    label: Column | None = None                 # labels: the cell holding the label
    value: Column | None = None                 # labels: the cell holding the value
    labels: dict[str, str] = field(default_factory=dict)      # labels: label text -> figure


@dataclass(frozen=True)
class Profile:
    """One statement layout, checked: everything the reader needs, with defaults filled in."""

    name: str
    description: str
    source: str                   # the file it came from, for messages
    format: str                   # csv | delimited | fixed | xlsx
    encoding: str
    delimiter: str
    quote: str                    # "" means no quoting
    sheet: str | int
    positions: str                # fixed: characters | bytes
    skip_rows: int
    header: bool
    end: str                      # eof | blank | marker
    end_marker: re.Pattern[str] | None
    footer_rows: int
    columns: dict[str, Column]
    amount_unit: str              # yuan | fen
    date_formats: tuple[str, ...]
    time_formats: tuple[str, ...]
    datetime_formats: tuple[str, ...]
    types: dict[str, str]
    statuses: dict[str, str]
    summary: SummarySpec | None


def bundled_profiles() -> list[str]:
    """Names of the profiles shipped with posterm (app/recon/profiles/*.toml), sorted."""
    folder = resources.files("app.recon") / "profiles"
    return sorted(item.name[:-5] for item in folder.iterdir() if item.name.endswith(".toml"))


def load_profile(name_or_path: str | None, statement: Path) -> Profile:
    """The profile named (a bundled name or a path to a .toml file), checked.

    None picks the bundled posterm-host profile for the statement's suffix (.csv, .txt,
    .xlsx). Raises ProfileError (one line) for an unknown name, an unreadable file, bad
    TOML or any bad value.
    """
    if name_or_path is None:
        suffix = statement.suffix.lower()
        if suffix not in BY_SUFFIX:
            raise ProfileError(
                f"{statement.name}: no bundled profile reads '{suffix or 'no suffix'}' files;"
                f" name one with --profile (bundled: {', '.join(bundled_profiles())})"
                " or give a profile file")
        name_or_path = BY_SUFFIX[suffix]
    looks_like_path = (name_or_path.endswith(".toml") or "/" in name_or_path
                       or "\\" in name_or_path)
    if looks_like_path:
        path = Path(name_or_path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProfileError(f"{path}: no such profile file") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ProfileError(f"{path}: cannot read the profile: {reason}") from None
        return parse_profile(text, str(path), default_name=path.stem)
    bundled = bundled_profiles()
    if name_or_path not in bundled:
        raise ProfileError(f"no bundled profile '{name_or_path}'; bundled: {', '.join(bundled)}"
                           " (or give the path of a .toml profile file)")
    resource = resources.files("app.recon") / "profiles" / f"{name_or_path}.toml"
    return parse_profile(resource.read_text(encoding="utf-8"),
                         f"app/recon/profiles/{name_or_path}.toml", default_name=name_or_path)


def parse_profile(text: str, source: str, *, default_name: str = "profile") -> Profile:
    """A profile from its TOML text; ``source`` names it in every error."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from None
    return _Checker(source).profile(data, default_name)


class _Checker:
    """Checks one profile's values, raising ProfileError for the first bad one."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, section: str, key: str, what: str) -> ProfileError:
        where = f"[{section}] {key}" if section else key
        return ProfileError(f"{self.source}: {where}: {what}")

    def known_keys(self, section: str, table: dict[str, Any], allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(section, key, f"unknown key; allowed: {', '.join(allowed)}")

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail("", key, f"must be a table ([{key}]), not {_shown(value)}")
        return value

    def choice(self, section: str, key: str, value: Any, allowed: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise self.fail(section, key, f"{_shown(value)} is not allowed; allowed: "
                            + ", ".join(allowed))
        return value

    def count(self, section: str, key: str, value: Any) -> int:
        if type(value) is not int or value < 0:
            raise self.fail(section, key, f"{_shown(value)} is not a count; allowed: a whole"
                            " number 0 or more")
        return value

    def text(self, section: str, key: str, value: Any, *, empty: bool = True) -> str:
        if not isinstance(value, str) or (not empty and not value):
            raise self.fail(section, key, f"{_shown(value)} is not allowed; allowed: "
                            + ("text" if empty else "non-empty text"))
        return value

    def regex(self, section: str, key: str, value: Any) -> re.Pattern[str]:
        pattern = self.text(section, key, value, empty=False)
        try:
            return re.compile(pattern)
        except re.error as exc:
            raise self.fail(section, key, f"'{pattern}' is not a regular expression ({exc});"
                            " allowed: a Python regex such as \"^合计\"") from None

    # -- the profile -------------------------------------------------------------------------

    def profile(self, data: dict[str, Any], default_name: str) -> Profile:
        self.known_keys("", data, _TOP_KEYS)
        if "format" not in data:
            raise self.fail("", "format", "missing; allowed: " + ", ".join(FORMATS))
        fmt = self.choice("", "format", data["format"], FORMATS)
        name = self.text("", "name", data.get("name", default_name), empty=False)
        description = self.text("", "description", data.get("description", ""))
        encoding = self.choice("", "encoding", data.get("encoding", "utf-8"), ENCODINGS)
        delimiter, quote = self.delimiting(fmt, data)
        sheet = self.sheet(fmt, data)
        positions = "characters"
        if "positions" in data:
            if fmt != "fixed":
                raise self.fail("", "positions", "only for format = \"fixed\"")
            positions = self.choice("", "positions", data["positions"], POSITIONS)
        skip_rows = self.count("", "skip_rows", data.get("skip_rows", 0))
        header = data.get("header", fmt != "fixed")
        if not isinstance(header, bool):
            raise self.fail("", "header", f"{_shown(header)} is not allowed; allowed: true,"
                            " false")
        if header and fmt == "fixed":
            raise self.fail("", "header", "a fixed-width file takes its columns from"
                            " positions; allowed: false (count heading lines in skip_rows)")
        end, end_marker = self.end(data.get("end", "eof"))
        footer_rows = self.count("", "footer_rows", data.get("footer_rows", 0))
        columns = self.columns(fmt, header, self.table(data, "columns"))
        amounts = self.table(data, "amounts")
        self.known_keys("amounts", amounts, ("unit",))
        unit = self.choice("amounts", "unit", amounts.get("unit", "yuan"), UNITS)
        dates = self.table(data, "dates")
        self.known_keys("dates", dates, ("date", "time", "datetime"))
        date_formats = self.formats("date", dates.get("date", DEFAULT_DATES), "%Y%m%d")
        time_formats = self.formats("time", dates.get("time", DEFAULT_TIMES), "%H%M")
        datetime_formats = self.formats("datetime", dates.get("datetime", DEFAULT_DATETIMES),
                                        "%Y%m%d%H%M")
        types = self.mapping("types", self.table(data, "types"), TYPES)
        statuses = self.mapping("statuses", self.table(data, "statuses"), STATUSES)
        summary = self.summary(fmt, self.table(data, "summary"))
        return Profile(name=name, description=description, source=self.source, format=fmt,
                       encoding=encoding, delimiter=delimiter, quote=quote, sheet=sheet,
                       positions=positions, skip_rows=skip_rows, header=header, end=end,
                       end_marker=end_marker, footer_rows=footer_rows, columns=columns,
                       amount_unit=unit, date_formats=date_formats, time_formats=time_formats,
                       datetime_formats=datetime_formats, types=types, statuses=statuses,
                       summary=summary)

    def delimiting(self, fmt: str, data: dict[str, Any]) -> tuple[str, str]:
        if fmt not in ("csv", "delimited"):
            for key in ("delimiter", "quote"):
                if key in data:
                    raise self.fail("", key, "only for format = \"csv\" or \"delimited\"")
            return "", ""
        if fmt == "delimited" and "delimiter" not in data:
            raise self.fail("", "delimiter", "missing for format = \"delimited\"; allowed: a"
                            " character or text such as \"|\", or tab, comma, pipe, semicolon")
        delimiter = self.text("", "delimiter", data.get("delimiter", ","), empty=False)
        delimiter = DELIMITER_NAMES.get(delimiter, delimiter)
        quote = self.text("", "quote", data.get("quote", '"' if fmt == "csv" else ""))
        if len(quote) > 1:
            raise self.fail("", "quote", f"'{quote}' is not one character; allowed: one"
                            " character such as '\"', or \"\" for no quoting")
        if quote and len(delimiter) != 1:
            raise self.fail("", "delimiter", f"'{delimiter}' is longer than one character,"
                            " which works only without quoting; allowed: one character, or"
                            " quote = \"\"")
        if fmt == "csv" and not quote:
            raise self.fail("", "quote", "format = \"csv\" is quoted; allowed: one character"
                            " (use format = \"delimited\" for a file without quoting)")
        if delimiter in ("\r", "\n") or delimiter == quote:
            raise self.fail("", "delimiter", f"{_shown(delimiter)} cannot separate columns;"
                            " allowed: a character other than the quote and line ends")
        return delimiter, quote

    def sheet(self, fmt: str, data: dict[str, Any]) -> str | int:
        if "sheet" not in data:
            return 1
        if fmt != "xlsx":
            raise self.fail("", "sheet", "only for format = \"xlsx\"")
        sheet = data["sheet"]
        if (type(sheet) is int and sheet >= 1) or (isinstance(sheet, str) and sheet):
            return sheet
        raise self.fail("", "sheet", f"{_shown(sheet)} is not allowed; allowed: the sheet's"
                        " name, or its number counting from 1")

    def end(self, value: Any) -> tuple[str, re.Pattern[str] | None]:
        if value in ("eof", "blank"):
            return value, None
        if not isinstance(value, str) or not value:
            raise self.fail("", "end", f"{_shown(value)} is not allowed; allowed: \"eof\","
                            " \"blank\" or a regex such as \"^合计\"")
        return "marker", self.regex("", "end", value)

    def column(self, section: str, key: str, value: Any, fmt: str, header: bool) -> Column:
        if fmt == "fixed":
            if (isinstance(value, list) and len(value) == 2
                    and all(type(v) is int for v in value) and 1 <= value[0] <= value[1]):
                return (value[0], value[1])
            raise self.fail(section, key, f"{_shown(value)} is not a position range; allowed:"
                            " [first, last], 1-based and inclusive, such as [60, 71]")
        if type(value) is int and value >= 1:
            return value
        if isinstance(value, str) and value.strip():
            if not header:
                raise self.fail(section, key, f"'{value}' is a header name but header ="
                                " false; allowed: a column number counting from 1")
            return value.strip()
        raise self.fail(section, key, f"{_shown(value)} is not a column; allowed: the"
                        " header's name for it, or its number counting from 1")

    def columns(self, fmt: str, header: bool, table: dict[str, Any]) -> dict[str, Column]:
        self.known_keys("columns", table, FIELDS)
        if "amount" not in table:
            raise self.fail("columns", "amount", "missing; every profile maps the amount")
        if "rrn" not in table and "stan" not in table:
            raise self.fail("columns", "rrn", "missing, and so is stan; map at least one of"
                            " them (the matcher's keys)")
        if "datetime" in table and ("date" in table or "time" in table):
            clash = "date" if "date" in table else "time"
            raise self.fail("columns", "datetime", f"given together with {clash}; allowed:"
                            " either datetime, or date and time")
        return {key: self.column("columns", key, value, fmt, header)
                for key, value in table.items()}

    def formats(self, key: str, value: Any, needed: str) -> tuple[str, ...]:
        patterns = [value] if isinstance(value, str) else value
        patterns = list(patterns) if isinstance(patterns, tuple) else patterns
        if not isinstance(patterns, list) or not patterns:
            raise self.fail("dates", key, f"{_shown(value)} is not allowed; allowed: a strptime"
                            " pattern or a list of them, such as \"%Y-%m-%d\"")
        for pattern in patterns:
            if not isinstance(pattern, str) or not self.round_trips(pattern, needed):
                raise self.fail("dates", key, f"{_shown(pattern)} is not a {key} pattern;"
                                " allowed: strptime patterns with "
                                + ", ".join("%" + c for c in needed[1::2])
                                + ", such as " + {"date": "\"%Y-%m-%d\"",
                                                   "time": "\"%H:%M:%S\"",
                                                   "datetime": "\"%Y-%m-%d %H:%M:%S\""}[key])
        return tuple(patterns)

    @staticmethod
    def round_trips(pattern: str, needed: str) -> bool:
        """The pattern writes and reads back the sample's parts that ``needed`` names."""
        try:
            back = datetime.strptime(_SAMPLE.strftime(pattern), pattern)
        except ValueError:
            return False
        return all(back.strftime("%" + c) == _SAMPLE.strftime("%" + c) for c in needed[1::2])

    def mapping(self, section: str, table: dict[str, Any],
                allowed: tuple[str, ...]) -> dict[str, str]:
        if not table:
            return {value: value for value in allowed}
        result = {}
        for key, value in table.items():
            result[key.strip()] = self.choice(section, key, value, allowed)
        return result

    def summary(self, fmt: str, table: dict[str, Any]) -> SummarySpec | None:
        if not table:
            return None
        style = self.choice("summary", "style", table.get("style"), ("row", "labels"))
        figures = [key for key in SUMMARY_FIGURES if key in table]
        if not figures:
            raise self.fail("summary", "amount", "missing; give at least one of "
                            + ", ".join(SUMMARY_FIGURES))
        if style == "row":
            self.known_keys("summary", table, ("style", "marker", *SUMMARY_FIGURES))
            if "marker" not in table:
                raise self.fail("summary", "marker", "missing for style = \"row\"; allowed: a"
                                " regex the summary row's first cell matches, such as"
                                " \"^total$\"")
            return SummarySpec(style, marker=self.regex("summary", "marker", table["marker"]),
                               columns={key: self.number_column(key, table[key], fmt)
                                        for key in figures})
        self.known_keys("summary", table, ("style", "label", "value", *SUMMARY_FIGURES))
        for key in ("label", "value"):
            if key not in table:
                raise self.fail("summary", key, "missing for style = \"labels\"; allowed: a"
                                " column number (fixed: [first, last] positions)")
        labels: dict[str, str] = {}
        for key in figures:
            value = table[key]
            texts = [value] if isinstance(value, str) else value
            if (not isinstance(texts, list) or not texts
                    or not all(isinstance(t, str) and t.strip() for t in texts)):
                raise self.fail("summary", key, f"{_shown(value)} is not a label; allowed:"
                                " the label text, such as \"合计金额\", or a list of them")
            labels.update({t.strip(): key for t in texts})
        return SummarySpec(style, label=self.number_column("label", table["label"], fmt),
                           value=self.number_column("value", table["value"], fmt),
                           labels=labels)

    def number_column(self, key: str, value: Any, fmt: str) -> Column:
        if fmt != "fixed" and isinstance(value, str):
            raise self.fail("summary", key, f"'{value}' is a name; allowed: a column number"
                            " counting from 1 (the summary has no header)")
        return self.column("summary", key, value, fmt, header=False)


def _shown(value: Any) -> str:
    """A TOML value as a person would write it, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value).replace("\\t", "tab")
    if isinstance(value, dict):
        return "a table"
    return str(value)
