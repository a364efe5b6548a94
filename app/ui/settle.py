"""The settlement screen (结算): the open batch's count and amount, the supervisor's
password, then app.flows.settle.settle as for ``posterm settle``, with the batch upload's
progress; the result (balanced or not), the report's preview and where it was saved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.widgets import Button, ProgressBar, Static

from app.ui.sale import TxnScreen
from app.ui.supervisor import SupervisorPrompt

if TYPE_CHECKING:
    from app.terminal import Terminal

REPORT_WIDTH = 32


@dataclass(frozen=True)
class BatchSummary:
    batch: int
    count: int
    amount: int


@dataclass(frozen=True)
class SettleView:
    """What the result shows: the outcome's JSON, the report's text, its files."""

    data: dict[str, Any]
    report: str | None
    files: list[str]


def batch_summary(term: Terminal) -> BatchSummary:
    journal = term.journal
    batch = journal.current_batch()
    rows = journal.settlements.counted(batch)
    return BatchSummary(batch, len(rows), sum(r.amount for r in rows))


def settle_job(password: str, progress):
    def job(term: Terminal) -> SettleView:
        from app.flows.settle import settle
        from app.operators import authorize_supervisor
        authorize_supervisor(term, password, action="settle",
                             detail={"batch": term.journal.current_batch()})
        outcome = settle(term, progress=progress)
        return SettleView(outcome.as_json(),
                          outcome.report.text(REPORT_WIDTH) if outcome.report else None,
                          [_shown_path(term, f) for f in outcome.files])
    return job


def _shown_path(term: Terminal, path) -> str:
    """A saved file as the cashier reads it: under the data directory, relative to it."""
    try:
        return str(path.relative_to(term.data_dir))
    except ValueError:
        return str(path)


def settle_lines(view: SettleView, language: str) -> tuple[str, str, bool]:
    """(the headline, the details, balanced) in the app's words."""
    from app.settle_commands import RESULT_LABELS
    d = view.data

    def label(result: str | None) -> str:
        zh, en = RESULT_LABELS.get(result or "error", RESULT_LABELS["error"])
        return f"{zh} {en}" if language == "zh" else f"{en} {zh}"

    word = "结算" if language == "zh" else "Settlement"
    if d["step"] == "failed":
        head = f"{word} {d['batch']:06d}: {label('error')}"
        return head, d["error"] or "", False
    head = f"{word} {d['batch']:06d}: {label(d['result'])}"
    details = []
    if d["host_result_after_upload"] is not None:
        details.append(("批上送" if language == "zh" else "uploaded")
                       + f" {d['uploaded']}/{d['upload_total']}, "
                       + ("上送后 " if language == "zh" else "after upload ")
                       + label(d["host_result_after_upload"]))
    if d["print_error"]:
        details.append(("报表未打印：" if language == "zh" else "report not printed: ")
                       + d["print_error"])
    if view.files:
        details.append(("已保存 " if language == "zh" else "saved ") + view.files[0])

    return head, "\n".join(details), bool(d["balanced"])


class SettleScreen(TxnScreen):
    TITLE_KEY = "settle"
    settled: SettleView | None = None

    DEFAULT_CSS = """
    SettleScreen #summary { height: auto; padding: 1 1; }
    SettleScreen #go { margin: 0 1; }
    SettleScreen #upload { display: none; margin: 1 1 0 1; }
    SettleScreen #upload.shown { display: block; }
    """

    def compose_left(self) -> ComposeResult:
        yield Static(id="summary")
        yield Button(self.both("settle"), id="go", variant="primary")
        yield ProgressBar(total=None, show_eta=False, id="upload")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#receipt").border_title = self.both("report")
        self.query_one("#go", Button).focus()
        self.load_summary()

    def load_summary(self) -> None:
        if not self.posterm.run_flow(batch_summary, self._summary, self.show_failure):
            self.set_timer(0.2, self.load_summary)

    def _summary(self, s: BatchSummary) -> None:
        from app.amount import format_yuan
        self.query_one("#summary", Static).update(
            f"{self.both('open_batch')} {s.batch:06d}\n"
            f"{self.say('count')} {s.count}   {self.say('total')} ¥{format_yuan(s.amount, grouped=True)}"
            f"\n\n{self.both('settle_hint')}")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "go":
            self.ask_supervisor()

    def ask_supervisor(self, change_first: str | None = None) -> None:
        if self.state not in ("input", "result") or self.posterm.busy:
            self.notice(self.say("busy"))
            return
        self.clear_result()

        def given(password: str | None) -> None:
            if password is None:
                self.notice(self.both("cancelled"))
                return
            self.state = "busy"
            self.step(self.both("settling"))
            if not self.posterm.run_flow(settle_job(password, self._progress_from_thread),
                                         self._done, self._failed):
                self.state = "input"
                self.notice(self.say("busy"))

        self.app.push_screen(SupervisorPrompt(self.language, "settle",
                                              change_first=change_first), given)

    def _progress_from_thread(self, phase: str, done: int, total: int) -> None:
        self.posterm.post(self._progress, phase, done, total)

    def _progress(self, phase: str, done: int, total: int) -> None:
        bar = self.query_one("#upload", ProgressBar)
        bar.add_class("shown")
        bar.update(total=total, progress=done)
        self.step(f"{self.both('upload') if phase == 'upload' else 'TC'} {done}/{total}")

    def _done(self, view: SettleView) -> None:
        self.show_settlement(view)

    def show_settlement(self, view: SettleView) -> None:
        """The settlement's result, its report beside it (``settled`` keeps the view)."""
        self.settled = view
        self.state = "result"
        self.step("")
        head, details, balanced = settle_lines(view, self.language)
        head_widget = self.query_one("#head", Static)
        head_widget.update(head)
        head_widget.set_classes("approved" if balanced else "declined")
        self.query_one("#details", Static).update(details)
        if view.report:
            self.query_one("#slip", Static).update(view.report)
            self.action_show("receipt")
        self.query_one("#go", Button).focus()
        self.load_summary()

    def _failed(self, line: str, exc: Exception) -> None:
        from app.operators import PasswordChangeRequired
        self.state = "result"
        self.step("")
        if isinstance(exc, PasswordChangeRequired):
            self.ask_supervisor(change_first=line)
            return
        self.show_failure(line, exc)
        self.query_one("#go", Button).focus()
