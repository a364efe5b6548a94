"""The settlement's saved steps: one under way at a time, resumable, closed with the batch."""

from __future__ import annotations

import os

import pytest

from storage.errors import InvalidTransition
from storage.journal import Journal, NewTransaction


@pytest.fixture
def journal(tmp_path):
    with Journal.open(tmp_path / "j.db", os.urandom(32)) as j:
        yield j


def _txn(journal, txn_type="sale", amount=100, org="CUP"):
    txn_id = journal.begin(NewTransaction(
        txn_type=txn_type, amount=amount, currency="156", stan=journal.next_stan(),
        batch=journal.current_batch(), terminal_id="12345678", merchant_id="898110048990001",
        operator="01", pan="6228480000000000017", expiry="3012", card_org=org,
        entry_mode="051", card_seq="001", pin_entered=True))
    journal.complete(txn_id, approved=True, response_code="00", rrn="000000000001",
                     auth_code="123456", settlement_date="1122")
    return txn_id


def test_a_settlement_resumes_from_its_saved_step_and_closes_with_the_next_batch(journal):
    _txn(journal)
    book = journal.settlements
    row = book.start("01")
    with pytest.raises(InvalidTransition):
        book.start("01")                                  # one under way at a time
    book.advance(row.id, "totals", totals="0" * 62, stan=7, upload_total=1)
    # A new process (the same file) finds it where it was.
    assert (book.active().step, book.active().stan) == ("totals", 7)
    book.advance(row.id, "uploading", result="unbalanced", problems=[{"stan": 1}])
    assert book.active().problems == [{"stan": 1}]
    with pytest.raises(InvalidTransition):
        book.close(row.id, "report")                      # only from host_done
    book.advance(row.id, "host_done", result_after_upload="balanced")
    closed = book.close(row.id, "REPORT TEXT")
    assert (closed.step, closed.report, journal.current_batch()) == ("closed", "REPORT TEXT", 2)
    assert book.active() is None and book.last().id == row.id
    assert book.of_batch(1).id == row.id
    with pytest.raises(InvalidTransition):
        book.advance(row.id, "uploading")                 # a closed settlement stays closed
    assert journal.verify_audit() == []


def test_a_failed_attempt_is_kept_and_the_batch_can_be_settled_again(journal):
    book = journal.settlements
    first = book.start("01")
    book.advance(first.id, "failed", result="error", error="host answered 96")
    second = book.start("01")
    assert second.id != first.id and second.batch == first.batch == 1
    assert book.get(first.id).finished_utc is not None


def test_counted_rows_are_approved_money_moving_and_not_voided(journal):
    sale = _txn(journal)
    _txn(journal, "refund", 30)
    _txn(journal, "preauth", 500)
    voided = _txn(journal, "sale", 70)
    void = _txn(journal, "void", 70)
    journal._conn.execute("UPDATE transactions SET voided_by = ? WHERE id = ?", (void, voided))
    counted = journal.settlements.counted(1)
    assert [(r.id, r.txn_type, r.amount) for r in counted] == [(sale, "sale", 100),
                                                              (sale + 1, "refund", 30)]
    assert journal.settlements.opened_at(1) is not None
    assert journal.settlements.opened_at(2) is None
