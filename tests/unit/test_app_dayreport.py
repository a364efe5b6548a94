"""The day's takings on a real journal file: one day of rows in every state and type among
the days before and after it; the figures by hour and card organisation, the totals equal
to their parts (also for random days, with hypothesis), the same net as the settlement's
counted rows and the transaction list, and the text fitting the console and the paper."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.dayreport import (
    HOURS,
    DayReport,
    Tally,
    bar,
    build_day_report,
    day_report,
    parse_day,
    share_text,
)
from app.errors import InputError
from app.receipt import MerchantInfo
from app.settlement_report import Figure
from app.txnlist import net_total, rows
from hal.document import text_width
from storage.journal import Journal, NewTransaction, TransactionRecord
from storage.query import TxnFilter, search

ROOT_KEY = bytes(range(32))
MERCHANT = MerchantInfo("测试商户 Test shop", "898110048990001", "12345678")
DAY = date(2026, 11, 21)
BASE = NewTransaction(
    txn_type="sale", amount=1000, currency="156", stan=1, batch=1, terminal_id="12345678",
    merchant_id="898110048990001", operator="01", pan="6226090000000048", expiry="3012",
    card_org="CUP", entry_mode="051", card_seq="001", pin_entered=True)
BLOCKS = set("█▏▎▍▌▋▊▉░")


class SteppedClock:
    """Local wall-clock times set by the test, whatever the machine's zone."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 8, 0).astimezone()

    def at(self, text: str) -> None:
        self.now = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").astimezone()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def journal(tmp_path):
    """2026-11-21 in batch 1, with a row of each kind; the evening before and the midnight
    after in batches 2 and 3 (they must not count)."""
    clock = SteppedClock()
    jn = Journal.open(tmp_path / "journal.db", ROOT_KEY, clock=clock)
    stan = itertools.count(1)

    def begin(when: str, **changes) -> int:
        clock.at(when)
        return jn.begin(replace(BASE, stan=next(stan), **changes))

    def approve(txn_id: int, **kw) -> int:
        jn.complete(txn_id, approved=True, response_code="00", rrn=f"{txn_id:012d}",
                    auth_code="123456", **kw)
        return txn_id

    approve(begin("2026-11-20 23:59:59", amount=7777, batch=2))
    approve(begin("2026-11-21 08:15:00", amount=1250))
    voided = approve(begin("2026-11-21 09:02:00", amount=8800, card_org="VIS",
                           pan="4761739001010010"))
    approve(begin("2026-11-21 09:10:00", txn_type="void", amount=8800, card_org="VIS",
                  pan="4761739001010010", original_id=voided), voids=True)
    approve(begin("2026-11-21 09:45:00", amount=2340, card_org="MCC", pan="5413330089020011",
                  entry_mode="071"))
    approve(begin("2026-11-21 11:30:00", txn_type="refund", amount=3000, card_org="VIS",
                  pan="4761739001010010", reversible=False))
    jn.complete(begin("2026-11-21 12:00:00", amount=50000), approved=False,
                response_code="51", rrn=None, auth_code=None)
    begin("2026-11-21 13:00:00", amount=2000)
    armed = jn.pending_reversals()
    jn.reversal_done(armed[-1].id, "00")
    jn.fail_unsent(begin("2026-11-21 13:05:00", amount=4500), "connection refused")
    preauth = approve(begin("2026-11-21 14:00:00", txn_type="preauth", amount=30000,
                            card_org="JCB", pan="3566002020360505"))
    begin("2026-11-21 15:00:00", amount=6666)                   # stays PENDING
    approve(begin("2026-11-21 16:20:00", txn_type="completion", amount=25000, card_org="JCB",
                  pan="3566002020360505", original_id=preauth))
    clock.at("2026-11-21 17:59:59")
    jn.record_offline(replace(BASE, txn_type="offline_sale", amount=500, card_org="AMX",
                              pan="378282246310005", stan=next(stan)), auth_code="Y1OK01")
    approve(begin("2026-11-21 23:59:59", amount=100, card_org=" "))
    approve(begin("2026-11-22 00:00:00", amount=9999, batch=3))
    yield jn
    jn.close()


def widest(document) -> int:
    """The widest line as laid out, before the printer would wrap it (a double-size line
    counts twice)."""
    return max(text_width(line.text) * (2 if line.double else 1) for line in document.lines)


def made(text: str = "2026-11-21 20:00:00") -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").astimezone()


@pytest.fixture
def report(journal) -> DayReport:
    return day_report(journal, DAY, merchant=MERCHANT, now=made())


def test_the_day_counts_sales_completions_and_offline_in_and_refunds_out(report):
    assert report.total == Tally(Figure(5, 1250 + 2340 + 25000 + 500 + 100), Figure(1, -3000))
    assert (report.total.count, report.total.net) == (6, 26190)
    # The voided sale is beside the figures, not in them; its void moved no money.
    assert report.voided == Figure(1, 8800)


def test_declined_reversed_failed_pending_and_preauth_rows_take_no_money(report):
    amounts = {t.sales.amount for t in report.hours} | {t.refunds.amount for t in report.hours}
    for never in (50000, 2000, 4500, 6666, 30000, 8800):
        assert never not in amounts


def test_other_days_rows_stay_out_at_both_midnights(journal, report):
    assert report.hours[23] == Tally(Figure(1, 100))
    before = day_report(journal, date(2026, 11, 20), merchant=MERCHANT, now=made())
    after = day_report(journal, date(2026, 11, 22), merchant=MERCHANT, now=made())
    assert (before.total.count, before.total.net, before.open_hours) == (1, 7777, range(23, 24))
    assert (after.total.count, after.total.net, after.open_hours) == (1, 9999, range(1))


def test_by_hour_each_row_in_the_hour_of_its_local_time(report):
    got = {h: (t.count, t.net) for h, t in enumerate(report.hours) if t.count}
    assert got == {8: (1, 1250), 9: (1, 2340), 11: (1, -3000), 16: (1, 25000), 17: (1, 500),
                   23: (1, 100)}
    assert len(report.hours) == HOURS
    assert report.open_hours == range(8, 24)
    assert report.peak_hour == 16


def test_by_card_organisation_in_the_slips_order_with_a_blank_org_as_question_mark(report):
    assert list(report.orgs) == ["CUP", "VIS", "MCC", "AMX", "JCB", "?"]
    assert {o: (t.count, t.net) for o, t in report.orgs.items()} == {
        "CUP": (1, 1250), "VIS": (1, -3000), "MCC": (1, 2340), "AMX": (1, 500),
        "JCB": (1, 25000), "?": (1, 100)}
    assert report.orgs["VIS"].refunds == Figure(1, -3000)


def test_shares_are_tenths_of_a_percent_of_the_net_rounded_half_up(report):
    # 25000 / 26190 = 95.456% ; -3000 / 26190 = -11.454%
    assert report.share_permille("JCB") == 955
    assert report.share_permille("VIS") == -115
    assert share_text(955) == "95.5%" and share_text(-115) == "-11.5%"
    assert share_text(None) == "-"


def test_the_totals_equal_the_parts_and_the_settlements_counted_rows(journal, report):
    assert sum(report.hours, Tally()) == report.total
    assert sum(report.orgs.values(), Tally()) == report.total
    # Batch 1 is exactly this day: the settlement would count the same rows.
    counted = journal.settlements.counted(1)
    signed = sum(-r.amount if r.txn_type == "refund" else r.amount for r in counted)
    assert (len(counted), signed) == (report.total.count, report.total.net)
    # And `posterm txns` over the day puts the same net under its list.
    day_rows = rows(search(journal, TxnFilter(date_from="2026-11-21", date_to="2026-11-21")))
    assert net_total(day_rows) == (report.total.count, report.total.net)


def test_json_is_integer_fen_with_refunds_negative(report):
    data = report.as_json()
    assert data["date"] == "2026-11-21"
    assert data["total"] == {"sales": {"count": 5, "amount": 29190},
                             "refunds": {"count": 1, "amount": -3000},
                             "net": {"count": 6, "amount": 26190}}
    assert data["voided"] == {"count": 1, "amount": 8800}
    assert data["peak_hour"] == 16
    assert [h["hour"] for h in data["hours"]] == list(range(24))
    assert data["hours"][11]["net"] == {"count": 1, "amount": -3000}
    assert [(o["org"], o["name"], o["share_permille"]) for o in data["orgs"]][:2] == [
        ("CUP", "银联 CUP", 48), ("VIS", "VISA", -115)]

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from walk(v)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v)
        else:
            yield value
    assert not any(isinstance(v, float) for v in walk(data))


def test_default_day_is_today_on_the_terminals_clock(journal):
    assert day_report(journal, merchant=MERCHANT, now=made("2026-11-21 18:00:00")).day == DAY
    assert day_report(journal, merchant=MERCHANT, now=made()).total.net == 26190


def test_console_text_fits_80_columns_with_block_bars_in_both_languages(report):
    for language, first in (("zh", "日期 Date"), ("en", "Date 日期")):
        assert widest(report.document(80, language, "blocks")) <= 80
        text = report.text(80, language)
        lines = text.splitlines()
        assert any(line.startswith(first) for line in lines)
        assert "¥261.90" in text and "-¥30.00" in text and "¥88.00" in text
        assert "95.5%" in text and "16:00-17:00 ¥250.00" in text
        peak = next(line for line in lines if line.startswith("16:00"))
        others = [line for line in lines if line[:3] in ("08:", "09:", "17:")]
        assert peak.count("█") > max(line.count("█") for line in others)
        assert "░" in next(line for line in lines if line.startswith("11:00"))
    assert "按小时 By hour" in report.text(80, "zh")
    assert "By hour 按小时" in report.text(80, "en")


@pytest.mark.parametrize("width", [32, 48])
def test_printer_document_fits_the_paper_with_ascii_bars(report, width):
    document = report.document(width, "zh")
    assert widest(document) <= width
    text = document.plain_text(width)
    assert not BLOCKS & set(text)
    assert "#" in text
    assert "¥261.90" in text and "银联 CUP" in text


def test_an_empty_day_says_so_and_has_no_peak(journal):
    empty = day_report(journal, date(2026, 1, 1), merchant=MERCHANT, now=made())
    assert empty.empty and empty.peak_hour is None and empty.open_hours == range(0)
    assert empty.orgs == {} and empty.total == Tally()
    assert "无交易 No takings" in empty.text(80, "zh")


def test_bars_scale_to_the_largest_in_eighths_and_never_vanish():
    assert bar(100, 100, 10) == "█" * 10
    assert bar(50, 100, 10) == "█" * 5
    assert bar(1, 80, 10) == "▏"                     # 1/8 of a cell
    assert bar(3, 80, 10) == "▍"
    assert bar(1, 1_000_000, 10) == "▏"               # a sliver, not nothing
    assert bar(0, 100, 10) == "" and bar(5, 0, 10) == ""
    assert bar(-50, 100, 10) == "░" * 5
    assert bar(50, 100, 10, "ascii") == "#" * 5 and bar(-1, 100, 10, "ascii") == "-"
    with pytest.raises(ValueError):
        bar(1, 1, 1, "stars")


def test_a_bad_date_and_bad_arguments_are_refused():
    assert parse_day(" 2026-11-21 ") == DAY
    for text in ("2026-02-30", "21/11/2026", "2026-1-2", ""):
        with pytest.raises(InputError):
            parse_day(text)
    with pytest.raises(ValueError):
        build_day_report([], DAY, merchant=MERCHANT, made_at=datetime(2026, 11, 21))


def test_a_page_narrower_than_32_columns_is_refused(report):
    with pytest.raises(ValueError):
        report.document(24)


# --------------------------------------------------------------------------- hypothesis

_ids = itertools.count(1)
TYPES = ("sale", "completion", "offline_sale", "refund", "void", "preauth",
         "completion_void")
STATES = ("APPROVED", "DECLINED", "REVERSED", "PENDING", "FAILED")
ORGS = ("CUP", "VIS", "MCC", "AMX", "JCB", "", "DCC")


def record(txn_type: str, state: str, amount: int, when: str, org: str,
           voided: bool) -> TransactionRecord:
    return TransactionRecord(
        id=next(_ids), txn_type=txn_type, state=state, amount=amount, currency="156", stan=1,
        batch=1, terminal_id="12345678", merchant_id="898110048990001", operator="01",
        pan_masked="622609******0048", pan_hash="h", card_org=org, entry_mode="051",
        card_seq=None, pin_entered=True, response_code="00", rrn=None, auth_code=None,
        settlement_date=None, created_utc="", created_local=when, updated_utc="",
        updated_local="", reversal_state=None, reversal_reason=None, receipt_state=None,
        original_id=None, voided_by=1 if voided else None, advice_state=None, extra={})


records = st.lists(st.builds(
    record, st.sampled_from(TYPES), st.sampled_from(STATES),
    st.integers(1, 99_999_999),
    st.builds(lambda d, h, m: f"2026-11-{d:02d}T{h:02d}:{m:02d}:00+08:00",
              st.integers(20, 22), st.integers(0, 23), st.integers(0, 59)),
    st.sampled_from(ORGS), st.booleans()), max_size=60)


@settings(max_examples=150, deadline=None)
@given(records)
def test_any_day_totals_equal_their_parts_and_the_counted_rows(rows_):
    rep = build_day_report(rows_, DAY, merchant=MERCHANT, made_at=made())
    assert sum(rep.hours, Tally()) == rep.total
    assert sum(rep.orgs.values(), Tally()) == rep.total
    counted = [r for r in rows_ if r.created_local.startswith("2026-11-21")
               and r.state == "APPROVED" and r.voided_by is None
               and r.txn_type in ("sale", "completion", "offline_sale", "refund")]
    assert rep.total.count == len(counted)
    assert rep.total.net == sum(-r.amount if r.txn_type == "refund" else r.amount
                                for r in counted)
    assert rep.total.refunds.amount <= 0 <= rep.total.sales.amount
    assert all(rep.hours[h].count == 0 for h in range(HOURS) if h not in rep.open_hours)


@settings(max_examples=60, deadline=None)
@given(records, st.integers(32, 120), st.sampled_from(("zh", "en")))
def test_any_day_fits_any_width(rows_, width, language):
    rep = build_day_report(rows_, DAY, merchant=MERCHANT, made_at=made())
    for style in ("blocks", "ascii"):
        assert widest(rep.document(width, language, style)) <= width
