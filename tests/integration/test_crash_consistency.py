"""The terminal killed (SIGKILL) at each named fault point of a sale, then restarted: the
host's ledger and the terminal's journal end with the same net effect — no approval lost,
nothing charged twice, every uncertain sale reversed or completed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from conftest import REPO

POINTS = ["before_send", "after_send", "after_reply"]


def _killed_sale(data, point: str, amount: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POSTERM_FAULT_POINT": point, "PYTHONIOENCODING": "utf-8"}
    env.pop("POSTERM_DATA", None)
    return subprocess.run([sys.executable, "-m", "app", "--data", str(data), "sale", amount,
                           "--card", "unionpay-debit-chip", "--json"], capture_output=True,
                          text=True, timeout=60, cwd=REPO, env=env, check=False)


def _net_effects(terminal):
    journal = {(r["stan"], r["amount"]) for r in
               terminal.run("txns", "--json").json()["transactions"]
               if r["state"] == "approved"}
    host = {(f"{r['stan']:06d}", r["amount"]) for r in terminal.host.ledger_rows()
            if r["state"] == "approved" and r["mti"] == "0200"}
    return journal, host


@pytest.mark.parametrize("point", POINTS)
def test_a_sale_killed_at_each_fault_point_ends_the_same_on_both_sides(terminal, point):
    assert terminal.run("signon").returncode == 0
    assert terminal.run("sale", "1.00", "--card", "visa-chip").returncode == 0
    killed = _killed_sale(terminal.data, point, "12.34")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    rows = terminal.run("txns", "--json").json()["transactions"]
    assert rows[0]["state"] == "pending" and rows[0]["reversal"] == "armed"
    # Restart: the next message of any kind sends the armed reversal first.
    after = terminal.run("sale", "2.00", "--card", "visa-chip", "--json")
    assert after.returncode == 0, str(after)
    rows = {r["amount"]: r for r in terminal.run("txns", "--json").json()["transactions"]}
    assert rows[1234]["state"] == "reversed" and rows[1234]["reversal"] == "done"
    journal, host = _net_effects(terminal)
    assert journal == host and {a for _, a in journal} == {100, 200}
    host_row = [r for r in terminal.host.ledger_rows() if r["amount"] == 1234]
    if point == "before_send":
        assert host_row == []                         # nothing ever reached the host
    else:
        assert [r["state"] for r in host_row] == ["reversed"]


def test_a_sale_killed_after_its_commit_keeps_its_approval_and_owes_its_slip(terminal):
    assert terminal.run("signon").returncode == 0
    killed = _killed_sale(terminal.data, "after_commit", "12.34")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    row = terminal.run("txns", "--json").json()["transactions"][0]
    assert (row["state"], row["reversal"], row["receipt"]) == ("approved", "cancelled",
                                                               "unprinted")
    journal, host = _net_effects(terminal)
    assert journal == host == {(row["stan"], 1234)}
    printed = terminal.run("reprint", "--pending", "--json")
    assert printed.returncode == 0 and printed.json()["reprinted"][0]["printed"] is True
