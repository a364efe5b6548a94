"""The day's takings as charts for the reports screen: by hour (a column per hour of the
shop's open hours, the peak picked out) and by card organisation (labelled bars with amount
and share), each beside its numbers. They draw an :class:`app.dayreport.DayReport`, the
same figures ``posterm report day`` prints; nothing here counts anything.

Together (:class:`DayCharts`) they take 8 rows for the hours, a blank, and 2 plus one per
card organisation: 17 with six, leaving the status line, the title and the key bar their
rows in 80x24.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widget import Widget

from app.dayreport import DayReport, bar, both, org_name, say, share_text
from app.settlement_report import format_money
from hal.document import text_width

__all__ = ["DayCharts", "HourChart", "OrgChart"]

COLUMNS = " ▁▂▃▄▅▆▇█"      # a column's cell filled 0/8 .. 8/8 from the bottom
NEGATIVE = "░"             # the cells of an hour whose refunds outweigh its sales
CHART_ROWS = 6             # the hour columns' height: 48 steps
NUMBERS_WIDTH = 28         # the numbers beside the hour chart
MIN_HOURS = 8              # fewer open hours are widened to this, so one sale is no wall


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - text_width(text))


def _rjust(text: str, width: int) -> str:
    return " " * max(0, width - text_width(text)) + text


def _pair(label: str, value: str, width: int) -> str:
    return label + " " * max(1, width - text_width(label) - text_width(value)) + value


def shown_hours(report: DayReport) -> range:
    """The open hours (first to last hour with takings), widened to at least MIN_HOURS."""
    hours = report.open_hours
    if not hours:
        return hours
    first, last = hours.start, hours.stop - 1
    while last - first + 1 < MIN_HOURS:
        if last < 23:
            last += 1
        if last - first + 1 < MIN_HOURS and first > 0:
            first -= 1
    return range(first, last + 1)


def column_cell(eighths: int, row: int, rows: int = CHART_ROWS) -> str:
    """The character at ``row`` (0 at the top) of a column ``eighths`` high."""
    filled = eighths - (rows - 1 - row) * 8
    return COLUMNS[max(0, min(8, filled))]


def column_height(value: int, largest: int, rows: int = CHART_ROWS) -> int:
    """A column's height in eighths of a cell, the largest filling ``rows``; any value but
    zero shows at least one step."""
    size = min(abs(value), largest)
    if size == 0 or largest <= 0:
        return 0
    return max(1, (size * rows * 8 * 2 + largest) // (2 * largest))


class _Chart(Widget):
    """What both charts share: the report they draw and the language of their labels."""

    report: reactive[DayReport | None] = reactive(None, layout=True)

    def __init__(self, report: DayReport | None = None, *, language: str = "zh",
                 name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.language = language
        self.set_reactive(_Chart.report, report)

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name)


class HourChart(_Chart):
    """The day by hour: a column per open hour scaled to the best one, the peak hour picked
    out, an hour of more refunds than sales shaded (░) in the negative colour; the day's
    numbers on the right."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "hourchart--bar", "hourchart--peak", "hourchart--negative", "hourchart--axis",
        "hourchart--heading", "hourchart--net"}
    DEFAULT_CSS = """
    HourChart { height: 8; }
    HourChart > .hourchart--bar { color: $primary; }
    HourChart > .hourchart--peak { color: $accent; text-style: bold; }
    HourChart > .hourchart--negative { color: $error; }
    HourChart > .hourchart--axis { color: $text-muted; }
    HourChart > .hourchart--heading { text-style: bold; }
    HourChart > .hourchart--net { text-style: bold; }
    """

    def render(self) -> Text:
        width = self.size.width or 80
        rep, lang = self.report, self.language
        numbers_w = min(NUMBERS_WIDTH, max(0, width // 2 - 1))
        chart_w = max(1, width - numbers_w - 2)
        left = self._columns(chart_w) if rep is not None and not rep.empty else [
            Text(both("none", lang), style=self._style("hourchart--axis"))]
        left.insert(0, Text(both("by_hour", lang), style=self._style("hourchart--heading")))
        right = self._numbers(numbers_w) if rep is not None else []
        out = Text(no_wrap=True, overflow="crop", end="")
        for row in range(max(len(left), len(right))):
            if row:
                out.append("\n")
            cell = left[row] if row < len(left) else Text()
            out.append_text(cell)
            if row < len(right):
                out.append(" " * max(0, chart_w - cell.cell_len + 2))
                out.append_text(right[row])
        return out

    def _columns(self, chart_w: int) -> list[Text]:
        """CHART_ROWS rows of columns and the hour labels under them."""
        rep = self.report
        assert rep is not None
        hours = shown_hours(rep)
        step = max(1, min(4, chart_w // len(hours)))
        bar_w = step - 1 if step > 1 else 1
        largest = max(abs(rep.hours[h].net) for h in hours)
        peak = rep.peak_hour
        heights = {h: column_height(rep.hours[h].net, largest) for h in hours}
        styles = {h: self._style("hourchart--peak" if h == peak else "hourchart--negative"
                                 if rep.hours[h].net < 0 else "hourchart--bar") for h in hours}
        rows = []
        for row in range(CHART_ROWS):
            line = Text()
            for h in hours:
                cell = column_cell(heights[h], row)
                if rep.hours[h].net < 0 and cell != " ":
                    cell = NEGATIVE                # refunds only: shaded, as on the console
                line.append(cell * bar_w, styles[h])
                line.append(" " * (step - bar_w))
            rows.append(line)
        labels, free = [" "] * (step * len(hours)), 0
        for i, h in enumerate(hours):
            x = i * step
            if x >= free and x + 2 <= len(labels):
                labels[x:x + 2] = f"{h:02d}"
                free = x + 3
        rows.append(Text("".join(labels).rstrip(), style=self._style("hourchart--axis")))
        return rows

    def _numbers(self, width: int) -> list[Text]:
        rep, lang = self.report, self.language
        assert rep is not None
        total = rep.total
        lines = [Text(_rjust(rep.day.isoformat(), width), style=self._style("hourchart--axis")),
                 Text(_pair(both("net", lang), format_money(total.net), width),
                      style=self._style("hourchart--net")),
                 Text(_pair(both("count", lang), str(total.count), width)),
                 Text(_pair(both("sales", lang), format_money(total.sales.amount), width)),
                 Text(_pair(both("refunds", lang), format_money(total.refunds.amount), width))]
        peak = rep.peak_hour
        if peak is not None:
            lines += [Text(_pair(both("peak", lang), f"{peak:02d}:00-{peak + 1:02d}:00", width),
                           style=self._style("hourchart--peak")),
                      Text(_rjust(format_money(rep.hours[peak].net), width),
                           style=self._style("hourchart--peak"))]
        if rep.voided.count:
            lines.append(Text(_pair(both("voided", lang),
                                    f"{rep.voided.count} {format_money(rep.voided.amount)}",
                                    width), style=self._style("hourchart--axis")))
        return lines


class OrgChart(_Chart):
    """The day by card organisation: one labelled bar per organisation scaled to the
    largest net, its count, net amount and share of the day's net beside it; the total."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "orgchart--bar", "orgchart--negative", "orgchart--head", "orgchart--heading",
        "orgchart--total"}
    DEFAULT_CSS = """
    OrgChart { height: auto; }
    OrgChart > .orgchart--bar { color: $secondary; }
    OrgChart > .orgchart--negative { color: $error; }
    OrgChart > .orgchart--head { color: $text-muted; }
    OrgChart > .orgchart--heading { text-style: bold; }
    OrgChart > .orgchart--total { text-style: bold; }
    """

    def render(self) -> Text:
        width = self.size.width or 80
        rep, lang = self.report, self.language
        heading = Text(both("by_org", lang), style=self._style("orgchart--heading"))
        if rep is None or rep.empty:
            return Text("\n", end="").join(
                [heading, Text(both("none", lang), style=self._style("orgchart--head"))])
        names = [org_name(o) for o in rep.orgs] + [both("total", lang)]
        counts = [str(t.count) for t in rep.orgs.values()] + [str(rep.total.count)]
        amounts = [format_money(t.net) for t in rep.orgs.values()] + [
            format_money(rep.total.net)]
        shares = [share_text(rep.share_permille(o)) for o in rep.orgs] + [
            share_text(1000 if rep.total.net > 0 else None)]
        head = (say("count", lang), say("amount", lang), say("share", lang))
        widths = [max(text_width(c) for c in column) for column in
                  ([*counts, head[0]], [*amounts, head[1]], [*shares, head[2]])]
        label_w = max(text_width(n) for n in names)

        def figures(*cells: str) -> str:
            return " ".join(_rjust(c, w) for c, w in zip(cells, widths, strict=True))

        figures_w = text_width(figures("", "", ""))
        bar_w = max(1, width - label_w - figures_w - 2)
        largest = max(abs(t.net) for t in rep.orgs.values())
        lines = [heading.append(_rjust(figures(*head), width - heading.cell_len),
                                style=self._style("orgchart--head"))]
        for i, tally in enumerate(rep.orgs.values()):
            line = Text(_pad(names[i], label_w) + " ")
            line.append(_pad(bar(tally.net, largest, bar_w), bar_w),
                        self._style("orgchart--negative" if tally.net < 0 else "orgchart--bar"))
            line.append(" " + figures(counts[i], amounts[i], shares[i]))
            lines.append(line)
        lines.append(Text(_pad(names[-1], label_w) + " " + " " * bar_w + " "
                          + figures(counts[-1], amounts[-1], shares[-1]),
                          style=self._style("orgchart--total")))
        out = Text("\n", no_wrap=True, overflow="crop", end="").join(lines)
        return out


class DayCharts(Vertical):
    """Both charts, one above the other, for one report; set ``report`` to redraw."""

    DEFAULT_CSS = """
    DayCharts { height: auto; }
    DayCharts > HourChart { margin-bottom: 1; }
    """

    report: reactive[DayReport | None] = reactive(None)

    def __init__(self, report: DayReport | None = None, *, language: str = "zh",
                 name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.language = language
        self.set_reactive(DayCharts.report, report)

    def compose(self) -> ComposeResult:
        yield HourChart(self.report, language=self.language, id="hour-chart")
        yield OrgChart(self.report, language=self.language, id="org-chart")

    def watch_report(self, report: DayReport | None) -> None:
        for chart in self.query(_Chart):
            chart.report = report
