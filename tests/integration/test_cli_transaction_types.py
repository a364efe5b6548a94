"""Every transaction type through the posterm CLI against posterm-host, with the refusals:
a void of another batch, a refund over the limit, a wrong supervisor password."""

from __future__ import annotations

import pytest
from conftest import assert_one_clean_error_line, posterm_cmd, set_config

from app.terminal import Terminal

PW = "sup3r-visor"


@pytest.fixture
def till(terminal):
    """The conftest terminal, re-initialised with a known supervisor password."""
    run = posterm_cmd("init", "--data", terminal.data, "--host", terminal.host.address,
                      "--host-data", terminal.host.data, "--supervisor-password", PW,
                      "--force")
    assert run.returncode == 0, str(run)
    return terminal


def _sale(till, amount="50.00", card="unionpay-debit-chip"):
    run = till.run("sale", amount, "--card", card, "--json")
    assert run.returncode == 0, str(run)
    return run.json()


def test_void_with_the_supervisor_password_and_the_refusals(till):
    sale = _sale(till)
    wrong = till.run("void", str(int(sale["stan"])), "--supervisor-password", "nope")
    assert "wrong supervisor password" in assert_one_clean_error_line(wrong, 1)
    done = till.run("void", str(int(sale["stan"])), "--supervisor-password", PW, "--json")
    assert done.returncode == 0, str(done)
    assert done.json()["result"] == "approved" and done.json()["amount"] == 5000
    again = till.run("void", str(int(sale["stan"])), "--supervisor-password", PW)
    assert "already voided" in assert_one_clean_error_line(again, 1)
    no_password = till.run("void", "1")
    assert "supervisor password" in assert_one_clean_error_line(no_password, 2)
    rows = {r["stan"]: r for r in till.run("txns", "--json").json()["transactions"]}
    assert rows[sale["stan"]]["state"] == "approved"
    host = {r["stan"]: r for r in till.host.ledger_rows()}
    assert host[int(sale["stan"])]["state"] == "voided"
    assert till.run("audit", "verify").returncode == 0


def test_a_void_of_a_closed_batch_is_refused_with_refund_instead(till):
    sale = _sale(till)
    with Terminal(till.data) as term:          # the batch closes (issue 6 settles it)
        term.journal.set_batch(term.journal.current_batch() + 1)
    run = till.run("void", str(int(sale["stan"])), "--supervisor-password", PW)
    assert "refund it instead" in assert_one_clean_error_line(run, 1)


def test_refund_within_limits_and_over_them(till):
    sale = _sale(till, "100.00")
    sale_date = None
    for r in till.run("txns", "--json").json()["transactions"]:
        if r["stan"] == sale["stan"]:
            sale_date = r["time_local"][5:7] + r["time_local"][8:10]
    ok = till.run("refund", "30.00", "--rrn", sale["rrn"], "--date", sale_date, "--card",
                  "unionpay-debit-chip", "--supervisor-password", PW, "--json")
    assert ok.returncode == 0, str(ok)
    assert ok.json()["result"] == "approved" and ok.json()["amount"] == 3000
    set_config(till.data, "limits", "refund_max", 2000)
    over = till.run("refund", "25.00", "--rrn", sale["rrn"], "--date", sale_date, "--card",
                    "unionpay-debit-chip", "--supervisor-password", PW)
    assert "over the refund limit" in assert_one_clean_error_line(over, 1)
    set_config(till.data, "limits", "refund_max", 1_000_000)
    set_config(till.data, "limits", "refund_daily", 4000)
    daily = till.run("refund", "15.00", "--rrn", sale["rrn"], "--date", sale_date, "--card",
                     "unionpay-debit-chip", "--supervisor-password", PW)
    assert "daily limit" in assert_one_clean_error_line(daily, 1)
    bad = till.run("refund", "1.00", "--rrn", "12", "--date", sale_date, "--card",
                   "unionpay-debit-chip", "--supervisor-password", PW)
    assert "--rrn" in assert_one_clean_error_line(bad, 2)


def test_balance_preauth_completion_and_the_queue(till):
    bal = till.run("balance", "--card", "unionpay-debit-chip", "--json")
    assert bal.returncode == 0, str(bal)
    assert bal.json()["balance"] == 888_888 and bal.json()["pan_masked"] == "622609******0048"
    wrong = till.run("balance", "--card", "wrong-pin", "--json")
    assert wrong.returncode == 1 and wrong.json()["response_code"] == "55"
    pre = till.run("preauth", "300.00", "--card", "unionpay-debit-chip", "--json")
    assert pre.returncode == 0, str(pre)
    comp = till.run("complete", "320.00", "--preauth", str(int(pre.json()["stan"])),
                    "--card", "unionpay-debit-chip", "--json")
    assert comp.returncode == 0, str(comp)
    assert comp.json()["amount"] == 32000
    undo = till.run("void", str(int(comp.json()["stan"])), "--supervisor-password", PW,
                    "--json")
    assert undo.returncode == 0, str(undo)
    hold = till.run("preauth", "80.00", "--card", "unionpay-debit-chip", "--json")
    assert hold.returncode == 0, str(hold)
    cancel = till.run("void", str(int(hold.json()["stan"])), "--supervisor-password", PW,
                      "--json")                       # a pre-authorisation void
    assert cancel.returncode == 0, str(cancel)
    host = {r["stan"]: r for r in till.host.ledger_rows()}
    assert host[int(hold.json()["stan"])]["state"] == "voided"
    assert host[int(cancel.json()["stan"])]["txn_type"] == "preauth_void"
    queue = till.run("queue", "--json")
    assert queue.returncode == 0 and queue.json() == {"queue": []}
    flush = till.run("queue", "flush", "--json")
    assert flush.returncode == 0 and flush.json()["left"] == []


def test_an_offline_sale_waits_in_the_queue_until_flushed_and_the_caps_hold(till):
    # Below the floor limit, with terminal action codes that accept ODA not performed, the
    # offline-capable card approves offline (TC); the caps then send the next one online.
    set_config(till.data, "emv", "floor_limit", 10_000)
    set_config(till.data, "emv", "tac_online", "0000000000")
    set_config(till.data, "emv", "tac_default", "0000000000")
    set_config(till.data, "limits", "offline_count", 1)
    first = _sale(till, "5.00", "over-floor-limit")
    assert (first["response_code"], first["cryptogram_type"]) == ("Y1", "TC")
    waiting = till.run("queue", "--json").json()["queue"]
    assert [(q["kind"], q["stan"], q["amount"]) for q in waiting] == [
        ("advice", first["stan"], 500)]
    assert not [r for r in till.host.ledger_rows() if r["txn_type"] == "offline_sale"]
    second = _sale(till, "6.00", "over-floor-limit")     # the cap is reached: online
    assert second["cryptogram_type"] == "ARQC" and second["response_code"] == "00"
    rows = [r for r in till.host.ledger_rows() if r["txn_type"] == "offline_sale"]
    assert [(r["stan"], r["amount"], r["auth_code"]) for r in rows] == [
        (int(first["stan"]), 500, first["auth_code"])]
    flush = till.run("queue", "flush", "--json")
    assert flush.returncode == 0 and flush.json()["left"] == []
