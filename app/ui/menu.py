"""The main menu (主菜单): number keys or arrows and Enter."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from app.ui.base import Notice, PostermScreen

#: (key, words key, the command line that does it while the app has no screen for it)
ITEMS: tuple[tuple[str, str, str | None], ...] = (
    ("1", "sale", None),
    ("2", "void", None),
    ("3", "refund", "posterm refund"),
    ("4", "balance", "posterm balance"),
    ("5", "preauth", "posterm preauth"),
    ("6", "settle", None),
    ("7", "query", "posterm txns"),
    ("8", "reprint", "posterm reprint"),
    ("9", "reports", "posterm report last-settlement"),
    ("0", "reconcile", "posterm reconcile"),
    ("m", "manage", "posterm operator / posterm devices"),
)


class MenuScreen(PostermScreen):
    TITLE_KEY = "menu"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(key, f"open('{word}')", show=False) for key, word, _ in ITEMS),
        Binding("f10", "sign_off", "签退 Sign off"),
    ]

    DEFAULT_CSS = """
    MenuScreen OptionList { width: 44; height: auto; max-height: 15; margin: 1 0 0 4; }
    """

    def compose_body(self) -> ComposeResult:
        yield OptionList(*(Option(f"{key.upper()}  {self.both(word)}", id=word)
                           for key, word, _ in ITEMS), id="menu")
        yield Notice(id="notice")

    def on_mount(self) -> None:
        self.query_one("#menu", OptionList).focus()

    def on_screen_resume(self) -> None:
        self.query_one("#notice", Notice).say_line("")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.action_open(event.option.id)

    def action_open(self, word: str) -> None:
        notice = self.query_one("#notice", Notice)
        if self.posterm.busy:
            notice.say_line(self.say("busy"))
            return
        command = next(c for _, w, c in ITEMS if w == word)
        if command is not None:
            notice.say_line(f"{self.both(word)}: {self.say('not_yet')} {command}")
            return
        if word == "sale":
            from app.ui.sale import SaleScreen
            self.app.push_screen(SaleScreen())
        elif word == "void":
            from app.ui.void import VoidScreen
            self.app.push_screen(VoidScreen())
        elif word == "settle":
            from app.ui.settle import SettleScreen
            self.app.push_screen(SettleScreen())

    def action_sign_off(self) -> None:
        self.posterm.sign_off()
