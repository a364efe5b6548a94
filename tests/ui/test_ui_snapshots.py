"""SVG snapshots of the main screens at 80x24 (pytest-textual-snapshot), kept under
tests/ui/__snapshots__ for review. The data are fixed: a fresh terminal and host per test
(so STANs, RRNs and batches repeat), and the two values the clock and the host's random
draw decide (date/time, authorisation code) replaced by fixed ones before the picture.

Update after a reviewed change: ``pytest tests/ui/test_ui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import dataclasses
import re

from app.ui.app import PostermApp

from .conftest import SUPERVISOR, Till
from .uipilot import idle, sale, screen_name, sign_on, until

SIZE = (80, 24)
FIXED_TIME = "2026-01-02 10:30:00"
FIXED_AUTH = "123456"
_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def fixed_text(text: str, auth: str | None = None) -> str:
    text = _TIME.sub(FIXED_TIME, text)
    return text.replace(auth, FIXED_AUTH) if auth else text


async def steady(pilot) -> None:
    """A steady text cursor (no blink), so the picture does not depend on the instant."""
    from textual.widgets import Input
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause(0.6)


def test_sign_on_screen(snap_compare, till: Till):
    async def run_before(pilot) -> None:
        from .uipilot import ready
        await ready(pilot)
        await steady(pilot)

    assert snap_compare(PostermApp(till.data), terminal_size=SIZE, run_before=run_before)


def test_main_menu(snap_compare, till: Till):
    async def run_before(pilot) -> None:
        await sign_on(pilot)
        await steady(pilot)

    assert snap_compare(PostermApp(till.data), terminal_size=SIZE, run_before=run_before)


def test_sale_result_with_its_slip(snap_compare, till: Till):
    async def run_before(pilot) -> None:
        await sign_on(pilot)
        await sale(pilot, "12.50", "unionpay-debit-chip")
        screen = pilot.app.screen
        view = screen.view
        auth = view.data["auth_code"]
        screen.show_result(dataclasses.replace(
            view, data={**view.data, "auth_code": FIXED_AUTH},
            receipt=fixed_text(view.receipt, auth)))
        await steady(pilot)

    assert snap_compare(PostermApp(till.data), terminal_size=SIZE, run_before=run_before)


def test_settlement_result_with_its_report(snap_compare, till: Till):
    async def run_before(pilot) -> None:
        from app.ui.settle import SettleView
        await sign_on(pilot)
        await sale(pilot, "12.50", "unionpay-debit-chip")
        await pilot.press("escape", "6")
        await until(pilot, lambda: screen_name(pilot) == "SettleScreen", "the settle screen")
        await idle(pilot)
        screen = pilot.app.screen
        await pilot.press("enter", *SUPERVISOR, "enter")
        await until(pilot, lambda: screen.settled is not None, "the settlement")
        await idle(pilot)
        view = screen.settled
        assert isinstance(view, SettleView)
        screen.show_settlement(dataclasses.replace(view, report=fixed_text(view.report or "")))
        await steady(pilot)

    assert snap_compare(PostermApp(till.data), terminal_size=SIZE, run_before=run_before)
