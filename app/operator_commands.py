"""``posterm signin CODE`` (操作员登录) and ``posterm operator list|add|passwd|reset|unlock|remove``.

Registered on the main group by ``app.cli``. A password comes from its option, else an
environment variable (``POSTERM_OPERATOR_PASSWORD`` for the operator's own,
``POSTERM_SUPERVISOR_PASSWORD`` for the supervisor's), else a hidden prompt on a terminal,
else the command stops with exit 2. Exit codes: 0 done, 1 refused (wrong password, locked,
a password that must be changed, the policy), 2 usage (a bad code, a missing password).
"""

from __future__ import annotations

import os
import sys

import click

from app.cli import (
    _json_option,
    _open_terminal,
    _print_json,
    _supervisor_option,
    _supervisor_password,
    cli,
    guarded,
)

OPERATOR_PASSWORD_ENV = "POSTERM_OPERATOR_PASSWORD"


def _secret(given: str | None, *, env: str | None, prompt: str, confirm: bool,
            missing: str) -> str:
    """An option's value, else the environment's, else a hidden prompt on a terminal."""
    from app.errors import InputError
    value = given or (os.environ.get(env) if env else None)
    if value:
        return value
    if sys.stdin.isatty():
        return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    raise InputError(missing)


def _say(term, zh: str, en: str) -> str:
    return zh if term.language == "zh" else en


def _code_arg(code: str) -> str:
    """Validate CODE before any password is asked for (exit 2 for a bad one)."""
    from app.operators import role_of
    role_of(code)
    return code


def _pad(text: str, width: int) -> str:
    """Left-aligned in ``width`` terminal cells (a Chinese character takes two)."""
    from hal.document import text_width
    return text + " " * max(0, width - text_width(text))


def _state(term, op) -> str:
    if not op.active:
        return _say(term, "已删除", "removed")
    if op.locked_until:
        return _say(term, f"锁定至 {op.locked_until[:16].replace('T', ' ')}",
                    f"locked until {op.locked_until[:16].replace('T', ' ')}")
    if op.must_change:
        return _say(term, "须改初始密码", "must change password")
    if op.password_expired:
        return _say(term, "密码已过期", "password expired")
    return _say(term, "正常", "active")


def _done(term, op, as_json: bool, zh: str, en: str) -> None:
    if as_json:
        _print_json({"result": "ok", "operator": op.as_json()})
    else:
        click.echo(_say(term, zh, en))


# ------------------------------------------------------------------ signin

@cli.command()
@click.argument("code")
@click.option("--password", help=f"The operator's password (or {OPERATOR_PASSWORD_ENV}, "
                                  "or a prompt).")
@click.option("--new-password", help="A new password, when the current one must be changed "
                                     "(initial, reset or expired); default: a prompt.")
@_json_option
@click.pass_context
@guarded
def signin(ctx: click.Context, code: str, password: str | None, new_password: str | None,
           as_json: bool) -> None:
    """Operator sign-on (操作员登录): check CODE's password and make a cashier the operator
    recorded on the next transactions (terminal.operator)."""
    from app.operators import (
        change_password,
        password_change_required,
        set_current_operator,
        sign_on,
    )
    code = _code_arg(code)
    password = _secret(password, env=OPERATOR_PASSWORD_ENV,
                       prompt=f"operator {code} password (操作员密码)", confirm=False,
                       missing=f"this needs operator {code}'s password: --password or "
                               f"{OPERATOR_PASSWORD_ENV}")
    term = _open_terminal(ctx)
    op = sign_on(term, code, password)
    changed = False
    if op.needs_new_password or new_password is not None:
        if new_password is None and not sys.stdin.isatty():
            refusal = password_change_required(term, op)
            raise type(refusal)(f"{refusal.en}: posterm signin {code} --new-password NEW",
                                f"{refusal.zh}（用 --new-password 设新密码）", code=code,
                                language=term.language, reason=refusal.reason)
        new_password = _secret(new_password, env=None, prompt="new password (新密码)",
                               confirm=True, missing="")
        op = change_password(term, code, password, new_password)
        changed = True
    if not op.is_supervisor:
        set_current_operator(term, code)
    if as_json:
        _print_json({"result": "ok", "operator": op.as_json(), "password_changed": changed,
                     "current_operator": term.config["terminal"]["operator"]})
        return
    if changed:
        click.echo(_say(term, f"操作员 {code} 密码已修改", f"operator {code}: password changed"))
    if op.is_supervisor:
        click.echo(_say(term, f"主管 {code} 登录成功", f"supervisor {code} signed on"))
    else:
        click.echo(_say(term, f"操作员 {code} {op.name} 登录成功",
                        f"operator {code} ({op.name}) signed on"))


# ------------------------------------------------------------------ operator ...

@cli.group()
def operator() -> None:
    """Operators (操作员): cashiers 01-98 and the supervisor 99 (docs/operators.md)."""


@operator.command("list")
@_json_option
@click.pass_context
@guarded
def operator_list(ctx: click.Context, as_json: bool) -> None:
    """Every operator: role, name, state (locked, must change, removed), last sign-on."""
    from app.operators import current_operator, list_operators
    term = _open_terminal(ctx)
    ops = list_operators(term)
    current = current_operator(term)
    if as_json:
        _print_json({"operators": [op.as_json() for op in ops], "current_operator": current})
        return
    for op in ops:
        role = (_say(term, "主管", "supervisor") if op.is_supervisor
                else _say(term, "收银员", "cashier"))
        last = (op.last_signon or "-")[:16].replace("T", " ")
        mark = "*" if op.code == current else " "
        click.echo(f"{mark}{op.code}  {_pad(role, 10)} {_pad(op.name, 20)} "
                   f"{_pad(_state(term, op), 22)} "
                   + _say(term, f"上次登录 {last}", f"last sign-on {last}"))


@operator.command("add")
@click.argument("code")
@click.option("--name", required=True, help="The cashier's name (printed nowhere secret).")
@click.option("--password", help="The first password (must be changed at the first "
                                 "sign-on); default: a prompt.")
@_supervisor_option
@_json_option
@click.pass_context
@guarded
def operator_add(ctx: click.Context, code: str, name: str, password: str | None,
                 supervisor: str | None, as_json: bool) -> None:
    """Add cashier CODE (01-98) with a first password (supervisor)."""
    from app.operators import add_operator
    code = _code_arg(code)
    password = _secret(password, env=None, prompt=f"first password for {code} (初始密码)",
                       confirm=True, missing="give the first password: --password")
    sup = _supervisor_password(supervisor)
    term = _open_terminal(ctx)
    op = add_operator(term, code, name, password, supervisor_password=sup)
    _done(term, op, as_json, f"操作员 {code} {op.name} 已添加，首次登录须修改密码",
          f"operator {code} ({op.name}) added; the password must be changed at the first "
          "sign-on")


@operator.command("passwd")
@click.argument("code")
@click.option("--old", "old", help=f"The current password (or {OPERATOR_PASSWORD_ENV}, or a "
                                   "prompt).")
@click.option("--new", "new", help="The new password (default: a prompt).")
@_json_option
@click.pass_context
@guarded
def operator_passwd(ctx: click.Context, code: str, old: str | None, new: str | None,
                    as_json: bool) -> None:
    """Change CODE's own password (the supervisor's too): the old one, then the new."""
    from app.operators import change_password
    code = _code_arg(code)
    old = _secret(old, env=OPERATOR_PASSWORD_ENV, prompt=f"{code} current password (原密码)",
                  confirm=False, missing="this needs the current password: --old or "
                                         f"{OPERATOR_PASSWORD_ENV}")
    new = _secret(new, env=None, prompt="new password (新密码)", confirm=True,
                  missing="this needs the new password: --new")
    term = _open_terminal(ctx)
    op = change_password(term, code, old, new)
    _done(term, op, as_json, f"操作员 {code} 密码已修改", f"operator {code}: password changed")


@operator.command("reset")
@click.argument("code")
@click.option("--password", help="The password to set (must be changed at the next "
                                 "sign-on); default: a prompt.")
@_supervisor_option
@_json_option
@click.pass_context
@guarded
def operator_reset(ctx: click.Context, code: str, password: str | None,
                   supervisor: str | None, as_json: bool) -> None:
    """Set cashier CODE's password and lift its lock (supervisor)."""
    from app.operators import reset_password
    code = _code_arg(code)
    password = _secret(password, env=None, prompt=f"new password for {code} (新密码)",
                       confirm=True, missing="give the password to set: --password")
    sup = _supervisor_password(supervisor)
    term = _open_terminal(ctx)
    op = reset_password(term, code, password, supervisor_password=sup)
    _done(term, op, as_json, f"操作员 {code} 密码已重置，下次登录须修改",
          f"operator {code}: password reset; it must be changed at the next sign-on")


@operator.command("unlock")
@click.argument("code")
@_supervisor_option
@_json_option
@click.pass_context
@guarded
def operator_unlock(ctx: click.Context, code: str, supervisor: str | None,
                    as_json: bool) -> None:
    """Lift cashier CODE's lock before its time (supervisor)."""
    from app.operators import unlock
    code = _code_arg(code)
    sup = _supervisor_password(supervisor)
    term = _open_terminal(ctx)
    op = unlock(term, code, supervisor_password=sup)
    _done(term, op, as_json, f"操作员 {code} 已解锁", f"operator {code} unlocked")


@operator.command("remove")
@click.argument("code")
@_supervisor_option
@_json_option
@click.pass_context
@guarded
def operator_remove(ctx: click.Context, code: str, supervisor: str | None,
                    as_json: bool) -> None:
    """Remove cashier CODE: it can no longer sign on (its history stays) (supervisor)."""
    from app.operators import remove_operator
    code = _code_arg(code)
    sup = _supervisor_password(supervisor)
    term = _open_terminal(ctx)
    op = remove_operator(term, code, supervisor_password=sup)
    _done(term, op, as_json, f"操作员 {code} 已删除", f"operator {code} removed")
