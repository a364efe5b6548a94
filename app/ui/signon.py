"""Operator sign-on (操作员签到): operator number and password; a first or reset password
is changed here before the menu opens. Cashiers 01-98 sign on; the supervisor (99) only
approves (void, settlement) from the prompts of those screens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static

from app.ui.base import Notice, PostermScreen

if TYPE_CHECKING:
    from app.operators import Operator
    from app.terminal import Terminal


@dataclass(frozen=True)
class SignOnResult:
    operator: Operator
    change_needed: bool


def check_cashier_code(term: Terminal, code: str) -> str:
    """The code typed, if it is a cashier's (01-98); refusals as app.operators words them."""
    from app.operators import NotAllowed, role_of
    code = code.strip()
    if role_of(code, language=term.language) == "supervisor":
        raise NotAllowed("the supervisor takes no transactions: sign on a cashier 01-98",
                         "主管不能做交易，请签到收银员 01–98", code=code,
                         language=term.language)
    return code


def sign_on_job(code: str, password: str):
    def job(term: Terminal) -> SignOnResult:
        from app.operators import sign_on
        op = sign_on(term, check_cashier_code(term, code), password)
        if not op.needs_new_password:
            make_current(term, op)
        return SignOnResult(op, op.needs_new_password)
    return job


def change_job(code: str, old: str, new: str):
    def job(term: Terminal) -> SignOnResult:
        from app.operators import change_password
        op = change_password(term, code, old, new)
        make_current(term, op)
        return SignOnResult(op, False)
    return job


def make_current(term: Terminal, op: Operator) -> None:
    """The signed-on cashier is the one journaled on transactions from now on (the config,
    and the host session when it is already open)."""
    import dataclasses

    from app.operators import set_current_operator
    set_current_operator(term, op.code)
    session = term.__dict__.get("session")      # opened already: a fresh one reads config
    if session is not None:
        session.config = dataclasses.replace(session.config, operator=op.code)


class SignOnScreen(PostermScreen):
    TITLE_KEY = "signon"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "clear", "清除 Clear")]

    DEFAULT_CSS = """
    SignOnScreen #form { width: 64; height: auto; margin: 1 0 0 8; }
    SignOnScreen .row { height: 3; }
    SignOnScreen .row Label { width: 24; padding: 1 1 0 0; }
    SignOnScreen .row Input { width: 32; }
    SignOnScreen #change { height: auto; display: none; }
    SignOnScreen #change.shown { display: block; }
    SignOnScreen #first { margin: 1 0 0 8; width: 64; height: auto; border: round $warning;
                          padding: 0 1; display: none; }
    SignOnScreen #first.shown { display: block; }
    """

    def compose_body(self) -> ComposeResult:
        zh = self.language == "zh"
        with Vertical(id="form"):
            with Horizontal(classes="row"):
                yield Label(self.both("operator_no"))
                yield Input(placeholder="01", id="code", max_length=2, restrict=r"[0-9]*")
            with Horizontal(classes="row"):
                yield Label(self.both("password"))
                yield Input(password=True, id="password", max_length=32)
            with Vertical(id="change"):
                with Horizontal(classes="row"):
                    yield Label("新密码 New password" if zh else "New password 新密码")
                    yield Input(password=True, id="new", max_length=32)
                with Horizontal(classes="row"):
                    yield Label("再输一次 Again" if zh else "Again 再输一次")
                    yield Input(password=True, id="again", max_length=32)
            yield Notice(self.say("starting"), id="notice")
        yield Static(id="first")

    def on_mount(self) -> None:
        self.query_one("#code", Input).focus()
        self.posterm.when_ready(self._ready)

    def _ready(self) -> None:
        app = self.posterm
        notice = self.query_one("#notice", Notice)
        if app.boot_problem:
            notice.say_line(app.boot_problem, "error")
            return
        notice.say_line("")
        startup = app.startup
        if startup is not None and startup.first_start:
            from app.operators import DEFAULT_CASHIER_CODE, DEFAULT_CASHIER_PASSWORD
            first = self.query_one("#first", Static)
            if self.language == "zh":
                text = (f"{self.say('first_start')}\n"
                        f"收银员 {DEFAULT_CASHIER_CODE} 初始密码 {DEFAULT_CASHIER_PASSWORD}"
                        f"（首次签到时修改）\n"
                        f"主管 99 密码（只显示这一次，请记下）：{startup.supervisor_password}")
            else:
                text = (f"{self.say('first_start')}\n"
                        f"Cashier {DEFAULT_CASHIER_CODE}: initial password "
                        f"{DEFAULT_CASHIER_PASSWORD} (changed at the first sign-on)\n"
                        f"Supervisor 99 password (shown this once, write it down): "
                        f"{startup.supervisor_password}")
            first.update(text)
            first.add_class("shown")
            if not self.query_one("#code", Input).value:
                self.query_one("#code", Input).value = DEFAULT_CASHIER_CODE
                self.query_one("#password", Input).focus()

    # -- keys ---------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        field = event.input.id
        if field == "code":
            self.query_one("#password", Input).focus()
        elif field == "password":
            self._sign_on()
        elif field == "new":
            self.query_one("#again", Input).focus()
        elif field == "again":
            self._change()

    def action_clear(self) -> None:
        for name in ("code", "password", "new", "again"):
            self.query_one(f"#{name}", Input).value = ""
        self.query_one("#change").remove_class("shown")
        self.query_one("#notice", Notice).say_line("")
        self.query_one("#code", Input).focus()

    def reset(self) -> None:
        """Back from the menu after a sign-off: empty fields, the code first."""
        self.action_clear()

    # -- the work -------------------------------------------------------------------------------

    def _notice(self, text: str, kind: str = "") -> None:
        self.query_one("#notice", Notice).say_line(text, kind)

    def _sign_on(self) -> None:
        app = self.posterm
        if app.boot_problem:
            self._notice(app.boot_problem, "error")
            return
        if not app.ready:
            self._notice(self.say("starting"))
            app.when_ready(self._sign_on)
            return
        code = self.query_one("#code", Input).value
        password = self.query_one("#password", Input).value
        if not app.run_flow(sign_on_job(code, password), self._signed_on, self._refused):
            self._notice(self.say("busy"))

    def _change(self) -> None:
        new = self.query_one("#new", Input).value
        again = self.query_one("#again", Input).value
        if new != again:
            self._notice("两次输入的新密码不一致" if self.language == "zh"
                         else "the two new passwords differ", "error")
            self.query_one("#new", Input).value = ""
            self.query_one("#again", Input).value = ""
            self.query_one("#new", Input).focus()
            return
        code = self.query_one("#code", Input).value.strip()
        old = self.query_one("#password", Input).value
        self.posterm.run_flow(change_job(code, old, new), self._signed_on, self._refused)

    def _signed_on(self, result: SignOnResult) -> None:
        if result.change_needed:
            self.query_one("#change").add_class("shown")
            self._notice("须先修改初始密码：输入新密码两次" if self.language == "zh"
                         else "change the initial password first: type a new one twice")
            self.query_one("#new", Input).focus()
            return
        self.query_one("#first").remove_class("shown")
        self.action_clear()
        self.posterm.signed_on(result.operator)

    def _refused(self, line: str, exc: Exception) -> None:
        self._notice(line, "error")
        if self.query_one("#change").has_class("shown"):
            self.query_one("#new", Input).value = ""
            self.query_one("#again", Input).value = ""
            self.query_one("#new", Input).focus()
        else:
            self.query_one("#password", Input).value = ""
            self.query_one("#password", Input).focus()
