"""The reconcile screen (对账): the acquirer's statement file, its profile (a bundled name or
a .toml file; blank: by the file's suffix) and an optional period, reconciled by
app.recon.run.reconcile as ``posterm reconcile`` does; the counts per class, the statement's
summary check and the differences; Enter on one shows it whole and resolves it with a note
behind the supervisor's password (app.recon.run.resolve, as ``posterm recon resolve``);
F5 lists the earlier runs (``posterm recon list``) and Enter shows one (``recon show``).

The statement is read in the flow's thread (``parallel=False``): the CLI's reader for big
files is a forked process, and forking a process that runs Textual's threads is unsafe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import ContentSwitcher, DataTable, Input, Static

from app.ui.base import Notice, PostermScreen, while_shown
from app.ui.supervisor import SupervisorPrompt
from app.ui.words import both, say

if TYPE_CHECKING:
    from app.recon.run import RunView
    from app.terminal import Terminal
    from storage.recon import ReconItem, ReconRun

#: runs listed by F5, as ``posterm recon list``'s default
RUNS_LISTED = 20


@dataclass(frozen=True)
class ReconRequest:
    """What the form asks for, checked: the file, the profile (None: by suffix), the
    period (None: the statement's own dates)."""

    statement: Path
    profile: str | None
    period: tuple[str, str] | None


def read_form(statement: str, profile: str, date_from: str, date_to: str) -> ReconRequest:
    """The form's fields as ``posterm reconcile``'s arguments; InputError (one line) for an
    empty file name or a bad date, as the CLI says it."""
    from app.errors import InputError
    from app.recon.run import parse_period
    if not statement.strip():
        raise InputError("对账单文件路径为空 / type the statement file's path")
    period = parse_period(date_from.strip() or None, date_to.strip() or None)
    return ReconRequest(Path(statement.strip()).expanduser(), profile.strip() or None, period)


def reconcile_job(request: ReconRequest, *, force: bool):
    def job(term: Terminal) -> RunView:
        from app.recon.run import reconcile
        # read here, in the flow's thread: never a forked reader under Textual's threads
        return reconcile(term, request.statement, profile=request.profile,
                         period=request.period, force=force, parallel=False)
    return job


def show_job(run_id: int | None):
    def job(term: Terminal) -> RunView:
        from app.recon.run import show
        return show(term, run_id)
    return job


def runs_job(term: Terminal) -> list[ReconRun]:
    from storage.recon import ReconBook
    return ReconBook(term.journal).runs(limit=RUNS_LISTED)


def resolve_job(item_id: int, note: str, password: str):
    def job(term: Terminal) -> ReconItem:
        from app.recon.run import resolve
        return resolve(term, item_id, note=note, supervisor_password=password)
    return job


def money(fen: int | None) -> str:
    from app.amount import format_yuan
    return "-" if fen is None else format_yuan(fen, grouped=True)


def short_class(cls: str, language: str) -> str:
    return say(f"rec_cls_{cls}", language)


def run_lines(view: RunView, language: str) -> tuple[str, str, str]:
    """(the run's line, the counts per class in two columns, the summary check)."""
    from app.recon.model import CLASSES
    from app.recon.report import SUMMARY_CHECK, class_label
    from hal.document import text_width
    zh = language == "zh"
    run = view.run
    head = (f"第{run.id}次 {run.file_name} ({run.profile}) 对账单 {run.statement_lines} 行 "
            f"本机 {run.journal_rows} 笔" if zh else
            f"run {run.id}: {run.file_name} ({run.profile}), {run.statement_lines} line(s), "
            f"{run.journal_rows} journal row(s)")
    if view.reused:
        head += "  " + say("rec_reused", language)
    cells = [(class_label(c, language), int(run.counts.get(c, 0))) for c in CLASSES]
    if run.other_terminal_lines:
        cells.append(("其他终端的行" if zh else "other terminals' lines",
                      run.other_terminal_lines))
    half = (len(cells) + 1) // 2

    def cell(label: str, n: int) -> str:
        return f"{label}{' ' * max(1, 30 - text_width(label))}{n:>7,}"

    rows = []
    for i in range(half):
        left = cell(*cells[i])
        right = cell(*cells[half + i]) if half + i < len(cells) else ""
        rows.append(f"{left}    {right}".rstrip())
    check_zh, check_en = SUMMARY_CHECK[run.summary_check]
    check = ("合计核对: " if zh else "summary check: ") + (check_zh if zh else check_en)
    if run.summary_check == "mismatch":
        check += "  " + (run.summary or {}).get("detail_zh" if zh else "detail", "")
    return head, "\n".join(rows), check


def item_lines(item: ReconItem, language: str) -> str:
    """A difference whole, as the detail box shows it (card masked as stored)."""
    from app.recon.match import STATUS_EN, STATUS_ZH
    from app.recon.report import class_label
    from app.txnlist import type_label
    from hal.document import text_width
    zh = language == "zh"
    status = STATUS_ZH if zh else STATUS_EN

    def cell(text: str, width: int) -> str:
        return " " * max(0, width - text_width(text)) + text

    def row(label: str, ours: str, theirs: str) -> str:
        return label + " " * max(1, 16 - text_width(label)) + cell(ours, 16) + cell(theirs, 20)

    where = [f"{say('rec_line', language)} {item.line_no or '-'}",
             f"{say('batch', language)} {'-' if item.batch is None else f'{item.batch:06d}'}",
             f"{say('stan', language)} {'-' if item.stan is None else f'{item.stan:06d}'}",
             f"RRN {item.rrn or '-'}"]
    lines = [f"#{item.id}  {class_label(item.cls, language)}",
             "  ".join(where),
             f"{item.txn_date or '-'} {item.txn_time or ''}  {item.card_masked or ''}  "
             f"{type_label(item.txn_type, language) if item.txn_type else ''}".rstrip(),
             row("", both("rec_col_journal", language), both("rec_col_statement", language)),
             row(both("rec_amount", language), money(item.journal_amount),
                 money(item.statement_amount)),
             row(both("rec_status", language),
                 status.get(item.journal_status, item.journal_status or "-"),
                 status.get(item.statement_status, item.statement_status or "-"))]
    if item.fee_expected is not None or item.fee_statement is not None:
        lines.append(row(both("rec_fee", language), money(item.fee_expected),
                         money(item.fee_statement)))
        lines.append(row(both("rec_net", language), money(item.net_expected),
                         money(item.net_statement)))
    lines.append(item.detail_zh if zh else item.detail)
    if item.resolved:
        lines.append(f"{both('rec_resolved', language)} ({item.resolved_by}, "
                     f"{(item.resolved_local or '')[:16]}): {item.resolution_note}")
    return "\n".join(lines)


class DifferenceScreen(ModalScreen[bool]):
    """One difference whole; a note and Enter resolve it (supervisor's password). Dismissed
    with True once resolved, False with Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "返回 Back")]

    DEFAULT_CSS = """
    DifferenceScreen { align: center middle; }
    DifferenceScreen #box { width: 76; height: auto; max-height: 20; border: thick $primary;
                            background: $surface; padding: 0 1; }
    DifferenceScreen #item { height: auto; }
    DifferenceScreen #note-hint { color: $text-muted; margin-top: 1; }
    DifferenceScreen #note { width: 1fr; }
    """

    def __init__(self, item: ReconItem, language: str) -> None:
        super().__init__()
        self.item = item
        self.language = language

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(item_lines(self.item, self.language), id="item")
            if not self.item.resolved:
                yield Static(both("rec_note_hint", self.language), id="note-hint")
                yield Input(id="note", max_length=200, compact=True,
                            placeholder=say("rec_note", self.language))
            yield Notice(id="item-notice")

    def on_mount(self) -> None:
        self.query_one("#box").border_title = both("rec_difference", self.language)
        notes = self.query("#note")
        if notes:
            notes.first().focus()

    def notice(self, text: str, kind: str = "error") -> None:
        self.query_one("#item-notice", Notice).say_line(text, kind)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.notice(both("rec_note_hint", self.language))
            return
        self.ask_supervisor(event.value.strip())

    def ask_supervisor(self, note: str, change_first: str | None = None) -> None:
        def given(password: str | None) -> None:
            if password is None:
                self.notice(both("cancelled", self.language), "")
                return
            started = self.app.run_flow(  # type: ignore[attr-defined]
                resolve_job(self.item.id, note, password), while_shown(self, self._resolved),
                while_shown(self, lambda line, exc: self._refused(note, line, exc)))
            self.notice(both("rec_resolving" if started else "busy", self.language), "")

        self.app.push_screen(SupervisorPrompt(self.language, "rec_resolve",
                                              change_first=change_first), given)

    def _resolved(self, item: ReconItem) -> None:
        self.item = item
        self.dismiss(True)

    def _refused(self, note: str, line: str, exc: Exception) -> None:
        from app.operators import PasswordChangeRequired
        if isinstance(exc, PasswordChangeRequired):
            self.ask_supervisor(note, change_first=line)
            return
        self.notice(line)

    def action_close(self) -> None:
        self.dismiss(False)


class ReconcileScreen(PostermScreen):
    TITLE_KEY = "reconcile"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "返回 Back"),
        Binding("f4", "rerun", "重新对账 Rerun"),
        Binding("f5", "runs", "历次 Runs"),
    ]

    DEFAULT_CSS = """
    ReconcileScreen .form { height: 1; padding: 0 1; }
    ReconcileScreen .form Static { width: auto; margin-right: 1; }
    ReconcileScreen #statement { width: 1fr; }
    ReconcileScreen #profile { width: 20; margin-right: 2; }
    ReconcileScreen #from, ReconcileScreen #to { width: 12; margin-right: 2; }
    ReconcileScreen #views { height: 1fr; }
    ReconcileScreen #result { padding: 0 1; }
    ReconcileScreen #run-head { height: 1; text-style: bold; }
    ReconcileScreen #counts { height: auto; }
    ReconcileScreen #check { height: auto; }
    ReconcileScreen #check.mismatch { color: $error; text-style: bold; }
    ReconcileScreen #items { height: 1fr; }
    ReconcileScreen #runs { height: 1fr; }
    ReconcileScreen #hint { color: $text-muted; padding: 1 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.view: RunView | None = None
        self.request: ReconRequest | None = None

    def compose_body(self) -> ComposeResult:
        from app.recon.profile import bundled_profiles
        profiles = bundled_profiles()
        with Horizontal(classes="form"):
            yield Static(self.both("rec_statement"))
            yield Input(id="statement", compact=True, placeholder="/path/statement.csv")
        with Horizontal(classes="form"):
            yield Static(self.both("rec_profile"))
            yield Input(id="profile", compact=True, placeholder=self.say("rec_by_suffix"),
                        suggester=SuggestFromList(profiles, case_sensitive=False))
            yield Static(self.both("rec_from"))
            yield Input(id="from", compact=True, placeholder="YYYY-MM-DD", max_length=10,
                        restrict=r"[0-9-]*")
            yield Static(self.both("rec_to"))
            yield Input(id="to", compact=True, placeholder="YYYY-MM-DD", max_length=10,
                        restrict=r"[0-9-]*")
        with ContentSwitcher(id="views", initial="start"):
            yield Static(self.both("rec_start_hint") + "\n"
                         + self.say("rec_profiles") + ": " + ", ".join(profiles), id="start")
            with Vertical(id="result"):
                yield Static(id="run-head")
                yield Static(id="counts")
                yield Static(id="check")
                yield DataTable(id="items", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Notice(id="notice")

    def on_mount(self) -> None:
        items = self.query_one("#items", DataTable)
        for key, column in (("id", "#"), ("class", "rec_col_class"), ("line", "rec_col_line"),
                            ("stan", "stan"), ("journal", "rec_col_journal"),
                            ("statement", "rec_col_statement"), ("state", "rec_col_state")):
            items.add_column(column if column == "#" else self.both(column), key=key)
        runs = self.query_one("#runs", DataTable)
        for key, column in (("run", "rec_col_run"), ("time", "rec_col_time"),
                            ("file", "rec_col_file"), ("matched", "rec_col_matched"),
                            ("open", "rec_col_open"), ("check", "rec_col_check")):
            runs.add_column(self.both(column), key=key)
        self.query_one("#statement", Input).focus()

    # -- shared pieces --------------------------------------------------------------------------

    @property
    def view_name(self) -> str:
        return self.query_one("#views", ContentSwitcher).current or "start"

    def switch(self, name: str) -> None:
        self.query_one("#views", ContentSwitcher).current = name

    def start(self, job: Callable[[Terminal], Any], done: Callable[[Any], None],
              words: str) -> None:
        if self.posterm.run_flow(job, *self.ends(done)):
            self.notice(self.both(words))
        else:
            self.notice(self.say("busy"))

    # -- a run ------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id in ("statement", "profile", "from", "to"):
            self.run_form(force=False)

    def run_form(self, *, force: bool) -> None:
        from app.errors import InputError
        value = {name: self.query_one(f"#{name}", Input).value
                 for name in ("statement", "profile", "from", "to")}
        try:
            request = read_form(value["statement"], value["profile"], value["from"],
                                value["to"])
        except InputError as exc:
            self.failed(str(exc))
            return
        self.request = request
        self.start(reconcile_job(request, force=force), self.show_run, "rec_running")

    def action_rerun(self) -> None:
        """F4: the same file reconciled again as a new run (``--force``)."""
        self.run_form(force=True)

    def show_run(self, view: RunView) -> None:
        """A run's counts, summary check and differences (newest state of its items)."""
        self.view = view
        head, counts, check = run_lines(view, self.language)
        self.query_one("#run-head", Static).update(head)
        self.query_one("#counts", Static).update(counts)
        check_widget = self.query_one("#check", Static)
        check_widget.update(check)
        check_widget.set_class(view.run.summary_check == "mismatch", "mismatch")
        table = self.query_one("#items", DataTable)
        table.clear()
        for item in view.items:
            table.add_row(Text(str(item.id), justify="right"),
                          short_class(item.cls, self.language),
                          Text(str(item.line_no or "-"), justify="right"),
                          "-" if item.stan is None else f"{item.stan:06d}",
                          Text(money(item.journal_amount), justify="right"),
                          Text(money(item.statement_amount), justify="right"),
                          self.say("rec_resolved" if item.resolved else "rec_open"),
                          key=str(item.id))
        self.switch("result")
        open_items = sum(1 for i in view.items if not i.resolved)
        if not view.items:
            self.notice(self.both("rec_all_matched") if view.run.statement_lines else
                        self.both("rec_no_lines"), "ok" if view.run.statement_lines else "")
        elif open_items:
            self.notice(f"{self.say('rec_open_count')} {open_items}/{len(view.items)} — "
                        f"{self.say('rec_enter_detail')}")
        else:
            self.notice(self.both("rec_all_resolved"), "ok")
        if view.items:
            table.focus()

    # -- a difference -------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key is None:
            return
        if event.data_table.id == "items" and self.view is not None:
            item = next(i for i in self.view.items if str(i.id) == key)
            self.app.push_screen(DifferenceScreen(item, self.language), self._difference_closed)
        elif event.data_table.id == "runs":
            self.start(show_job(int(key)), self.show_run, "rpt_reading")

    def _difference_closed(self, resolved: bool | None) -> None:
        if resolved and self.view is not None:
            row = self.query_one("#items", DataTable).cursor_row
            self.start(show_job(self.view.run.id),
                       lambda view: self._refreshed(view, row), "rpt_reading")

    def _refreshed(self, view: RunView, row: int) -> None:
        self.show_run(view)
        table = self.query_one("#items", DataTable)
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))
        self.notice(self.both("rec_done"), "ok")

    # -- earlier runs -------------------------------------------------------------------------

    def action_runs(self) -> None:
        if self.view_name == "runs":
            self.switch("result" if self.view is not None else "start")
            return
        self.start(runs_job, self.show_runs, "rpt_reading")

    def show_runs(self, runs: list[ReconRun]) -> None:
        from app.recon.report import SUMMARY_CHECK
        table = self.query_one("#runs", DataTable)
        table.clear()
        for r in runs:
            check_zh, check_en = SUMMARY_CHECK[r.summary_check]
            table.add_row(Text(str(r.id), justify="right"),
                          r.created_local[:16].replace("T", " "), r.file_name,
                          Text(f"{int(r.counts.get('matched', 0)):,}", justify="right"),
                          Text(str(r.unresolved), justify="right"),
                          check_zh if self.language == "zh" else check_en, key=str(r.id))
        self.switch("runs")
        table.focus()
        self.notice("" if runs else self.both("rec_no_runs"))

    def action_back(self) -> None:
        if self.view_name == "runs":
            self.action_runs()
        else:
            self.app.pop_screen()
