"""``posterm doctor --json`` on a terminal provisioned on a real posterm-host, mock devices.

Everything ok first; then one thing wrong at a time, each with its status, its fix and the
exit code: the host stopped, the key file chmod 0644, a PIN pad that is not plugged in, the
host's clock 5 and 15 minutes ahead (the host simulator is started in another time zone, so
its fields 12/13 are ahead of the terminal's clock the way a drifting clock would be), a
batch open for 30 hours, a damaged journal, no configuration at all.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    REPO,
    RUN_TIMEOUT,
    HostSim,
    Run,
    Terminal,
    posterm,
    provision,
    set_config,
)

from app.doctor import PERMISSION_FIX

NOBODY = 65534
CHECKS = ["config", "pcscd", "device.card_reader", "device.contactless", "device.pinpad",
          "device.printer", "journal", "permissions", "disk", "host", "clock", "batch"]


def private(data: Path) -> None:
    """The database files 0600, as the service's UMask=0077 makes them."""
    for path in data.glob("posterm.db*"):
        path.chmod(0o600)


def doctor(data: Path) -> tuple[Run, dict[str, dict[str, Any]]]:
    run = posterm(data, "doctor", "--json")
    assert "Traceback" not in run.stdout + run.stderr, str(run)
    report = run.json()
    assert report["exit_code"] == run.returncode, str(run)
    return run, {c["name"]: c for c in report["checks"]}


def not_ok(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: c["status"] for name, c in checks.items() if c["status"] != "ok"}


@pytest.fixture
def signed_on(terminal: Terminal) -> Terminal:
    run = terminal.run("signon", "--json")
    assert run.returncode == 0, str(run)
    private(terminal.data)
    return terminal


def test_a_signed_on_terminal_on_mock_devices_is_all_ok(signed_on: Terminal):
    run, checks = doctor(signed_on.data)
    assert run.returncode == 0, str(run)
    assert list(checks) == CHECKS
    assert not_ok(checks) == {}
    assert all(c["fix"] == "" for c in checks.values())
    assert checks["host"]["detail"].startswith(f"{signed_on.host.address} answered the echo")
    assert checks["clock"]["detail"] == "in step with the host"
    assert checks["journal"]["detail"] == "PRAGMA integrity_check: ok"


def test_the_text_report_is_a_line_per_check(signed_on: Terminal):
    run = posterm(signed_on.data, "doctor")
    assert run.returncode == 0 and run.stderr == "", str(run)
    lines = run.stdout.splitlines()
    assert len(lines) == len(CHECKS) + 1
    assert all(line.startswith("正常 ok") for line in lines[:-1])
    assert lines[-1] == "posterm doctor: 正常 ok"


def test_before_sign_on_the_host_check_warns_to_sign_on(terminal: Terminal):
    private(terminal.data)
    run, checks = doctor(terminal.data)
    assert run.returncode == 1, str(run)
    assert not_ok(checks) == {"host": "warning", "clock": "warning"}
    assert checks["host"]["fix"] == "posterm signon"


def test_with_the_host_stopped_the_host_check_fails(signed_on: Terminal):
    signed_on.host.stop()
    run, checks = doctor(signed_on.data)
    assert run.returncode == 2, str(run)
    assert not_ok(checks) == {"host": "failed", "clock": "warning"}
    assert f"host.address in posterm.toml is {signed_on.host.address}" in checks["host"]["fix"]


def test_a_key_file_readable_by_others_fails_with_chmod_600_as_the_fix(signed_on: Terminal):
    key = signed_on.data / "posterm.key"
    key.chmod(0o644)
    run, checks = doctor(signed_on.data)
    assert run.returncode == 2, str(run)
    assert checks["permissions"]["status"] == "failed"
    assert checks["permissions"]["fix"] == f"chmod 600 {key}"
    # the rest is not checked on a key file others may have read
    assert {checks[n]["status"] for n in ("host", "clock", "batch")} == {"warning"}


def test_a_database_readable_by_others_is_a_warning(signed_on: Terminal):
    (signed_on.data / "posterm.db").chmod(0o644)
    run, checks = doctor(signed_on.data)
    assert run.returncode == 1, str(run)
    assert not_ok(checks) == {"permissions": "warning"}
    assert checks["permissions"]["fix"].startswith(f"chmod 600 {signed_on.data}/posterm.db")


def test_a_pin_pad_that_is_not_plugged_in_fails_with_its_url(signed_on: Terminal):
    set_config(signed_on.data, "devices", "pinpad", "serial:/dev/ttyUSB97?baudrate=19200")
    run, checks = doctor(signed_on.data)
    assert run.returncode == 2, str(run)
    assert not_ok(checks) == {"device.pinpad": "failed"}
    assert checks["device.pinpad"]["detail"].startswith("serial:/dev/ttyUSB97?baudrate=19200")
    assert "posterm devices" in checks["device.pinpad"]["fix"]


@pytest.mark.parametrize(("tz", "status", "code", "shown"), [
    ("UTC-0:05", "warning", 1, "behind the host"),
    ("UTC-0:15", "failed", 2, "behind the host: settlement dates may be wrong"),
])
def test_a_terminal_clock_minutes_behind_the_host_warns_then_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tz: str, status: str, code: int,
        shown: str):
    # The host's local time (fields 12/13) runs in a zone 5 or 15 minutes east of the
    # terminal's; only the host process gets TZ.
    offset_tz = os.environ.get("TZ")
    monkeypatch.setenv("TZ", tz)
    sim = HostSim(tmp_path / "host", tmp_path / "host.log")
    if offset_tz is None:
        monkeypatch.delenv("TZ")
    else:
        monkeypatch.setenv("TZ", offset_tz)
    try:
        data = tmp_path / "terminal"
        provision(data, sim.address, sim.data)
        assert posterm(data, "signon").returncode == 0
        private(data)
        run, checks = doctor(data)
    finally:
        sim.stop()
    assert run.returncode == code, str(run)
    assert not_ok(checks) == {"clock": status}
    assert shown in checks["clock"]["detail"]
    assert "timedatectl" in checks["clock"]["fix"]


def test_a_batch_open_for_30_hours_warns_to_settle(signed_on: Terminal):
    sale = signed_on.run("sale", "12.50", "--card", "unionpay-debit-chip", "--json")
    assert sale.returncode == 0, str(sale)
    private(signed_on.data)
    # The sale is backdated in the file, as if the batch had been left open since yesterday.
    opened = (datetime.now(UTC) - timedelta(hours=30)).isoformat(timespec="seconds")
    with sqlite3.connect(signed_on.data / "posterm.db") as conn:
        conn.execute("UPDATE transactions SET created_utc = ?", (opened,))
    conn.close()
    run, checks = doctor(signed_on.data)
    assert run.returncode == 1, str(run)
    assert not_ok(checks) == {"batch": "warning"}
    assert "30 h, more than 24 h" in checks["batch"]["detail"]
    assert checks["batch"]["fix"] == "settle it: posterm settle"


def test_a_damaged_journal_fails_and_the_checks_after_it_are_not_run(signed_on: Terminal):
    db = signed_on.data / "posterm.db"
    with sqlite3.connect(db) as conn:                 # every page written through, no WAL
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    raw = bytearray(db.read_bytes())
    page = 4096
    raw[page:3 * page] = b"\xa5" * (2 * page)          # two pages of a table overwritten
    db.write_bytes(bytes(raw))
    run, checks = doctor(signed_on.data)
    assert run.returncode == 2, str(run)
    assert checks["journal"]["status"] == "failed"
    assert "restore" in checks["journal"]["fix"]
    assert {checks[n]["status"] for n in ("host", "clock", "batch")} == {"warning"}


def test_a_device_node_this_user_cannot_open_fails_with_the_udev_rule_and_group(
        signed_on: Terminal, tmp_path: Path):
    """The PIN pad's serial port is a pseudo-terminal that only root may open; posterm
    doctor runs as another user (nobody) that owns a copy of the terminal's data."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to run posterm doctor as another user (setpriv)")
    master, slave = os.openpty()
    try:
        port = os.ttyname(slave)
        os.chmod(port, 0o600)
        set_config(signed_on.data, "devices", "pinpad", f"serial:{port}?baudrate=19200")
        shared = Path(tempfile.mkdtemp(prefix="posterm-doctor-"))
        try:
            shared.chmod(0o755)
            data = shared / "terminal"
            shutil.copytree(signed_on.data, data)
            for path in [data, *data.rglob("*")]:
                os.chown(path, NOBODY, NOBODY)
            proc = subprocess.run(
                ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                 sys.executable, "-m", "app", "--data", str(data), "doctor", "--json"],
                capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=REPO, check=False,
                env={**os.environ, "HOME": str(shared)})
        finally:
            shutil.rmtree(shared)
    finally:
        os.close(master)
        os.close(slave)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert not_ok(checks) == {"device.pinpad": "failed"}
    assert f"no read/write permission on {port}" in checks["device.pinpad"]["detail"]
    assert checks["device.pinpad"]["fix"] == PERMISSION_FIX


def test_a_pin_pad_port_another_program_holds_open_is_left_alone_with_a_warning(
        signed_on: Terminal):
    master, slave = os.openpty()
    port = os.ttyname(slave)
    holder = subprocess.Popen(["sleep", "60"], stdin=slave)     # holds the port open
    os.close(slave)                                              # only sleep holds it now
    try:
        set_config(signed_on.data, "devices", "pinpad", f"serial:{port}?baudrate=19200")
        run, checks = doctor(signed_on.data)
        os.set_blocking(master, False)
        with pytest.raises(BlockingIOError):
            os.read(master, 100)              # nothing was written: the doctor never opened it
    finally:
        holder.kill()
        holder.wait()
        os.close(master)
    assert run.returncode == 1, str(run)
    assert not_ok(checks) == {"device.pinpad": "warning"}
    detail, fix = checks["device.pinpad"]["detail"], checks["device.pinpad"]["fix"]
    assert f"in use by PID {holder.pid} (sleep 60), not opened" in detail
    assert f"stop the program holding {port} (PID {holder.pid})" in fix


def test_a_key_file_that_is_not_the_journals_fails_and_says_to_restore_it(signed_on: Terminal):
    key = signed_on.data / "posterm.key"
    key.write_text(secrets.token_hex(32) + "\n")        # another terminal's key, mode kept
    run, checks = doctor(signed_on.data)
    assert run.returncode == 2, str(run)
    assert checks["key"]["status"] == "failed"
    assert "is not the key this journal was made with" in checks["key"]["detail"]
    assert "restore the key file" in checks["key"]["fix"]
    assert {checks[n]["status"] for n in ("host", "clock", "batch")} == {"warning"}


def test_without_a_configuration_the_one_check_says_to_init(tmp_path: Path):
    run = posterm(tmp_path / "nothing-here", "doctor", "--json")
    assert run.returncode == 2, str(run)
    report = run.json()
    assert [c["name"] for c in report["checks"]] == ["config"]
    assert report["checks"][0]["status"] == "failed"
    assert "posterm init" in report["checks"][0]["fix"]
