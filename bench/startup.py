"""Benchmark: the cashier app's start and its memory.

Prints the time from launching ``posterm`` (the real command, on a pseudo-terminal) to the
sign-on screen being drawn, for a first start on a fresh data directory and for later
starts (median of N), and the app's resident memory (VmRSS) after a sale made through the
mock devices panel with the keyboard (Textual's Pilot, in its own process).
Targets (issue 8): launch to sign-on under 1 s; resident memory after a sale under 120 MB.

    .venv/bin/python bench/startup.py [--starts 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIGN_ON = "操作员签到".encode()
CASHIER_PASSWORD = "8642"


def launch_to_sign_on(data: Path, timeout: float = 60.0) -> float:
    """Seconds from launching ``posterm --data DATA`` on a pty to the sign-on screen drawn;
    then ctrl+q, and the process (and its bundled host) must end."""
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "app", "--data", str(data)], stdin=follower,
                            stdout=follower, stderr=follower, cwd=REPO, env=env,
                            start_new_session=True)
    os.close(follower)
    seen = b""
    elapsed = None
    try:
        deadline = start + timeout
        while time.perf_counter() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.01)
            if ready:
                seen += os.read(leader, 65536)
                if SIGN_ON in seen:
                    elapsed = time.perf_counter() - start
                    break
        if elapsed is None:
            raise RuntimeError("the sign-on screen never showed")
        # Let the start finish behind the screen (first start: init, host) before quitting.
        while time.perf_counter() < deadline and not (data / "posterm.toml").exists():
            time.sleep(0.05)
        time.sleep(2.0)
        os.write(leader, b"\x11")                                  # ctrl+q
        while proc.poll() is None and time.perf_counter() < deadline + 30:
            ready, _, _ = select.select([leader], [], [], 0.05)
            if ready:
                try:
                    os.read(leader, 65536)
                except OSError:
                    break
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return elapsed


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def sale_then_rss(data: Path) -> float:
    """In this process: the app on DATA, sign-on, a sale by chip from the mock panel."""
    from app.ui.app import PostermApp
    app = PostermApp(data)
    async with app.run_test(size=(80, 24)) as pilot:
        async def until(condition, what: str) -> None:
            for _ in range(1200):
                if condition():
                    return
                await pilot.pause(0.05)
            raise RuntimeError(f"timed out waiting for {what}")
        await until(lambda: app.ready and app.status.host_online is not None, "the start")
        await pilot.press(*"01", "enter", *CASHIER_PASSWORD, "enter")
        await until(lambda: type(app.screen).__name__ == "MenuScreen", "the menu")
        await pilot.press("1", *"12.50", "enter")
        await until(lambda: getattr(app.screen, "state", "") == "card", "the card wait")
        await pilot.press("home", "enter")                 # unionpay-debit-chip
        await until(lambda: getattr(app.screen, "state", "") == "result", "the result")
        await until(lambda: not app.busy, "the flow")
        head = str(app.screen.query_one("#head").render())
        if "APPROVED" not in head:
            raise RuntimeError(f"the sale was not approved: {head}")
        return rss_mb()


async def change_initial_password(data: Path) -> None:
    """The first sign-on of cashier 01 (0000 -> CASHIER_PASSWORD), as a person does it."""
    from app.ui.app import PostermApp
    app = PostermApp(data)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(1200):
            if app.ready:
                break
            await pilot.pause(0.05)
        await pilot.press(*"01", "enter", *"0000", "enter")
        for _ in range(200):
            await pilot.pause(0.05)
            if app.focused is not None and app.focused.id == "new":
                break
        await pilot.press(*CASHIER_PASSWORD, "enter", *CASHIER_PASSWORD, "enter")
        for _ in range(200):
            await pilot.pause(0.05)
            if type(app.screen).__name__ == "MenuScreen":
                return
    raise RuntimeError("the first sign-on did not reach the menu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5, help="later starts to time")
    parser.add_argument("--child-rss", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rss:
        print(f"{asyncio.run(sale_then_rss(args.child_rss)):.1f}")
        return
    with tempfile.TemporaryDirectory(prefix="posterm-bench-ui-") as tmp:
        data = Path(tmp) / "till"
        first = launch_to_sign_on(data)
        later = [launch_to_sign_on(data) for _ in range(args.starts)]
        asyncio.run(change_initial_password(data))
        child = subprocess.run([sys.executable, __file__, "--child-rss", str(data)],
                               capture_output=True, text=True, check=False, cwd=REPO)
        if child.returncode != 0:
            raise SystemExit(f"the sale did not run: {child.stderr.strip().splitlines()[-1:]}")
        rss = float(child.stdout.strip().splitlines()[-1])
    print(f"launch -> sign-on screen, first start (fresh data dir): {first:.3f} s")
    print(f"launch -> sign-on screen, later starts: median {statistics.median(later):.3f} s, "
          f"max {max(later):.3f} s over {len(later)} (target < 1 s)")
    print(f"resident memory after a sale via the mock panel: {rss:.1f} MB (target < 120 MB)")


if __name__ == "__main__":
    main()
