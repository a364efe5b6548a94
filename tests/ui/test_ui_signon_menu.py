"""Sign-on and the main menu, driven with the keyboard through Textual's Pilot."""

from __future__ import annotations

from app.ui.app import PostermApp

from .conftest import SUPERVISOR, Till
from .uipilot import app_of, ready, screen_name, sign_on, text_of, until


async def test_a_cashier_signs_on_with_number_and_password_and_the_status_line_shows_it(
        till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        assert screen_name(pilot) == "SignOnScreen"
        await sign_on(pilot)
        status = text_of(pilot, "#status")
        from importlib.metadata import version
        for part in ("posterm", "12345678", "操作员 01", "批次 000001", "主机联机", "冲正 0",
                     "通知 0", f"v{version('posterm')}"):
            assert part in status, status


async def test_a_wrong_password_is_refused_with_the_tries_left_and_the_fifth_locks(
        till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"01", "enter", *"9999", "enter")
        await until(pilot, lambda: "还可尝试 4 次" in text_of(pilot, "#notice"), "the refusal")
        assert screen_name(pilot) == "SignOnScreen"
        for _ in range(4):
            await pilot.press(*"9999", "enter")
            await until(pilot, lambda: not app.busy, "the check")
        await until(pilot, lambda: "锁定" in text_of(pilot, "#notice"), "the lock")
        await pilot.press(*"2468", "enter")          # the right one, but locked now
        await until(pilot, lambda: not app.busy, "the check")
        assert "锁定" in text_of(pilot, "#notice")
        assert screen_name(pilot) == "SignOnScreen"


async def test_the_initial_password_must_be_changed_at_the_first_sign_on(till_factory):
    till = till_factory(fresh=True)
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"01", "enter", *"0000", "enter")
        await until(pilot, lambda: "须先修改" in text_of(pilot, "#notice"), "the change asked")
        assert pilot.app.focused.id == "new"
        await pilot.press(*"1357", "enter", *"7531", "enter")          # they differ
        await until(pilot, lambda: "不一致" in text_of(pilot, "#notice"), "the mismatch")
        await pilot.press(*"0000", "enter", *"0000", "enter")          # the same as the old
        await until(pilot, lambda: "不能与旧密码相同" in text_of(pilot, "#notice"),
                    "the same-password refusal")
        await pilot.press(*"1357", "enter", *"1357", "enter")
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu")
    app = PostermApp(till.data)              # the new password is the one that works now
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot, "01", "1357")


async def test_the_supervisor_does_not_sign_on_for_transactions(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"99", "enter", *SUPERVISOR, "enter")
        await until(pilot, lambda: "主管不能做交易" in text_of(pilot, "#notice"), "the refusal")
        assert screen_name(pilot) == "SignOnScreen"


async def test_an_unknown_operator_is_refused_in_one_line(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"07", "enter", *"1234", "enter")
        await until(pilot, lambda: "07" in text_of(pilot, "#notice"), "the refusal")
        assert "\n" not in text_of(pilot, "#notice")


async def test_menu_number_keys_and_arrows_open_each_screen_and_escape_comes_back(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        for key, screen in (("1", "SaleScreen"), ("2", "VoidScreen"), ("6", "SettleScreen")):
            await pilot.press(key)
            await until(pilot, lambda s=screen: screen_name(pilot) == s, screen)
            await until(pilot, lambda: not app.busy, "the screen's first read")
            await pilot.press("escape")
            await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu again")
        await pilot.press("home", "down", "enter")                      # arrows: Void
        await until(pilot, lambda: screen_name(pilot) == "VoidScreen", "the void screen")
        await until(pilot, lambda: not app.busy, "the voidable list")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu again")


async def test_every_menu_key_opens_its_screen_and_esc_comes_back(till: Till):
    from app.ui.menu import ITEMS, SCREENS
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        for key, word in ITEMS:
            _, screen = SCREENS[word]
            await pilot.press(key)
            await until(pilot, lambda s=screen: screen_name(pilot) == s, f"{word}'s screen")
            await pilot.press("escape")
            await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu again")


async def test_f10_signs_off_back_to_an_empty_sign_on_screen(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        await pilot.press("f10")
        await until(pilot, lambda: screen_name(pilot) == "SignOnScreen", "the sign-on screen")
        await until(pilot, lambda: app.status.operator == "", "no operator shown")
        assert app.screen.query_one("#code").value == ""
        assert app.screen.query_one("#password").value == ""
        await sign_on(pilot)


async def test_english_first_when_the_terminal_speaks_english(till_factory):
    till = till_factory(language="en")
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert text_of(pilot, "#title").startswith("Operator sign-on")
        await sign_on(pilot)
        assert text_of(pilot, "#title").startswith("Main menu")
        assert "host online" in text_of(pilot, "#status")


async def test_ctrl_q_quits_and_closes_the_terminal(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_on(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)
    assert app.return_code == 0
    assert app_of(pilot).term is None


async def test_a_notice_shows_brackets_as_written_not_as_markup():
    from textual.app import App

    from app.ui.base import Notice

    class One(App):
        def compose(self):
            yield Notice(id="notice")

    app = One()
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("#notice", Notice).say_line("[terminal] terminal_id: [b]12[/b] 张三[A组]",
                                                  "error")
        await pilot.pause()
        assert text_of(pilot, "#notice") == "[terminal] terminal_id: [b]12[/b] 张三[A组]"
