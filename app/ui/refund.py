"""The refund screen (退货): the amount, the original's reference number (RRN) and date as
``posterm refund AMOUNT --rrn RRN --date MMDD`` takes them, the supervisor's password,
then the card from the customer and the result as for a sale (slip preview, paper out:
F4 reprints). The refund itself is app.flows.refund.run_refund; the host refuses an
original it does not know (25) and more than the original's rest (13)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.widgets import Input

from app.errors import Refused
from app.ui.outcome import TxnView, view_of
from app.ui.sale import CARD_TIMEOUT, TxnScreen, amount_preview
from app.ui.supervisor import SupervisorPrompt

if TYPE_CHECKING:
    from app.emv.selection import Chooser
    from app.terminal import Terminal
    from app.ui.sale import CardJob, Step

FIELDS = ("amount", "rrn", "date")


class RefundQueued(Refused):
    """The refund went out and no answer came: it is queued (store and forward) and sent
    again until the host answers, so the cashier must not make it again."""

    def __init__(self, stan: int) -> None:
        super().__init__(f"STAN {stan:06d}")
        self.stan = stan


def queued_refund(term: Terminal, stan_before: int) -> int | None:
    """The STAN of a refund taken after ``stan_before`` that waits in the advice queue."""
    journal = term.journal
    for advice in journal.pending_advices():
        record = journal.get(advice.txn_id)
        if record.txn_type == "refund" and record.stan > stan_before:
            return record.stan
    return None


def refund_job(fen: int, rrn: str, date: str, password: str) -> CardJob:
    def job(term: Terminal, step: Step, chooser: Chooser) -> TxnView:
        from app.flows.refund import run_refund
        from sync.errors import SyncError
        before = term.journal.last_stan()
        try:
            outcome = run_refund(term, fen, rrn=rrn, date=date, supervisor_password=password,
                                 timeout=CARD_TIMEOUT, chooser=chooser, on_step=step)
        except SyncError:
            queued = queued_refund(term, before)
            if queued is not None:        # no answer (timeout, bad MAC): queued, not lost
                raise RefundQueued(queued) from None
            raise
        return view_of(term, outcome)
    return job


class RefundScreen(TxnScreen):
    TITLE_KEY = "refund"

    DEFAULT_CSS = """
    RefundScreen .field { width: 100%; border: round $border-blurred; height: 3; }
    RefundScreen .field:focus { border: round $border; }
    """

    def compose_left(self) -> ComposeResult:
        amount = Input(placeholder="0.00", id="amount", restrict=r"[0-9.]*", max_length=13,
                       classes="field")
        amount.border_title = self.both("refund_amount")
        amount.border_subtitle = "¥ 0.00"
        rrn = Input(placeholder="000000000000", id="rrn", restrict=r"[0-9]*", max_length=12,
                    classes="field")
        rrn.border_title = self.both("orig_rrn")
        date = Input(datetime.now().strftime("%m%d"), id="date", restrict=r"[0-9]*",
                     max_length=4, classes="field")
        date.border_title = self.both("orig_date")
        yield amount
        yield rrn
        yield date

    def on_mount(self) -> None:
        super().on_mount()
        self.focus_input()

    def focus_input(self) -> None:
        self.query_one("#amount", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "amount":
            event.input.border_subtitle = amount_preview(event.value)[1]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id not in FIELDS:
            return
        if self.state not in ("input", "result"):
            self.notice(self.say("busy"))
            return
        problem, field = self.check()
        if problem is not None and field is not None and \
                FIELDS.index(field) <= FIELDS.index(event.input.id):
            self.notice(problem, "error")
            self.query_one(f"#{field}", Input).focus()
            return
        if event.input.id != "date":
            self.notice("")
            self.focus_next()
            return
        self.ask_supervisor()

    def check(self) -> tuple[str | None, str | None]:
        """(what is wrong, with which field), the same checks as ``posterm refund``."""
        from app.errors import InputError
        from app.flows.refund import check_original
        amount = self.query_one("#amount", Input).value
        fen, why = amount_preview(amount)
        if fen is None:
            return (why if amount.strip() else self.both("refund_amount")), "amount"
        rrn = self.query_one("#rrn", Input).value
        date = self.query_one("#date", Input).value
        try:
            check_original(rrn, date)
        except InputError as exc:
            line = str(exc).removeprefix("--")        # the CLI's words, without its option
            return line, "rrn" if line.startswith("rrn") else "date"
        return None, None

    def ask_supervisor(self, change_first: str | None = None) -> None:
        fen = amount_preview(self.query_one("#amount", Input).value)[0]
        rrn = self.query_one("#rrn", Input).value
        date = self.query_one("#date", Input).value
        assert fen is not None
        self.clear_result()

        def given(password: str | None) -> None:
            if password is None:
                self.notice(self.both("cancelled"))
                self.query_one("#date", Input).focus()
                return
            self.run_card_flow(refund_job(fen, rrn, date, password), first_step="busy")

        self.app.push_screen(SupervisorPrompt(self.language, "refund",
                                              change_first=change_first), given)

    def card_flow_done(self, view: TxnView) -> None:
        for name in ("amount", "rrn"):
            self.query_one(f"#{name}", Input).value = ""
        super().card_flow_done(view)

    def card_flow_failed(self, line: str, exc: Exception) -> None:
        from app.operators import PasswordChangeRequired
        if isinstance(exc, PasswordChangeRequired):
            self.state = "result"
            self.step("")
            self.ask_supervisor(change_first=line)
            return
        if isinstance(exc, RefundQueued):
            line = f"{self.both('refund_queued')} ({exc})"
        super().card_flow_failed(line, exc)
        self.query_one("#date", Input).focus()      # the fields kept: Enter asks again
