"""The README's main job: ``posterm`` on a fresh data directory comes up ready for a sale
(terminal on mock devices, the bundled host started in the background and stopped at the
end), and a person completes sign-on, a sale, a void and a settlement with the keyboard."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from app import config as config_mod
from app.ui.app import PostermApp

from .uipilot import app_of, idle, sale, screen_name, text_of, until

REPO = Path(__file__).resolve().parents[2]


async def test_fresh_machine_sign_on_sale_void_settlement_then_the_host_stops(
        tmp_path: Path):
    data = tmp_path / "fresh"
    app = PostermApp(data)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.ready or app.boot_problem is not None, "first start",
                    timeout=60)
        assert app.boot_problem is None, app.boot_problem
        startup = app.startup
        assert startup is not None and startup.first_start and startup.host is not None
        host_proc = startup.host.proc
        supervisor = startup.supervisor_password
        assert supervisor and supervisor in text_of(pilot, "#first")     # shown once
        assert config_mod.load(data).values["host"]["address"] == startup.host.address
        await until(pilot, lambda: app.status.host_online is True, "the host online")
        # sign-on: cashier 01 is filled in, its initial password 0000 changed here
        assert app.screen.query_one("#code").value == "01"
        await pilot.press(*"0000", "enter")
        await until(pilot, lambda: pilot.app.focused.id == "new", "the new password")
        await pilot.press(*"8642", "enter", *"8642", "enter")
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu")
        # a sale
        await sale(pilot, "66", "unionpay-debit-chip")
        assert text_of(pilot, "#head").startswith("交易成功 APPROVED")
        # a void: the generated supervisor password must be changed first, in the prompt
        await pilot.press("escape", "2")
        await until(pilot, lambda: screen_name(pilot) == "VoidScreen", "the void screen")
        await idle(pilot)
        await pilot.press("tab", "enter", *supervisor, "enter")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt"
                    and pilot.app.screen.has_class("changing"), "the change asked")
        await pilot.press(*supervisor, "enter", *"boss-13579", "enter", *"boss-13579", "enter")
        await until(pilot, lambda: screen_name(pilot) == "VoidScreen"
                    and text_of(pilot, "#head").startswith("交易成功"), "the void approved")
        await idle(pilot)
        assert "VOID" in text_of(pilot, "#slip")
        # the settlement with the new supervisor password
        await pilot.press("escape", "6")
        await until(pilot, lambda: screen_name(pilot) == "SettleScreen", "the settle screen")
        await idle(pilot)
        await pilot.press("enter", *"boss-13579", "enter")
        await until(pilot, lambda: "BALANCED" in text_of(pilot, "#head"), "balanced")
        await idle(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)
    assert host_proc.wait(timeout=15) is not None            # stopped with the app
    assert app_of(pilot).startup is None


async def test_a_second_start_reuses_the_bundled_host_on_a_new_port(tmp_path: Path):
    data = tmp_path / "fresh"
    first = PostermApp(data)
    async with first.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: first.ready, "first start", timeout=60)
    second = PostermApp(data)
    async with second.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: second.ready, "second start", timeout=60)
        assert second.startup is not None and not second.startup.first_start
        assert second.startup.host is not None
        await until(pilot, lambda: second.status.host_online is True, "the host online")
        assert not pilot.app.screen.query_one("#first").has_class("shown")
        address = second.startup.host.address
    assert config_mod.load(data).values["host"]["address"] == address


async def test_a_broken_configuration_is_one_line_on_the_sign_on_screen(tmp_path: Path):
    data = tmp_path / "broken"
    data.mkdir()
    (data / "posterm.toml").write_text("[terminal]\nlanguage = 'xx'\n", encoding="utf-8")
    app = PostermApp(data)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.boot_problem is not None, "the problem")
        line = text_of(pilot, "#notice")
        assert "posterm.toml" in line and "\n" not in line
        await pilot.press(*"01", "enter", *"0000", "enter")
        assert screen_name(pilot) == "SignOnScreen"


def test_posterm_without_a_command_opens_the_app_in_a_terminal(tmp_path: Path):
    """The real command on a pseudo-terminal: the sign-on screen is drawn, ctrl+q quits
    with exit 0, no traceback, and the bundled host process is gone afterwards."""
    data = tmp_path / "pty"
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    proc = subprocess.Popen([sys.executable, "-m", "app", "--data", str(data)], stdin=follower,
                            stdout=follower, stderr=follower, cwd=REPO, env=env,
                            start_new_session=True)
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "操作员签到".encode() not in seen:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                seen += os.read(leader, 65536)
        assert "操作员签到".encode() in seen
        while time.monotonic() < deadline and not (data / "bundled-host" / "host.db").exists():
            time.sleep(0.1)
        time.sleep(1.0)
        os.write(leader, b"\x11")                                  # ctrl+q
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert b"Traceback" not in seen
    hosts = subprocess.run(["pgrep", "-f", f"host --data {data / 'bundled-host'}"],
                           check=False, capture_output=True, text=True)
    assert hosts.stdout.strip() == ""
