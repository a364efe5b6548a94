"""The operator service on a real data directory (posterm init's files): sign-on, the
lockout and its messages under a fixed clock, password changes and expiry, the supervisor's
approval and operator management, the policy from posterm.toml."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cached_property

import pytest

from app import config as config_mod
from app import operators as ops
from app.errors import EXIT_DECLINED, EXIT_USAGE, ConfigError
from app.provision import init
from app.supervisor import approve
from app.terminal import Terminal
from storage.journal import Journal
from storage.keyfile import load_key_file
from storage.timestamps import stamp

SUP = "boss-password"
START = datetime(2026, 11, 21, 5, 50, 0, tzinfo=UTC)


class FixedClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **kw: float) -> None:
        self.moment += timedelta(**kw)


class ClockedTerminal(Terminal):
    """The real Terminal, its journal opened with the test's clock."""

    def __init__(self, data_dir, clock) -> None:
        super().__init__(data_dir)
        self._clock = clock

    @cached_property
    def journal(self) -> Journal:
        journal = Journal.open(self.config.db_path, load_key_file(self.config.key_path),
                               clock=self._clock)
        self._opened.append(journal)
        return journal


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "till"
    init(path, host=None, host_data=None, force=False, supervisor_password=SUP)
    return path


def configure(data, section, **values) -> None:
    cfg = config_mod.load(data).values
    cfg[section].update(values)
    config_mod.write(data, cfg)


@pytest.fixture
def make(data, clock):
    opened = []

    def _make(**terminal_values):
        if terminal_values:
            configure(data, "terminal", **terminal_values)
        term = ClockedTerminal(data, clock)
        opened.append(term)
        return term
    yield _make
    for term in opened:
        term.close()


@pytest.fixture
def term(make):
    return make()


def local_hhmm(moment: datetime) -> str:
    return datetime.fromisoformat(stamp(moment)[1]).strftime("%H:%M")


def audit_actions(term, prefix):
    with term.journal._read() as conn:
        return [(actor, action) for actor, action in conn.execute(
            "SELECT actor, action FROM audit WHERE action LIKE ? ORDER BY id", (prefix + "%",))]


def lock_out(term, code, password="bad-password", times=5):
    for _ in range(times):
        with pytest.raises((ops.WrongPassword, ops.OperatorLocked)):
            ops.sign_on(term, code, password)


# ---------------------------------------------------------------- what init creates

def test_init_creates_cashier_01_with_0000_to_change_and_the_given_supervisor(term):
    listed = {op.code: op for op in ops.list_operators(term)}
    assert set(listed) == {"01", "99"}
    assert listed["01"].role == "cashier" and listed["01"].must_change
    assert listed["99"].is_supervisor and not listed["99"].must_change
    assert ops.current_operator(term) == "01"


def test_a_generated_supervisor_password_must_be_changed_before_it_approves(tmp_path, clock):
    path = tmp_path / "gen"
    init(path, host=None, host_data=None, force=False, supervisor_password="generated-pw-1",
         supervisor_must_change=True)
    with ClockedTerminal(path, clock) as term:
        with pytest.raises(ops.PasswordChangeRequired) as caught:
            approve(term, "generated-pw-1", action="void", detail={"stan": 3})
        assert caught.value.reason == "initial" and caught.value.exit_code == EXIT_DECLINED
        assert "supervisor 99 must change the initial password first" in str(caught.value)
        ops.change_password(term, "99", "generated-pw-1", "my-own-secret")
        assert approve(term, "my-own-secret", action="void", detail={"stan": 3}) == "99"
        assert [a for _, a in audit_actions(term, "supervisor.")] == [
            "supervisor.refused", "supervisor.approved"]


def test_init_refuses_a_supervisor_password_shorter_than_the_policy(tmp_path):
    with pytest.raises(ConfigError, match="at least 6 characters"):
        init(tmp_path / "short", host=None, host_data=None, force=False,
             supervisor_password="12345")
    assert not (tmp_path / "short" / config_mod.DB_NAME).exists()


# ---------------------------------------------------------------- sign-on

def test_first_sign_on_asks_for_a_new_password_then_it_is_used(term):
    first = ops.sign_on(term, "01", "0000")
    assert first.must_change and first.needs_new_password and not first.password_expired
    changed = ops.change_password(term, "01", "0000", "2468")
    assert not changed.needs_new_password
    assert not ops.sign_on(term, "01", "2468").needs_new_password
    with pytest.raises(ops.WrongPassword):
        ops.sign_on(term, "01", "0000")


def test_a_wrong_password_says_how_many_tries_are_left_in_both_languages(term):
    with pytest.raises(ops.WrongPassword) as caught:
        ops.sign_on(term, "01", "1111")
    exc = caught.value
    assert exc.tries_left == 4 and exc.exit_code == EXIT_DECLINED
    assert exc.en == "operator 01: wrong password, 4 tries left"
    assert exc.zh == "操作员 01 密码错误，还可尝试 4 次"
    assert str(exc) == f"{exc.zh} ({exc.en})"          # the terminal's language (zh) first


def test_the_fifth_failure_locks_until_a_time_shown_in_the_terminal_language(make, clock):
    term = make(language="en")
    for left in (4, 3, 2, 1):
        with pytest.raises(ops.WrongPassword) as caught:
            ops.sign_on(term, "01", "1111")
        assert caught.value.tries_left == left
    assert "1 try left" in caught.value.en
    until = local_hhmm(START + timedelta(minutes=15))
    with pytest.raises(ops.OperatorLocked) as locked:
        ops.sign_on(term, "01", "1111")
    assert locked.value.en == f"wrong password: operator 01 locked until {until}"
    assert str(locked.value).startswith(locked.value.en)
    assert locked.value.until_text == until
    with pytest.raises(ops.OperatorLocked) as still:
        ops.sign_on(term, "01", "0000")
    assert still.value.en == f"operator 01 locked until {until}"
    assert still.value.zh == f"操作员 01 已锁定，{until} 后再试"
    clock.advance(minutes=15)
    assert ops.sign_on(term, "01", "0000").code == "01"


def test_a_lock_ending_another_day_shows_the_date(make, data, clock):
    configure(data, "operators", lock_minutes=1440)
    term = make()
    lock_out(term, "01")
    with pytest.raises(ops.OperatorLocked) as locked:
        ops.sign_on(term, "01", "0000")
    end = datetime.fromisoformat(stamp(START + timedelta(days=1))[1])
    assert locked.value.until_text == end.strftime("%Y-%m-%d %H:%M")


def test_the_configured_limit_applies(make, data):
    configure(data, "operators", max_failures=3)
    term = make()
    for left in (2, 1):
        with pytest.raises(ops.WrongPassword) as caught:
            ops.sign_on(term, "01", "bad")
        assert caught.value.tries_left == left
    with pytest.raises(ops.OperatorLocked):
        ops.sign_on(term, "01", "bad")


def test_unknown_and_malformed_codes(term):
    with pytest.raises(ops.UnknownOperator) as unknown:
        ops.sign_on(term, "07", "0000")
    assert unknown.value.en == "unknown operator 07" and "07 不存在" in unknown.value.zh
    for bad in ("7", "00", "100", "ab"):
        with pytest.raises(ops.InvalidOperatorCode) as caught:
            ops.sign_on(term, bad, "0000")
        assert caught.value.exit_code == EXIT_USAGE


def test_an_expired_password_is_flagged_at_sign_on_and_stops_the_supervisor(make, data, clock):
    configure(data, "operators", password_days=30)
    term = make()
    ops.change_password(term, "01", "0000", "2468")        # both changed on the test's clock
    ops.change_password(term, "99", SUP, "second-secret")
    clock.advance(days=29, hours=23)
    assert not ops.sign_on(term, "01", "2468").password_expired
    assert approve(term, "second-secret", action="refund", detail={}) == "99"
    clock.advance(hours=1)
    assert ops.sign_on(term, "01", "2468").password_expired
    with pytest.raises(ops.PasswordChangeRequired) as caught:
        approve(term, "second-secret", action="refund", detail={})
    assert caught.value.reason == "expired" and "has expired" in caught.value.en
    ops.change_password(term, "99", "second-secret", "a-fresh-one")
    assert approve(term, "a-fresh-one", action="refund", detail={}) == "99"


def test_the_policy_refuses_short_and_unchanged_passwords(term):
    with pytest.raises(ops.PasswordRejected) as short:
        ops.change_password(term, "01", "0000", "12")
    assert short.value.reason == "too_short" and "at least 4" in short.value.en
    with pytest.raises(ops.PasswordRejected) as same:
        ops.change_password(term, "01", "0000", "0000")
    assert same.value.zh == "新密码不能与旧密码相同"
    with pytest.raises(ops.PasswordRejected) as sup:
        ops.change_password(term, "99", SUP, "12345")
    assert "supervisor password needs at least 6" in sup.value.en


# ---------------------------------------------------------------- the supervisor

def test_supervisor_failures_are_counted_and_lock_the_approval(term, clock):
    for left in (4, 3, 2, 1):
        with pytest.raises(ops.WrongPassword) as caught:
            approve(term, "nope", action="void", detail={"stan": 7})
        assert caught.value.en == f"wrong supervisor password, {left} " + (
            "try left" if left == 1 else "tries left")
    with pytest.raises(ops.OperatorLocked) as locked:
        approve(term, "nope", action="void", detail={"stan": 7})
    until = local_hhmm(START + timedelta(minutes=15))
    assert locked.value.en == f"wrong supervisor password: supervisor 99 locked until {until}"
    with pytest.raises(ops.OperatorLocked):
        approve(term, SUP, action="void", detail={"stan": 7})
    clock.advance(minutes=15)
    assert approve(term, SUP, action="void", detail={"stan": 7}) == "99"
    actions = audit_actions(term, "supervisor.")
    assert actions == [("01", "supervisor.refused")] * 6 + [("99", "supervisor.approved")]


def test_add_needs_the_supervisor_and_the_new_cashier_changes_the_first_password(term):
    with pytest.raises(ops.WrongPassword):
        ops.add_operator(term, "02", "Wang 王", "1357", supervisor_password="nope")
    with pytest.raises(ops.UnknownOperator):
        ops.get_operator(term, "02")
    added = ops.add_operator(term, "02", "Wang 王", "1357", supervisor_password=SUP)
    assert (added.role, added.name, added.must_change) == ("cashier", "Wang 王", True)
    assert ops.sign_on(term, "02", "1357").needs_new_password
    with pytest.raises(ops.OperatorExists) as exists:
        ops.add_operator(term, "02", "Other", "9999", supervisor_password=SUP)
    assert "already exists (Wang 王)" in exists.value.en
    with pytest.raises(ops.NotAllowed):
        ops.add_operator(term, "99", "Boss 2", "another-pw", supervisor_password=SUP)


def test_a_bad_new_password_is_refused_before_the_supervisor_is_asked(term):
    with pytest.raises(ops.PasswordRejected):
        ops.add_operator(term, "03", "Zhao", "12", supervisor_password="nope")
    assert ops.get_operator(term, "99").failed_count == 0


def test_unlock_reset_and_remove_a_cashier(term):
    lock_out(term, "01")
    assert ops.get_operator(term, "01").locked_until is not None
    assert ops.unlock(term, "01", supervisor_password=SUP).locked_until is None
    assert ops.sign_on(term, "01", "0000").code == "01"
    ops.change_password(term, "01", "0000", "2468")
    reset = ops.reset_password(term, "01", "8642", supervisor_password=SUP)
    assert reset.must_change
    assert ops.sign_on(term, "01", "8642").needs_new_password
    removed = ops.remove_operator(term, "01", supervisor_password=SUP)
    assert not removed.active
    with pytest.raises(ops.OperatorRemoved):
        ops.sign_on(term, "01", "8642")
    with pytest.raises(ops.OperatorRemoved):
        ops.remove_operator(term, "01", supervisor_password=SUP)
    for action in (ops.unlock, ops.remove_operator):
        with pytest.raises(ops.NotAllowed):
            action(term, "99", supervisor_password=SUP)
    actions = [a for _, a in audit_actions(term, "operator.")
               if a != "operator.password_failed"]
    assert actions[-7:] == ["operator.locked", "operator.unlocked", "operator.signon",
                            "operator.password_changed", "operator.password_reset",
                            "operator.signon", "operator.removed"]


# ---------------------------------------------------------------- the current operator

def test_a_signed_on_cashier_becomes_the_current_operator_in_posterm_toml(term, data):
    ops.add_operator(term, "02", "Wang", "1357", supervisor_password=SUP)
    ops.set_current_operator(term, "02")
    assert config_mod.load(data)["terminal"]["operator"] == "02"
    assert ops.current_operator(term) == "02"
    with pytest.raises(ops.NotAllowed):
        ops.set_current_operator(term, "99")
    ops.remove_operator(term, "01", supervisor_password=SUP)
    with pytest.raises(ops.OperatorRemoved):
        ops.set_current_operator(term, "01")
    assert config_mod.load(data)["terminal"]["operator"] == "02"
