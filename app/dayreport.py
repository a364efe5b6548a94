"""The day's takings (当日营业额): one local date's approved sales and refunds, by hour and by
card organisation, as figures (JSON), as text with bar charts for the console and the
receipt printer, and as the figures the cashier app's charts draw (app/ui/charts.py).

A row counts the way the settlement counts it (storage.settlements.COUNTED_TYPES: approved,
neither voided nor reversed): sales, completions and offline sales take money in, refunds
give it back and count negative; a voided sale took no money and is only shown beside the
figures; voids and pre-authorisations move no money themselves. The day is the journal's
local wall-clock date (``created_local``), as ``posterm txns --from`` reads it. Money is
integer fen throughout.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from app.bilingual import both_in, say_in
from app.errors import InputError
from app.receipt import ORG_NAMES, MerchantInfo, _pair
from app.settlement_report import Figure, format_money
from hal.document import Document, Line, text_width
from storage.journal import Journal, TransactionRecord
from storage.query import TxnFilter, search
from storage.settlements import COUNTED_TYPES
from sync.settlement import direction_of

if TYPE_CHECKING:
    from app.terminal import Terminal

__all__ = ["BAR_STYLES", "HOURS", "LABELS", "MIN_WIDTH", "DayReport", "Tally", "bar",
           "both", "build_day_report", "day_report", "org_name", "parse_day",
           "print_day_report", "say", "share_text"]

HOURS = 24
MIN_WIDTH = 32
#: Bars on a screen: whole cells of █ and a last cell in eighths. On paper: '#' only, since
#: a GB printer prints U+2588..U+258F double-width from its GBK page (A880..A887), and a
#: GB2312-only character ROM or a code-page printer has no eighths at all.
BAR_STYLES = ("blocks", "ascii")
EIGHTHS = " ▏▎▍▌▋▊▉"
FULL = {"blocks": "█", "ascii": "#"}
NEGATIVE = {"blocks": "░", "ascii": "-"}
MIN_BAR = 6               # narrower than this, a bar goes on a line of its own
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
FIGURES_WIDTH = 48        # label-and-figure blocks keep to this on a wide console

#: key -> (Chinese, English)
LABELS: dict[str, tuple[str, str]] = {
    "title": ("当日营业额", "Day's takings"),
    "date": ("日期", "Date"),
    "merchant": ("商户", "Merchant"),
    "merchant_no": ("商户编号", "Merchant no"),
    "terminal_no": ("终端编号", "Terminal no"),
    "made": ("制表时间", "Made at"),
    "count": ("笔数", "Count"),
    "amount": ("金额", "Amount"),
    "sales": ("消费", "Sales"),
    "refunds": ("退货", "Refunds"),
    "net": ("净额", "Net"),
    "voided": ("已撤销", "Voided"),
    "voided_note": ("已撤销的消费不计入净额", "voided sales are not in the net"),
    "by_hour": ("按小时", "By hour"),
    "by_org": ("按卡组织", "By card organisation"),
    "total": ("合计", "Total"),
    "peak": ("高峰", "Peak"),
    "share": ("占比", "Share"),
    "none": ("无交易", "No takings"),
}


def say(key: str, language: str) -> str:
    """One label of ``LABELS`` in the configured language ('zh' or 'en')."""
    return say_in(LABELS, key, language)


def both(key: str, language: str) -> str:
    """One label of ``LABELS``, the configured language first ('消费 Sale')."""
    return both_in(LABELS, key, language)


def org_name(org: str) -> str:
    """A card organisation as the slips and the settlement report name it ('银联 CUP')."""
    return ORG_NAMES.get(org, org)


def parse_day(text: str) -> date:
    """``'2026-11-22'`` as a date; InputError (exit 2) for anything else."""
    try:
        if not _DAY.fullmatch(text.strip()):
            raise ValueError(text)
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--date {text!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-22 / "
                         "日期格式为 年-月-日") from None


@dataclass(frozen=True)
class Tally:
    """Approved sales and refunds of one slice of the day (an hour, a card organisation, the
    whole day); ``refunds.amount`` is negative or zero."""

    sales: Figure = field(default_factory=Figure)
    refunds: Figure = field(default_factory=Figure)

    @property
    def count(self) -> int:
        return self.sales.count + self.refunds.count

    @property
    def net(self) -> int:
        """The takings in fen: sales less refunds."""
        return self.sales.amount + self.refunds.amount

    def add(self, record: TransactionRecord) -> Tally:
        """This tally with one counted row more (a sale type in, a refund out)."""
        if direction_of(record.txn_type) == "credit":
            return Tally(self.sales, Figure(self.refunds.count + 1,
                                            self.refunds.amount - record.amount))
        return Tally(self.sales.plus(record.amount), self.refunds)

    def __add__(self, other: Tally) -> Tally:
        return Tally(Figure(self.sales.count + other.sales.count,
                            self.sales.amount + other.sales.amount),
                     Figure(self.refunds.count + other.refunds.count,
                            self.refunds.amount + other.refunds.amount))

    def as_json(self) -> dict[str, dict[str, int]]:
        return {"sales": self.sales.as_json(), "refunds": self.refunds.as_json(),
                "net": {"count": self.count, "amount": self.net}}


def _org_key(record: TransactionRecord) -> str:
    return (record.card_org or "").strip().upper() or "?"


def _org_order(orgs: Iterable[str]) -> list[str]:
    """The known organisations in ORG_NAMES' order (银联 first), then the others by name."""
    known = list(ORG_NAMES)
    return sorted(orgs, key=lambda o: (known.index(o) if o in known else len(known), o))


@dataclass(frozen=True)
class DayReport:
    """The figures of one day; build it with :func:`day_report` or :func:`build_day_report`.

    ``total`` is counted from the rows themselves, not added up from the parts, so that the
    parts (``hours``, ``orgs``) can be checked against it.
    """

    day: date
    merchant: MerchantInfo
    made_at: datetime                      # aware, the terminal's local time
    total: Tally
    hours: tuple[Tally, ...]               # 24, hour 0 first
    orgs: dict[str, Tally]                 # by card_org ('CUP', 'VIS'...), in ORG_NAMES' order
    voided: Figure = field(default_factory=Figure)

    @property
    def empty(self) -> bool:
        return self.total.count == 0

    @property
    def peak_hour(self) -> int | None:
        """The hour with the largest net takings (the earliest on a tie); None without any."""
        best = max(range(HOURS), key=lambda h: (self.hours[h].net, -h))
        return best if self.hours[best].net > 0 else None

    @property
    def open_hours(self) -> range:
        """From the first to the last hour with a counted row (empty when there is none)."""
        busy = [h for h in range(HOURS) if self.hours[h].count]
        return range(busy[0], busy[-1] + 1) if busy else range(0)

    def share_permille(self, org: str) -> int | None:
        """``org``'s part of the day's net takings in tenths of a percent, rounded half up;
        None when the day's net is not positive (a share of nothing means nothing)."""
        whole = self.total.net
        if whole <= 0:
            return None
        return (2000 * self.orgs[org].net + whole) // (2 * whole)

    # -------------------------------------------------------------------- data

    def as_json(self) -> dict:
        """Every figure, machine-readable; money in integer fen, refunds negative."""
        return {
            "date": self.day.isoformat(),
            "merchant": {"name": self.merchant.name, "merchant_id": self.merchant.merchant_id,
                         "terminal_id": self.merchant.terminal_id},
            "made_at": self.made_at.isoformat(),
            "total": self.total.as_json(),
            "voided": self.voided.as_json(),
            "peak_hour": self.peak_hour,
            "hours": [{"hour": h, **tally.as_json()} for h, tally in enumerate(self.hours)],
            "orgs": [{"org": org, "name": org_name(org), "share_permille":
                      self.share_permille(org), **tally.as_json()}
                     for org, tally in self.orgs.items()],
        }

    # ------------------------------------------------------------------ layout

    def document(self, width: int = 32, language: str = "zh",
                 style: str = "ascii") -> Document:
        """The report for ``width`` columns: a printer's 32 or 48 with '#' bars (the default),
        or a screen's 80 with ``style='blocks'``."""
        if width < MIN_WIDTH:
            raise ValueError(f"the day report needs at least {MIN_WIDTH} columns, not {width}")
        if style not in BAR_STYLES:
            raise ValueError(f"style must be one of {', '.join(BAR_STYLES)}, not {style!r}")
        first, second = LABELS["title"] if language == "zh" else LABELS["title"][::-1]
        block = min(width, FIGURES_WIDTH)
        lines = [
            Line(first, align="center", bold=True, double=True),
            Line(second, align="center", bold=True),
            Line(rule=True),
            *_pair(both("date", language), self.day.isoformat(), block),
            *_pair(both("merchant", language), self.merchant.name, block),
            *_pair(both("merchant_no", language), self.merchant.merchant_id, block),
            *_pair(both("terminal_no", language), self.merchant.terminal_id, block),
            *_pair(both("made", language), self.made_at.strftime("%Y-%m-%d %H:%M:%S"),
                   block),
            Line(rule=True),
            *self._summary_lines(block, language),
            Line(rule=True),
            *self._hour_lines(width, language, style),
            Line(rule=True),
            *self._org_lines(width, language, style),
        ]
        return Document(title=f"day-{self.day.isoformat()}", lines=tuple(lines))

    def text(self, width: int = 80, language: str = "zh", style: str = "blocks") -> str:
        """How the report reads on a console of ``width`` columns (block-character bars)."""
        return self.document(width, language, style).plain_text(width)

    def _summary_lines(self, width: int, language: str) -> list[Line]:
        rows = [(both("sales", language), self.total.sales),
                (both("refunds", language), self.total.refunds),
                (both("net", language), Figure(self.total.count, self.total.net)),
                (both("voided", language), self.voided)]
        head = (say("count", language), say("amount", language))
        table = _Table(width, [label for label, _ in rows],
                       [head[0]] + [str(f.count) for _, f in rows],
                       [head[1]] + [format_money(f.amount) for _, f in rows], bars=False)
        lines = [Line(_rjust(table.figures(*head), width))]
        for label, figure in rows:
            lines += table.lines(label, str(figure.count), format_money(figure.amount),
                                 bold=label == both("net", language))
        if self.voided.count:
            lines.append(Line(f"* {say('voided_note', language)}"))
        return lines

    def _hour_lines(self, width: int, language: str, style: str) -> list[Line]:
        lines = [Line(both("by_hour", language), bold=True)]
        if self.empty:
            return [*lines, Line(both("none", language))]
        hours = self.open_hours
        parts = [(f"{h:02d}:00", self.hours[h]) for h in hours]
        lines += _chart_lines(parts, self.total, width, language, style)
        peak = self.peak_hour
        if peak is not None:
            lines += _pair(both("peak", language),
                           f"{peak:02d}:00-{peak + 1:02d}:00 "
                           f"{format_money(self.hours[peak].net)}",
                           min(width, FIGURES_WIDTH))
        return lines

    def _org_lines(self, width: int, language: str, style: str) -> list[Line]:
        lines = [Line(both("by_org", language), bold=True)]
        if self.empty:
            return [*lines, Line(both("none", language))]
        parts = [(org_name(org), tally) for org, tally in self.orgs.items()]
        shares = [share_text(self.share_permille(org)) for org in self.orgs]
        return lines + _chart_lines(parts, self.total, width, language, style, shares)


def share_text(permille: int | None) -> str:
    """``623`` -> ``'62.3%'``; None -> ``'-'``."""
    if permille is None:
        return "-"
    sign = "-" if permille < 0 else ""
    whole, tenth = divmod(abs(permille), 10)
    return f"{sign}{whole}.{tenth}%"


def bar(value: int, largest: int, width: int, style: str = "blocks") -> str:
    """A horizontal bar for ``value`` on a scale where ``largest`` fills ``width`` cells.

    ``blocks``: whole █ cells and a last cell in eighths (▏▎▍▌▋▊▉); ``ascii``: '#' cells.
    A negative value is drawn in ░ (or '-') by its size, whole cells only. Any value other
    than zero shows at least its smallest step; integers throughout.
    """
    if style not in BAR_STYLES:
        raise ValueError(f"style must be one of {', '.join(BAR_STYLES)}, not {style!r}")
    size = abs(value)
    if size == 0 or largest <= 0 or width <= 0:
        return ""
    size = min(size, largest)
    if value > 0 and style == "blocks":
        eighths = max(1, (size * width * 8 * 2 + largest) // (2 * largest))
        whole, part = divmod(eighths, 8)
        return FULL[style] * whole + (EIGHTHS[part] if part else "")
    cells = max(1, (size * width * 2 + largest) // (2 * largest))
    return (FULL[style] if value > 0 else NEGATIVE[style]) * cells


# ------------------------------------------------------------------------ layout helpers

def _rjust(text: str, columns: int) -> str:
    return " " * max(0, columns - text_width(text)) + text


def _ljust(text: str, columns: int) -> str:
    return text + " " * max(0, columns - text_width(text))


class _Table:
    """Label, count, amount (and share) columns, each as wide as its widest cell; what is
    left of ``width`` after them is for the bar."""

    def __init__(self, width: int, labels: list[str], counts: list[str], amounts: list[str],
                 shares: list[str] | None = None, *, bars: bool = True) -> None:
        self.width = width
        self.bars = bars
        self.label_w = max(text_width(t) for t in labels)
        self.count_w = max(text_width(c) for c in counts)
        self.amount_w = max(text_width(a) for a in amounts)
        self.share_w = max(text_width(s) for s in shares) if shares else 0

    @property
    def bar_w(self) -> int:
        """Cells left for a bar after the figures and a space (0 for a table without bars)."""
        if not self.bars:
            return 0
        return self.width - self.label_w - 1 - len(self.figures("", "", "")) - 1

    def figures(self, count: str, amount: str, share: str | None = None) -> str:
        cells = _rjust(count, self.count_w) + " " + _rjust(amount, self.amount_w)
        if self.share_w:
            cells += " " + _rjust(share or "", self.share_w)
        return cells

    def lines(self, label: str, count: str, amount: str, share: str | None = None, *,
              drawn: str = "", bold: bool = False) -> list[Line]:
        """The row (its bar after the figures when there is room, else on the next line);
        a label too long for its column puts the figures on a line of their own."""
        figures = self.figures(count, amount, share)
        if text_width(label) > self.label_w:
            out = [Line(label, bold=bold), Line(figures, align="right", bold=bold)]
        elif self.bar_w < MIN_BAR:
            out = [Line(label + " " * (self.width - text_width(label) - len(figures))
                        + figures, bold=bold)]
        else:
            row = _ljust(label, self.label_w) + " " + figures
            return [Line((row + " " + drawn).rstrip(), bold=bold)]
        return out + ([Line("  " + drawn)] if drawn else [])


def _bar_width(table: _Table) -> int:
    return table.bar_w if table.bar_w >= MIN_BAR else table.width - 2


def _chart_lines(parts: list[tuple[str, Tally]], total: Tally, width: int, language: str,
                 style: str, shares: list[str] | None = None) -> list[Line]:
    """One row per part: label, count, net (and share), then its bar scaled to the largest
    net; the total's row under them, in the same columns."""
    total_label = both("total", language)
    total_share = None if shares is None else ("100.0%" if total.net > 0 else "-")
    table = _Table(width, [label for label, _ in parts] + [total_label],
                   [str(t.count) for _, t in parts] + [str(total.count)],
                   [format_money(t.net) for _, t in parts] + [format_money(total.net)],
                   None if shares is None else [*shares, total_share or ""])
    largest = max((abs(t.net) for _, t in parts), default=0)
    bar_w = _bar_width(table)
    lines = []
    for i, (label, tally) in enumerate(parts):
        lines += table.lines(label, str(tally.count), format_money(tally.net),
                             None if shares is None else shares[i],
                             drawn=bar(tally.net, largest, bar_w, style))
    lines += table.lines(total_label, str(total.count), format_money(total.net), total_share,
                         bold=True)
    return lines


# ----------------------------------------------------------------------------- building

def build_day_report(records: Iterable[TransactionRecord], day: date, *,
                     merchant: MerchantInfo, made_at: datetime) -> DayReport:
    """Count ``records`` made on the local date ``day`` (any others are passed over)."""
    if made_at.tzinfo is None:
        raise ValueError("made_at must be an aware datetime (the terminal's local time)")
    prefix = day.isoformat()
    total = Tally()
    hours = [Tally() for _ in range(HOURS)]
    orgs: dict[str, Tally] = {}
    voided = Figure()
    for record in records:
        if (record.txn_type not in COUNTED_TYPES or record.state != "APPROVED"
                or not record.created_local.startswith(prefix)):
            continue
        if record.voided_by is not None:
            voided = voided.plus(record.amount)
            continue
        total = total.add(record)
        hour = int(record.created_local[11:13])
        hours[hour] = hours[hour].add(record)
        org = _org_key(record)
        orgs[org] = orgs.get(org, Tally()).add(record)
    return DayReport(day=day, merchant=merchant, made_at=made_at, total=total,
                     hours=tuple(hours), orgs={o: orgs[o] for o in _org_order(orgs)},
                     voided=voided)


def day_report(journal: Journal, day: date | None = None, *, merchant: MerchantInfo,
               now: datetime | None = None) -> DayReport:
    """The day's takings from ``journal`` for the local date ``day`` (default: today, in the
    terminal's local time). Reads only that day's approved and voided rows of the counted
    types."""
    made_at = (now or datetime.now()).astimezone().replace(microsecond=0)
    day = day or made_at.date()
    rows = search(journal, TxnFilter(date_from=day.isoformat(), date_to=day.isoformat(),
                                     types=COUNTED_TYPES, statuses=("approved", "voided")))
    return build_day_report(rows, day, merchant=merchant, made_at=made_at)


def print_day_report(term: Terminal, report: DayReport) -> str | None:
    """Print ``report`` on the terminal's receipt printer at its width ('#' bars, the
    terminal's language), as ``posterm report day --print`` and the cashier app's reports
    screen do. None once printed, else the problem in one line (no printer, paper out...)."""
    from app.flows.settle import printer_width
    from hal.errors import DeviceError, DeviceUnavailable
    try:
        printer = term.devices.printer
        if printer is None:
            raise DeviceUnavailable("no printer configured")
        printer.print_document(report.document(printer_width(term), term.language))
    except DeviceError as exc:
        return str(exc)
    return None
