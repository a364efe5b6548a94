"""Steps the cashier's keyboard takes, shared by the Pilot and snapshot tests."""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot

from app.ui.app import PostermApp

CASHIER_PASSWORD = "2468"
WAIT = 30.0          # seconds any one step may take (host round trips, process starts)


async def until(pilot: Pilot, condition: Callable[[], bool], what: str,
                timeout: float = WAIT) -> None:
    """Let the app run until ``condition()`` holds; AssertionError naming ``what`` if not."""
    steps = int(timeout / 0.05)
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def app_of(pilot: Pilot) -> PostermApp:
    assert isinstance(pilot.app, PostermApp)
    return pilot.app


def screen_name(pilot: Pilot) -> str:
    return type(pilot.app.screen).__name__


def text_of(pilot: Pilot, selector: str) -> str:
    """What a Static shows (its visual as plain text)."""
    widget = pilot.app.screen.query_one(selector)
    return str(widget.render())


async def ready(pilot: Pilot) -> None:
    app = app_of(pilot)
    await until(pilot, lambda: app.ready or app.boot_problem is not None, "the terminal open")
    assert app.boot_problem is None, app.boot_problem
    await until(pilot, lambda: app.status.batch is not None and app.status.host_online
                is not None, "the status line")


async def sign_on(pilot: Pilot, code: str = "01", password: str = CASHIER_PASSWORD) -> None:
    await ready(pilot)
    await pilot.press(*code, "enter", *password, "enter")
    await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the main menu")
    await until(pilot, lambda: app_of(pilot).status.operator == code, "the operator shown")


async def idle(pilot: Pilot) -> None:
    app = app_of(pilot)
    await until(pilot, lambda: not app.busy, "the flow to end")
    await pilot.pause(0.1)


async def sale(pilot: Pilot, amount: str, card: str, *, pin: str | None = None) -> None:
    """From the menu: 1, the amount, Enter, then the card from the mock panel (and the PIN
    typed there first); waits for the result."""
    await pilot.press("1")
    await until(pilot, lambda: screen_name(pilot) == "SaleScreen", "the sale screen")
    await pilot.press(*amount, "enter")
    await until(pilot, lambda: pilot.app.screen.state == "card", "the card wait")
    await present(pilot, card, pin=pin)
    await until(pilot, lambda: pilot.app.screen.state == "result", "the sale's result")
    await idle(pilot)


async def present(pilot: Pilot, card: str, *, pin: str | None = None) -> None:
    """Pick ``card`` in the mock panel's list with the arrows and present it with Enter."""
    from hal.testcards import CATALOGUE
    names = list(CATALOGUE)
    if pin is not None:
        await pilot.press("shift+tab", *pin, "enter")        # the PIN field, then the list
    cards = pilot.app.screen.query_one("#cards")
    assert pilot.app.focused is cards, pilot.app.focused
    await pilot.press("home", *(["down"] * names.index(card)), "enter")
