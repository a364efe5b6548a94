"""Transaction query on a real journal file holding a row of every state: each filter alone,
together, at its inclusive edges, and refused when it cannot mean anything."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from storage.journal import Journal, NewTransaction
from storage.query import STATUSES, InvalidFilter, TxnFilter, count, search

ROOT_KEY = bytes(range(32))
BASE = NewTransaction(
    txn_type="sale", amount=1000, currency="156", stan=1, batch=1, terminal_id="12345678",
    merchant_id="898110048990001", operator="01", pan="6226090000000048", expiry="3012",
    card_org="CUP", entry_mode="051", card_seq="001", pin_entered=True)
PAN_0017 = "6228480000000000017"
PAN_0048 = "6226090000000048"
PAN_1111 = "4761739001010010"   # ends 0010
PAN_2222 = "5413330089020011"   # ends 0011


class SteppedClock:
    """A clock set by the test: local wall-clock times, whatever the machine's zone."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 9, 0).astimezone()

    def at(self, text: str) -> None:
        self.now = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").astimezone()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def day(tmp_path):
    """A journal of ten rows over three days and two batches; returns (journal, ids by name)."""
    clock = SteppedClock()
    journal = Journal.open(tmp_path / "journal.db", ROOT_KEY, clock=clock)
    ids: dict[str, int] = {}
    stan = iter(range(1, 100))

    def begin(name: str, when: str, **changes) -> int:
        clock.at(when)
        ids[name] = journal.begin(replace(BASE, stan=next(stan), **changes))
        return ids[name]

    def approve(txn_id: int, **kw) -> None:
        journal.complete(txn_id, approved=True, response_code="00", rrn=f"{txn_id:012d}",
                         auth_code="123456", **kw)

    approve(begin("sale_ok", "2026-11-20 09:00:00", amount=1250, pan=PAN_0017))
    journal.complete(begin("declined", "2026-11-20 10:00:00", amount=50000),
                     approved=False, response_code="51", rrn=None, auth_code=None)
    approve(begin("voided_sale", "2026-11-21 11:00:00", amount=8800, pan=PAN_1111))
    approve(begin("void", "2026-11-21 11:05:00", txn_type="void", amount=8800, pan=PAN_1111,
                  original_id=ids["voided_sale"]), voids=True)
    approve(begin("refund", "2026-11-21 15:00:00", txn_type="refund", amount=3000,
                  pan=PAN_0017, reversible=False))
    begin("pending", "2026-11-22 08:00:00", amount=6666)
    begin("reversed", "2026-11-22 08:30:00", amount=2000, pan=PAN_2222)
    (armed,) = journal.pending_reversals()[1:]        # the pending row keeps its own
    journal.reversal_done(armed.id, "00")
    begin("failed", "2026-11-22 08:29:59", amount=4500)
    journal.fail_unsent(ids["failed"], "connection refused")
    approve(begin("preauth", "2026-11-22 09:00:00", txn_type="preauth", amount=30000,
                  batch=2))
    clock.at("2026-11-22 23:59:59")
    ids["offline"] = journal.record_offline(replace(BASE, txn_type="offline_sale", amount=500,
                                                    stan=next(stan), batch=2),
                                            auth_code="Y1OK01")
    yield journal, ids
    journal.close()


def names(day, flt: TxnFilter) -> list[str]:
    journal, ids = day
    by_id = {v: k for k, v in ids.items()}
    return [by_id[r.id] for r in search(journal, flt)]


ALL_NEWEST_FIRST = ["offline", "preauth", "failed", "reversed", "pending", "refund", "void",
                    "voided_sale", "declined", "sale_ok"]


def test_no_filter_returns_every_row_newest_first(day):
    assert names(day, TxnFilter()) == ALL_NEWEST_FIRST
    assert count(day[0], TxnFilter()) == 10


def test_each_status_is_its_own_rows_and_approved_leaves_out_the_voided(day):
    got = {s: names(day, TxnFilter(statuses=(s,))) for s in STATUSES}
    assert got == {"approved": ["offline", "preauth", "refund", "void", "sale_ok"],
                   "voided": ["voided_sale"], "declined": ["declined"],
                   "reversed": ["reversed"], "pending": ["pending"], "failed": ["failed"]}
    assert names(day, TxnFilter(statuses=("voided", "declined"))) == ["voided_sale",
                                                                      "declined"]


def test_whole_days_are_inclusive_at_both_ends(day):
    assert names(day, TxnFilter(date_from="2026-11-21", date_to="2026-11-21")) == [
        "refund", "void", "voided_sale"]
    assert names(day, TxnFilter(date_from="2026-11-22")) == ALL_NEWEST_FIRST[:5]
    assert names(day, TxnFilter(date_to="2026-11-20")) == ["declined", "sale_ok"]


def test_minutes_are_inclusive_and_a_second_before_is_not(day):
    assert names(day, TxnFilter(date_from="2026-11-22 08:30", date_to="2026-11-22 09:00")) \
        == ["preauth", "reversed"]
    # 08:29:59 is inside the minute 08:29, so "to 08:29" keeps it and "from 08:30" does not.
    assert names(day, TxnFilter(date_from="2026-11-22 08:29", date_to="2026-11-22 08:29")) \
        == ["failed"]
    assert names(day, TxnFilter(date_from="2026-11-22T23:59")) == ["offline"]


def test_amount_bounds_are_inclusive_fen(day):
    assert names(day, TxnFilter(min_amount=2000, max_amount=8800)) == [
        "failed", "reversed", "pending", "refund", "void", "voided_sale"]
    assert names(day, TxnFilter(min_amount=30000)) == ["preauth", "declined"]
    assert names(day, TxnFilter(max_amount=1250)) == ["offline", "sale_ok"]
    assert names(day, TxnFilter(min_amount=1251, max_amount=1999)) == []


def test_card_last4_type_and_batch(day):
    assert names(day, TxnFilter(card_last4="0017")) == ["refund", "sale_ok"]
    assert names(day, TxnFilter(card_last4="0010")) == ["void", "voided_sale"]
    assert names(day, TxnFilter(card_last4="9999")) == []
    assert names(day, TxnFilter(types=("refund", "void"))) == ["refund", "void"]
    assert names(day, TxnFilter(types=("offline_sale",))) == ["offline"]
    assert names(day, TxnFilter(batch=2)) == ["offline", "preauth"]


def test_filters_combine_and_the_limit_keeps_the_newest(day):
    flt = TxnFilter(date_from="2026-11-20", date_to="2026-11-21", types=("sale",),
                    statuses=("approved", "voided"), card_last4="0010")
    assert names(day, flt) == ["voided_sale"]
    assert names(day, TxnFilter(types=("sale",), limit=2)) == ["failed", "reversed"]
    assert count(day[0], TxnFilter(types=("sale",), limit=2)) == 6


def test_values_are_parameters_not_sql(day):
    assert names(day, TxnFilter(types=("sale' OR '1'='1",))) == []
    with pytest.raises(InvalidFilter) as err:
        TxnFilter(card_last4="1' OR 1=1 --")
    assert err.value.field == "card_last4"


@pytest.mark.parametrize("kwargs, field, words", [
    ({"date_from": "2026-11-31"}, "date_from", "not a real date"),
    ({"date_to": "22/11/2026"}, "date_to", "YYYY-MM-DD"),
    ({"date_from": "2026-11-22 25:00"}, "date_from", "not a real date"),
    ({"date_from": "2026-11-22", "date_to": "2026-11-21 23:00"}, "date_to", "before"),
    ({"date_from": "2026-11-22 10:00", "date_to": "2026-11-22 09:59"}, "date_to", "before"),
    ({"min_amount": 500, "max_amount": 499}, "max_amount", "below the minimum"),
    ({"min_amount": -1}, "min_amount", "fen"),
    ({"max_amount": 1.5}, "max_amount", "fen"),
    ({"card_last4": "123"}, "card_last4", "four digits"),
    ({"statuses": ("settled",)}, "statuses", "approved, declined"),
    ({"statuses": "approved"}, "statuses", "tuple"),
    ({"batch": 0}, "batch", "positive"),
    ({"limit": 0}, "limit", "positive"),
])
def test_a_filter_that_cannot_mean_anything_is_refused_naming_its_field(kwargs, field, words):
    with pytest.raises(InvalidFilter) as err:
        TxnFilter(**kwargs)
    assert err.value.field == field and words in str(err.value)
    assert "\n" not in str(err.value)


def test_a_day_that_ends_where_it_starts_is_not_refused():
    assert TxnFilter(date_from="2026-11-22 10:00", date_to="2026-11-22").date_to == "2026-11-22"
