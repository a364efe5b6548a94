"""Field 48 of the settlement and the batch upload, the fee arithmetic, the auto-settle clock."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.autosettle import due
from sync.errors import MessageError
from sync.fees import FeeSchedule, Line, parse_rate
from sync.settlement import (
    Kind,
    Result,
    Totals,
    UploadRecord,
    area_of,
    decode_records,
    encode_records,
    upload_count,
)


def test_totals_count_debits_and_credits_per_area_and_skip_what_moves_no_money():
    totals = Totals.count([("sale", "CUP", 1250), ("completion", "CUP", 300),
                           ("offline_sale", "CUP", 500), ("refund", "CUP", 200),
                           ("sale", "VIS", 8800), ("void", "CUP", 1250),
                           ("preauth", "MCC", 999), ("refund", "MCC", 100)])
    assert totals.as_json() == {
        "domestic": {"debit_amount": 2050, "debit_count": 3, "credit_amount": 200,
                     "credit_count": 1},
        "foreign": {"debit_amount": 8800, "debit_count": 1, "credit_amount": 100,
                    "credit_count": 1}}


def test_field48_is_62_digits_in_the_published_order():
    totals = Totals.count([("sale", "CUP", 1250), ("refund", "CUP", 200), ("sale", "VIS", 5)])
    assert totals.to_field48() == ("000000001250" "001" "000000000200" "001" "0"
                                   "000000000005" "001" "000000000000" "000" "0")


@given(st.lists(st.tuples(st.sampled_from(["sale", "refund", "completion", "offline_sale"]),
                          st.sampled_from(["CUP", "VIS", "MCC", "JCB"]),
                          st.integers(1, 10**9)), max_size=50))
def test_field48_round_trips(rows):
    totals = Totals.count(rows)
    assert Totals.from_field48(totals.to_field48()).as_json() == totals.as_json()


def test_a_reply_says_balanced_unbalanced_or_error_per_area():
    ours = Totals.count([("sale", "CUP", 100), ("sale", "VIS", 50)])
    host = Totals.count([("sale", "CUP", 100)])
    answer = host.with_results(ours)
    assert (answer.domestic.result, answer.foreign.result) == (Result.BALANCED,
                                                               Result.UNBALANCED)
    assert answer.outcome() == "unbalanced"
    assert ours.with_results(ours).outcome() == "balanced"
    digits = list(answer.to_field48())
    digits[30] = "3"
    assert Totals.from_field48("".join(digits)).outcome() == "error"
    assert ours.outcome() == "error"           # a request's 0 digits are no answer


def test_counts_over_999_wrap_but_amounts_still_decide():
    many = Totals.count([("sale", "CUP", 1)] * 1001)
    assert many.domestic.to_digits()[12:15] == "001"
    same = Totals.count([("sale", "CUP", 1)] * 1)
    same.domestic.debit_amount = 1001
    assert many.agrees_with(same)
    assert not many.agrees_with(Totals.count([("sale", "CUP", 1)] * 1000))


@pytest.mark.parametrize("bad", ["", "1" * 61, "x" * 62, "0" * 30 + "9" + "0" * 31])
def test_a_malformed_field48_is_a_message_error(bad):
    with pytest.raises(MessageError):
        Totals.from_field48(bad)


def test_upload_records_carry_area_kind_stan_padded_pan_and_amount():
    records = [UploadRecord("domestic", Kind.SALE, 12, "6228480000000000017", 1250),
               UploadRecord("foreign", Kind.REFUND, 13, "4761739001010010", 500)]
    digits = encode_records(records)
    assert digits[:2] == "02" and len(digits) == 2 + 2 * 40
    assert digits[2:42] == "00" "000012" "6228480000000000017F" "000000001250"
    assert digits[42:44] == "13" and digits[50:70] == "4761739001010010FFFF"
    back = decode_records(digits)
    assert [(r.area, r.kind, r.stan, r.pan, r.amount) for r in back] == [
        (r.area, r.kind, r.stan, r.pan, r.amount) for r in records]
    assert "6228" not in repr(back[0])           # the PAN stays out of reprs and logs


def test_eight_records_fill_field48_exactly_and_a_ninth_is_refused():
    record = UploadRecord("domestic", Kind.SALE, 1, "6228480000000000017", 1)
    assert len(encode_records([record] * 8)) == 322
    with pytest.raises(ValueError):
        encode_records([record] * 9)


@pytest.mark.parametrize("bad", ["", "01", "02" + "0" * 40, "01" + "9" * 40,
                                 "01" + "05" + "0" * 38])
def test_malformed_upload_records_are_message_errors(bad):
    with pytest.raises(MessageError):
        decode_records(bad)


def test_areas_and_the_upload_count():
    assert [area_of(o) for o in ("CUP", "cup ", "VIS", "MCC", None)] == [
        "domestic", "domestic", "foreign", "foreign", "foreign"]
    assert upload_count(12) == "0012" and upload_count(10_012) == "0012"


def test_fees_round_half_up_per_transaction_and_refunds_give_the_rate_part_back():
    t1 = FeeSchedule.from_texts("T1", "0.60%", "0.38%")
    assert t1.line("debit", 10_000, "051") == Line(10_000, 60, 9_940)
    assert t1.line("debit", 250, "021").fee == 2             # 1.5 fen rounds up
    assert t1.line("debit", 10_000, "031").fee == 38          # a scanned code: QR rate
    assert t1.line("credit", 10_000, "051") == Line(-10_000, -60, -9_940)
    d0 = FeeSchedule.from_texts("D0", "0.60%", "0.38%", "0.10%", 200)
    assert d0.line("debit", 10_000, "051") == Line(10_000, 270, 9_730)
    assert d0.line("credit", 10_000, "051") == Line(-10_000, -70, -9_930)


def test_payout_t1_the_next_business_day_d0_the_same_day():
    t1 = FeeSchedule()
    friday = date(2026, 11, 20)
    assert t1.payout_date(friday) == date(2026, 11, 23)
    assert t1.payout_date(date(2026, 11, 18)) == date(2026, 11, 19)
    assert FeeSchedule(mode="D0").payout_date(friday) == friday


@pytest.mark.parametrize("bad", ["0.6", "abc", "-1%", "100%", ""])
def test_a_bad_rate_is_refused(bad):
    with pytest.raises(ValueError):
        parse_rate(bad)


def test_auto_settlement_is_due_once_a_day_from_its_time():
    tz = timezone(timedelta(hours=8))
    at = datetime(2026, 11, 22, 23, 0, tzinfo=tz)
    assert due(at, "23:00", None)
    assert due(at, "22:30", "2026-11-21")
    assert not due(at, "23:00", "2026-11-22")           # done today
    assert not due(at - timedelta(minutes=1), "23:00", None)
    assert not due(at, "", None)                          # not configured
