"""Manage (管理): a small menu of the terminal's own things — operators (the supervisor's),
the signed-on cashier's own password, the keys, the configuration and the devices.

Operator management is the supervisor's: the supervisor's password is asked (and checked,
audited as 'operator.manage') before the operators screen opens, and each change asks
app.operators to check it again, as ``posterm operator ...`` does."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from app.ui.base import Notice, PostermScreen
from app.ui.supervisor import SupervisorPrompt

if TYPE_CHECKING:
    from app.terminal import Terminal

#: (key, words key) in the order shown
ITEMS: tuple[tuple[str, str], ...] = (
    ("1", "m_operators"), ("2", "m_my_password"), ("3", "m_keys"), ("4", "m_config_view"),
    ("5", "m_devices"),
)

#: words key -> (module, screen class), imported when first opened
PARTS: dict[str, tuple[str, str]] = {
    "m_operators": ("app.ui.manage_operators", "OperatorsScreen"),
    "m_my_password": ("app.ui.manage_operators", "PasswordScreen"),
    "m_keys": ("app.ui.manage_keys", "KeysScreen"),
    "m_config_view": ("app.ui.manage_config", "ConfigScreen"),
    "m_devices": ("app.ui.manage_devices", "DevicesScreen"),
}


class ManagePart(PostermScreen):
    """What the manage screens share: Esc goes back (not while their own work is under
    way), one notice line."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "返回 Back")]

    working = False

    def start(self, job, done, failed=None) -> bool:
        """``job(term)`` off the event loop (app.run_flow); Esc waits for it. False, with
        the busy line, while another flow is under way."""
        def over(callback):
            def call(*values) -> None:
                self.working = False
                if self.is_attached:
                    callback(*values)
            return call

        if not self.posterm.run_flow(job, over(done), over(failed or self.failed)):
            self.notice(self.say("busy"))
            return False
        self.working = True
        return True

    def failed(self, line: str, _exc: Exception) -> None:
        self.notice(line, "error")

    def action_back(self) -> None:
        if self.working:
            self.notice(self.say("busy"))
            return
        self.app.pop_screen()


def manage_job(password: str):
    """The supervisor's password checked for operator management (audited)."""
    def job(term: Terminal) -> str:
        from app.operators import authorize_supervisor
        authorize_supervisor(term, password, action="operator.manage")
        return password
    return job


class ManageScreen(PostermScreen):
    TITLE_KEY = "manage"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(key, f"open('{word}')", show=False) for key, word in ITEMS),
        Binding("escape", "back", "返回 Back"),
    ]

    checking = False           # the supervisor's password is being checked

    DEFAULT_CSS = """
    ManageScreen OptionList { width: 44; height: auto; margin: 1 0 0 4; }
    ManageScreen #hint { height: auto; color: $text-muted; padding: 1 1 0 4; }
    """

    def compose_body(self) -> ComposeResult:
        yield OptionList(*(Option(f"{key}  {self.both(word)}", id=word) for key, word in ITEMS),
                         id="manage")
        yield Static(self.both("m_manage_hint"), id="hint")
        yield Notice(id="notice")

    def on_mount(self) -> None:
        self.query_one("#manage", OptionList).focus()

    def on_screen_resume(self) -> None:
        self.query_one("#manage", OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.action_open(event.option.id)

    def action_open(self, word: str) -> None:
        if self.posterm.busy:
            self.notice(self.say("busy"))
            return
        self.notice("")
        if word == "m_operators":
            self.ask_supervisor()
            return
        self.open_part(word)

    def open_part(self, word: str, *args: object) -> None:
        module_name, class_name = PARTS[word]
        module = importlib.import_module(module_name)
        self.app.push_screen(getattr(module, class_name)(*args))

    def ask_supervisor(self, change_first: str | None = None) -> None:
        """The supervisor's password, checked, then the operators screen holding it."""
        def given(password: str | None) -> None:
            if password is None:
                self.notice(self.both("cancelled"))
                return
            if self.posterm.run_flow(manage_job(password), self._approved, self._refused):
                self.checking = True
            else:
                self.notice(self.say("busy"))

        self.app.push_screen(SupervisorPrompt(self.language, "m_operators",
                                              change_first=change_first), given)

    def _approved(self, password: str) -> None:
        self.checking = False
        self.open_part("m_operators", password)

    def _refused(self, line: str, exc: Exception) -> None:
        from app.operators import PasswordChangeRequired
        self.checking = False
        if isinstance(exc, PasswordChangeRequired):
            self.ask_supervisor(change_first=line)
            return
        self.notice(line, "error")

    def action_back(self) -> None:
        if self.checking:
            self.notice(self.say("busy"))
            return
        self.app.pop_screen()
