"""The void screen (撤销): the original's STAN (typed, or picked from the open batch's
voidable transactions), the supervisor's password, then app.flows.void.run_void as for
``posterm void``; the result as for a sale."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.widgets import Input, OptionList, Static

from app.ui.outcome import TxnView, view_of
from app.ui.sale import TxnScreen
from app.ui.supervisor import SupervisorPrompt

if TYPE_CHECKING:
    from app.terminal import Terminal


def voidable(term: Terminal) -> list[tuple[int, str]]:
    """(STAN, one line) for each approved, not yet voided sale, pre-authorisation or
    completion of the open batch, newest first."""
    from app.amount import format_yuan
    from app.flows.void import VOID_OF
    journal = term.journal
    batch = journal.current_batch()
    return [(r.stan, (f"{r.stan:06d} ¥{format_yuan(r.amount):>9} {r.pan_masked}"
                      + ("" if r.txn_type == "sale" else f" {r.txn_type}")))
            for r in journal.transactions(batch=batch, limit=200)
            if r.txn_type in VOID_OF and r.state == "APPROVED" and r.voided_by is None]


def void_job(stan: int, password: str):
    def job(term: Terminal) -> TxnView:
        from app.flows.void import run_void
        return view_of(term, run_void(term, stan, supervisor_password=password))
    return job


class VoidScreen(TxnScreen):
    TITLE_KEY = "void"

    DEFAULT_CSS = """
    VoidScreen #stan { width: 30; }
    VoidScreen #hint, VoidScreen #list-title { height: auto; color: $text-muted; padding: 0 1; }
    VoidScreen #voidable { height: 8; }
    """

    def compose_left(self) -> ComposeResult:
        yield Static(self.both("stan_hint"), id="hint")
        yield Input(placeholder="000001", id="stan", restrict=r"[0-9]*", max_length=6)
        yield Static(self.both("voidable"), id="list-title")
        yield OptionList(id="voidable")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#stan", Input).focus()
        self.load_voidable()

    def load_voidable(self) -> None:
        if not self.posterm.run_flow(voidable, self._listed, self.show_failure):
            self.set_timer(0.2, self.load_voidable)

    def _listed(self, items: list[tuple[int, str]]) -> None:
        self.list_stans("#voidable", items)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "voidable" and event.option.id:
            self.query_one("#stan", Input).value = event.option.id
            self.ask_supervisor(int(event.option.id))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "stan":
            return
        if not event.value.strip():
            self.notice(self.both("stan_hint"), "error")
            return
        self.ask_supervisor(int(event.value))

    def ask_supervisor(self, stan: int, change_first: str | None = None) -> None:
        if self.state not in ("input", "result"):
            self.notice(self.say("busy"))
            return
        self.clear_result()

        def given(password: str | None) -> None:
            if password is None:
                self.notice(self.both("cancelled"))
                self.query_one("#stan", Input).focus()
                return
            self.state = "busy"
            self.step(self.both("asking_host"))
            if not self.posterm.run_flow(void_job(stan, password), self._done,
                                         lambda line, exc: self._failed(stan, line, exc)):
                self.state = "input"
                self.notice(self.say("busy"))

        self.app.push_screen(SupervisorPrompt(self.language, "void", change_first=change_first),
                             given)

    def _done(self, view: TxnView) -> None:
        self.show_result(view)
        self.query_one("#stan", Input).value = ""
        self.query_one("#stan", Input).focus()
        self.load_voidable()

    def _failed(self, stan: int, line: str, exc: Exception) -> None:
        from app.operators import PasswordChangeRequired
        self.state = "result"
        if isinstance(exc, PasswordChangeRequired):
            self.step("")
            self.ask_supervisor(stan, change_first=line)
            return
        self.show_failure(line, exc)
        self.query_one("#stan", Input).focus()
