"""Settlement (结算) end to end: the real ``posterm`` against the real ``posterm-host``.

A day with sales, a void, a refund, a reversal and an offline sale, where the host was made
to lose one approved sale (the ``forget`` fault): the first 0500 is unbalanced, the batch
upload repairs the host, the result is recorded and the report shows it. Then the same day
killed (SIGKILL) at each settlement step and restarted ends exactly like the uninterrupted one.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    PY,
    REPO,
    HostSim,
    assert_one_clean_error_line,
    posterm,
    posterm_cmd,
    set_config,
)

PW = "settle-supervisor-1"


def _till(tmp_path: Path, *host_flags: str) -> tuple[Path, HostSim]:
    host = HostSim(tmp_path / "host", tmp_path / "host.log", "--control", "127.0.0.1:0",
                   *host_flags)
    data = tmp_path / "terminal"
    run = posterm_cmd("init", "--data", data, "--host", host.address, "--host-data",
                      host.data, "--supervisor-password", PW)
    assert run.returncode == 0, str(run)
    set_config(data, "host", "response_timeout", 2)
    set_config(data, "host", "reversal_backoff", 0.1)
    return data, host


def _ok(run):
    assert run.returncode == 0, str(run)
    return run.json() if run.stdout.lstrip().startswith("{") else run


def _day(data: Path, host: HostSim) -> dict[str, dict]:
    """Sales, a voided sale, a refund, a reversed sale, an offline sale, and one approved
    sale the host forgets; returns the JSON of the sales by name."""
    _ok(posterm(data, "signon"))
    s: dict[str, dict] = {}
    s["debit"] = _ok(posterm(data, "sale", "12.50", "--card", "unionpay-debit-chip", "--json"))
    s["visa"] = _ok(posterm(data, "sale", "88.00", "--card", "visa-chip", "--json"))
    s["voided"] = _ok(posterm(data, "sale", "20.00", "--card", "mc-tap", "--json"))
    _ok(posterm(data, "void", s["voided"]["stan"], "--supervisor-password", PW, "--json"))
    s["refunded"] = _ok(posterm(data, "sale", "30.00", "--card", "unionpay-credit-swipe",
                                "--pin", "123456", "--json"))
    _ok(posterm(data, "refund", "5.00", "--rrn", s["refunded"]["rrn"], "--date",
                _mmdd(data, s["refunded"]["stan"]), "--card", "unionpay-credit-swipe", "--pin", "123456",
                "--supervisor-password", PW, "--json"))
    silent = posterm(data, "sale", "66.66", "--card", "host-silent", "--json")
    assert silent.returncode == 3, str(silent)                   # reversed
    assert host.control("fault add forget:mti=0200:count=1").startswith("ok")
    s["forgotten"] = _ok(posterm(data, "sale", "45.67", "--card", "unionpay-debit-chip",
                                 "--json"))
    set_config(data, "emv", "floor_limit", 10_000)
    set_config(data, "emv", "tac_online", "0000000000")
    set_config(data, "emv", "tac_default", "0000000000")
    s["offline"] = _ok(posterm(data, "sale", "5.00", "--card", "over-floor-limit", "--json"))
    assert s["offline"]["response_code"] == "Y1"                 # waits in the advice queue
    return s


def _mmdd(data: Path, stan: str) -> str:
    rows = _ok(posterm(data, "txns", "--json"))["transactions"]
    row = next(r for r in rows if r["stan"] == stan)
    return row["time_local"][5:7] + row["time_local"][8:10]


def _host_db(host_data: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{host_data / 'host.db'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def _final_state(data: Path, host_data: Path) -> dict:
    """What must be the same however the settlement was interrupted."""
    settled = _ok(posterm(data, "report", "last-settlement", "--no-print", "--json"))
    conn = _host_db(host_data)
    try:
        cleared = conn.execute("SELECT count(*), sum(amount), sum(fee), sum(net) FROM"
                               " transactions WHERE cleared_date IS NOT NULL").fetchone()
        diffs = sorted((r["kind"], r["stan"]) for r in conn.execute(
            "SELECT kind, stan FROM differences"))
        uploads = conn.execute("SELECT count(*), count(DISTINCT stan) FROM upload_records"
                               ).fetchone()
        host_settlements = [tuple(r) for r in conn.execute(
            "SELECT batch, result, result_after_upload, state, upload_count_claimed,"
            " upload_count_received FROM settlements")]
        host_batch = conn.execute("SELECT batch FROM terminals").fetchone()[0]
    finally:
        conn.close()
    journal = _ok(posterm(data, "txns", "--json", "--limit", "500"))["transactions"]
    return {"result": settled["result"], "after": settled["host_result_after_upload"],
            "report_money": {k: settled["report"]["fees"][k] for k in ("gross", "fee", "net")},
            "report_types": settled["report"]["types"],
            "terminal_batch": _ok(posterm(data, "signon", "--json"))["batch"],
            "host_batch": host_batch, "cleared": tuple(cleared), "differences": diffs,
            "uploads": tuple(uploads), "host_settlements": host_settlements,
            "journal": sorted((r["stan"], r["type"], r["state"], r["amount"]) for r in journal)}


def test_a_day_the_host_partly_lost_is_repaired_by_the_batch_upload(tmp_path):
    data, host = _till(tmp_path)
    try:
        sales = _day(data, host)
        forgotten = int(sales["forgotten"]["stan"])
        ledger_stans = {r["stan"] for r in host.ledger_rows()}
        assert forgotten not in ledger_stans                     # the host lost it

        run = posterm(data, "settle", "--json")
        assert run.returncode == 0, str(run)
        out = run.json()
        assert (out["result"], out["host_result_after_upload"]) == ("unbalanced", "balanced")
        assert out["balanced"] is True and out["batch"] == 1
        # Counted: debit 12.50 + 45.67 (CUP chip), credit swipe 30.00 + offline 5.00 (CUP),
        # refund 5.00 (CUP credit); VISA 88.00 foreign. Voided and reversed count in neither.
        assert out["totals"]["domestic"] == {"debit_amount": 1250 + 3000 + 4567 + 500,
                                             "debit_count": 4, "credit_amount": 500,
                                             "credit_count": 1}
        assert out["totals"]["foreign"] == {"debit_amount": 8800, "debit_count": 1,
                                            "credit_amount": 0, "credit_count": 0}
        assert out["uploaded"] == out["upload_total"] == 6
        # The host now has the lost sale, from the upload, and says so.
        row = [r for r in host.ledger_rows() if r["stan"] == forgotten]
        assert [(r["state"], r["amount"], r["source"]) for r in row] == [
            ("approved", 4567, "upload")]
        diffs = subprocess.run([PY, "-m", "host", "differences", "--data", str(host.data),
                                "--json"], capture_output=True, text=True, cwd=REPO,
                               check=True).stdout
        assert [(d["kind"], d["stan"]) for d in json.loads(diffs)] == [
            ("missing_on_host", forgotten)]
        # The report: saved as text and PNG, 不平 then balanced after the upload.
        text = (data / "reports" / "settlement-000001.txt").read_text(encoding="utf-8")
        assert "不平" in text and "UNBALANCED" in text
        assert (data / "reports" / "settlement-000001.png").stat().st_size > 1000
        report = out["report"]
        assert (report["result"], report["result_after_upload"], report["uploaded"]) == (
            "unbalanced", "balanced", 6)
        gross = 1250 + 3000 + 4567 + 500 + 8800 - 500
        assert report["fees"]["gross"] == gross
        assert report["fees"]["net"] == gross - report["fees"]["fee"] > 0
        # The batch is closed: the next batch is open, the closed one stays queryable.
        assert _ok(posterm(data, "signon", "--json"))["batch"] == "000002"
        closed = _ok(posterm(data, "txns", "--batch", "1", "--json"))["transactions"]
        assert {r["stan"] for r in closed} >= {sales["debit"]["stan"], sales["visa"]["stan"]}
        refused = posterm(data, "void", sales["debit"]["stan"], "--supervisor-password", PW)
        assert "refund" in assert_one_clean_error_line(refused, 1).lower()
        # Reprint says the same, marked as a copy.
        again = _ok(posterm(data, "report", "last-settlement", "--json"))
        assert again["batch"] == 1 and again["host_result_after_upload"] == "balanced"
        assert _ok(posterm(data, "audit", "verify", "--json"))["intact"] is True
    finally:
        host.stop()


def test_a_balanced_day_settles_directly_and_sign_off_waits_for_it(tmp_path):
    data, host = _till(tmp_path)
    try:
        _ok(posterm(data, "signon"))
        _ok(posterm(data, "sale", "10.00", "--card", "unionpay-debit-chip", "--json"))
        refused = posterm(data, "signoff")
        assert "settle" in assert_one_clean_error_line(refused, 1)
        out = posterm(data, "settle", "--json")
        assert out.returncode == 0 and out.json()["result"] == "balanced", str(out)
        assert out.json()["uploaded"] == 0 and out.json()["host_result_after_upload"] is None
        assert _ok(posterm(data, "signoff", "--json"))["result"] == "ok"
        # Signed off: the next sale signs on again by itself, in batch 2.
        after = _ok(posterm(data, "sale", "1.00", "--card", "unionpay-debit-chip", "--json"))
        assert after["batch"] == "000002"
    finally:
        host.stop()


def test_settlement_with_the_host_down_keeps_the_batch_open_and_says_so(tmp_path):
    data, host = _till(tmp_path)
    try:
        _ok(posterm(data, "signon"))
        _ok(posterm(data, "sale", "10.00", "--card", "unionpay-debit-chip", "--json"))
    finally:
        host.stop()
    run = posterm(data, "settle")
    assert_one_clean_error_line(run, 3)
    # The settlement waits at its step; no sale goes in meanwhile.
    sale = posterm(data, "sale", "1.00", "--card", "unionpay-debit-chip")
    assert "being settled" in assert_one_clean_error_line(sale, 1)


SETTLEMENT_POINTS = ["settle_started", "settle_flushed", "settle_totals", "settlement_sent",
                     "settle_uploading", "batch_upload_sent", "settle_upload_end",
                     "upload_end_sent", "settle_host_done", "settle_closed"]


def _killed_settle(data: Path, point: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POSTERM_FAULT_POINT": point, "PYTHONIOENCODING": "utf-8"}
    env.pop("POSTERM_DATA", None)
    return subprocess.run([sys.executable, "-m", "app", "--data", str(data), "settle",
                           "--json"], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env=env, check=False)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("uninterrupted")
    data, host = _till(base)
    try:
        _day(data, host)
        _ok(posterm(data, "settle", "--json"))
        return _final_state(data, host.data)
    finally:
        host.stop()


@pytest.mark.parametrize("point", SETTLEMENT_POINTS)
def test_a_settlement_killed_at_each_step_ends_like_an_uninterrupted_one(
        tmp_path, point, uninterrupted):
    data, host = _till(tmp_path)
    try:
        _day(data, host)
        killed = _killed_settle(data, point)
        assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
        if point == "settle_closed":
            # Closed before its report was printed: the restart prints it, settles nothing.
            again = posterm(data, "report", "last-settlement", "--json")
            assert again.returncode == 0 and again.json()["printed"] is True, str(again)
        else:
            resumed = posterm(data, "settle", "--json")
            assert resumed.returncode == 0, str(resumed)
            assert resumed.json()["resumed"] is True and resumed.json()["batch"] == 1
        state = _final_state(data, host.data)
    finally:
        host.stop()
    # STANs and times differ between the two runs; everything that counts is the same.
    for key in ("result", "after", "terminal_batch", "host_batch", "cleared", "uploads",
                "host_settlements", "report_money", "report_types"):
        assert state[key] == uninterrupted[key], key
    assert [k for k, _ in state["differences"]] == [k for k, _ in uninterrupted["differences"]]
    assert [(t, s, a) for _, t, s, a in state["journal"]] == \
        [(t, s, a) for _, t, s, a in uninterrupted["journal"]]


def test_watch_settles_at_the_configured_time_and_warns_of_an_old_batch(tmp_path):
    data, host = _till(tmp_path)
    try:
        _ok(posterm(data, "signon"))
        _ok(posterm(data, "sale", "10.00", "--card", "unionpay-debit-chip", "--json"))
        set_config(data, "settlement", "warn_open_hours", 0)
        quiet = posterm(data, "watch", "--once")                 # no auto_time: nothing
        assert quiet.returncode == 0 and quiet.stderr == "", str(quiet)
        assert _ok(posterm(data, "signon", "--json"))["batch"] == "000001"
        set_config(data, "settlement", "auto_time", "00:00")     # due at once, once a day
        ran = posterm(data, "watch", "--once")
        assert ran.returncode == 0 and "auto-settlement: batch 000001 settled, balanced" in \
            ran.stderr, str(ran)
        assert (data / "reports" / "settlement-000001.txt").exists()
        again = posterm(data, "watch", "--once")                 # done today: not again
        assert "settled" not in again.stderr, str(again)
        assert _ok(posterm(data, "signon", "--json"))["batch"] == "000002"
    finally:
        host.stop()


def test_the_demo_day_ends_with_a_balanced_settlement(tmp_path):
    run = posterm_cmd("demo", "--keep", tmp_path / "day", timeout=240)
    assert run.returncode == 0, str(run)
    report = (tmp_path / "day" / "terminal" / "reports" / "settlement-000001.txt")
    assert "平 BALANCED" in report.read_text(encoding="utf-8")


def test_a_batch_open_longer_than_configured_is_warned_about(tmp_path):
    from datetime import datetime, timedelta

    from app.autosettle import batch_age_warning
    from app.terminal import Terminal
    data, host = _till(tmp_path)
    try:
        _ok(posterm(data, "signon"))
        _ok(posterm(data, "sale", "10.00", "--card", "unionpay-debit-chip", "--json"))
    finally:
        host.stop()
    with Terminal(data) as term:
        assert batch_age_warning(term) is None
        later = datetime.now().astimezone() + timedelta(hours=25)
        warning = batch_age_warning(term, later)
    assert warning is not None and "batch 000001 has been open 25 h" in warning


def test_with_tc_upload_a_balanced_day_uploads_each_chip_tc(tmp_path):
    data, host = _till(tmp_path)
    try:
        set_config(data, "settlement", "tc_upload", True)
        _ok(posterm(data, "signon"))
        chip = _ok(posterm(data, "sale", "10.00", "--card", "unionpay-debit-chip", "--json"))
        _ok(posterm(data, "sale", "20.00", "--card", "unionpay-credit-swipe", "--pin",
                    "123456", "--json"))
        out = posterm(data, "settle", "--json")
        assert out.returncode == 0 and out.json()["result"] == "balanced", str(out)
        assert out.json()["problems"] == []
        rows = {r["stan"]: r for r in host.ledger_rows()}
        from app.terminal import Terminal
        with Terminal(data) as term:                      # the card's final cryptogram
            kept = term.journal.get(chip["txn_id"]).extra
        assert kept["cryptogram_type"] == "TC"
        assert rows[int(chip["stan"])]["tc"] == kept["cryptogram"]
        assert [r["tc"] for s, r in rows.items() if s != int(chip["stan"])
                and r["txn_type"] == "sale"] == [None]           # a swipe has no TC
    finally:
        host.stop()
