"""Operators (操作员管理), the supervisor's: the list as ``posterm operator list`` gives it,
and add a cashier, reset a password (changed at the next sign-on), unlock, remove — the
functions of app.operators that ``posterm operator add|reset|unlock|remove`` call, with the
supervisor's password given when the screen was opened. And any signed-on cashier's own
password (修改本人密码), as ``posterm operator passwd`` changes it."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static

from app.ui.base import Notice
from app.ui.manage import ManagePart
from app.ui.words import both, say

if TYPE_CHECKING:
    from app.operators import Operator
    from app.terminal import Terminal


def operator_state(op: Operator, language: str) -> str:
    """What ``posterm operator list`` says of an operator's state."""
    if not op.active:
        return say("m_op_removed", language)
    if op.locked_until:
        return f"{say('m_op_locked', language)} {op.locked_until[:16].replace('T', ' ')}"
    if op.must_change:
        return say("m_op_must_change", language)
    if op.password_expired:
        return say("m_op_expired", language)
    return say("m_op_active", language)


def list_job(term: Terminal) -> list[Operator]:
    from app.operators import list_operators
    return list_operators(term)


#: a form's fields: (input id, words key, a password?, allowed characters, longest)
FIELDS: dict[str, tuple[str, str, bool, str | None, int]] = {
    "code": ("code", "m_code", False, r"[0-9]*", 2),
    "name": ("name", "m_name", False, None, 20),
    "first": ("password", "m_first_password", True, None, 32),
    "old": ("old", "m_old_password", True, None, 32),
    "new": ("password", "m_new_password", True, None, 32),
    "again": ("again", "m_again", True, None, 32),
}


class OperatorForm(ModalScreen[dict[str, str] | None]):
    """A few fields in a box over the screen; Enter goes to the next, the last one hands
    the values back (the two passwords must agree), Esc gives None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "取消 Cancel")]

    DEFAULT_CSS = """
    OperatorForm { align: center middle; }
    OperatorForm #box { width: 62; height: auto; border: thick $primary; background: $surface;
                        padding: 0 1; }
    OperatorForm .row { height: 1; margin: 1 0 0 0; }
    OperatorForm .row Label { width: 26; }
    OperatorForm .row Input { width: 30; }
    """

    def __init__(self, language: str, title: str, fields: tuple[str, ...]) -> None:
        super().__init__()
        self.language = language
        self.title_text = title
        self.fields = fields

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(Text(self.title_text), id="form-title")
            for name in self.fields:
                field_id, word, secret, restrict, longest = FIELDS[name]
                with Horizontal(classes="row"):
                    yield Label(both(word, self.language))
                    yield Input(id=field_id, password=secret, restrict=restrict,
                                max_length=longest, compact=True)
            yield Static(both("m_form_hint", self.language), classes="hint")
            yield Notice(id="form-notice")

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        inputs = list(self.query(Input))
        at = inputs.index(event.input)
        if not event.value.strip():
            self.query_one("#form-notice", Notice).say_line(
                both(FIELDS[self.fields[at]][1], self.language), "error")
            return
        if at + 1 < len(inputs):
            inputs[at + 1].focus()
            return
        values = {i.id or "": i.value for i in inputs}
        if "again" in values and values["again"] != values["password"]:
            self.query_one("#form-notice", Notice).say_line(
                say("m_passwords_differ", self.language), "error")
            for name in ("password", "again"):
                self.query_one(f"#{name}", Input).value = ""
            self.query_one("#password", Input).focus()
            return
        values.pop("again", None)
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmBox(ModalScreen[bool]):
    """One question; Enter says yes, Esc no."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "no", "取消 Cancel"),
                                             Binding("enter", "yes", "确认 OK")]
    DEFAULT_CSS = """
    ConfirmBox { align: center middle; }
    ConfirmBox #box { width: 62; height: auto; border: thick $error; background: $surface;
                      padding: 0 1; }
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        yield Static(Text(self.text), id="box")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class OperatorsScreen(ManagePart):
    TITLE_KEY = "m_operators"
    BINDINGS: ClassVar[list[BindingType]] = [
        *ManagePart.BINDINGS,
        Binding("f2", "add", "新增 Add"),
        Binding("f3", "reset", "重置 Reset"),
        Binding("f4", "unlock", "解锁 Unlock"),
        Binding("f8", "remove", "删除 Remove"),
    ]

    DEFAULT_CSS = """
    OperatorsScreen #operators { height: 1fr; margin: 0 1; }
    OperatorsScreen #hint { height: auto; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, supervisor_password: str) -> None:
        super().__init__()
        self._supervisor = supervisor_password
        self.operators: list[Operator] = []

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="operators", cursor_type="row", zebra_stripes=True)
        yield Static(self._hint(), id="hint")
        yield Notice(id="notice")

    def _hint(self) -> str:
        words = ("m_add_cashier", "m_reset_password", "m_unlock", "m_remove")
        return "  ".join(f"{key} {self.say(w)}" for key, w in zip(("F2", "F3", "F4", "F8"),
                                                                     words, strict=True))

    def on_mount(self) -> None:
        table = self.query_one("#operators", DataTable)
        role = 6 if self.language == "zh" else 10
        for word, width in (("m_code", 4), ("m_role", role), ("m_name", 26 - role),
                            ("m_state", 22), ("m_last_signon", 16)):
            table.add_column(self.say(word), width=width, key=word)
        table.focus()
        self.load()

    def load(self) -> None:
        if not self.start(list_job, self.show_operators):
            self.set_timer(0.2, self.load)

    def show_operators(self, ops: list[Operator]) -> None:
        self.operators = ops
        table = self.query_one("#operators", DataTable)
        at = table.cursor_row
        table.clear()
        here = self.posterm.operator.code if self.posterm.operator else ""
        for op in ops:
            role = self.say("m_supervisor_role" if op.is_supervisor else "m_cashier")
            last = (op.last_signon or "-")[:16].replace("T", " ")
            table.add_row(("*" if op.code == here else " ") + op.code, role, Text(op.name),
                          operator_state(op, self.language), last, key=op.code)
        if ops:
            table.move_cursor(row=min(at, len(ops) - 1))

    def picked(self) -> Operator | None:
        table = self.query_one("#operators", DataTable)
        if not self.operators or table.cursor_row < 0:
            self.notice(self.both("m_pick_operator"), "error")
            return None
        return self.operators[min(table.cursor_row, len(self.operators) - 1)]

    # -- the actions ----------------------------------------------------------------------------

    def _run(self, job, done_line) -> None:
        def done(op: Operator) -> None:
            self.notice(done_line(op), "ok")
            self.load()
        self.notice("")
        self.start(job, done)

    def action_add(self) -> None:
        def given(values: dict[str, str] | None) -> None:
            if values is None:
                self.notice(self.both("cancelled"))
                return
            code, name, password = values["code"], values["name"], values["password"]

            def job(term: Terminal) -> Operator:
                from app.operators import add_operator
                return add_operator(term, code, name, password,
                                    supervisor_password=self._supervisor)
            self._run(job, lambda op: (
                f"操作员 {op.code} {op.name} 已添加，首次登录须修改密码" if self.language == "zh"
                else f"operator {op.code} ({op.name}) added; the password must be changed at "
                     "the first sign-on"))

        self.app.push_screen(OperatorForm(self.language, self.both("m_add_cashier"),
                                          ("code", "name", "first", "again")), given)

    def action_reset(self) -> None:
        op = self.picked()
        if op is None:
            return
        code = op.code

        def given(values: dict[str, str] | None) -> None:
            if values is None:
                self.notice(self.both("cancelled"))
                return
            password = values["password"]

            def job(term: Terminal) -> Operator:
                from app.operators import reset_password
                return reset_password(term, code, password,
                                      supervisor_password=self._supervisor)
            self._run(job, lambda op: (
                f"操作员 {op.code} 密码已重置，下次登录须修改" if self.language == "zh"
                else f"operator {op.code}: password reset; it must be changed at the next "
                     "sign-on"))

        self.app.push_screen(OperatorForm(self.language,
                                          f"{self.both('m_reset_password')} — {code} {op.name}",
                                          ("new", "again")), given)

    def action_unlock(self) -> None:
        op = self.picked()
        if op is None:
            return
        code = op.code

        def job(term: Terminal) -> Operator:
            from app.operators import unlock
            return unlock(term, code, supervisor_password=self._supervisor)
        self._run(job, lambda op: (f"操作员 {op.code} 已解锁" if self.language == "zh"
                                   else f"operator {op.code} unlocked"))

    def action_remove(self) -> None:
        op = self.picked()
        if op is None:
            return
        code = op.code
        here = self.posterm.operator
        if here is not None and here.code == code:
            # the cashier at this terminal: its next transactions would carry a removed code
            self.notice(f"{self.say('operator')} {code} {self.say('m_signed_on_here')}",
                        "error")
            return

        def job(term: Terminal) -> Operator:
            from app.operators import remove_operator
            return remove_operator(term, code, supervisor_password=self._supervisor)

        if op.is_supervisor:                # app.operators says why not, with no question
            self._run(job, lambda op: "")
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                self.notice(self.both("cancelled"))
                return
            self._run(job, lambda op: (f"操作员 {op.code} 已删除" if self.language == "zh"
                                       else f"operator {op.code} removed"))

        self.app.push_screen(ConfirmBox(f"{self.both('m_remove')}: {code} {op.name}\n\n"
                                        f"{self.both('m_confirm_remove')}"), answered)

    def action_back(self) -> None:
        if not self.working:
            self._supervisor = ""      # the supervisor's password is not kept past the screen
        super().action_back()


class PasswordScreen(ManagePart):
    """The signed-on cashier changes their own password: the current one, the new twice."""

    TITLE_KEY = "m_my_password"

    DEFAULT_CSS = """
    PasswordScreen #form { width: 64; height: auto; margin: 1 0 0 4; }
    PasswordScreen .row { height: 1; margin: 1 0 0 0; }
    PasswordScreen .row Label { width: 26; }
    PasswordScreen .row Input { width: 32; }
    PasswordScreen #who { height: 1; }
    """

    def compose_body(self) -> ComposeResult:
        op = self.posterm.operator
        with Vertical(id="form"):
            yield Static(Text(f"{self.both('operator_no')} {op.code if op else '--'}"
                              f"  {op.name if op else ''}"), id="who")
            for name in ("old", "new", "again"):
                field_id, word, secret, restrict, longest = FIELDS[name]
                with Horizontal(classes="row"):
                    yield Label(self.both(word))
                    yield Input(id=field_id, password=secret, restrict=restrict,
                                max_length=longest, compact=True)
            yield Static(self.both("m_form_hint"), classes="hint")
        yield Notice(id="notice")

    def on_mount(self) -> None:
        self.query_one("#old", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        order = ["old", "password", "again"]
        at = order.index(event.input.id or "old")
        if not event.value:
            self.notice(self.both(FIELDS[("old", "new", "again")[at]][1]), "error")
            return
        if at < 2:
            self.query_one(f"#{order[at + 1]}", Input).focus()
            return
        self._change()

    def _clear(self, *names: str) -> None:
        for name in names:
            self.query_one(f"#{name}", Input).value = ""
        self.query_one(f"#{names[0]}", Input).focus()

    def _change(self) -> None:
        op = self.posterm.operator
        if op is None:
            return
        old = self.query_one("#old", Input).value
        new = self.query_one("#password", Input).value
        if new != self.query_one("#again", Input).value:
            self.notice(self.say("m_passwords_differ"), "error")
            self._clear("password", "again")
            return
        code = op.code

        def job(term: Terminal) -> Operator:
            from app.operators import change_password
            return change_password(term, code, old, new)
        self.start(job, self._changed, self._refused)

    def _changed(self, op: Operator) -> None:
        self.posterm.operator = op
        self._clear("old", "password", "again")
        self.notice(f"{self.say('operator')} {op.code} {self.both('m_password_changed')}", "ok")

    def _refused(self, line: str, exc: Exception) -> None:
        from app.operators import PasswordRejected
        self.notice(line, "error")
        if isinstance(exc, PasswordRejected):
            self._clear("password", "again")
        else:
            self._clear("old", "password", "again")
