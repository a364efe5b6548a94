"""Voids, offline approvals with their advices, operators' passwords, per-day totals."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest

from storage.errors import InvalidTransition
from storage.journal import Journal, NewTransaction
from storage.passwords import check_password, hash_password

ROOT_KEY = bytes(range(32))
SALE = NewTransaction(
    txn_type="sale", amount=1000, currency="156", stan=1, batch=1, terminal_id="12345678",
    merchant_id="898110048990001", operator="01", pan="6226090000000048", expiry="3012",
    card_org="CUP", entry_mode="051", card_seq="001", pin_entered=True)


@pytest.fixture
def journal(tmp_path):
    j = Journal.open(tmp_path / "j.db", ROOT_KEY)
    yield j
    j.close()


def _approved(journal, txn, rrn):
    txn_id = journal.begin(txn)
    journal.complete(txn_id, approved=True, response_code="00", rrn=rrn, auth_code="123456")
    return txn_id


def test_an_approved_void_marks_its_original_and_a_reversed_void_unmarks_it(journal):
    sale = _approved(journal, SALE, "000000000001")
    void = journal.begin(replace(SALE, txn_type="void", stan=2, original_id=sale))
    journal.complete(void, approved=True, response_code="00", rrn="000000000002",
                     auth_code="1", voids=True)
    assert journal.get(sale).voided_by == void and journal.get(void).original_id == sale
    journal.arm_reversal(void, "06")
    journal.reversal_done(journal.pending_reversals()[0].id, "00")
    assert journal.get(sale).voided_by is None
    assert journal.verify_audit() == []


def test_a_declined_void_leaves_the_original_alone(journal):
    sale = _approved(journal, SALE, "000000000001")
    void = journal.begin(replace(SALE, txn_type="void", stan=2, original_id=sale))
    journal.complete(void, approved=False, response_code="25", rrn=None, auth_code=None,
                     voids=True)
    assert journal.get(sale).voided_by is None


def test_voiding_without_an_original_is_refused(journal):
    void = journal.begin(replace(SALE, txn_type="void", stan=2))
    with pytest.raises(InvalidTransition):
        journal.complete(void, approved=True, response_code="00", rrn="1", auth_code="1",
                         voids=True)


def test_an_offline_approval_is_one_commit_with_its_advice_queued(journal, tmp_path):
    txn = journal.record_offline(replace(SALE, txn_type="offline_sale", stan=3),
                                 auth_code="Y1OFFL")
    conn = sqlite3.connect(tmp_path / "j.db")
    state, reversals = conn.execute(
        "SELECT state, (SELECT count(*) FROM reversals WHERE txn_id = t.id) FROM transactions t"
        " WHERE id = ?", (txn,)).fetchone()
    conn.close()
    assert (state, reversals) == ("APPROVED", 0)
    advice = journal.pending_advices()[0]
    assert advice.txn_id == txn and journal.get(txn).advice_state == "QUEUED"
    assert journal.advice_attempted(advice.id) == 1
    assert journal.advice_attempted(advice.id) == 2          # a repeat: a retransmission
    journal.advice_done(advice.id, "00", rrn="000000000009")
    assert journal.pending_advices() == []
    assert journal.get(txn).advice_state == "SENT" and journal.get(txn).rrn == "000000000009"
    with pytest.raises(InvalidTransition):
        journal.advice_done(advice.id, "00")


def test_passwords_are_stored_hashed_and_checked(journal, tmp_path):
    journal.set_operator("99", role="supervisor", name="Boss", password="s3cret-PW")
    journal.set_operator("01", role="cashier", name="Till", password="cashier-pw")
    assert journal.check_supervisor("s3cret-PW") == "99"
    assert journal.check_supervisor("cashier-pw") is None     # a cashier is no supervisor
    assert journal.check_supervisor("wrong") is None
    conn = sqlite3.connect(tmp_path / "j.db")
    stored = [row[0] for row in conn.execute("SELECT password_hash FROM operators")]
    conn.close()
    assert all(s.startswith("scrypt$") and "s3cret" not in s for s in stored)
    assert check_password("x", hash_password("x")) and not check_password("y", hash_password("x"))
    assert not check_password("x", "garbage")


def test_per_day_totals_and_lookup_by_rrn(journal):
    _approved(journal, replace(SALE, txn_type="refund", stan=4, reversible=False), "000000000004")
    _approved(journal, replace(SALE, txn_type="refund", stan=5, amount=250, reversible=False),
              "000000000005")
    today = journal.get(1).created_local[:10]
    assert journal.approved_total("refund", local_date=today) == (2, 1250)
    assert journal.approved_total("refund", local_date="1999-01-01") == (0, 0)
    assert journal.find_by_rrn("000000000005").amount == 250
    assert journal.find_by_rrn("nope") is None
