"""``posterm audit verify`` on a real journal: intact after a day, broken by a hand edit."""

from __future__ import annotations

import sqlite3


def test_audit_verify_passes_after_sales_and_fails_after_a_hand_edit(terminal):
    assert terminal.run("sale", "12.50", "--card", "unionpay-debit-chip").returncode == 0
    assert terminal.run("sale", "500", "--card", "decline-51").returncode == 1
    ok = terminal.run("audit", "verify", "--json")
    assert ok.returncode == 0, str(ok)
    assert ok.json() == {"intact": True, "problems": []}

    conn = sqlite3.connect(terminal.data / "posterm.db")
    with conn:
        row = conn.execute("SELECT id, detail FROM audit WHERE action = 'txn.complete' "
                           "ORDER BY id LIMIT 1").fetchone()
        conn.execute("UPDATE audit SET detail = ? WHERE id = ?",
                     (row[1].replace("APPROVED", "DECLINED"), row[0]))
    conn.close()
    broken = terminal.run("audit", "verify")
    assert broken.returncode == 1
    assert str(row[0]) in broken.stdout


def test_audit_verify_reports_a_deleted_row(terminal):
    assert terminal.run("sale", "3.00", "--card", "visa-chip").returncode == 0
    conn = sqlite3.connect(terminal.data / "posterm.db")
    with conn:
        conn.execute("DELETE FROM audit WHERE id = (SELECT min(id) FROM audit "
                     "WHERE action LIKE 'txn.%')")
    conn.close()
    broken = terminal.run("audit", "verify", "--json")
    assert broken.returncode == 1 and broken.json()["intact"] is False
