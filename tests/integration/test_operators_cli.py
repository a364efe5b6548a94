"""Operators through the real ``posterm`` processes: the first sign-on's password change,
the lockout counted across processes, the supervisor's management commands, a void refused
while the supervisor is locked, the generated supervisor password, and no password in the
journal or the log."""

from __future__ import annotations

import sqlite3
import subprocess

from conftest import (
    PY,
    REPO,
    Run,
    _env,
    assert_one_clean_error_line,
    posterm,
    posterm_cmd,
    set_config,
)

PW = "sup3r-visor"


def _init(data, *extra):
    run = posterm_cmd("init", "--data", data, "--json", *extra)
    assert run.returncode == 0, str(run)
    return run.json()


def _ok(run):
    assert run.returncode == 0, str(run)
    return run


def _with_env(data, env_extra, *args):
    """``posterm --data DATA ARGS`` with extra environment variables."""
    shown = ("--data", str(data), *(str(a) for a in args))
    proc = subprocess.run([PY, "-m", "app", *shown], check=False, capture_output=True,
                          text=True, encoding="utf-8", timeout=30, cwd=REPO,
                          env={**_env(), **env_extra})
    return Run(shown, proc.returncode, proc.stdout, proc.stderr)


def test_the_first_sign_on_of_cashier_01_needs_a_new_password(tmp_path):
    data = tmp_path / "till"
    _init(data, "--supervisor-password", PW)
    listed = _ok(posterm(data, "operator", "list", "--json")).json()
    assert listed["current_operator"] == "01"
    assert [(o["code"], o["role"], o["must_change"]) for o in listed["operators"]] == [
        ("01", "cashier", True), ("99", "supervisor", False)]
    refused = posterm(data, "signin", "01", "--password", "0000")
    line = assert_one_clean_error_line(refused, 1)
    assert "must change the initial password" in line and "--new-password" in line
    done = _ok(posterm(data, "signin", "01", "--password", "0000", "--new-password", "2468",
                       "--json")).json()
    assert done["password_changed"] and done["current_operator"] == "01"
    assert not done["operator"]["must_change"]
    _ok(posterm(data, "signin", "01", "--password", "2468"))
    wrong = posterm(data, "signin", "01", "--password", "0000")
    assert "4 tries left" in assert_one_clean_error_line(wrong, 1)


def test_five_wrong_passwords_in_five_processes_lock_until_the_supervisor_unlocks(tmp_path):
    data = tmp_path / "till"
    _init(data, "--supervisor-password", PW, "--language", "en")
    for left in ("4 tries", "3 tries", "2 tries", "1 try"):
        run = posterm(data, "signin", "01", "--password", "9999")
        assert assert_one_clean_error_line(run, 1).startswith(
            f"posterm: operator 01: wrong password, {left} left (")
    locked = posterm(data, "signin", "01", "--password", "9999")
    assert "wrong password: operator 01 locked until " in assert_one_clean_error_line(locked, 1)
    still = posterm(data, "signin", "01", "--password", "0000", "--new-password", "2468")
    assert "operator 01 locked until" in assert_one_clean_error_line(still, 1)
    shown = _ok(posterm(data, "operator", "list")).stdout
    assert "locked until" in shown.splitlines()[0]
    _ok(posterm(data, "operator", "unlock", "01", "--supervisor-password", PW))
    _ok(posterm(data, "signin", "01", "--password", "0000", "--new-password", "2468"))


def test_the_supervisor_adds_resets_and_removes_a_cashier(tmp_path):
    data = tmp_path / "till"
    _init(data, "--supervisor-password", PW)
    env = {"POSTERM_SUPERVISOR_PASSWORD": PW}
    added = _with_env(data, env, "operator", "add", "02", "--name", "Wang 王",
                      "--password", "1357", "--json")
    assert _ok(added).json()["operator"]["must_change"]
    again = _with_env(data, env, "operator", "add", "02", "--name", "X", "--password", "1111")
    assert "already exists" in assert_one_clean_error_line(again, 1)
    signed = _ok(_with_env(data, {"POSTERM_OPERATOR_PASSWORD": "1357"}, "signin", "02",
                           "--new-password", "7531", "--json")).json()
    assert signed["current_operator"] == "02"
    _ok(_with_env(data, env, "operator", "reset", "02", "--password", "8888"))
    assert "must change" in assert_one_clean_error_line(
        posterm(data, "signin", "02", "--password", "8888"), 1)
    _ok(_with_env(data, env, "operator", "remove", "02"))
    removed = posterm(data, "signin", "02", "--password", "8888", "--new-password", "1212")
    assert "removed" in assert_one_clean_error_line(removed, 1)
    listed = _ok(posterm(data, "operator", "list", "--json")).json()["operators"]
    assert [(o["code"], o["active"]) for o in listed] == [("01", True), ("02", False),
                                                           ("99", True)]
    not_99 = posterm(data, "operator", "remove", "99", "--supervisor-password", PW)
    assert "only cashiers 01-98" in assert_one_clean_error_line(not_99, 1)


def test_usage_errors_are_one_line_with_exit_2(tmp_path):
    data = tmp_path / "till"
    _init(data, "--supervisor-password", PW)
    bad = posterm(data, "signin", "7", "--password", "0000")
    assert "01-98 for cashiers" in assert_one_clean_error_line(bad, 2)
    no_password = posterm(data, "signin", "01")              # stdin is not a terminal
    assert "--password" in assert_one_clean_error_line(no_password, 2)
    no_supervisor = posterm(data, "operator", "unlock", "01")
    assert "supervisor password" in assert_one_clean_error_line(no_supervisor, 2)
    short = posterm_cmd("init", "--data", tmp_path / "other", "--supervisor-password", "abc")
    assert "at least 6 characters" in assert_one_clean_error_line(short, 2)


def test_a_generated_supervisor_password_must_be_changed_before_it_manages(tmp_path):
    data = tmp_path / "till"
    generated = _init(data)["supervisor_password"]
    refused = posterm(data, "operator", "add", "05", "--name", "Li", "--password", "5555",
                      "--supervisor-password", generated)
    assert "supervisor 99 must change the initial password" in assert_one_clean_error_line(
        refused, 1)
    _ok(posterm(data, "operator", "passwd", "99", "--old", generated, "--new", "Tiger-Lily-77"))
    _ok(posterm(data, "operator", "add", "05", "--name", "Li", "--password", "5555",
                "--supervisor-password", "Tiger-Lily-77"))


def test_a_locked_supervisor_refuses_a_void_and_sales_carry_the_signed_on_cashier(terminal):
    data = terminal.data
    _ok(posterm_cmd("init", "--data", data, "--host", terminal.host.address, "--host-data",
                    terminal.host.data, "--supervisor-password", PW, "--force"))
    _ok(posterm(data, "operator", "add", "03", "--name", "Zhou", "--password", "Quiet-Rain-31",
                "--supervisor-password", PW))
    _ok(posterm(data, "signin", "03", "--password", "Quiet-Rain-31",
                "--new-password", "Blue-Harbor-58"))
    sale = _ok(posterm(data, "sale", "20.00", "--card", "unionpay-debit-chip", "--json")).json()
    for _ in range(5):
        wrong = posterm(data, "void", str(int(sale["stan"])), "--supervisor-password", "nope")
        assert "wrong supervisor password" in assert_one_clean_error_line(wrong, 1)
    locked = posterm(data, "void", str(int(sale["stan"])), "--supervisor-password", PW)
    assert "supervisor 99 locked until" in assert_one_clean_error_line(locked, 1)
    _ok(posterm(data, "audit", "verify"))

    conn = sqlite3.connect(f"file:{data / 'posterm.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT txn_type, state, operator FROM transactions").fetchall()
        refused = conn.execute("SELECT count(*) FROM audit WHERE action = 'supervisor.refused'"
                               " AND actor = '03'").fetchone()[0]
    finally:
        conn.close()
    assert rows == [("sale", "APPROVED", "03")]                  # the void never started
    assert refused == 6
    # No password in the journal or the log, in any form but its scrypt hash.
    stored = b"".join(p.read_bytes() for p in data.iterdir()
                      if p.name.startswith("posterm.") and p.is_file())
    for secret in (PW, "Quiet-Rain-31", "Blue-Harbor-58"):
        assert secret.encode() not in stored


def test_messages_follow_the_terminal_language(tmp_path):
    data = tmp_path / "till"
    _init(data, "--supervisor-password", PW)
    zh = posterm(data, "signin", "01", "--password", "1")
    assert assert_one_clean_error_line(zh, 1).startswith("posterm: 操作员 01 密码错误")
    set_config(data, "terminal", "language", "en")
    en = posterm(data, "signin", "01", "--password", "1")
    line = assert_one_clean_error_line(en, 1)
    assert line.startswith("posterm: operator 01: wrong password, 3 tries left (操作员 01")
