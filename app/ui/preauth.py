"""Pre-authorisation (预授权类交易): a small menu as on a counter terminal — 1 pre-auth (a
hold on the card, ``posterm preauth``), 2 completion (the final amount against an open
hold, ``posterm complete --preauth STAN``), 3 pre-auth void (a hold or a completion of
the open batch undone with the supervisor's password, ``posterm void STAN``). Each opens
its screen; Esc comes back here, and Esc again to the main menu."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from app.ui.base import Notice, PostermScreen
from app.ui.outcome import TxnView, view_of
from app.ui.sale import CARD_TIMEOUT, SaleScreen, TxnScreen, amount_preview
from app.ui.void import VoidScreen, voidable

if TYPE_CHECKING:
    from app.emv.selection import Chooser
    from app.terminal import Terminal
    from app.ui.sale import CardJob, Step
    from storage.journal import TransactionRecord

#: (key, words key, screen class name) in the order shown
CHOICES: tuple[tuple[str, str, str], ...] = (
    ("1", "preauth_hold", "PreauthHoldScreen"),
    ("2", "completion", "CompletionScreen"),
    ("3", "preauth_void", "PreauthVoidScreen"),
)


class PreauthScreen(PostermScreen):
    """The choice: number keys, or the arrows and Enter; Esc back to the main menu."""

    TITLE_KEY = "preauth_menu"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(key, f"open('{word}')", show=False) for key, word, _ in CHOICES),
        Binding("escape", "back", "返回 Back"),
    ]

    DEFAULT_CSS = """
    PreauthScreen OptionList { width: 44; height: auto; margin: 1 0 0 4; }
    PreauthScreen #keys { color: $text-muted; margin: 1 0 0 4; height: auto; }
    """

    def compose_body(self) -> ComposeResult:
        yield OptionList(*(Option(f"{key}  {self.both(word)}", id=word)
                           for key, word, _ in CHOICES), id="choices")
        yield Static(self.both("preauth_keys"), id="keys")
        yield Notice(id="notice")

    def on_mount(self) -> None:
        choices = self.query_one("#choices", OptionList)
        choices.highlighted = 0
        choices.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.action_open(event.option.id)

    def action_open(self, word: str) -> None:
        if self.posterm.busy:
            self.query_one("#notice", Notice).say_line(self.say("busy"))
            return
        screens = {w: cls for _, w, cls in CHOICES}
        self.app.push_screen(globals()[screens[word]]())

    def action_back(self) -> None:
        self.app.pop_screen()


def preauth_job(fen: int) -> CardJob:
    def job(term: Terminal, step: Step, chooser: Chooser) -> TxnView:
        from app.flows.preauth import run_preauth
        return view_of(term, run_preauth(term, fen, timeout=CARD_TIMEOUT, chooser=chooser,
                                         on_step=step))
    return job


class PreauthHoldScreen(SaleScreen):
    """预授权: the sale screen's amount and card, a hold instead of a sale."""

    TITLE_KEY = "preauth_hold"

    def amount_job(self, fen: int) -> CardJob:
        return preauth_job(fen)


def completed_holds(rows: list[TransactionRecord]) -> set[int | None]:
    """The ids of the holds among ``rows`` that an approved, unvoided completion took."""
    return {r.original_id for r in rows
            if r.txn_type == "completion" and r.state == "APPROVED" and r.voided_by is None}


def open_preauths(term: Terminal) -> list[tuple[int, int, str]]:
    """(STAN, amount, one line) of each approved pre-authorisation not voided nor completed
    here yet, newest first (any batch: a hold outlives the day's batch); the line ends with
    the hold's date and authorisation code, as its slip shows them."""
    from app.amount import format_yuan
    rows = term.journal.transactions(limit=500)
    completed = completed_holds(rows)
    return [(r.stan, r.amount, (f"{r.stan:06d} ¥{format_yuan(r.amount):>8} "
                                f"*{r.pan_masked[-4:]} {r.created_local[5:10]} "
                                f"{r.auth_code or '-'}"))
            for r in rows
            if r.txn_type == "preauth" and r.state == "APPROVED" and r.voided_by is None
            and r.id not in completed]


def completion_job(fen: int, preauth_stan: int) -> CardJob:
    def job(term: Terminal, step: Step, chooser: Chooser) -> TxnView:
        from app.flows.preauth import run_completion
        return view_of(term, run_completion(term, fen, preauth_stan=preauth_stan,
                                            timeout=CARD_TIMEOUT, chooser=chooser,
                                            on_step=step))
    return job


class CompletionScreen(TxnScreen):
    """预授权完成: the hold's STAN (typed, or picked from the open holds with the arrows),
    the final amount (the hold's, unless changed), then the card."""

    TITLE_KEY = "completion"

    def __init__(self) -> None:
        super().__init__()
        self.amounts: dict[int, int] = {}     # STAN -> the hold's amount, once listed

    DEFAULT_CSS = """
    CompletionScreen .field { width: 100%; border: round $border-blurred; height: 3; }
    CompletionScreen .field:focus { border: round $border; }
    CompletionScreen #open { height: 5; }
    CompletionScreen #list-title { height: 1; color: $text-muted; }
    """

    def compose_left(self) -> ComposeResult:
        stan = Input(placeholder="000001", id="stan", restrict=r"[0-9]*", max_length=6,
                     classes="field")
        stan.border_title = self.both("preauth_stan")
        yield stan
        yield Static(self.both("open_preauths"), id="list-title")
        yield OptionList(id="open")
        amount = Input(placeholder="0.00", id="amount", restrict=r"[0-9.]*", max_length=13,
                       classes="field")
        amount.border_title = self.both("completion_amount")
        amount.border_subtitle = "¥ 0.00"
        yield amount

    def on_mount(self) -> None:
        super().on_mount()
        self.focus_input()
        self.load_open()

    def focus_input(self) -> None:
        self.query_one("#stan", Input).focus()

    def load_open(self) -> None:
        if not self.posterm.run_flow(open_preauths, self._listed, self.show_failure):
            self.set_timer(0.2, self.load_open)

    def _listed(self, items: list[tuple[int, int, str]]) -> None:
        self.amounts = {stan: amount for stan, amount, _ in items}
        self.list_stans("#open", [(stan, text) for stan, _, text in items])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "open" and event.option.id:
            self.pick(int(event.option.id))

    def pick(self, stan: int) -> None:
        """The hold's STAN and amount filled in; the cursor on the amount."""
        from app.amount import format_yuan
        self.query_one("#stan", Input).value = str(stan)
        amount = self.query_one("#amount", Input)
        if stan in self.amounts:
            amount.value = format_yuan(self.amounts[stan])
        amount.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "amount":
            event.input.border_subtitle = amount_preview(event.value)[1]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id not in ("stan", "amount"):
            return
        if self.state not in ("input", "result"):
            self.notice(self.say("busy"))
            return
        stan_text = self.query_one("#stan", Input).value
        if not stan_text:
            self.notice(self.both("preauth_stan"), "error")
            self.focus_input()
            return
        if event.input.id == "stan":
            self.notice("")
            self.pick(int(stan_text))
            return
        fen, why = amount_preview(event.value)
        if fen is None:
            self.notice(why if event.value.strip() else self.both("completion_amount"), "error")
            return
        self.clear_result()
        self.run_card_flow(completion_job(fen, int(stan_text)))

    def card_flow_done(self, view: TxnView) -> None:
        for name in ("stan", "amount"):
            self.query_one(f"#{name}", Input).value = ""
        super().card_flow_done(view)
        self.load_open()


def preauth_voidable(term: Terminal) -> list[tuple[int, str]]:
    """The void screen's list, holds and completions only (a completed hold is voided by
    voiding its completion)."""
    journal = term.journal
    rows = journal.transactions(batch=journal.current_batch(), limit=200)
    completed = completed_holds(rows)
    kinds = {r.stan for r in rows
             if r.txn_type in ("preauth", "completion") and r.id not in completed}
    return [(stan, text) for stan, text in voidable(term) if stan in kinds]


class PreauthVoidScreen(VoidScreen):
    """预授权撤销: the void screen (STAN or the list, the supervisor) over holds and
    completions; ``posterm void STAN`` does the same."""

    TITLE_KEY = "preauth_void"

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#list-title", Static).update(self.both("preauth_voidable"))

    def load_voidable(self) -> None:
        if not self.posterm.run_flow(preauth_voidable, self._listed, self.show_failure):
            self.set_timer(0.2, self.load_voidable)
