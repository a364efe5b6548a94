"""Logs (issue 9): structured lines to the log file and to the systemd journal, with no
card number, track data or key in any of them after a whole day.

The day is ``posterm demo`` (sign-on with key download, approved, declined and silent-host
sales with their reversal, a void, a balance inquiry, a pre-authorisation and its
completion, settlement with batch upload, sign-off, the statement's reconciliation) as
its own process, its stderr a file that ``$JOURNAL_STREAM`` names, as systemd does when a
service's stderr is the journal. Every line of the log file and of that stream is then
scanned for the catalogue's PANs and for every key of the day: the terminal's root key,
the TMK and the working keys the host issued (read back from the host's ledger).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import PY, REPO

from app import config as config_mod

JOURNAL_LINE = re.compile(r"<([0-7])>(\{.*\})$")


@pytest.fixture(scope="module")
def whole_day(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("logged-day")
    stream = base / "journal-stream.txt"
    stream.touch()
    where = stream.stat()
    env = {k: v for k, v in os.environ.items() if k != "POSTERM_DATA"}
    env.update({"JOURNAL_STREAM": f"{where.st_dev}:{where.st_ino}", "PYTHONIOENCODING": "utf-8"})
    with open(stream, "ab") as err:
        run = subprocess.run([PY, "-m", "app", "demo", "--keep", str(base / "day")],
                             stdout=subprocess.PIPE, stderr=err, env=env, cwd=REPO,
                             check=False, timeout=600)
    assert run.returncode == 0, run.stdout.decode() + stream.read_text(encoding="utf-8")
    data, host = base / "day" / "terminal", base / "day" / "host"
    return {"data": data, "host": host,
            "file": (data / config_mod.LOG_NAME).read_text(encoding="utf-8").splitlines(),
            "stream": stream.read_text(encoding="utf-8").splitlines()}


def _secrets(day: dict[str, Any], cards: dict[str, dict[str, Any]]) -> dict[str, str]:
    """What must never be in a log line: name -> text (keys in upper and lower hex)."""
    from host.ledger import Ledger
    found = {f"PAN of {name}": card["pan"] for name, card in cards.items()}
    root = (day["data"] / config_mod.KEY_NAME).read_text(encoding="ascii").strip()
    found["root key"] = root
    terminal_id = config_mod.load(day["data"]).values["terminal"]["terminal_id"]
    ledger = Ledger.open(day["host"])
    keys = ledger.keys(terminal_id)
    assert keys is not None and keys.pik is not None and keys.mak is not None
    for name, key in (("TMK", keys.tmk), ("PIK", keys.pik), ("MAK", keys.mak)):
        found[name] = key.hex()
    return {**found, **{f"{k} (upper)": v.upper() for k, v in found.items() if k in
                        ("root key", "TMK", "PIK", "MAK")}}


def test_the_log_file_is_one_json_object_a_line_with_utc_and_local_time(whole_day):
    lines = whole_day["file"]
    assert len(lines) > 50, lines
    levels = set()
    for line in lines:
        entry = json.loads(line)
        assert {"ts", "local", "level", "logger", "msg"} <= set(entry), entry
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["ts"]), entry
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", entry["local"])
        levels.add(entry["level"])
    assert "info" in levels
    messages = " ".join(json.loads(line)["msg"] for line in lines)
    for what in ("sale STAN", "reversal", "settle"):
        assert what in messages, what


def test_a_service_logs_to_the_journal_with_each_lines_priority(whole_day):
    entries = [(int(m[1]), json.loads(m[2])) for m in map(JOURNAL_LINE.match, whole_day["stream"])
               if m]
    assert len(entries) > 50
    priority = {"error": 3, "warning": 4, "info": 6}
    for level, entry in entries:
        assert level == priority[entry["level"]], (level, entry)
    # the same lines as the file (the demo's commands log to both)
    assert {e["msg"] for _, e in entries} == {json.loads(x)["msg"] for x in whole_day["file"]}


def test_no_pan_track_data_or_key_in_any_log_line_of_the_day(whole_day, catalogue):
    secrets = _secrets(whole_day, catalogue)
    assert len(secrets) >= len(catalogue) + 7
    lines = whole_day["file"] + whole_day["stream"]
    for number, line in enumerate(lines):
        for name, text in secrets.items():
            assert text not in line, f"{name} in log line {number}: {line[:200]}"
        assert not re.search(r"[0-9]{12,19}[=D][0-9]{4,}", line), line       # track 2


def test_the_scan_would_see_a_pan_a_key_and_track_data_logged_in_clear(
        tmp_path: Path, catalogue):
    """The filter, not luck: a command that logs them in clear leaves them masked."""
    pan = catalogue["unionpay-debit-chip"]["pan"]
    key = "0123456789ABCDEF0123456789ABCDEF"
    code = ("import logging, sys\n"
            "from app.redaction import setup_logging\n"
            f"setup_logging({str(tmp_path / 'x.log')!r})\n"
            f"logging.getLogger('t').info('pan %s key %s track %s=2512101', {pan!r}, "
            f"{key!r}, {pan!r})\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
    line = (tmp_path / "x.log").read_text(encoding="utf-8")
    assert pan not in line and key not in line and "=2512101" not in line, line
    assert f"pan {pan[:6]}" in json.loads(line)["msg"]
