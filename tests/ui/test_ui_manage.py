"""Manage (管理): operators behind the supervisor's password, the cashier's own password,
the keys and a fresh sign-on, the configuration view and the devices' self-test — driven
with the keyboard against a real posterm-host; what the screens say is checked against
``posterm operator list --json``, the journal and the files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from app.ui.app import PostermApp

from .conftest import SUPERVISOR, Till, integration
from .uipilot import CASHIER_PASSWORD, app_of, idle, screen_name, sign_on, text_of, until

SIZE = (80, 24)


# -- helpers ----------------------------------------------------------------------------------

async def open_manage(pilot) -> None:
    await pilot.press("m")
    await until(pilot, lambda: screen_name(pilot) == "ManageScreen", "the manage menu")


async def open_part(pilot, key: str, screen: str) -> None:
    await pilot.press(key)
    await until(pilot, lambda: screen_name(pilot) == screen, screen)
    await idle(pilot)


async def open_operators(pilot, password: str = SUPERVISOR) -> None:
    await pilot.press("1")
    await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
    await pilot.press(*password, "enter")
    await until(pilot, lambda: screen_name(pilot) == "OperatorsScreen", "the operators")
    await idle(pilot)


def operators_listed(till: Till) -> dict[str, dict]:
    """``posterm operator list --json`` (a real process) by code."""
    run = integration.posterm(till.data, "operator", "list", "--json")
    assert run.returncode == 0, str(run)
    return {op["code"]: op for op in run.json()["operators"]}


def table_rows(pilot, selector: str) -> list[list[str]]:
    table = pilot.app.screen.query_one(selector)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def row_of(pilot, code: str) -> list[str]:
    return next(r for r in table_rows(pilot, "#operators") if r[0].strip("* ") == code)


async def pick(pilot, code: str) -> None:
    """Move the operators table's cursor to ``code`` with the arrows."""
    codes = [r[0].strip("* ") for r in table_rows(pilot, "#operators")]
    await pilot.press(*(["up"] * len(codes)), *(["down"] * codes.index(code)))


async def fill_form(pilot, *values: str) -> None:
    await until(pilot, lambda: screen_name(pilot) == "OperatorForm", "the form")
    for value in values:
        await pilot.press(*value, "enter")


def notice(pilot) -> str:
    return text_of(pilot, "#notice")


async def until_notice(pilot, part: str) -> str:
    await until(pilot, lambda: part in notice(pilot), f"{part!r} in the notice")
    await idle(pilot)
    line = notice(pilot)
    assert "\n" not in line and "Traceback" not in line, line
    return line


# -- the manage menu ----------------------------------------------------------------------------

async def test_each_part_opens_with_its_number_and_esc_comes_back_to_manage_then_the_menu(
        till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_manage(pilot)
        for key, screen in (("2", "PasswordScreen"), ("3", "KeysScreen"),
                            ("4", "ConfigScreen"), ("5", "DevicesScreen")):
            await open_part(pilot, key, screen)
            await pilot.press("escape")
            await until(pilot, lambda: screen_name(pilot) == "ManageScreen", "manage again")
        await pilot.press("home", "down", "down", "enter")             # arrows: keys
        await until(pilot, lambda: screen_name(pilot) == "KeysScreen", "the keys")
        await idle(pilot)
        await pilot.press("escape", "escape")
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the main menu")


async def test_english_first_when_the_terminal_speaks_english(till_factory):
    till = till_factory(language="en")
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_manage(pilot)
        assert text_of(pilot, "#title").startswith("Manage")
        await open_part(pilot, "5", "DevicesScreen")
        rows = table_rows(pilot, "#devices")
        assert [r[0] for r in rows] == ["chip reader", "contactless", "PIN pad", "printer"]
        assert {r[2] for r in rows} == {"ok"}
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "ManageScreen", "manage")
        await open_part(pilot, "3", "KeysScreen")
        assert "Master key 主密钥 TMK" in text_of(pilot, "#keys")
        await pilot.press("f5")
        assert await until_notice(pilot, "Signed on") == "Signed on 签到成功 — Batch 000001"


# -- operators: the supervisor's -------------------------------------------------------------

async def test_operators_ask_the_supervisor_wrong_password_and_esc_are_refused(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_manage(pilot)
        await pilot.press("1")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "ManageScreen", "back")
        assert "已取消" in notice(pilot)
        await pilot.press("1")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press(*"not-the-one", "enter")
        line = await until_notice(pilot, "主管密码错误")
        assert "还可尝试 4 次" in line, line
        assert screen_name(pilot) == "ManageScreen"
        await open_operators(pilot)
        rows = table_rows(pilot, "#operators")
        assert [r[0] for r in rows] == ["*01", " 99"], rows            # 01 signed on here
        assert rows[0][1:4] == ["收银员", "Cashier 收银员 01", "正常"], rows[0]
        assert rows[1][1] == "主管"
    audit = integration.posterm(till.data, "audit", "verify", "--json")
    assert audit.returncode == 0, str(audit)


async def test_a_supervisor_locked_out_is_told_until_when(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_manage(pilot)
        for _ in range(5):
            await pilot.press("1")
            await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
            await pilot.press(*"wrong-again", "enter")
            await until(pilot, lambda: screen_name(pilot) == "ManageScreen", "back")
            await idle(pilot)
        assert "已锁定" in notice(pilot), notice(pilot)
        await pilot.press("1")                                     # the right one: locked
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press(*SUPERVISOR, "enter")
        await until_notice(pilot, "已锁定")
        assert screen_name(pilot) == "ManageScreen"
    assert operators_listed(till)["99"]["locked_until"]


async def test_a_supervisor_password_that_must_be_changed_is_changed_in_the_prompt(
        tmp_path: Path, host):
    data = tmp_path / "fresh-till"
    run = integration.provision(data, host.address, host.data)
    generated = run.json()["supervisor_password"]
    from app.operators import change_password
    from app.terminal import Terminal
    with Terminal(data) as term:
        change_password(term, "01", "0000", CASHIER_PASSWORD)
    app = PostermApp(data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_manage(pilot)
        await pilot.press("1")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press(*generated, "enter")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt"
                    and "须先修改" in text_of(pilot, "#prompt-notice"), "the change asked")
        await pilot.press(*generated, "enter", *"boss-13579", "enter", *"boss-13579", "enter")
        await until(pilot, lambda: screen_name(pilot) == "OperatorsScreen", "the operators")
        await idle(pilot)
    assert not integration.posterm(data, "operator", "list", "--json").json()[
        "operators"][-1]["must_change"]


async def test_the_supervisor_adds_a_cashier_and_the_refusals_are_one_line_each(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_manage(pilot)
        await open_operators(pilot)
        await pilot.press("f2")
        await fill_form(pilot, "03", "王小明", "5555", "5556")        # passwords differ
        assert "不一致" in text_of(pilot, "#form-notice")
        await pilot.press(*"5555", "enter", *"5555", "enter")
        await until(pilot, lambda: screen_name(pilot) == "OperatorsScreen", "back")
        line = await until_notice(pilot, "已添加")
        assert line == "操作员 03 王小明 已添加，首次登录须修改密码"
        assert row_of(pilot, "03")[1:4] == ["收银员", "王小明", "须改密码"]
        for values, refusal in ((("03", "李四", "6666", "6666"), "操作员 03 已存在（王小明）"),
                                (("99", "李四", "6666", "6666"), "99 为主管"),
                                (("00", "李四", "6666", "6666"), "须为两位数字"),
                                (("7", "李四", "6666", "6666"), "须为两位数字"),
                                (("04", "李四", "12", "12"), "收银员密码至少 4 位")):
            await pilot.press("f2")
            await fill_form(pilot, *values)
            await until(pilot, lambda: screen_name(pilot) == "OperatorsScreen", "back")
            await until_notice(pilot, refusal)
        await pilot.press("f2")
        await fill_form(pilot, "05")
        await pilot.press("escape")
        await until_notice(pilot, "已取消")
        await pilot.press("f2")                          # brackets are a name, not markup
        await fill_form(pilot, "06", "[A组] 张三", "6666", "6666")
        await until_notice(pilot, "操作员 06 [A组] 张三 已添加")
        assert row_of(pilot, "06")[2] == "[A组] 张三"
    ops = operators_listed(till)
    assert sorted(ops) == ["01", "03", "06", "99"]
    assert ops["03"]["name"] == "王小明" and ops["03"]["must_change"]


async def test_reset_unlock_and_remove_a_cashier_but_not_the_one_signed_on_here(till: Till):
    from app.operators import OperatorLocked, WrongPassword, add_operator
    from app.operators import sign_on as check
    from app.terminal import Terminal
    with Terminal(till.data) as term:
        add_operator(term, "02", "Cashier 02", "2222", supervisor_password=SUPERVISOR)
        for _ in range(5):                      # cashier 02 forgets: locked
            try:
                check(term, "02", "9999")
            except (WrongPassword, OperatorLocked):
                pass
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_manage(pilot)
        await open_operators(pilot)
        assert row_of(pilot, "02")[3].startswith("锁定至")
        await pick(pilot, "02")
        await pilot.press("f4")
        await until_notice(pilot, "操作员 02 已解锁")
        await until(pilot, lambda: row_of(pilot, "02")[3] == "须改密码", "unlocked")
        await pilot.press("f3")
        await fill_form(pilot, "4321", "4321")
        await until_notice(pilot, "操作员 02 密码已重置，下次登录须修改")
        await pick(pilot, "99")
        await pilot.press("f3")
        await fill_form(pilot, "4321", "4321")
        await until_notice(pilot, "99 为主管")
        await pilot.press("f8")                          # 99: refused, nothing asked
        await until_notice(pilot, "只能删除收银员")
        assert screen_name(pilot) == "OperatorsScreen"
        await pick(pilot, "01")
        await pilot.press("f8")
        await until_notice(pilot, "正在本机签到，不能删除")
        assert screen_name(pilot) == "OperatorsScreen"
        await pick(pilot, "02")
        await pilot.press("f8")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmBox", "the question")
        await pilot.press("escape")
        await until_notice(pilot, "已取消")
        await pilot.press("f8")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmBox", "the question")
        await pilot.press("enter")
        await until_notice(pilot, "操作员 02 已删除")
        await until(pilot, lambda: row_of(pilot, "02")[3] == "已删除", "removed")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "ManageScreen", "manage")
    ops = operators_listed(till)
    assert not ops["02"]["active"]
    assert ops["01"]["active"]


# -- the cashier's own password -----------------------------------------------------------------

async def test_a_cashier_changes_their_own_password_without_the_supervisor(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_manage(pilot)
        await open_part(pilot, "2", "PasswordScreen")
        assert "01" in text_of(pilot, "#who")
        await pilot.press(*"1111", "enter", *"8642", "enter", *"8642", "enter")
        line = await until_notice(pilot, "密码错误")
        assert "还可尝试 4 次" in line
        await pilot.press(*CASHIER_PASSWORD, "enter", *"86", "enter", *"86", "enter")
        await until_notice(pilot, "收银员密码至少 4 位")
        assert app.focused.id == "password"                    # the new one again
        await pilot.press(*"8642", "enter", *"8643", "enter")
        await until_notice(pilot, "不一致")
        await pilot.press(*"8642", "enter", *"8642", "enter")
        await until_notice(pilot, "操作员 01 密码已修改")
        await pilot.press("enter")
        await until_notice(pilot, "原密码")                       # an empty field
        await pilot.press("escape", "escape", "f10")
        await until(pilot, lambda: screen_name(pilot) == "SignOnScreen", "signed off")
        await sign_on(pilot, "01", "8642")


# -- keys -------------------------------------------------------------------------------------

async def test_keys_show_check_values_and_times_never_a_key_and_sign_on_again(till: Till):
    from app.terminal import Terminal
    from sync import crypto
    with Terminal(till.data) as term:
        tmk = term.journal.get_key("tmk")
        assert tmk is not None
        master_kcv = crypto.check_value(tmk).hex().upper()
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_manage(pilot)
        await open_part(pilot, "3", "KeysScreen")
        shown = text_of(pilot, "#keys")
        with Terminal(till.data) as term:
            checks = {k.name: k for k in term.journal.key_checks()}
            secrets = [term.journal.get_key(n).hex().upper() for n in checks]
        assert f"KCV {master_kcv}" in shown, shown
        assert f"KCV {checks['pik_under_tmk'].kcv}" in shown
        assert f"KCV {checks['mak'].kcv}" in shown
        assert "posterm.key  仅本用户可读" in shown
        assert all(secret not in shown for secret in secrets)
        before = checks["mak"].kcv
        await pilot.press("f5")
        line = await until_notice(pilot, "签到成功")
        assert line == "签到成功 Signed on — 批次 000001"
        with Terminal(till.data) as term:
            after = {k.name: k for k in term.journal.key_checks()}["mak"]
        assert f"KCV {after.kcv}" in text_of(pilot, "#keys")
        assert after.updated_local[:19].replace("T", " ") in text_of(pilot, "#keys")
        assert before is not None
        till.host.stop()
        await pilot.press("f5")
        line = await until_notice(pilot, "检查主机连接和设备后重试")
        assert screen_name(pilot) == "KeysScreen"
        await until(pilot, lambda: app.status.host_online is False, "offline")


# -- configuration ----------------------------------------------------------------------------

async def test_the_configuration_view_lists_the_effective_values_and_scrolls(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_manage(pilot)
        await open_part(pilot, "4", "ConfigScreen")
        rows = {r[0]: r for r in table_rows(pilot, "#settings")}
        assert rows["host.address"][1:] == [till.host.address, "已设置"]
        assert rows["terminal.terminal_id"][1] == "12345678"
        assert rows["operators.max_failures"][1:] == ["5", "默认"]
        assert rows["devices.printer"][1] == "mock:"
        from app.config import SCHEMA
        assert len(rows) == sum(len(keys) for keys in SCHEMA.values())
        table = app.screen.query_one("#settings")
        await pilot.press("pagedown", "pagedown")
        assert table.cursor_row > 10 and table.scroll_y > 0
        await pilot.press(*["pagedown"] * 4)
        assert table.cursor_row == table.row_count - 1
        # a file broken while the app runs: one line, the app goes on
        (till.data / "posterm.toml").write_text("[terminal\n", encoding="utf-8")
        await pilot.press("escape")
        await open_part(pilot, "4", "ConfigScreen")
        line = await until_notice(pilot, "not valid TOML")
        assert screen_name(pilot) == "ConfigScreen"
        assert line


def test_secrets_are_masked_in_what_the_configuration_view_shows():
    from app.config import MASK, shown_setting
    assert shown_setting("x", "admin_password", "hunter2").text == MASK
    s = shown_setting("devices", "printer", "tcp://ops:hunter2@10.0.0.1:9100?api_key=k&x=1")
    assert s.masked and "hunter2" not in s.text and "=k" not in s.text
    assert s.text == f"tcp://ops:{MASK}@10.0.0.1:9100?api_key={MASK}&x=1"
    plain = shown_setting("devices", "pinpad", "serial:/dev/ttyUSB0?baudrate=19200")
    assert not plain.masked and plain.text == "serial:/dev/ttyUSB0?baudrate=19200"


# -- devices ----------------------------------------------------------------------------------

async def test_devices_each_on_one_line_and_their_self_test(till: Till):
    from app.ui.mockpanel import present, toggle_paper
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_manage(pilot)
        await open_part(pilot, "5", "DevicesScreen")
        rows = table_rows(pilot, "#devices")
        assert [r[0] for r in rows] == ["接触式读卡器", "非接读卡器", "密码键盘", "打印机"]
        assert all(r[1] == "mock:" and r[2] == "正常" for r in rows), rows
        assert rows[0][3] == "mock contact reader 无卡"
        assert text_of(pilot, "#detail").startswith("chip reader 接触式读卡器")   # the CLI's line
        await pilot.press("home", "down", "down", "down", "enter")       # the printer's test
        await until(pilot, lambda: table_rows(pilot, "#devices")[3][2] == "自检通过", "test")
        await idle(pilot)
        assert "test_page=printed" in table_rows(pilot, "#devices")[3][3]
        assert "全部设备正常" in notice(pilot)
        pages = list((till.data / "receipts").glob("*test-page*"))
        assert pages, list((till.data / "receipts").iterdir())
        toggle_paper(app_of(pilot).term)                 # the printer runs out of paper
        await pilot.press("enter")
        await until(pilot, lambda: table_rows(pilot, "#devices")[3][2] == "自检失败", "fail")
        await idle(pilot)
        assert "paper_out" in table_rows(pilot, "#devices")[3][3] or \
            "paper" in table_rows(pilot, "#devices")[3][3].lower()
        assert "检查" in notice(pilot)
        toggle_paper(app_of(pilot).term)
        present(app_of(pilot).term, "unionpay-debit-chip", None)      # for the readers' test
        present(app_of(pilot).term, "mc-tap", None)
        await pilot.press("f5")
        await until(pilot, lambda: all(r[2] == "自检通过"
                                       for r in table_rows(pilot, "#devices")), "all tested")
        await idle(pilot)
        rows = table_rows(pilot, "#devices")
        assert "atr=3B6E" in rows[0][3] and "uid=08" in rows[1][3]
        assert "display=shown" in rows[2][3]
        assert "全部设备正常" in notice(pilot)


async def test_a_missing_device_is_its_own_line_and_the_others_are_still_checked(till: Till):
    integration.set_config(till.data, "devices", "pinpad", "serial:/dev/ttyNOPE?baudrate=19200")
    integration.set_config(till.data, "devices", "printer", "file:/nonexistent/lp0")
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await sign_on(pilot)
        await open_manage(pilot)
        await open_part(pilot, "5", "DevicesScreen")
        await until(pilot, lambda: len(table_rows(pilot, "#devices")) == 4, "the devices")
        rows = table_rows(pilot, "#devices")
        assert [r[2] for r in rows] == ["正常", "正常", "未找到", "脱机"], rows
        assert rows[2][3] == "The PIN pad is not connected (/dev/ttyNOPE)"
        assert "有设备未找到或自检失败" in notice(pilot)
        await pilot.press("f5")
        await until(pilot, lambda: table_rows(pilot, "#devices")[0][2] != "正常", "tested")
        await idle(pilot)
        rows = table_rows(pilot, "#devices")
        assert [r[2] for r in rows] == ["自检失败", "自检失败", "未找到", "自检失败"], rows
        assert rows[0][3] == "No card inserted"
        assert screen_name(pilot) == "DevicesScreen"


# -- snapshots ----------------------------------------------------------------------------------

async def _steady(pilot) -> None:
    from .test_ui_snapshots import steady
    await steady(pilot)


def test_snapshot_manage_menu(snap_compare, till: Till):
    async def run_before(pilot) -> None:
        await sign_on(pilot)
        await open_manage(pilot)
        await _steady(pilot)

    assert snap_compare(PostermApp(till.data), terminal_size=SIZE, run_before=run_before)


def test_snapshot_operators(snap_compare, till: Till):
    async def run_before(pilot) -> None:
        await sign_on(pilot)
        await open_manage(pilot)
        await open_operators(pilot)
        screen = pilot.app.screen
        screen.show_operators([dataclasses.replace(op, last_signon="2026-01-02T10:30:00")
                               if op.last_signon else op for op in screen.operators])
        await _steady(pilot)

    assert snap_compare(PostermApp(till.data), terminal_size=SIZE, run_before=run_before)


def test_snapshot_keys(snap_compare, till: Till):
    async def run_before(pilot) -> None:
        from app.keystatus import key_status
        await sign_on(pilot)
        await open_manage(pilot)
        await open_part(pilot, "3", "KeysScreen")
        s = key_status(app_of(pilot).term)
        fixed = tuple(dataclasses.replace(k, kcv=f"{i + 1:08X}" if k.kcv else None,
                                          stored="2026-01-02T10:30:00+08:00")
                      for i, k in enumerate(s.keys))
        pilot.app.screen.show_status(dataclasses.replace(
            s, keys=fixed, root_check="0123456789abcdef", signed_on="0102103000"))
        await _steady(pilot)

    assert snap_compare(PostermApp(till.data), terminal_size=SIZE, run_before=run_before)


def test_snapshot_configuration(snap_compare, till: Till):
    async def run_before(pilot) -> None:
        await sign_on(pilot)
        await open_manage(pilot)
        await open_part(pilot, "4", "ConfigScreen")
        from app.config import load, shown_settings
        settings = [dataclasses.replace(s, text="127.0.0.1:5800")
                    if (s.section, s.key) == ("host", "address") else s
                    for s in shown_settings(load(till.data))]
        pilot.app.screen.show_settings(settings)
        await _steady(pilot)

    assert snap_compare(PostermApp(till.data), terminal_size=SIZE, run_before=run_before)


def test_snapshot_devices(snap_compare, till: Till):
    async def run_before(pilot) -> None:
        await sign_on(pilot)
        await open_manage(pilot)
        await open_part(pilot, "5", "DevicesScreen")
        await _steady(pilot)

    assert snap_compare(PostermApp(till.data), terminal_size=SIZE, run_before=run_before)
