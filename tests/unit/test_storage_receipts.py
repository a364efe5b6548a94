"""Whether a slip came out is journaled, and a version-1 journal upgrades in place."""

from __future__ import annotations

import sqlite3

from storage.journal import Journal, NewTransaction
from storage.migrations import LATEST_VERSION, MIGRATIONS

ROOT_KEY = bytes(range(32))
SALE = NewTransaction(
    txn_type="sale", amount=500, currency="156", stan=1, batch=1, terminal_id="12345678",
    merchant_id="898110048990001", operator="01", pan="6226090000000048", expiry="3012",
    card_org="CUP", entry_mode="051", card_seq="001", pin_entered=True)


def test_an_unprinted_slip_is_listed_until_it_is_printed(tmp_path):
    with Journal.open(tmp_path / "j.db", ROOT_KEY) as j:
        first = j.begin(SALE)
        j.complete(first, approved=True, response_code="00", rrn="000000000001", auth_code="1")
        second = j.begin(NewTransaction(**{**SALE.__dict__, "stan": 2}))
        j.complete(second, approved=True, response_code="00", rrn="000000000002", auth_code="2")
        assert j.get(first).receipt_state == "unprinted"     # owed from the approval on
        j.set_receipt_state(first, False, error="paper out")
        j.set_receipt_state(second, True)
        assert [r.id for r in j.unprinted_receipts()] == [first]
        assert j.get(second).receipt_state == "printed"
        j.set_receipt_state(first, True)
        assert j.unprinted_receipts() == []
        assert j.verify_audit() == []


def test_a_version_1_journal_is_upgraded_keeping_its_rows(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0].statements:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Journal.open(path, ROOT_KEY) as j:
        txn = j.begin(SALE)
        assert j.get(txn).receipt_state is None
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (LATEST_VERSION,)
    conn.close()
