"""The main menu (主菜单): number keys or arrows and Enter."""

from __future__ import annotations

import importlib
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from app.ui.base import Notice, PostermScreen

#: (key, words key) in the order shown
ITEMS: tuple[tuple[str, str], ...] = (
    ("1", "sale"), ("2", "void"), ("3", "refund"), ("4", "balance"), ("5", "preauth"),
    ("6", "settle"), ("7", "query"), ("8", "reprint"), ("9", "reports"), ("0", "reconcile"),
    ("m", "manage"),
)

#: words key -> (module, screen class); imported when first opened, so the app starts fast
SCREENS: dict[str, tuple[str, str]] = {
    "sale": ("app.ui.sale", "SaleScreen"),
    "void": ("app.ui.void", "VoidScreen"),
    "refund": ("app.ui.refund", "RefundScreen"),
    "balance": ("app.ui.balance", "BalanceScreen"),
    "preauth": ("app.ui.preauth", "PreauthScreen"),
    "settle": ("app.ui.settle", "SettleScreen"),
    "query": ("app.ui.query", "QueryScreen"),
    "reprint": ("app.ui.reprint", "ReprintScreen"),
    "reports": ("app.ui.reports", "ReportsScreen"),
    "reconcile": ("app.ui.reconcile", "ReconcileScreen"),
    "manage": ("app.ui.manage", "ManageScreen"),
}


class MenuScreen(PostermScreen):
    TITLE_KEY = "menu"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(key, f"open('{word}')", show=False) for key, word in ITEMS),
        Binding("f10", "sign_off", "签退 Sign off"),
    ]

    DEFAULT_CSS = """
    MenuScreen OptionList { width: 44; height: auto; max-height: 15; margin: 1 0 0 4; }
    """

    def compose_body(self) -> ComposeResult:
        yield OptionList(*(Option(f"{key.upper()}  {self.both(word)}", id=word)
                           for key, word in ITEMS), id="menu")
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
        module_name, class_name = SCREENS[word]
        module = importlib.import_module(module_name)
        self.app.push_screen(getattr(module, class_name)())

    def action_sign_off(self) -> None:
        self.posterm.sign_off()
