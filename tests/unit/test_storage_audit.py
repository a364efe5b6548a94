"""The hash-chained audit log: written with every state change, edits and deletions detected."""

from __future__ import annotations

import json
import sqlite3

import pytest

from storage.errors import StorageError
from storage.journal import Journal, NewTransaction

ROOT_KEY = bytes(range(32))
PAN = "6226090000000048"

SALE = NewTransaction(
    txn_type="sale", amount=100, currency="156", stan=1, batch=1,
    terminal_id="12345678", merchant_id="898310048990001", operator="01",
    pan=PAN, expiry="2812", card_org="CUP", entry_mode="051", card_seq="001",
    pin_entered=True,
)


@pytest.fixture
def db_path(tmp_path):
    """A journal with a few audited events: sale approved, sale reversed, an operator note."""
    path = tmp_path / "journal.db"
    with Journal.open(path, ROOT_KEY) as j:
        a = j.begin(SALE)
        j.complete(a, approved=True, response_code="00", rrn="1", auth_code="1")
        j.begin(SALE)
        (rev,) = j.pending_reversals()
        j.reversal_attempted(rev.id)
        j.reversal_done(rev.id, "00")
        j.audit("operator.sign_on", actor="01", detail={"operator": "01"})
    return path


def tamper(db_path, sql, args=()):
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(sql, args)
    conn.close()


def verify(db_path):
    with Journal.open(db_path, ROOT_KEY) as j:
        return j.verify_audit()


def test_state_changes_audit_themselves_and_the_chain_verifies(db_path):
    conn = sqlite3.connect(db_path)
    actions = [r[0] for r in conn.execute("SELECT action FROM audit ORDER BY id")]
    details = [r[0] for r in conn.execute("SELECT detail FROM audit")]
    conn.close()
    assert actions == ["txn.begin", "txn.complete", "txn.begin", "reversal.attempt", "reversal.done",
                       "operator.sign_on"]
    assert json.loads(details[0])["pan"] == "622609******0048"
    assert all(PAN not in d for d in details)
    assert verify(db_path) == []


def test_chain_links_each_row_to_the_one_before(db_path):
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT prev_hash, hash FROM audit ORDER BY id").fetchall()
    conn.close()
    assert rows[0][0] == "0" * 64
    assert all(rows[i][0] == rows[i - 1][1] for i in range(1, len(rows)))


def test_an_edited_row_is_reported(db_path):
    tamper(db_path, "UPDATE audit SET detail = replace(detail, '\"amount\":100', '\"amount\":1') WHERE id = 1")
    problems = verify(db_path)
    assert len(problems) == 1 and "audit row 1" in problems[0] and "edited" in problems[0]


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(db_path):
    tamper(db_path, "UPDATE audit SET actor = 'mallory', hash = ? WHERE id = 2", ("f" * 64,))
    problems = verify(db_path)
    assert any("audit row 2" in p for p in problems)
    assert any("audit row 3 does not link" in p for p in problems)


def test_a_deleted_row_is_reported(db_path):
    tamper(db_path, "DELETE FROM audit WHERE id = 3")
    problems = verify(db_path)
    assert any("row 3 missing" in p for p in problems)


def test_deleting_the_newest_rows_is_reported(db_path):
    tamper(db_path, "DELETE FROM audit WHERE id >= 5")
    problems = verify(db_path)
    assert any("newest rows deleted" in p for p in problems)


def test_chain_continues_across_reopen(db_path):
    with Journal.open(db_path, ROOT_KEY) as j:
        j.audit("settlement.start", actor="01", detail={"batch": 1})
        assert j.verify_audit() == []


def test_audit_refuses_a_detail_that_holds_a_pan(tmp_path):
    with Journal.open(tmp_path / "journal.db", ROOT_KEY) as j:
        with pytest.raises(StorageError, match="masked PAN"):
            j.audit("oops", actor="01", detail={"card": PAN})
        j.audit("ok", actor="01", detail={"rrn": "123456789012", "card": "622609******0048"})
        assert j.verify_audit() == []
