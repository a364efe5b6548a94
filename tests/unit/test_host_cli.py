"""posterm-host's command line: provisioning over stdin, and one-line errors with exit 2."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from host.ledger import Ledger
from sync import crypto

ROOT = Path(__file__).resolve().parents[2]
TMK = "0123456789ABCDEFFEDCBA9876543210"
TERMINAL = {"terminal_id": "12345678", "merchant_id": "898110048990001",
            "merchant_name": "Test Shop", "tmk": TMK}


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "host", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("posterm-host: ")
    assert "Traceback" not in result.stderr


def test_provision_registers_the_terminal_and_prints_one_line(tmp_path: Path) -> None:
    hostdir = tmp_path / "new" / "hostdir"
    result = run("provision", "--data", str(hostdir), stdin=json.dumps(TERMINAL))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert "12345678" in result.stdout and TMK not in result.stdout
    assert result.stderr == ""
    assert stat.S_IMODE((hostdir / "host.key").stat().st_mode) == 0o600
    with Ledger.open(hostdir) as ledger:
        terminal = ledger.terminal("12345678")
        keys = ledger.keys("12345678")
    assert terminal is not None
    assert terminal["merchant_id"] == "898110048990001" and terminal["batch"] == 1
    assert keys is not None and keys.tmk == bytes.fromhex(TMK) and keys.mak is None


def test_tmk_is_not_stored_in_clear(tmp_path: Path) -> None:
    assert run("provision", "--data", str(tmp_path), stdin=json.dumps(TERMINAL)).returncode == 0
    for path in tmp_path.iterdir():
        data = path.read_bytes()
        assert bytes.fromhex(TMK) not in data and TMK.encode() not in data
        assert TMK.lower().encode() not in data


def test_provisioning_twice_needs_replace(tmp_path: Path) -> None:
    assert run("provision", "--data", str(tmp_path), stdin=json.dumps(TERMINAL)).returncode == 0
    assert_one_line_error(run("provision", "--data", str(tmp_path), stdin=json.dumps(TERMINAL)))
    new_tmk = "11111111111111112222222222222222"
    result = run("provision", "--data", str(tmp_path),
                 stdin=json.dumps({**TERMINAL, "tmk": new_tmk, "replace": True}))
    assert result.returncode == 0, result.stderr
    with Ledger.open(tmp_path) as ledger:
        keys = ledger.keys("12345678")
    assert keys is not None and keys.tmk == bytes.fromhex(new_tmk)


def test_provision_prints_the_tmk_check_value(tmp_path: Path) -> None:
    result = run("provision", "--data", str(tmp_path), stdin=json.dumps(TERMINAL))
    assert crypto.check_value(bytes.fromhex(TMK)).hex().upper()[:6] in result.stdout


def test_data_before_the_command_works_too(tmp_path: Path) -> None:
    result = run("--data", str(tmp_path), "provision", stdin=json.dumps(TERMINAL))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("stdin", [
    "not json",
    "[1, 2]",
    json.dumps({**TERMINAL, "tmk": "0123"}),
    json.dumps({**TERMINAL, "tmk": "Z" * 32}),
    json.dumps({**TERMINAL, "terminal_id": "123"}),
    json.dumps({**TERMINAL, "merchant_id": 898110048990001}),
    json.dumps({**TERMINAL, "replace": "yes"}),
    json.dumps({**TERMINAL, "colour": "red"}),
    json.dumps({k: v for k, v in TERMINAL.items() if k != "tmk"}),
])
def test_bad_provisioning_json_is_one_line_exit_2(tmp_path: Path, stdin: str) -> None:
    assert_one_line_error(run("provision", "--data", str(tmp_path), stdin=stdin))


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1", "127.0.0.1:99999", ":80",
                                    "127.0.0.1:http"])
def test_bad_listen_address_is_one_line_exit_2(tmp_path: Path, listen: str) -> None:
    assert_one_line_error(run("--data", str(tmp_path), "--listen", listen))


def test_data_dir_that_is_a_file_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    assert_one_line_error(run("--data", str(path), "--listen", "127.0.0.1:0"))
    assert_one_line_error(run("provision", "--data", str(path), stdin=json.dumps(TERMINAL)))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
def test_unreadable_data_dir_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "locked"
    path.mkdir(mode=0o000)
    try:
        assert_one_line_error(run("--data", str(path), "--listen", "127.0.0.1:0"))
    finally:
        path.chmod(0o700)


def test_damaged_key_file_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "host.key").write_text("not a key\n")
    assert_one_line_error(run("--data", str(tmp_path), "--listen", "127.0.0.1:0"))


def test_missing_data_is_one_line_exit_2() -> None:
    assert_one_line_error(run("--listen", "127.0.0.1:0"))
    assert_one_line_error(run("provision", stdin=json.dumps(TERMINAL)))


def test_unknown_option_is_one_line_exit_2() -> None:
    assert_one_line_error(run("--frobnicate"))
    assert_one_line_error(run("--mac", "cbc", "--data", "/tmp/x"))


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run("--data", str(tmp_path), "--listen", f"127.0.0.1:{port}",
                     "--log-level", "warning")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and "cannot listen" in result.stderr
