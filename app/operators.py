"""Operators (操作员) as the cashier UI and the CLI use them: sign-on, password changes,
the supervisor's approval, and the supervisor's operator management.

Codes as on UnionPay terminals: cashiers 01-98, the supervisor (主管) 99. The policy
comes from ``[operators]`` in posterm.toml (lockout after ``max_failures`` wrong
passwords for ``lock_minutes``, ``password_days``, minimum lengths); the storage layer
counts the failures. Every refusal is an :class:`OperatorRefused` (exit 1) carrying one
line in English and in Chinese; ``str()`` gives the terminal's language first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app import config as config_mod
from app.errors import InputError, Refused
from storage import operators as book_mod
from storage.operators import SUPERVISOR_CODE, OperatorRecord, PasswordPolicy
from storage.timestamps import stamp

if TYPE_CHECKING:
    from app.terminal import Terminal

#: The cashier ``posterm init`` creates, and its initial password (changed at first sign-on),
#: as UnionPay terminals ship cashier 01 with 0000.
DEFAULT_CASHIER_CODE = "01"
DEFAULT_CASHIER_PASSWORD = "0000"


# ------------------------------------------------------------------ errors

class _Bilingual:
    """One line in English and in Chinese; str() puts the terminal's language first."""

    en: str
    zh: str
    language: str

    def _set(self, en: str, zh: str, language: str) -> str:
        self.en, self.zh, self.language = en, zh, language
        return self.text(language) + f" ({self.text('en' if language == 'zh' else 'zh')})"

    def text(self, language: str) -> str:
        """The line in ``language`` ('zh' or 'en')."""
        return self.zh if language == "zh" else self.en


class OperatorRefused(_Bilingual, Refused):
    """An operator action refused (exit 1); ``code`` is the operator it was about."""

    def __init__(self, en: str, zh: str, *, code: str, language: str = "zh") -> None:
        super().__init__(self._set(en, zh, language))
        self.code = code


class UnknownOperator(OperatorRefused):
    """No operator with this code."""


class OperatorRemoved(OperatorRefused):
    """The operator was removed by the supervisor."""


class WrongPassword(OperatorRefused):
    """Wrong password; ``tries_left`` before the lock."""

    def __init__(self, en: str, zh: str, *, code: str, language: str, tries_left: int) -> None:
        super().__init__(en, zh, code=code, language=language)
        self.tries_left = tries_left


class OperatorLocked(OperatorRefused):
    """Locked after too many wrong passwords until ``until`` (local ISO time); ``until_text``
    is how it is shown (HH:MM today, else YYYY-MM-DD HH:MM)."""

    def __init__(self, en: str, zh: str, *, code: str, language: str, until: str,
                 until_text: str) -> None:
        super().__init__(en, zh, code=code, language=language)
        self.until = until
        self.until_text = until_text


class PasswordChangeRequired(OperatorRefused):
    """The password is right but must be changed before it is used for this (an initial or
    reset password, or an expired one); ``reason`` is 'initial' or 'expired'."""

    def __init__(self, en: str, zh: str, *, code: str, language: str, reason: str) -> None:
        super().__init__(en, zh, code=code, language=language)
        self.reason = reason


class PasswordRejected(OperatorRefused):
    """A new password the policy refuses; ``reason`` is 'too_short' or 'same_as_old'."""

    def __init__(self, en: str, zh: str, *, code: str, language: str, reason: str,
                 min_length: int) -> None:
        super().__init__(en, zh, code=code, language=language)
        self.reason = reason
        self.min_length = min_length


class OperatorExists(OperatorRefused):
    """An active operator already has the code."""


class NotAllowed(OperatorRefused):
    """Not for this operator (e.g. removing or resetting the supervisor)."""


class InvalidOperatorCode(_Bilingual, InputError):
    """Not two digits 01-99 (exit 2)."""

    def __init__(self, code: str, *, language: str = "zh") -> None:
        super().__init__(self._set(
            f"operator code {code!r} must be two digits: 01-98 for cashiers, 99 for the "
            "supervisor", f"操作员号“{code}”须为两位数字：01–98 收银员，99 主管", language))
        self.code = code


# ------------------------------------------------------------------ the operator

@dataclass(frozen=True)
class Operator:
    """An operator as the UI and the CLI show it (never a password or its hash)."""

    code: str
    role: str                          # 'cashier' or 'supervisor'
    name: str
    must_change: bool                  # an initial or reset password: change before use
    password_expired: bool             # older than [operators] password_days
    active: bool = True
    locked_until: str | None = None    # local ISO time while a lock is in force
    failed_count: int = 0
    last_signon: str | None = None     # local ISO time
    password_changed: str | None = None

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    @property
    def needs_new_password(self) -> bool:
        """Whether the operator must choose a new password now (initial, reset or expired)."""
        return self.must_change or self.password_expired

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def role_of(code: str, *, language: str = "zh") -> str:
    """'supervisor' for 99, 'cashier' for 01-98; InvalidOperatorCode for anything else."""
    try:
        return book_mod.role_for(code)
    except book_mod.OperatorCodeError:
        raise InvalidOperatorCode(code, language=language) from None


def policy(term: Terminal) -> PasswordPolicy:
    """The password policy of ``[operators]`` in posterm.toml."""
    o = term.config["operators"]
    return PasswordPolicy(max_failures=o["max_failures"], lock_minutes=o["lock_minutes"],
                          password_days=o["password_days"],
                          cashier_min_length=o["cashier_min_length"],
                          supervisor_min_length=o["supervisor_min_length"])


def _operator(term: Terminal, record: OperatorRecord) -> Operator:
    book = term.journal.operators
    now = book.now()
    locked = record.locked(stamp(now)[0])
    return Operator(code=record.code, role=record.role, name=record.name,
                    must_change=record.must_change,
                    password_expired=record.password_expired(
                        now, term.config["operators"]["password_days"]),
                    active=record.active,
                    locked_until=record.locked_until_local if locked else None,
                    failed_count=record.failed_count, last_signon=record.last_signon_local,
                    password_changed=record.password_changed_local)



def _who(code: str, *, supervisor: bool) -> tuple[str, str]:
    return (f"supervisor {code}", f"主管 {code}") if supervisor else (
        f"operator {code}", f"操作员 {code}")


def _until_text(term: Terminal, until_local: str) -> str:
    """HH:MM when the lock ends today (terminal time), else YYYY-MM-DD HH:MM."""
    until = datetime.fromisoformat(until_local)
    today = term.journal.operators.now().astimezone(until.tzinfo).date()
    return until.strftime("%H:%M" if until.date() == today else "%Y-%m-%d %H:%M")


def _refusal(term: Terminal, exc: book_mod.OperatorError, *,
             supervisor: bool = False) -> OperatorRefused | InvalidOperatorCode:
    """The app's bilingual refusal for a storage-layer operator error."""
    lang, code = term.language, exc.code
    who_en, who_zh = _who(code, supervisor=supervisor)
    if isinstance(exc, book_mod.OperatorCodeError):
        return InvalidOperatorCode(code, language=lang)
    if isinstance(exc, book_mod.UnknownOperator):
        if supervisor:
            return UnknownOperator(f"no supervisor {code} on this terminal",
                                   f"本终端没有主管 {code}", code=code, language=lang)
        return UnknownOperator(f"unknown operator {code}", f"操作员 {code} 不存在",
                               code=code, language=lang)
    if isinstance(exc, book_mod.OperatorInactive):
        return OperatorRemoved(f"{who_en} has been removed", f"{who_zh} 已删除",
                               code=code, language=lang)
    if isinstance(exc, book_mod.OperatorLocked):
        shown = _until_text(term, exc.until_local)
        wrong_en = "wrong supervisor password" if supervisor else "wrong password"
        wrong_zh = "主管密码错误" if supervisor else "密码错误"
        en = f"{who_en} locked until {shown}"
        zh = f"{who_zh} 已锁定，{shown} 后再试"
        if exc.just_locked:
            en, zh = f"{wrong_en}: {en}", f"{wrong_zh}，{zh}"
        return OperatorLocked(en, zh, code=code, language=lang, until=exc.until_local,
                              until_text=shown)
    if isinstance(exc, book_mod.WrongPassword):
        tries = f"{exc.remaining} {'try' if exc.remaining == 1 else 'tries'} left"
        if supervisor:
            en, zh = (f"wrong supervisor password, {tries}",
                      f"主管密码错误，还可尝试 {exc.remaining} 次")
        else:
            en, zh = (f"{who_en}: wrong password, {tries}",
                      f"{who_zh} 密码错误，还可尝试 {exc.remaining} 次")
        return WrongPassword(en, zh, code=code, language=lang, tries_left=exc.remaining)
    if isinstance(exc, book_mod.PasswordPolicyError):
        if exc.reason == "same_as_old":
            return PasswordRejected("the new password must differ from the old one",
                                    "新密码不能与旧密码相同", code=code, language=lang,
                                    reason=exc.reason, min_length=exc.min_length)
        role_en, role_zh = ("supervisor", "主管") if code == SUPERVISOR_CODE else (
            "cashier", "收银员")
        return PasswordRejected(f"a {role_en} password needs at least {exc.min_length} "
                                "characters", f"{role_zh}密码至少 {exc.min_length} 位",
                                code=code, language=lang, reason=exc.reason,
                                min_length=exc.min_length)
    if isinstance(exc, book_mod.OperatorExists):
        name = term.journal.operators.get(code).name
        return OperatorExists(f"operator {code} already exists ({name})",
                              f"操作员 {code} 已存在（{name}）", code=code, language=lang)
    return NotAllowed(str(exc), str(exc), code=code, language=lang)


def password_change_required(term: Terminal, op: Operator) -> PasswordChangeRequired:
    """The refusal for an operator whose password must be changed before use (not raised:
    the caller decides; e.g. a prompt for the new password instead)."""
    who_en, who_zh = _who(op.code, supervisor=op.is_supervisor)
    if op.must_change:
        return PasswordChangeRequired(f"{who_en} must change the initial password first",
                                      f"{who_zh} 须先修改初始密码", code=op.code,
                                      language=term.language, reason="initial")
    return PasswordChangeRequired(f"the password of {who_en} has expired: change it first",
                                  f"{who_zh} 密码已过期，请先修改", code=op.code,
                                  language=term.language, reason="expired")


def _code(term: Terminal, code: str) -> str:
    code = str(code).strip()
    role_of(code, language=term.language)
    return code


# ------------------------------------------------------------------ reading

def get_operator(term: Terminal, code: str) -> Operator:
    """One operator (removed ones too); UnknownOperator when there is none."""
    code = _code(term, code)
    try:
        return _operator(term, term.journal.operators.get(code))
    except book_mod.OperatorError as exc:
        raise _refusal(term, exc) from None


def list_operators(term: Terminal, *, include_removed: bool = True) -> list[Operator]:
    """Every operator by code."""
    return [_operator(term, r)
            for r in term.journal.operators.all(include_removed=include_removed)]


def current_operator(term: Terminal) -> str:
    """The code the CLI records on transactions (``terminal.operator``)."""
    return str(term.config["terminal"]["operator"])


def set_current_operator(term: Terminal, code: str) -> None:
    """Make an active cashier the one the CLI records on transactions: writes
    ``terminal.operator`` in posterm.toml (and in the loaded config)."""
    op = get_operator(term, code)
    if not op.active:
        raise _refusal(term, book_mod.OperatorInactive("", op.code))
    if op.is_supervisor:
        raise NotAllowed("the supervisor takes no transactions: sign on a cashier 01-98",
                         "主管不能做交易，请签到收银员 01–98", code=op.code,
                         language=term.language)
    values = term.config.values
    values["terminal"]["operator"] = op.code
    config_mod.write(term.data_dir, values)


# ------------------------------------------------------------------ the operator's own

def sign_on(term: Terminal, code: str, password: str) -> Operator:
    """Check an operator's password (a failure is counted; the limit locks) and record the
    sign-on. The result's ``needs_new_password`` says the operator must choose a new password
    before working (call :func:`change_password`).

    Raises InvalidOperatorCode, UnknownOperator, OperatorRemoved, WrongPassword,
    OperatorLocked.
    """
    code = _code(term, code)
    try:
        record = term.journal.operators.verify(code, password, policy(term), purpose="signon")
    except book_mod.OperatorError as exc:
        raise _refusal(term, exc) from None
    return _operator(term, record)


def change_password(term: Terminal, code: str, old_password: str,
                    new_password: str) -> Operator:
    """The operator changes their own password (also the way out of an initial, reset or
    expired one). The old one is verified as at sign-on (a failure counts); the new one
    needs the role's minimum length and must differ from the old.

    Raises InvalidOperatorCode, UnknownOperator, OperatorRemoved, WrongPassword,
    OperatorLocked, PasswordRejected.
    """
    code = _code(term, code)
    try:
        record = term.journal.operators.change_password(code, old_password, new_password,
                                                        policy(term))
    except book_mod.OperatorError as exc:
        raise _refusal(term, exc, supervisor=code == SUPERVISOR_CODE) from None
    return _operator(term, record)


# ------------------------------------------------------------------ the supervisor

def authorize_supervisor(term: Terminal, password: str, *, action: str,
                         detail: dict[str, Any] | None = None) -> Operator:
    """The supervisor's password for a supervisor-only ``action`` (void, refund, settlement,
    operator management, reconciliation resolve). A wrong password counts against
    supervisor 99 and locks it like any operator; a right one that must be changed first
    (initial or expired) is refused too. Audited 'supervisor.approved' / 'supervisor.refused'.

    Raises WrongPassword, OperatorLocked, PasswordChangeRequired, UnknownOperator,
    OperatorRemoved.
    """
    journal = term.journal
    detail = {"action": action, **(detail or {})}
    actor = current_operator(term)
    try:
        record = journal.operators.verify(SUPERVISOR_CODE, password, policy(term),
                                          purpose="supervisor", actor=actor)
    except book_mod.OperatorError as exc:
        refusal = _refusal(term, exc, supervisor=True)
        journal.audit("supervisor.refused", actor=actor,
                      detail={**detail, "reason": type(refusal).__name__})
        raise refusal from None
    op = _operator(term, record)
    if op.needs_new_password:
        refusal = password_change_required(term, op)
        journal.audit("supervisor.refused", actor=actor,
                      detail={**detail, "reason": f"password_{refusal.reason}"})
        raise refusal
    journal.audit("supervisor.approved", actor=op.code, detail=detail)
    return op


def _manageable(term: Terminal, code: str, verb_en: str, verb_zh: str) -> str:
    code = _code(term, code)
    if code == SUPERVISOR_CODE:
        raise NotAllowed(f"99 is the supervisor: only cashiers 01-98 can be {verb_en}",
                         f"99 为主管，只能{verb_zh}收银员 01–98", code=code,
                         language=term.language)
    return code


def add_operator(term: Terminal, code: str, name: str, password: str, *,
                 supervisor_password: str) -> Operator:
    """A new cashier (01-98) with a first password the supervisor chose: it must be changed
    at the first sign-on. A removed code is taken again.

    Raises InvalidOperatorCode, NotAllowed (99), OperatorExists, PasswordRejected, InputError
    (no name), and what :func:`authorize_supervisor` raises.
    """
    code = _manageable(term, code, "added", "添加")
    name = name.strip()
    if not name:
        raise InputError("an operator needs a name (--name) / 操作员须有姓名")
    rules = policy(term)
    try:
        book_mod.check_new_password(code, "cashier", password, rules)
        existing = term.journal.operators.find(code)
        if existing is not None and existing.active:
            raise book_mod.OperatorExists("", code)
        approver = authorize_supervisor(term, password=supervisor_password,
                                        action="operator.add", detail={"code": code})
        record = term.journal.operators.add(code, name=name, password=password,
                                            actor=approver.code, policy=rules)
    except book_mod.OperatorError as exc:
        raise _refusal(term, exc) from None
    return _operator(term, record)


def reset_password(term: Terminal, code: str, new_password: str, *,
                   supervisor_password: str) -> Operator:
    """The supervisor sets a cashier's password (forgotten, or locked out): the lock is
    lifted and the cashier must change it at the next sign-on."""
    code = _manageable(term, code, "reset", "重置")
    rules = policy(term)
    try:
        book_mod.check_new_password(code, "cashier", new_password, rules)
        term.journal.operators.get(code)
        approver = authorize_supervisor(term, password=supervisor_password,
                                        action="operator.reset", detail={"code": code})
        record = term.journal.operators.reset_password(code, new_password,
                                                       actor=approver.code, policy=rules)
    except book_mod.OperatorError as exc:
        raise _refusal(term, exc) from None
    return _operator(term, record)


def unlock(term: Terminal, code: str, *, supervisor_password: str) -> Operator:
    """The supervisor lifts a cashier's lock before its time."""
    code = _manageable(term, code, "unlocked", "解锁")
    try:
        term.journal.operators.get(code)
        approver = authorize_supervisor(term, password=supervisor_password,
                                        action="operator.unlock", detail={"code": code})
        record = term.journal.operators.unlock(code, actor=approver.code)
    except book_mod.OperatorError as exc:
        raise _refusal(term, exc) from None
    return _operator(term, record)


def remove_operator(term: Terminal, code: str, *, supervisor_password: str) -> Operator:
    """The supervisor removes a cashier: it can no longer sign on; its row stays for the
    journal's history, and the code can be added again."""
    code = _manageable(term, code, "removed", "删除")
    try:
        if not term.journal.operators.get(code).active:
            raise book_mod.OperatorInactive("", code)
        approver = authorize_supervisor(term, password=supervisor_password,
                                        action="operator.remove", detail={"code": code})
        record = term.journal.operators.remove(code, actor=approver.code)
    except book_mod.OperatorError as exc:
        raise _refusal(term, exc) from None
    return _operator(term, record)
