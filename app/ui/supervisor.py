"""The supervisor's password (主管密码) for a supervisor-only action, asked in a small box
over the screen. Enter gives the password to the caller, Esc gives None. When the
supervisor's password must be changed first (an initial or expired one), the box asks for
the new one twice and changes it (app.operators.change_password) before handing it on."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from app.ui.base import Notice
from app.ui.words import both

SUPERVISOR_CODE = "99"


class SupervisorPrompt(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "取消 Cancel")]

    DEFAULT_CSS = """
    SupervisorPrompt { align: center middle; }
    SupervisorPrompt #box { width: 60; height: auto; border: thick $warning;
                            background: $surface; padding: 0 1; }
    SupervisorPrompt .change { display: none; }
    SupervisorPrompt.changing .change { display: block; }
    """

    def __init__(self, language: str, action: str, *, change_first: str | None = None) -> None:
        """``action`` is the words key of what is approved; ``change_first`` the line that
        says why the password must be changed (the box then asks for a new one)."""
        super().__init__()
        self.language = language
        self.action = action
        self.change_first = change_first

    def compose(self) -> ComposeResult:
        zh = self.language == "zh"
        with Vertical(id="box"):
            yield Static(f"{both(self.action, self.language)} — "
                         f"{both('supervisor', self.language)}")
            yield Static(both("supervisor_hint", self.language))
            yield Input(password=True, id="supervisor-password", max_length=32)
            yield Static("新密码（两次） New password (twice)" if zh else
                         "New password (twice) 新密码", classes="change")
            yield Input(password=True, id="new", max_length=32, classes="change")
            yield Input(password=True, id="again", max_length=32, classes="change")
            yield Notice(self.change_first or "", id="prompt-notice",
                         classes="error" if self.change_first else "")

    def on_mount(self) -> None:
        if self.change_first:
            self.add_class("changing")
        self.query_one("#supervisor-password", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "supervisor-password":
            if self.change_first:
                self.query_one("#new", Input).focus()
            elif event.value:
                self.dismiss(event.value)
        elif event.input.id == "new":
            self.query_one("#again", Input).focus()
        elif event.input.id == "again":
            self._change()

    def _change(self) -> None:
        from app.operators import change_password
        app = self.app
        old = self.query_one("#supervisor-password", Input).value
        new = self.query_one("#new", Input).value
        if new != self.query_one("#again", Input).value:
            self._say("两次输入的新密码不一致" if self.language == "zh"
                      else "the two new passwords differ")
            return

        def done(_op: object) -> None:
            self.dismiss(new)

        def failed(line: str, _exc: Exception) -> None:
            self._say(line)

        started = app.run_flow(  # type: ignore[attr-defined]
            lambda term: change_password(term, SUPERVISOR_CODE, old, new), done, failed)
        if not started:
            self._say(both("busy", self.language))

    def _say(self, line: str) -> None:
        self.query_one("#prompt-notice", Notice).say_line(line, "error")
        for name in ("new", "again"):
            self.query_one(f"#{name}", Input).value = ""
        self.query_one("#new", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)
