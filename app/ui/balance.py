"""The balance inquiry screen (余额查询): Enter, the card, the customer's PIN on the PIN pad,
then the balance on the screen beside the masked card number. Nothing is printed and
nothing journaled but the audit line, as for ``posterm balance`` (app.flows.balance)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.widgets import Button, Static

from app.ui.sale import CARD_TIMEOUT, TxnScreen

if TYPE_CHECKING:
    from app.emv.selection import Chooser
    from app.terminal import Terminal
    from app.ui.sale import Step


@dataclass(frozen=True)
class BalanceView:
    """The host's answer as the cashier sees it: never the clear PAN."""

    response_code: str
    message: str
    pan_masked: str
    balance: int | None


def balance_job(term: Terminal, step: Step, chooser: Chooser) -> BalanceView:
    from app.flows.balance import run_balance
    from sync.responses import rule
    result, masked = run_balance(term, timeout=CARD_TIMEOUT, chooser=chooser, on_step=step)
    r = rule(result.response_code)
    return BalanceView(result.response_code, r.zh if term.language == "zh" else r.en,
                       masked, result.balance)


def balance_lines(view: BalanceView, language: str) -> tuple[str, str, bool]:
    """(the headline, the details, whether the host gave a balance)."""
    from app.amount import format_yuan
    from app.ui.words import both, say
    if view.balance is None:
        return (f"{both('declined', language)}  {view.response_code} {view.message}",
                view.pan_masked, False)
    sign = "-" if view.balance < 0 else ""
    head = (f"{both('balance_is', language)}  "
            f"{sign}¥{format_yuan(abs(view.balance), grouped=True)}")
    return head, f"{view.pan_masked}\n{say('balance_not_printed', language)}", True


class BalanceScreen(TxnScreen):
    TITLE_KEY = "balance"

    DEFAULT_CSS = """
    BalanceScreen #hint { height: auto; padding: 1 1 0 1; }
    BalanceScreen #go { margin: 1 1; }
    """

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "reprint"          # a balance is never printed

    def compose_left(self) -> ComposeResult:
        yield Static(self.both("balance_hint"), id="hint")
        yield Button(self.both("balance_go"), id="go", variant="primary")

    def on_mount(self) -> None:
        super().on_mount()
        self.focus_input()

    def focus_input(self) -> None:
        self.query_one("#go", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id != "go":
            return
        if self.state not in ("input", "result"):
            self.notice(self.say("busy"))
            return
        self.clear_result()
        self.run_card_flow(balance_job)

    def card_flow_done(self, view: BalanceView) -> None:    # type: ignore[override]
        self.state = "result"
        self._stop_cancelling()
        self.step("")
        head, details, ok = balance_lines(view, self.language)
        head_widget = self.query_one("#head", Static)
        head_widget.update(head)
        head_widget.set_classes("approved" if ok else "declined")
        self.query_one("#details", Static).update(details)
        self.focus_input()
