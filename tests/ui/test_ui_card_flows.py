"""Refund, balance inquiry, pre-authorisation (hold, completion, void) and the application
choice of a dual-application card, driven with the keyboard alone against a real
posterm-host; what the screens say is checked against the journal and the host's ledger.
Snapshots of each main screen at 80x24 are at the end."""

from __future__ import annotations

import dataclasses

from app.ui.app import PostermApp
from app.ui.preauth import open_preauths
from hal.testcards import CATALOGUE
from host.issuer import TEST_BALANCE
from sync.responses import rule

from .conftest import SUPERVISOR, Till
from .test_ui_snapshots import FIXED_AUTH, SIZE, fixed_text, steady
from .test_ui_transactions import journal_rows
from .uipilot import app_of, idle, present, sale, screen_name, sign_on, text_of, until


async def open_screen(pilot, key: str, name: str) -> None:
    """From the menu (after Esc from a screen, if one is open): ``key`` opens ``name``."""
    if screen_name(pilot) != "MenuScreen":
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu")
    await pilot.press(key)
    await until(pilot, lambda: screen_name(pilot) == name, name)
    await idle(pilot)


async def refund(pilot, amount: str, rrn: str, password: str = SUPERVISOR) -> None:
    """On the refund screen: the amount, the RRN, today's date as shown, the supervisor."""
    await pilot.press(*amount, "enter", *rrn, "enter", "enter")
    await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
    await pilot.press(*password, "enter")
    await until(pilot, lambda: screen_name(pilot) == "RefundScreen", "back from the prompt")


async def card_result(pilot, card: str, *, pin: str | None = None) -> None:
    """Wait for the card wait, present ``card``, wait for the result."""
    app = app_of(pilot)
    await until(pilot, lambda: app.screen.state == "card", "the card wait")
    await present(pilot, card, pin=pin)
    await until(pilot, lambda: app.screen.state == "result", "the result")
    await idle(pilot)


# -- refund ------------------------------------------------------------------------------------

async def test_refund_of_a_sale_its_slip_paper_out_and_refusals_over_the_rest_and_unknown(
        till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await sale(pilot, "50", "visa-chip")
        rrn = journal_rows(till)[0]["rrn"]
        await open_screen(pilot, "3", "RefundScreen")
        await pilot.press(*"20")
        assert app.screen.query_one("#amount").border_subtitle == "¥ 20.00"
        await pilot.press("f6")                                   # the paper runs out
        await pilot.press(*["backspace"] * 2)
        await refund(pilot, "20", rrn)
        await card_result(pilot, "visa-chip")
        head = text_of(pilot, "#head")
        assert head.startswith("交易成功 APPROVED"), head
        assert "签购单未打印" in text_of(pilot, "#details")
        assert "退货 REFUND" in text_of(pilot, "#slip") or "REFUND" in text_of(pilot, "#slip")
        await pilot.press("f6", "f4")                             # paper back, reprint
        await idle(pilot)
        assert "已重打印" in text_of(pilot, "#notice")

        await refund(pilot, "40", rrn)                            # 30.00 is left of 50.00
        await card_result(pilot, "visa-chip")
        assert text_of(pilot, "#head").startswith("交易失败 DECLINED")
        assert f"13 {rule('13').zh}" in text_of(pilot, "#head")

        await refund(pilot, "5", "999999999999")                  # no such original
        await card_result(pilot, "visa-chip")
        assert f"25 {rule('25').zh}" in text_of(pilot, "#head")
    rows = journal_rows(till)
    assert [(r["type"], r["state"], r["amount"]) for r in rows] == [
        ("sale", "approved", 5000), ("refund", "approved", 2000),
        ("refund", "declined", 4000), ("refund", "declined", 500)]
    assert rows[1]["receipt"] == "printed"
    assert [r["amount"] for r in till.host.ledger_rows()
            if r["txn_type"] == "refund" and r["response_code"] == "00"] == [2000]


async def test_refund_bad_fields_wrong_supervisor_cancelled_prompt_and_card_wait(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_screen(pilot, "3", "RefundScreen")
        await pilot.press("enter")                                # no amount
        assert "退货金额" in text_of(pilot, "#notice")
        await pilot.press(*"10", "enter", *"12345", "enter", "enter")
        assert "12-digit" in text_of(pilot, "#notice")           # a short RRN
        assert app.focused is app.screen.query_one("#rrn")
        await pilot.press(*"1234567", "enter")
        assert app.focused is app.screen.query_one("#date")
        await pilot.press(*["backspace"] * 4, *"1340", "enter")   # month 13
        assert "MMDD" in text_of(pilot, "#notice")
        assert screen_name(pilot) == "RefundScreen"
        await pilot.press(*["backspace"] * 4, *"0102", "enter")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press("escape")                               # the supervisor says no
        await until(pilot, lambda: screen_name(pilot) == "RefundScreen", "back")
        assert "已取消" in text_of(pilot, "#notice")
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press(*"not-it", "enter")
        await until(pilot, lambda: "主管密码错误" in text_of(pilot, "#notice"), "the refusal")
        assert app.screen.state == "result"
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press(*SUPERVISOR, "enter")
        await until(pilot, lambda: app.screen.state == "card", "the card wait")
        await pilot.press("escape")                               # no card after all
        await until(pilot, lambda: app.screen.state == "result", "the cancel", timeout=10)
        await idle(pilot)
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu")
    assert journal_rows(till) == []


# -- balance -----------------------------------------------------------------------------------

async def test_balance_is_shown_masked_never_printed_and_a_wrong_pin_is_declined(till: Till):
    from app.amount import format_yuan
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_screen(pilot, "4", "BalanceScreen")
        await pilot.press("enter")
        await card_result(pilot, "unionpay-debit-chip")
        head = text_of(pilot, "#head")
        assert head == f"余额 BALANCE  ¥{format_yuan(TEST_BALANCE, grouped=True)}", head
        details = text_of(pilot, "#details")
        assert "622609******0048" in details and "余额不打印" in details
        pan = CATALOGUE["unionpay-debit-chip"].pan
        assert pan not in details and pan not in head
        assert text_of(pilot, "#slip") == ""
        await pilot.press("enter")                                # again, a wrong PIN
        await card_result(pilot, "unionpay-debit-chip", pin="111111")
        assert text_of(pilot, "#head").startswith(f"交易失败 DECLINED  55 {rule('55').zh}")
    assert journal_rows(till) == []                               # nothing moved
    printed = list((till.data / "receipts").glob("*")) if (till.data / "receipts").exists() \
        else []
    assert printed == []


# -- pre-authorisation -------------------------------------------------------------------------

async def test_preauth_hold_completion_over_115_percent_and_void_from_its_menu(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_screen(pilot, "5", "PreauthScreen")
        await pilot.press("1")
        await until(pilot, lambda: screen_name(pilot) == "PreauthHoldScreen", "the hold")
        await pilot.press(*"100", "enter")
        await card_result(pilot, "unionpay-debit-chip")
        assert text_of(pilot, "#head").startswith("交易成功 APPROVED")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "PreauthScreen", "the choice")
        await pilot.press("down", "enter")                         # 2 with the arrows
        await until(pilot, lambda: screen_name(pilot) == "CompletionScreen", "completion")
        await idle(pilot)
        hold = journal_rows(till)[0]
        listed = app.screen.query_one("#open")
        assert listed.option_count == 1
        assert listed.get_option_at_index(0).id == str(int(hold["stan"]))
        await pilot.press("tab", "enter")                          # picked from the list
        amount = app.screen.query_one("#amount")
        assert app.focused is amount and amount.value == "100.00"
        await pilot.press(*["backspace"] * 6, *"110", "enter")
        await card_result(pilot, "unionpay-debit-chip")
        assert text_of(pilot, "#head").startswith("交易成功 APPROVED")
        assert app.screen.query_one("#open").get_option_at_index(0).disabled   # none open

        await pilot.press("escape", "1")                           # a second hold
        await until(pilot, lambda: screen_name(pilot) == "PreauthHoldScreen", "the hold")
        await pilot.press(*"100", "enter")
        await card_result(pilot, "unionpay-debit-chip")
        second = journal_rows(till)[-1]
        await pilot.press("escape", "2")
        await until(pilot, lambda: screen_name(pilot) == "CompletionScreen", "completion")
        await idle(pilot)
        await pilot.press(*str(int(second["stan"])), "enter")     # typed this time
        await pilot.press(*["backspace"] * 6, *"120", "enter")    # over 115% of the hold
        await card_result(pilot, "unionpay-debit-chip")
        assert f"61 {rule('61').zh}" in text_of(pilot, "#head")
        await pilot.press(*"999", "enter", *"1", "enter")          # no such hold
        await until(pilot, lambda: "000999" in text_of(pilot, "#notice"), "the refusal")

        await pilot.press("escape", "3")
        await until(pilot, lambda: screen_name(pilot) == "PreauthVoidScreen", "the void")
        await idle(pilot)
        listed = app.screen.query_one("#voidable")
        ids = [listed.get_option_at_index(i).id for i in range(listed.option_count)]
        assert ids == [str(int(second["stan"])), str(int(journal_rows(till)[1]["stan"]))]
        await pilot.press("tab", "enter")                          # the open hold
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press(*SUPERVISOR, "enter")
        await until(pilot, lambda: app.screen.state == "result"
                    and text_of(pilot, "#head") != "", "the void's result")
        await idle(pilot)
        assert text_of(pilot, "#head").startswith("交易成功 APPROVED")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "PreauthScreen", "the choice")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu")
    rows = journal_rows(till)
    assert [(r["type"], r["state"], r["amount"]) for r in rows] == [
        ("preauth", "approved", 10000), ("completion", "approved", 11000),
        ("preauth", "approved", 10000), ("completion", "declined", 12000),
        ("preauth_void", "approved", 10000)]
    assert rows[2]["voided_by"] == rows[4]["txn_id"]


# -- the application choice ------------------------------------------------------------------

async def test_dual_application_card_the_cardholder_chooses_or_cancels(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_screen(pilot, "1", "SaleScreen")
        await pilot.press(*"66", "enter")
        await until(pilot, lambda: app.screen.state == "card", "the card wait")
        await present(pilot, "unionpay-dual-app")
        await until(pilot, lambda: screen_name(pilot) == "AppChoice", "the choice")
        apps = app.screen.query_one("#apps")
        assert apps.option_count == 2
        assert "UNIONPAY DEBIT" in str(apps.get_option_at_index(0).prompt)
        assert "UNIONPAY CREDIT" in str(apps.get_option_at_index(1).prompt)
        await pilot.press("down", "enter")                         # the credit one
        await until(pilot, lambda: screen_name(pilot) == "SaleScreen", "the sale again")
        await until(pilot, lambda: app.screen.state == "result", "the result")
        await idle(pilot)
        assert text_of(pilot, "#head").startswith("交易成功 APPROVED")
        assert app.screen.view.data["aid"] == "A000000333010102"

        await pilot.press(*"77", "enter")                          # again: Esc at the choice
        await until(pilot, lambda: app.screen.state == "card", "the card wait")
        await present(pilot, "unionpay-dual-app")
        await until(pilot, lambda: screen_name(pilot) == "AppChoice", "the choice")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen.state == "result", "the cancel")
        await idle(pilot)
        assert text_of(pilot, "#notice") == "已取消 Cancelled"
        assert text_of(pilot, "#head") == ""
    rows = journal_rows(till)
    assert [(r["type"], r["state"], r["amount"]) for r in rows] == [("sale", "approved", 6600)]
    assert [r["amount"] for r in till.host.ledger_rows()] == [6600]


# -- snapshots (fixed clock, auth code and dates, as tests/ui/test_ui_snapshots.py) -------------

def _fixed_result(screen) -> None:
    """The result shown again with the volatile values (time, auth code) fixed."""
    view = screen.view
    auth = view.data["auth_code"]
    screen.show_result(dataclasses.replace(
        view, data={**view.data, "auth_code": FIXED_AUTH},
        receipt=fixed_text(view.receipt or "", auth)))


def test_snapshot_refund_result_with_its_slip(snap_compare, till: Till):
    async def run_before(pilot) -> None:
        await sign_on(pilot)
        await sale(pilot, "50", "visa-chip")
        rrn = journal_rows(till)[0]["rrn"]
        await open_screen(pilot, "3", "RefundScreen")
        await refund(pilot, "20", rrn)
        await card_result(pilot, "visa-chip")
        screen = pilot.app.screen
        screen.query_one("#date").value = "0102"
        _fixed_result(screen)
        await steady(pilot)

    assert snap_compare(PostermApp(till.data), terminal_size=SIZE, run_before=run_before)


def test_snapshot_balance_result(snap_compare, till: Till):
    async def run_before(pilot) -> None:
        await sign_on(pilot)
        await open_screen(pilot, "4", "BalanceScreen")
        await pilot.press("enter")
        await card_result(pilot, "unionpay-debit-chip")
        await steady(pilot)

    assert snap_compare(PostermApp(till.data), terminal_size=SIZE, run_before=run_before)


def test_snapshot_preauth_choice(snap_compare, till: Till):
    async def run_before(pilot) -> None:
        await sign_on(pilot)
        await open_screen(pilot, "5", "PreauthScreen")
        await steady(pilot)

    assert snap_compare(PostermApp(till.data), terminal_size=SIZE, run_before=run_before)


def test_snapshot_completion_with_an_open_hold_picked(snap_compare, till: Till):
    async def run_before(pilot) -> None:
        await sign_on(pilot)
        await open_screen(pilot, "5", "PreauthScreen")
        await pilot.press("1")
        await until(pilot, lambda: screen_name(pilot) == "PreauthHoldScreen", "the hold")
        await pilot.press(*"100", "enter")
        await card_result(pilot, "unionpay-debit-chip")
        await pilot.press("escape", "2")
        await until(pilot, lambda: screen_name(pilot) == "CompletionScreen", "completion")
        await idle(pilot)
        screen = pilot.app.screen
        items = [(stan, amount, text.rsplit(" ", 2)[0] + f" 01-02 {FIXED_AUTH}")
                 for stan, amount, text in open_preauths(app_of(pilot).term)]
        screen._listed(items)                           # the hold's date and auth code fixed
        await pilot.press("tab", "enter")
        await steady(pilot)

    assert snap_compare(PostermApp(till.data), terminal_size=SIZE, run_before=run_before)


def test_snapshot_application_choice(snap_compare, till: Till):
    async def run_before(pilot) -> None:
        await sign_on(pilot)
        await open_screen(pilot, "1", "SaleScreen")
        await pilot.press(*"66", "enter")
        await until(pilot, lambda: pilot.app.screen.state == "card", "the card wait")
        await present(pilot, "unionpay-dual-app")
        await until(pilot, lambda: screen_name(pilot) == "AppChoice", "the choice")
        await steady(pilot)

    assert snap_compare(PostermApp(till.data), terminal_size=SIZE, run_before=run_before)


async def test_refund_a_first_supervisor_password_is_changed_and_a_locked_one_refused(
        tmp_path, host):
    from app.operators import change_password
    from app.terminal import Terminal

    from .conftest import integration
    from .uipilot import CASHIER_PASSWORD
    data = tmp_path / "till"
    generated = integration.provision(data, host.address, host.data).json()[
        "supervisor_password"]                                    # must be changed first
    with Terminal(data) as term:
        change_password(term, "01", "0000", CASHIER_PASSWORD)
    till = Till(data, host)
    app = PostermApp(data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await sale(pilot, "30", "visa-chip")
        rrn = journal_rows(till)[0]["rrn"]
        await open_screen(pilot, "3", "RefundScreen")
        await pilot.press(*"30", "enter", *rrn, "enter", "enter", *generated, "enter")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt"
                    and pilot.app.screen.has_class("changing"), "the change asked")
        await pilot.press(*generated, "enter", *"boss-13579", "enter", *"boss-13579", "enter")
        await card_result(pilot, "visa-chip")
        assert text_of(pilot, "#head").startswith("交易成功 APPROVED")
        await refund(pilot, "1", rrn, password="not-it")
        for tries in range(5):                                     # [operators] max_failures
            await until(pilot, lambda: app.screen.state == "result"
                        and text_of(pilot, "#notice") != "", "the refusal")
            await idle(pilot)
            assert app.focused is app.screen.query_one("#date")    # the fields kept
            await pilot.press("enter")
            await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
            await pilot.press(*("not-it" if tries < 4 else "boss-13579"), "enter")
        await until(pilot, lambda: "锁定" in text_of(pilot, "#notice"), "the lock")
        assert "\n" not in text_of(pilot, "#notice")
    rows = journal_rows(till)
    assert [(r["type"], r["state"], r["amount"]) for r in rows] == [
        ("sale", "approved", 3000), ("refund", "approved", 3000)]


async def test_host_down_is_one_calm_line_on_refund_balance_and_preauth(till: Till):
    """A refund sent without an answer is queued (store and forward): the line says it is
    kept and not to make it again; the others say to check the host link and retry."""
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        till.host.stop()
        await open_screen(pilot, "3", "RefundScreen")
        await refund(pilot, "5", "000000000001")
        await card_result(pilot, "visa-chip")
        line = text_of(pilot, "#notice")                          # sent, no answer: queued
        assert line.startswith("退货已保存，主机应答前自动重发，请勿重做"), line
        assert "重试" not in line and "\n" not in line
        lines = []
        await open_screen(pilot, "4", "BalanceScreen")
        await pilot.press("enter")
        await card_result(pilot, "unionpay-debit-chip")
        lines.append(text_of(pilot, "#notice"))
        await open_screen(pilot, "5", "PreauthScreen")
        await pilot.press("1")
        await until(pilot, lambda: screen_name(pilot) == "PreauthHoldScreen", "the hold")
        await pilot.press(*"100", "enter")
        await card_result(pilot, "unionpay-debit-chip")
        lines.append(text_of(pilot, "#notice"))
        for line in lines:
            assert "检查主机连接和设备后重试" in line and "\n" not in line, line
        assert app.status.host_online is False
    rows = journal_rows(till)
    assert all(r["state"] != "approved" for r in rows)
    assert [r["type"] for r in rows if r["state"] == "pending"] == ["refund"]


async def test_in_english_the_labels_put_english_first(till_factory):
    till = till_factory(language="en")
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_screen(pilot, "3", "RefundScreen")
        titles = [app.screen.query_one(f"#{name}").border_title
                  for name in ("amount", "rrn", "date")]
        assert titles == ["Refund amount (yuan) 退货金额（元）", "Original RRN 原参考号（12位）",
                          "Original date 原交易日期 MMDD"]
        await open_screen(pilot, "4", "BalanceScreen")
        await pilot.press("enter")
        await card_result(pilot, "visa-chip")
        assert text_of(pilot, "#head").startswith("BALANCE 余额  ¥")
        await open_screen(pilot, "5", "PreauthScreen")
        options = app.screen.query_one("#choices")
        assert str(options.get_option_at_index(1).prompt) == "2  Completion 预授权完成"
