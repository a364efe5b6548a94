"""Reconciliation storage on a real journal file: the journal streamed as the matcher reads
it, runs saved whole with their items, differences resolved once with a note, all audited."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from storage.errors import StorageError
from storage.journal import Journal, NewTransaction
from storage.migrations import LATEST_VERSION, schema_version
from storage.recon import ITEM_FIELDS, JOURNAL_ROW_COLUMNS, ReconBook, ReconError, unpack_key

HASH = hashlib.sha256(b"statement").hexdigest()


@pytest.fixture
def journal(tmp_path):
    clock = SimpleNamespace(now=datetime(2026, 11, 20, 6, 30, tzinfo=UTC))
    with Journal.open(tmp_path / "j.db", os.urandom(32), clock=lambda: clock.now) as j:
        j.test_clock = clock
        yield j


def _txn(journal, txn_type="sale", amount=100, *, approved=True, rrn="000000000001",
         original_id=None, voids=False):
    txn_id = journal.begin(NewTransaction(
        txn_type=txn_type, amount=amount, currency="156", stan=journal.next_stan(),
        batch=journal.current_batch(), terminal_id="12345678", merchant_id="898110048990001",
        operator="01", pan="6228480000000000017", expiry="3012", card_org="CUP",
        entry_mode="051", card_seq="001", pin_entered=True, original_id=original_id))
    journal.complete(txn_id, approved=approved, response_code="00" if approved else "51",
                     rrn=rrn, auth_code="123456", voids=voids)
    return txn_id


def _item(cls="amount_mismatch", **values):
    fields = dict.fromkeys(ITEM_FIELDS)
    fields.update(cls=cls, line_no=4, detail="amount 1.00 here, 1.50 on the statement",
                  detail_zh="金额不符：本机 1.00，对账单 1.50", card_masked="622848*********0017")
    fields.update(values)
    return SimpleNamespace(**fields)


def _save(book, items=(), file_hash=HASH, **overrides):
    run = {"file_name": "stmt_20261120.csv", "file_hash": file_hash, "file_size": 1234,
           "profile": "unionpay-csv", "period_from": "2026-11-20", "period_to": "2026-11-20",
           "statement_lines": 3, "journal_rows": 3,
           "counts": {"matched": 2, "amount_mismatch": 1}, "summary_check": "ok",
           "summary": {"printed": {"count": 3}}, "other_terminal_lines": 0, "forced": False,
           "operator": "S1", "items": items}
    run.update(overrides)
    return book.save_run(**run)


def test_migration_5_brings_the_journal_to_the_reconciliation_tables(journal):
    assert LATEST_VERSION >= 5 and schema_version(journal._conn) == LATEST_VERSION
    tables = {r[0] for r in journal._conn.execute("SELECT name FROM sqlite_master")}
    assert {"recon_runs", "recon_items", "recon_items_run_class",
            "recon_runs_file_hash"} <= tables


def test_journal_rows_stream_every_transaction_with_its_status_and_closed_batch(journal):
    sale = _txn(journal, rrn="000000000011")
    refund = _txn(journal, "refund", 30, rrn="000000000012")
    declined = _txn(journal, approved=False, rrn=None)
    voided = _txn(journal, amount=70, rrn="000000000013")
    void = _txn(journal, "void", 70, rrn="000000000014", original_id=voided, voids=True)
    journal.set_batch(2)                       # batch 1 is closed now
    journal.test_clock.now = datetime(2026, 11, 21, 6, 30, tzinfo=UTC)
    open_sale = _txn(journal, amount=55, rrn="000000000015")
    rows = ReconBook(journal).journal_rows()
    assert iter(rows) is rows                  # a generator, not a list
    got = {row[0]: dict(zip(JOURNAL_ROW_COLUMNS, row)) for row in rows}
    assert list(got) == [sale, refund, declined, voided, void, open_sale]
    unpacked = {txn: unpack_key(r["key"]) for txn, r in got.items()}
    assert unpacked[sale] == (1, 1, "settled", True)
    assert unpacked[declined][2:] == ("declined", True)
    assert unpacked[voided][2] == "voided" and unpacked[void][2] == "settled"
    assert unpacked[open_sale] == (2, 6, "settled", False)
    assert (got[refund]["amount"], got[refund]["txn_type"]) == (30, "refund")
    assert got[declined]["rrn"] is None
    local = journal.get(open_sale).created_local
    assert got[open_sale]["created_local"] == local
    assert got[sale]["pan_masked"] == "622848*********0017"
    assert (got[sale]["terminal_id"], got[sale]["entry_mode"]) == ("12345678", "051")
    first_day = journal.get(sale).created_local[:10]
    book = ReconBook(journal)
    assert [r[0] for r in book.journal_rows(since=local[:10])] == [open_sale]
    assert len(list(book.journal_rows(until=first_day))) == 5
    with pytest.raises(ReconError, match="since must be a date"):
        list(book.journal_rows(since="20261120"))


def test_the_journal_stays_writable_while_its_rows_are_read(journal):
    for n in range(5):
        _txn(journal, rrn=f"{n:012d}")
    rows = ReconBook(journal).journal_rows()
    next(rows)
    run_id = _save(ReconBook(journal))        # a write in the middle of the read
    assert len(list(rows)) == 4 and ReconBook(journal).get_run(run_id).id == run_id


def test_a_run_and_its_items_are_saved_in_one_commit_and_read_back(journal):
    book = ReconBook(journal)
    items = [_item(txn_id=7, journal_amount=100, statement_amount=150),
             _item("journal_only", line_no=None, txn_id=8, detail="not on the statement",
                   detail_zh="漏单"),
             _item("unparseable", line_no=9, card_masked=None, detail="line 9: bad amount",
                   detail_zh="第9行无法解析")]
    run_id = _save(book, items)
    run = book.get_run(run_id)
    assert (run.file_hash, run.counts, run.summary, run.forced) == (
        HASH, {"matched": 2, "amount_mismatch": 1}, {"printed": {"count": 3}}, False)
    assert (run.items_total, run.unresolved, run.operator) == (3, 3, "S1")
    saved = book.items(run_id)
    assert [(i.cls, i.line_no, i.txn_id) for i in saved] == [
        ("amount_mismatch", 4, 7), ("journal_only", None, 8), ("unparseable", 9, None)]
    assert (saved[0].journal_amount, saved[0].statement_amount) == (100, 150)
    assert [i.cls for i in book.items(run_id, classes=["journal_only"])] == ["journal_only"]
    assert book.get_item(saved[2].id).detail == "line 9: bad amount"
    audit = journal._conn.execute("SELECT actor, detail FROM audit WHERE action = 'recon.run'"
                                  ).fetchall()
    assert len(audit) == 1 and audit[0][0] == "S1"
    detail = json.loads(audit[0][1])
    assert detail["run_id"] == run_id and detail["counts"]["amount_mismatch"] == 1
    assert detail["sha256"].replace(" ", "") == HASH
    assert journal.verify_audit() == []


def test_the_same_file_finds_its_newest_run_and_runs_list_newest_first(journal):
    book = ReconBook(journal)
    first = _save(book)
    other = _save(book, file_hash=hashlib.sha256(b"other").hexdigest())
    again = _save(book, forced=True)
    assert book.find_by_hash(HASH).id == again and book.find_by_hash(HASH).forced
    assert book.find_by_hash(HASH.upper()).id == again
    assert book.find_by_hash("0" * 64) is None
    assert [r.id for r in book.runs()] == [again, other, first]
    assert [r.id for r in book.runs(limit=1)] == [again]
    with pytest.raises(ReconError, match="run 99 does not exist"):
        book.get_run(99)


def test_a_clear_card_number_or_a_bad_class_refuses_the_whole_run(journal):
    book = ReconBook(journal)
    with pytest.raises(ReconError, match="not masked") as caught:
        _save(book, [_item(), _item(card_masked="6228480000000000017")])
    assert "6228480000000000017" not in str(caught.value)
    with pytest.raises(ReconError, match="item class"):
        _save(book, [_item("matched")])
    with pytest.raises(ReconError, match="SHA-256"):
        _save(book, file_hash="abc")
    with pytest.raises(ReconError, match="summary check"):
        _save(book, summary_check="maybe")
    assert book.runs() == []
    assert journal._conn.execute("SELECT count(*) FROM recon_items").fetchone() == (0,)


def test_a_file_name_that_looks_like_a_card_number_is_masked_in_the_audit_only(journal):
    book = ReconBook(journal)
    run_id = _save(book, file_name="6228480000000000017.csv")
    assert book.get_run(run_id).file_name == "6228480000000000017.csv"
    (detail,) = journal._conn.execute(
        "SELECT detail FROM audit WHERE action = 'recon.run'").fetchone()
    assert "6228480000000000017" not in detail and "622848*********0017" in detail


def test_a_difference_is_resolved_once_with_a_note_and_audited(journal):
    book = ReconBook(journal)
    run_id = _save(book, [_item(), _item("journal_only", line_no=None)])
    first, second = book.items(run_id)
    with pytest.raises(ReconError, match="needs a note"):
        book.resolve(first.id, note="  ", actor="S1")
    with pytest.raises(ReconError, match="item 999 does not exist"):
        book.resolve(999, note="checked", actor="S1")
    done = book.resolve(first.id, note="bank corrected\nthe amount", actor="S1")
    assert (done.resolution_note, done.resolved_by, done.resolved) == (
        "bank corrected the amount", "S1", True)
    assert done.resolved_utc == "2026-11-20T06:30:00Z"
    with pytest.raises(ReconError, match="already resolved by S1"):
        book.resolve(first.id, note="again", actor="S2")
    assert [i.id for i in book.items(run_id, unresolved=True)] == [second.id]
    assert book.get_run(run_id).unresolved == 1
    with pytest.raises(StorageError):                 # a card number in a note is refused
        book.resolve(second.id, note="card 4111111111111111", actor="S1")
    assert not book.get_item(second.id).resolved
    actions = [r[0] for r in journal._conn.execute(
        "SELECT action FROM audit WHERE action LIKE 'recon.%' ORDER BY id")]
    assert actions == ["recon.run", "recon.resolve"]
    assert journal.verify_audit() == []
