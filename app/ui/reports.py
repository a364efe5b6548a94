"""The reports screen (报表): the day's takings (当日营业额) of a chosen date, by hour and by
card organisation as charts beside their numbers (app.ui.charts over app.dayreport's
``day_report``, the figures ``posterm report day`` prints), printed on the receipt printer
as ``--print`` does; and the last settlement's report again, marked DUPLICATE (重打印),
previewed before it is printed, as ``posterm report last-settlement``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import ContentSwitcher, Input, Static

from app.ui.base import Notice, PostermScreen
from app.ui.charts import DayCharts

if TYPE_CHECKING:
    from app.dayreport import DayReport
    from app.terminal import Terminal

REPORT_WIDTH = 32          # the settlement report's preview: a 58 mm printer's line


@dataclass(frozen=True)
class SettlementCopy:
    """The last settlement's report as ``report last-settlement`` shows it, and whether the
    copy went to the printer (``problem``: why not, in one line)."""

    batch: int
    result: str | None
    result_after_upload: str | None
    text: str
    printed: bool
    problem: str | None


def day_job(day: date | None):
    def job(term: Terminal) -> DayReport:
        from app.dayreport import day_report
        return day_report(term.journal, day, merchant=term.merchant)
    return job


def print_job(report: DayReport):
    def job(term: Terminal) -> str | None:
        from app.dayreport import print_day_report
        return print_day_report(term, report)
    return job


def last_settlement_job(to_printer: bool):
    def job(term: Terminal) -> SettlementCopy:
        from app.flows.settle import reprint_last
        row, report, printed, problem = reprint_last(term, to_printer=to_printer)
        return SettlementCopy(row.batch, row.result, row.result_after_upload,
                              report.text(REPORT_WIDTH), printed, problem)
    return job


class ReportsScreen(PostermScreen):
    TITLE_KEY = "reports"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "返回 Back"),
        Binding("f7", "move(-1)", "前一天 Prev", show=False),     # shown beside the date
        Binding("f8", "move(1)", "后一天 Next", show=False),
        Binding("f9", "print", "打印 Print"),
        Binding("f6", "settlement", "结算单 Settlement"),
    ]

    DEFAULT_CSS = """
    ReportsScreen #dateline { height: 1; padding: 0 1; }
    ReportsScreen.copy-shown #dateline { display: none; }
    ReportsScreen #dateline Static { width: auto; }
    ReportsScreen #date { width: 14; margin: 0 1; }
    ReportsScreen #date-keys { color: $text-muted; }
    ReportsScreen #views { height: 1fr; }
    ReportsScreen #day { padding: 0 1; }
    ReportsScreen #dup-preview { width: 38; border: round $warning; height: 1fr; }
    ReportsScreen #dup-info { width: 1fr; padding: 0 1; }
    ReportsScreen #dup-head { text-style: bold; }
    ReportsScreen #dup-keys { color: $text-muted; margin-top: 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.report: DayReport | None = None
        self.copy: SettlementCopy | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="dateline"):
            yield Static(self.both("rpt_date"))
            yield Input(id="date", restrict=r"[0-9-]*", max_length=10, compact=True,
                        placeholder="YYYY-MM-DD")
            yield Static(self.say("rpt_date_keys"), id="date-keys")
        with ContentSwitcher(id="views", initial="day"):
            yield DayCharts(language=self.language, id="day")
            with Horizontal(id="settlement"):
                with VerticalScroll(id="dup-preview"):
                    yield Static(id="dup-slip")
                with Vertical(id="dup-info"):
                    yield Static(id="dup-head")
                    yield Static(id="dup-details")
                    yield Static(f"F9     {self.both('rpt_print_copy')}\n"
                                 f"F6/Esc {self.both('rpt_back_day')}", id="dup-keys")
        yield Notice(id="notice")

    def on_mount(self) -> None:
        self.query_one("#dup-preview").border_title = (
            f"{self.both('report')} · {self.both('rpt_duplicate')}")
        self.query_one("#date", Input).focus()
        self.retitle("rpt_day_takings")
        self.load(None)

    # -- shared pieces --------------------------------------------------------------------------

    def retitle(self, key: str) -> None:
        """The title line: this screen's name and what it shows now."""
        self.query_one("#title", Static).update(f"{self.both('reports')} · {self.both(key)}")

    @property
    def view_name(self) -> str:
        return self.query_one("#views", ContentSwitcher).current or "day"

    # -- the day's takings ------------------------------------------------------------------

    def load(self, day: date | None, *, retry: bool = True) -> None:
        """Read the day's takings of ``day`` (None: today on the terminal's clock)."""
        if self.posterm.run_flow(day_job(day), *self.ends(self.show_report)):
            self.notice(self.both("rpt_reading"))
        elif retry and self.report is None:
            self.set_timer(0.2, lambda: self.load(day))      # the terminal still opening
        else:
            self.notice(self.say("busy"))

    def show_report(self, report: DayReport) -> None:
        """Draw ``report``: its charts and numbers, its date in the date field."""
        self.report = report
        self.query_one("#views", ContentSwitcher).current = "day"
        self.remove_class("copy-shown")
        self.retitle("rpt_day_takings")
        self.query_one(DayCharts).report = report
        field = self.query_one("#date", Input)
        field.value = report.day.isoformat()
        field.select_all()                  # a date typed now replaces the one shown
        self.notice("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "date":
            return
        from app.dayreport import parse_day
        from app.errors import InputError
        try:
            day = parse_day(event.value)
        except InputError as exc:
            self.failed(str(exc))
            return
        self.load(day, retry=False)

    def action_move(self, days: int) -> None:
        if self.report is None:
            self.notice(self.say("busy"))
            return
        self.load(self.report.day + timedelta(days=days), retry=False)

    # -- printing ------------------------------------------------------------------------------

    def action_print(self) -> None:
        if self.view_name == "settlement":
            self._run(last_settlement_job(True), self._settlement_printed)
        elif self.report is not None:
            self._run(print_job(self.report), self._day_printed)

    def _run(self, job: Callable[[Terminal], Any], done: Callable[[Any], None]) -> None:
        if self.posterm.run_flow(job, *self.ends(done)):
            self.notice(self.both("printing"))
        else:
            self.notice(self.say("busy"))

    def _day_printed(self, problem: str | None) -> None:
        if problem is None:
            self.notice(self.both("rpt_printed"), "ok")
        else:
            self.failed(f"{self.say('rpt_not_printed_report')}: {problem}")

    # -- the last settlement's report, again ------------------------------------------------

    def action_settlement(self) -> None:
        if self.view_name == "settlement":
            self.query_one("#views", ContentSwitcher).current = "day"
            self.remove_class("copy-shown")
            self.retitle("rpt_day_takings")
            self.query_one("#date", Input).focus()
            self.notice("")
            return
        if self.posterm.run_flow(last_settlement_job(False),
                                 *self.ends(self.show_settlement)):
            self.notice(self.both("rpt_reading"))
        else:
            self.notice(self.say("busy"))

    def show_settlement(self, copy: SettlementCopy) -> None:
        """The last settlement's report, previewed (the printed copy is marked DUPLICATE)."""
        from app.settle_commands import RESULT_LABELS
        self.copy = copy
        self.query_one("#views", ContentSwitcher).current = "settlement"
        self.add_class("copy-shown")
        self.retitle("rpt_last_settlement")
        self.query_one("#dup-slip", Static).update(copy.text)
        self.query_one("#dup-preview", VerticalScroll).scroll_home(animate=False)

        def label(result: str | None) -> str:
            zh, en = RESULT_LABELS.get(result or "error", RESULT_LABELS["error"])
            return f"{zh} {en}" if self.language == "zh" else f"{en} {zh}"

        self.query_one("#dup-head", Static).update(
            f"{self.say('batch')} {copy.batch:06d}: {label(copy.result)}")
        details = []
        if copy.result_after_upload is not None:
            details.append(f"{self.say('upload')} → {label(copy.result_after_upload)}")
        self.query_one("#dup-details", Static).update("\n".join(details))
        self.notice("")

    def _settlement_printed(self, copy: SettlementCopy) -> None:
        self.show_settlement(copy)
        if copy.printed:
            self.notice(f"{self.both('rpt_printed')} ({self.say('rpt_duplicate')})", "ok")
        else:
            self.failed(f"{self.say('rpt_not_printed_report')}: {copy.problem}")

    def action_back(self) -> None:
        if self.view_name == "settlement":
            self.action_settlement()
        else:
            self.app.pop_screen()
