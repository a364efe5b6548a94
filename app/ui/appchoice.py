"""The application choice (选择应用): a card with several payment applications (a debit and
a credit one) lets the cardholder pick one. The EMV kernel asks through the flows'
``chooser`` in the flow's thread; the question is a small box over the screen (arrows and
Enter; Esc cancels the transaction, the card is powered off and nothing is journaled)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from app.errors import Refused
from app.ui.words import both

if TYPE_CHECKING:
    from app.emv.selection import Candidate, Chooser
    from app.ui.base import PostermScreen

#: Seconds the cardholder has to choose before the transaction gives up.
CHOICE_TIMEOUT = 120.0


class ChoiceCancelled(Refused):
    """The cardholder (or the cashier) cancelled at the application choice."""


class AppChoice(ModalScreen[int | None]):
    """The card's applications in priority order; Enter gives the index, Esc None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "取消 Cancel")]

    DEFAULT_CSS = """
    AppChoice { align: center middle; }
    AppChoice #choice-box { width: 52; height: auto; border: thick $accent;
                            background: $surface; padding: 0 1; }
    AppChoice #apps { height: auto; max-height: 8; }
    """

    def __init__(self, language: str, names: Sequence[str]) -> None:
        super().__init__()
        self.language = language
        self.names = list(names)

    def compose(self) -> ComposeResult:
        with Vertical(id="choice-box"):
            yield Static(both("choose_app", self.language))
            yield OptionList(*(Option(f"{i}  {name}", id=str(i - 1))
                               for i, name in enumerate(self.names, 1)), id="apps")
            yield Static(both("choose_app_keys", self.language))

    def on_mount(self) -> None:
        apps = self.query_one("#apps", OptionList)
        apps.highlighted = 0
        apps.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(int(str(event.option.id)))

    def action_cancel(self) -> None:
        self.dismiss(None)


def candidate_names(candidates: Sequence[Candidate]) -> list[str]:
    """What the cardholder reads for each application: its name and AID."""
    return [f"{c.display} ({c.aid})" for c in candidates]


def thread_chooser(screen: PostermScreen) -> Chooser:
    """A ``chooser`` for a flow running in a thread: asks in an :class:`AppChoice` box over
    ``screen`` and waits for the answer; ChoiceCancelled for Esc, the time running out or
    the app closing meanwhile."""
    app = screen.posterm
    language = screen.language

    def chooser(candidates: Sequence[Candidate]) -> int:
        answered = threading.Event()
        answer: list[int | None] = [None]

        def given(index: int | None) -> None:
            answer[0] = index
            answered.set()

        boxes: list[AppChoice] = []

        def ask() -> None:
            boxes.append(AppChoice(language, candidate_names(candidates)))
            app.push_screen(boxes[0], given)

        def take_away() -> None:
            if boxes and boxes[0].is_current:
                boxes[0].dismiss(None)

        app.post(ask)
        waited = 0.0
        while not answered.wait(0.2):
            waited += 0.2
            if not app.is_running:
                break
            if waited >= CHOICE_TIMEOUT:
                app.post(take_away)
                break
        if answer[0] is None:
            raise ChoiceCancelled(both("cancelled", language))
        return answer[0]

    return chooser
