"""The cashier's language: a declined sale's human output in Chinese (default) or English."""

from __future__ import annotations

from conftest import Terminal, set_config

ZH_51 = "余额不足"
EN_51 = "Insufficient funds"


def test_declined_sale_says_insufficient_funds_in_chinese_by_default(terminal: Terminal):
    assert 'language = "zh"' in (terminal.data / "posterm.toml").read_text(encoding="utf-8")
    run = terminal.run("sale", "500.00", "--card", "decline-51")
    assert run.returncode == 1, str(run)
    assert "Traceback" not in run.stdout + run.stderr
    assert ZH_51 in run.stdout, str(run)
    assert EN_51 not in run.stdout, str(run)
    assert " 51 " in run.stdout and "500.00" in run.stdout


def test_declined_sale_says_insufficient_funds_in_english_with_language_en(terminal: Terminal):
    set_config(terminal.data, "terminal", "language", "en")
    assert 'language = "en"' in (terminal.data / "posterm.toml").read_text(encoding="utf-8")
    run = terminal.run("sale", "500.00", "--card", "decline-51")
    assert run.returncode == 1, str(run)
    assert "Traceback" not in run.stdout + run.stderr
    assert EN_51 in run.stdout, str(run)
    assert ZH_51 not in run.stdout, str(run)
    assert " 51 " in run.stdout and "500.00" in run.stdout


def test_json_message_follows_the_configured_language(terminal: Terminal):
    zh = terminal.run("sale", "500.00", "--card", "decline-51", "--json")
    set_config(terminal.data, "terminal", "language", "en")
    en = terminal.run("sale", "500.00", "--card", "decline-51", "--json")
    assert (zh.returncode, en.returncode) == (1, 1), (str(zh), str(en))
    assert zh.json()["message"] == ZH_51
    assert en.json()["message"] == EN_51
    assert zh.json()["response_code"] == en.json()["response_code"] == "51"
