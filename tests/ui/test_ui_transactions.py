"""Sale, void and settlement driven with the keyboard alone, against a real posterm-host;
what the screens say is checked against the journal and the host's ledger."""

from __future__ import annotations

import sqlite3

from app.ui.app import PostermApp
from sync.responses import rule

from .conftest import SUPERVISOR, Till, integration
from .uipilot import app_of, idle, present, sale, screen_name, sign_on, text_of, until


def journal_rows(till: Till) -> list[dict]:
    """The journal as ``posterm txns --json`` lists it (a real process), oldest first."""
    run = integration.posterm(till.data, "txns", "--json")
    assert run.returncode == 0, str(run)
    return sorted(run.json()["transactions"], key=lambda r: r["txn_id"])


def operators_journaled(till: Till) -> list[str]:
    """The operator column of every transaction row (read-only SQLite)."""
    conn = sqlite3.connect(f"file:{till.data / 'posterm.db'}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT operator FROM transactions ORDER BY id")]
    finally:
        conn.close()


async def test_sale_amount_is_formatted_as_typed_and_approved_by_chip_with_its_slip(
        till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        await pilot.press("1")
        await until(pilot, lambda: screen_name(pilot) == "SaleScreen", "the sale screen")
        await pilot.press(*"1234.5")
        assert text_of(pilot, "#preview") == "¥ 1,234.50"
        await pilot.press("backspace", "backspace", "backspace", "backspace", "backspace",
                          "backspace", *"12.50", "enter")
        await until(pilot, lambda: app.screen.state == "card", "the card wait")
        assert "请插卡、挥卡或刷卡" in text_of(pilot, "#step")
        assert "芯片" in text_of(pilot, "#step")
        await present(pilot, "unionpay-debit-chip")
        await until(pilot, lambda: app.screen.state == "result", "the result")
        await idle(pilot)
        head = text_of(pilot, "#head")
        assert head.startswith("交易成功 APPROVED") and "00" in head, head
        details = text_of(pilot, "#details")
        assert "¥12.50" in details and "622609******0048" in details
        assert "打印机 正常" in details
        slip = text_of(pilot, "#slip")
        assert "POS SALES SLIP" in slip and "RMB ¥12.50" in slip
        assert "6226090000000048" not in slip                # masked, never in clear
    rows = journal_rows(till)
    assert [(r["type"], r["state"], r["amount"]) for r in rows] == [("sale", "approved", 1250)]
    assert operators_journaled(till) == ["01"]
    assert [r["amount"] for r in till.host.ledger_rows() if r["response_code"] == "00"] == [1250]


async def test_a_decline_shows_the_response_code_and_its_message(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        await sale(pilot, "500", "decline-51")
        head = text_of(pilot, "#head")
        assert head.startswith("交易失败 DECLINED"), head
        assert f"51 {rule('51').zh}" in head
        assert text_of(pilot, "#slip") == ""


async def test_a_swipe_with_the_pin_typed_in_the_mock_panel(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        await sale(pilot, "199.99", "unionpay-credit-swipe", pin="123456")
        assert text_of(pilot, "#head").startswith("交易成功 APPROVED")
    assert journal_rows(till)[0]["entry_mode"].startswith("02")


async def test_a_wrong_pin_typed_in_the_panel_is_declined_55(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        await sale(pilot, "30", "unionpay-debit-chip", pin="111111")
        assert "55" in text_of(pilot, "#head")


async def test_paper_out_keeps_the_sale_and_offers_the_reprint_once_paper_is_back(
        till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        await pilot.press("1")
        await until(pilot, lambda: screen_name(pilot) == "SaleScreen", "the sale screen")
        await until(pilot, lambda: "打印机 正常" in text_of(pilot, "#mock-state"), "printer")
        await pilot.press("f6")                                   # the paper runs out
        assert "缺纸" in text_of(pilot, "#mock-state")
        await pilot.press(*"8.8", "enter")
        await until(pilot, lambda: app.screen.state == "card", "the card wait")
        await present(pilot, "visa-chip")
        await until(pilot, lambda: app.screen.state == "result", "the result")
        await idle(pilot)
        assert text_of(pilot, "#head").startswith("交易成功 APPROVED")
        details = text_of(pilot, "#details")
        assert "签购单未打印" in details and "F4" in details, details
        await pilot.press("f4")                                   # still no paper
        await idle(pilot)
        assert "签购单未打印" in text_of(pilot, "#notice")
        await pilot.press("f6", "f4")                             # paper back, reprint
        await idle(pilot)
        assert "已重打印" in text_of(pilot, "#notice")
    assert journal_rows(till)[0]["receipt"] == "printed"


async def test_escape_while_waiting_for_the_card_cancels_without_a_transaction(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        await pilot.press("1")
        await until(pilot, lambda: screen_name(pilot) == "SaleScreen", "the sale screen")
        await pilot.press(*"20", "enter")
        await until(pilot, lambda: app.screen.state == "card", "the card wait")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen.state == "result", "the cancel", timeout=10)
        await idle(pilot)
        assert "Cancelled" in text_of(pilot, "#notice")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu")
    assert journal_rows(till) == []


async def test_bad_amounts_are_refused_before_any_card(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        await pilot.press("1")
        await until(pilot, lambda: screen_name(pilot) == "SaleScreen", "the sale screen")
        await pilot.press("0", "enter")
        assert "more than zero" in text_of(pilot, "#notice")
        await pilot.press("backspace", *"1.234", "enter")
        assert "two decimals" in text_of(pilot, "#notice")
        await pilot.press(*["backspace"] * 5, *"60000", "enter")   # over the single limit
        await until(pilot, lambda: "single-transaction limit" in text_of(pilot, "#notice"),
                    "the limit refusal")
        assert app.screen.state == "result"
    assert journal_rows(till) == []


async def test_host_down_is_one_calm_line_and_the_status_line_says_offline(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        till.host.stop()
        await sale(pilot, "12.50", "unionpay-debit-chip")
        line = text_of(pilot, "#notice")
        assert "\n" not in line and "Traceback" not in line
        assert "检查主机连接和设备后重试" in line, line
        await until(pilot, lambda: app.status.host_online is False, "offline")
        assert "主机脱机" in text_of(pilot, "#status")


async def test_void_asks_the_supervisor_refuses_a_wrong_password_and_voids(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        await sale(pilot, "88", "visa-chip")
        stan = journal_rows(till)[0]["stan"]
        await pilot.press("escape", "2")
        await until(pilot, lambda: screen_name(pilot) == "VoidScreen", "the void screen")
        await idle(pilot)
        listed = app.screen.query_one("#voidable")
        assert listed.option_count == 1 and str(int(stan)) == listed.get_option_at_index(0).id
        await pilot.press("tab", "enter")                          # pick it from the list
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press(*"not-it", "enter")
        await until(pilot, lambda: screen_name(pilot) == "VoidScreen", "back")
        await idle(pilot)
        assert "主管密码错误" in text_of(pilot, "#notice")
        await pilot.press(*str(int(stan)), "enter")                 # typed this time
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press(*SUPERVISOR, "enter")
        await until(pilot, lambda: app.screen.state == "result"
                    and text_of(pilot, "#head") != "", "the void's result")
        await idle(pilot)
        assert text_of(pilot, "#head").startswith("交易成功 APPROVED")
        assert "消费撤销 VOID" in text_of(pilot, "#slip")
        assert app.screen.query_one("#voidable").get_option_at_index(0).disabled
    rows = journal_rows(till)
    assert [(r["type"], r["state"]) for r in rows] == [("sale", "approved"), ("void", "approved")]
    assert rows[0]["voided_by"] == rows[1]["txn_id"]


async def test_void_of_an_unknown_stan_and_a_cancelled_prompt(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        await pilot.press("2")
        await until(pilot, lambda: screen_name(pilot) == "VoidScreen", "the void screen")
        await idle(pilot)
        await pilot.press(*"999", "enter")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "VoidScreen", "back")
        assert "已取消" in text_of(pilot, "#notice")
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press(*SUPERVISOR, "enter")
        await until(pilot, lambda: "000999" in text_of(pilot, "#notice"), "the refusal")


async def test_settlement_with_the_supervisor_balances_and_opens_the_next_batch(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        await sale(pilot, "12.50", "unionpay-debit-chip")
        await sale_again(pilot, "23.40", "mc-tap")
        await pilot.press("escape", "6")
        await until(pilot, lambda: screen_name(pilot) == "SettleScreen", "the settle screen")
        await idle(pilot)
        summary = text_of(pilot, "#summary")
        assert "000001" in summary and "笔数 2" in summary and "¥35.90" in summary, summary
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press(*"wrong-one", "enter")
        await until(pilot, lambda: "主管密码错误" in text_of(pilot, "#notice"), "the refusal")
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press(*SUPERVISOR, "enter")
        await until(pilot, lambda: "BALANCED" in text_of(pilot, "#head"), "balanced")
        await idle(pilot)
        assert text_of(pilot, "#head") == "结算 000001: 平 BALANCED"
        assert "reports/settlement-000001.txt" in text_of(pilot, "#details")
        assert "SETTLEMENT REPORT" in text_of(pilot, "#slip")
        await until(pilot, lambda: app.status.batch == 2, "batch 000002")
        assert "批次 000002" in text_of(pilot, "#status")
    assert (till.data / "reports" / "settlement-000001.txt").exists()


async def sale_again(pilot, amount: str, card: str) -> None:
    """A further sale on the sale screen: the amount field again, then the card."""
    app = app_of(pilot)
    await pilot.press(*amount, "enter")
    await until(pilot, lambda: app.screen.state == "card", "the card wait")
    await present(pilot, card)
    await until(pilot, lambda: app.screen.state == "result", "the result")
    await idle(pilot)
    assert text_of(pilot, "#head").startswith("交易成功 APPROVED")
