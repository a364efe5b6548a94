"""Bad input, bad configuration and an unreachable host: each is one line on stderr, no
traceback, and the exit code of the CLI contract (1 refused, 2 usage/config, 3 unreachable)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import (
    Terminal,
    assert_one_clean_error_line,
    free_closed_port,
    posterm,
    posterm_cmd,
    set_config,
)


@pytest.fixture
def offline_terminal(tmp_path: Path) -> Path:
    """A terminal initialised against a port nothing listens on (no host involved)."""
    data = tmp_path / "terminal"
    run = posterm_cmd("init", "--data", data, "--host", f"127.0.0.1:{free_closed_port()}")
    assert run.returncode == 0, str(run)
    return data


def _journal(data: Path) -> list[dict]:
    run = posterm(data, "txns", "--json")
    assert run.returncode == 0, str(run)
    return run.json()["transactions"]


# -- amounts, limits, card profiles ---------------------------------------------------------

@pytest.mark.parametrize("amount", ["12.345", "-1", "abc", "0"])
def test_bad_amount_is_a_usage_error_in_one_line(offline_terminal: Path, amount: str):
    run = posterm(offline_terminal, "sale", amount, "--card", "unionpay-debit-chip")
    assert_one_clean_error_line(run, 2)
    assert not _journal(offline_terminal)


@pytest.mark.parametrize("amount", ["-1", "-0.01"])
def test_negative_amount_after_double_dash_is_refused_by_the_amount_rules(
        offline_terminal: Path, amount: str):
    run = posterm(offline_terminal, "sale", "--card", "unionpay-debit-chip", "--", amount)
    line = assert_one_clean_error_line(run, 2)
    assert amount in line


def test_bad_amount_with_json_prints_a_json_error_and_one_line(offline_terminal: Path):
    run = posterm(offline_terminal, "sale", "12.345", "--card", "unionpay-debit-chip", "--json")
    assert_one_clean_error_line(run, 2)
    out = run.json()
    assert out["result"] == "error" and out["exit_code"] == 2 and "12.345" in out["error"]


def test_amount_over_the_configured_single_txn_limit_is_refused_with_exit_1(
        offline_terminal: Path):
    set_config(offline_terminal, "terminal", "single_txn_limit", 10_000)   # ¥100.00
    run = posterm(offline_terminal, "sale", "100.01", "--card", "unionpay-debit-chip")
    line = assert_one_clean_error_line(run, 1)
    assert "100.00" in line and "limit" in line
    assert not _journal(offline_terminal)


def test_unknown_card_profile_is_a_usage_error(offline_terminal: Path):
    run = posterm(offline_terminal, "sale", "12.50", "--card", "no-such-card")
    line = assert_one_clean_error_line(run, 2)
    assert "no-such-card" in line


# -- the host cannot be reached -------------------------------------------------------------

def _no_pending_without_armed_reversal(rows: list[dict]) -> None:
    bad = [r for r in rows if r["state"] == "pending" and r["reversal"] != "armed"]
    assert not bad, bad


def test_sale_with_the_host_stopped_exits_3_and_leaves_nothing_unreversed(terminal: Terminal):
    assert terminal.run("signon").returncode == 0
    first = terminal.run("sale", "12.50", "--card", "unionpay-debit-chip", "--json")
    assert first.returncode == 0, str(first)
    assert terminal.host.stop() is not None

    run = terminal.run("sale", "12.50", "--card", "unionpay-debit-chip")
    line = assert_one_clean_error_line(run, 3)
    assert "unreachable" in line or "host" in line

    rows = _journal(terminal.data)
    _no_pending_without_armed_reversal(rows)
    approved = [r for r in rows if r["stan"] == first.json()["stan"]]
    assert [r["state"] for r in approved] == ["approved"]
    assert not [r for r in rows if r["state"] in ("pending", "approved")
                and r["stan"] != first.json()["stan"]]


def test_sale_against_a_closed_port_exits_3_and_leaves_no_pending_row(tmp_path: Path):
    host_data = tmp_path / "host"                  # provisioned, but no host ever runs
    data = tmp_path / "terminal"
    init = posterm_cmd("init", "--data", data, "--host", f"127.0.0.1:{free_closed_port()}",
                       "--host-data", host_data)
    assert init.returncode == 0, str(init)
    run = posterm(data, "sale", "12.50", "--card", "unionpay-debit-chip")
    assert_one_clean_error_line(run, 3)
    rows = _journal(data)
    _no_pending_without_armed_reversal(rows)
    assert not [r for r in rows if r["state"] in ("pending", "approved")]


def test_signon_with_the_host_down_exits_3(offline_terminal: Path):
    run = posterm(offline_terminal, "signon")
    assert_one_clean_error_line(run, 3)


# -- posterm.toml ---------------------------------------------------------------------------

def test_garbage_config_is_refused_naming_the_file(offline_terminal: Path):
    (offline_terminal / "posterm.toml").write_text("}}} this is not toml at all {{{\n\x00\n")
    run = posterm(offline_terminal, "txns")
    line = assert_one_clean_error_line(run, 2)
    assert "posterm.toml" in line


def _cut_mid_line(text: str, key: str, keep: int) -> str:
    """The file as a crash would leave it: everything up to ``keep`` characters into the
    line that sets ``key``."""
    start = text.index(f"\n{key} =") + 1
    return text[:start + keep]


@pytest.mark.parametrize("key,keep", [("terminal_id", len('terminal_id = "1234')),
                                      ("response_timeout", len("response_timeout ="))])
def test_half_written_config_is_refused_naming_the_file(offline_terminal: Path, key: str,
                                                        keep: int):
    path = offline_terminal / "posterm.toml"
    text = path.read_text(encoding="utf-8")
    cut = _cut_mid_line(text, key, keep)
    assert len(cut) < len(text) and not cut.endswith("\n")
    path.write_text(cut, encoding="utf-8")
    run = posterm(offline_terminal, "sale", "12.50", "--card", "unionpay-debit-chip")
    line = assert_one_clean_error_line(run, 2)
    assert "posterm.toml" in line


def test_unknown_config_key_is_refused_naming_the_key(offline_terminal: Path):
    path = offline_terminal / "posterm.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[terminal]\n", '[terminal]\nfavourite_colour = "red"\n'),
                    encoding="utf-8")
    run = posterm(offline_terminal, "sale", "12.50", "--card", "unionpay-debit-chip")
    line = assert_one_clean_error_line(run, 2)
    assert "favourite_colour" in line


def test_bad_config_value_is_refused_naming_the_key_and_what_is_allowed(offline_terminal: Path):
    path = offline_terminal / "posterm.toml"
    text = path.read_text(encoding="utf-8")
    assert 'terminal_id = "12345678"' in text
    path.write_text(text.replace('terminal_id = "12345678"', 'terminal_id = "123"'),
                    encoding="utf-8")
    run = posterm(offline_terminal, "sale", "12.50", "--card", "unionpay-debit-chip")
    line = assert_one_clean_error_line(run, 2)
    assert "terminal_id" in line and "'123'" in line and "8" in line


# -- posterm init ---------------------------------------------------------------------------

def test_init_twice_without_force_is_refused_and_keeps_the_config(offline_terminal: Path):
    before = (offline_terminal / "posterm.toml").read_bytes()
    run = posterm_cmd("init", "--data", offline_terminal, "--terminal-id", "87654321")
    line = assert_one_clean_error_line(run, 2)
    assert "--force" in line
    assert (offline_terminal / "posterm.toml").read_bytes() == before


def test_init_again_with_force_starts_afresh(offline_terminal: Path):
    run = posterm_cmd("init", "--data", offline_terminal, "--terminal-id", "87654321",
                      "--force", "--json")
    assert run.returncode == 0, str(run)
    assert run.json()["terminal_id"] == "87654321"
    assert 'terminal_id = "87654321"' in (offline_terminal / "posterm.toml").read_text()

