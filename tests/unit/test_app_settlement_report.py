"""The settlement report (结算单): figures per type, card organisation and area, fees and net,
the result lines, the paper widths, the PNG preview and no clear PAN anywhere."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from PIL import Image

from app import settlement_report
from app.receipt import MerchantInfo
from app.settlement_report import (
    SettlementFacts,
    UploadProblem,
    build_report,
    format_money,
    write_preview,
)
from hal.document import Document, Line, text_width
from storage.journal import TransactionRecord
from sync.fees import FeeSchedule
from sync.settlement import Result, Side, Totals

CST = timezone(timedelta(hours=8))
FRIDAY_EVENING = datetime(2026, 11, 20, 18, 30, tzinfo=CST)
MERCHANT = MerchantInfo("测试商户", "898110048990001", "12345678")
T1 = FeeSchedule("T1", Decimal("0.60"), Decimal("0.38"))
D0 = FeeSchedule("D0", Decimal("0.60"), Decimal("0.38"), Decimal("0.10"), 200)
CLEAR_PANS = ("6226090000000048", "4761739001010010", "5413330089020011")


def _record(id: int, txn_type: str, amount: int, card_org: str = "CUP", *,
            state: str = "APPROVED", **kw) -> TransactionRecord:
    pan = {"CUP": "622609******0048", "VIS": "476173******0010", "MCC": "541333******0011"}
    base = {"id": id, "txn_type": txn_type, "state": state, "amount": amount,
            "currency": "156", "stan": id, "batch": 3, "terminal_id": "12345678",
            "merchant_id": "898110048990001", "operator": "01", "pan_masked": pan[card_org],
            "pan_hash": "x", "card_org": card_org, "entry_mode": "051", "card_seq": "001",
            "pin_entered": True, "response_code": "00", "rrn": f"{id:012d}",
            "auth_code": "123456", "settlement_date": "1120", "created_utc": "",
            "created_local": f"2026-11-20T{8 + id:02d}:00:00+08:00", "updated_utc": "",
            "updated_local": "", "reversal_state": "CANCELLED", "reversal_reason": None,
            "receipt_state": "printed", "original_id": None, "voided_by": None,
            "advice_state": None, "extra": {}}
    base.update(kw)
    return TransactionRecord(**base)


# One batch holding every kind of row the report has to tell apart.
RECORDS = (
    _record(1, "sale", 10000, "CUP"),
    _record(2, "sale", 20000, "VIS", entry_mode="071"),
    _record(3, "sale", 5000, "CUP", voided_by=4),                   # voided: counts nowhere
    _record(4, "void", 5000, "CUP", original_id=3),
    _record(5, "refund", 3000, "CUP", original_id=1, reversal_state=None),
    _record(6, "preauth", 9000, "MCC"),
    _record(7, "completion", 8000, "MCC", original_id=6),
    _record(8, "offline_sale", 1250, "CUP", reversal_state=None, advice_state="SENT"),
    _record(9, "sale", 7000, "CUP", state="REVERSED", reversal_state="DONE"),
    _record(10, "sale", 4321, "VIS", state="PENDING", reversal_state="FAILED",
            reversal_reason="98", response_code=None, rrn=None, auth_code=None),
)
# What field 48 carries for RECORDS: domestic 10000 + 1250 debit, 3000 credit; foreign
# 20000 + 8000 debit.
TERMINAL = Totals(Side(11250, 2, 3000, 1), Side(28000, 2, 0, 0))


def _facts(**kw) -> SettlementFacts:
    base = {"merchant": MERCHANT, "batch": 3, "records": RECORDS, "result": "balanced",
            "result_after_upload": None, "terminal_totals": TERMINAL,
            "host_totals": TERMINAL.with_results(TERMINAL), "uploaded": 0,
            "upload_problems": (), "fees": T1, "settled_at": FRIDAY_EVENING, "operator": "01",
            "version": "0.1.0"}
    base.update(kw)
    return SettlementFacts(**base)


def _unbalanced_then_uploaded() -> SettlementFacts:
    host = Totals(Side(11250, 2, 3000, 1, Result.BALANCED),
                  Side(20000, 1, 0, 0, Result.UNBALANCED))
    problem = UploadProblem(stan=7, txn_type="completion", pan_masked="541333******0011",
                            amount=8000, problem="rejected 30")
    return _facts(result="unbalanced", result_after_upload="balanced", host_totals=host,
                  uploaded=5, upload_problems=(problem,))


def test_money_is_yuan_with_thousands_from_integer_fen():
    assert format_money(123456) == "¥1,234.56"
    assert format_money(5) == "¥0.05"
    assert format_money(-300000) == "-¥3,000.00"
    assert format_money(99999999999999) == "¥999,999,999,999.99"
    with pytest.raises(TypeError):
        format_money(12.5)  # type: ignore[arg-type]


def test_each_type_counts_only_approved_rows_neither_voided_nor_reversed():
    figures = build_report(_facts()).as_json()
    assert figures["types"] == {
        "sale": {"count": 2, "amount": 30000},          # the voided and the reversed sale left out
        "void": {"count": 1, "amount": 5000},
        "refund": {"count": 1, "amount": 3000},
        "completion": {"count": 1, "amount": 8000},
        "offline_sale": {"count": 1, "amount": 1250},
        "preauth": {"count": 1, "amount": 9000},
    }
    assert figures["reversed"] == {"count": 1, "amount": 7000}


def test_a_completion_void_is_a_void_and_its_completion_leaves_the_totals():
    records = (*RECORDS[:6], replace(RECORDS[6], voided_by=11),
               _record(11, "completion_void", 8000, "MCC", original_id=7), *RECORDS[7:])
    figures = build_report(_facts(records=records)).as_json()
    assert figures["types"]["void"] == {"count": 2, "amount": 13000}
    assert figures["types"]["completion"] == {"count": 0, "amount": 0}
    assert "MCC" not in figures["orgs"]


def test_a_voided_pre_auth_leaves_the_pre_auth_line_and_its_void_is_no_money_void():
    records = (*RECORDS[:5], replace(RECORDS[5], voided_by=11), *RECORDS[6:],
               _record(11, "preauth_void", 9000, "MCC", original_id=6))
    figures = build_report(_facts(records=records)).as_json()
    assert figures["types"]["preauth"] == {"count": 0, "amount": 0}
    assert figures["types"]["void"] == {"count": 1, "amount": 5000}
    assert figures["fees"]["gross"] == 36250


def test_each_card_organisation_shows_its_count_and_net_debit_minus_credit():
    orgs = build_report(_facts()).as_json()["orgs"]
    assert orgs == {"CUP": {"count": 3, "net": 10000 + 1250 - 3000},
                    "VIS": {"count": 1, "net": 20000},
                    "MCC": {"count": 1, "net": 8000}}
    assert list(orgs) == ["CUP", "VIS", "MCC"]
    text = build_report(_facts()).text(32)
    assert re.search(r"银联 CUP +3 +¥82\.50", text)
    assert re.search(r"VISA +1 +¥200\.00", text)
    assert re.search(r"MASTERCARD +1 +¥80\.00", text)


def test_t1_fees_at_060_percent_and_a_friday_settlement_is_paid_on_monday():
    report = build_report(_facts(fees=T1))
    # fen: 10000 -> 60, 20000 -> 120, refund 3000 -> -18, 8000 -> 48, 1250 -> 7.5 -> 8 (half up)
    fees = report.as_json()["fees"]
    assert (fees["gross"], fees["fee"], fees["net"]) == (36250, 218, 36032)
    assert fees["payout_date"] == "2026-11-23" and date(2026, 11, 23).weekday() == 0
    assert fees["schedule"]["mode"] == "T1"
    text = report.text(32)
    for needle in ("T+1", "0.60%", "0.38%", "¥362.50", "¥2.18", "¥360.32", "2026-11-23"):
        assert needle in text, needle
    assert "SURCHARGE" not in text


def test_d0_adds_its_rate_and_fixed_fee_per_debit_and_is_paid_the_same_day():
    report = build_report(_facts(fees=D0))
    # rate 0.70%: 10000 -> 70 + 200, 20000 -> 140 + 200, refund 3000 -> -21 (no fixed fee
    # back), 8000 -> 56 + 200, 1250 -> 8.75 -> 9 + 200
    fees = report.as_json()["fees"]
    assert (fees["gross"], fees["fee"], fees["net"]) == (36250, 1054, 35196)
    assert fees["payout_date"] == "2026-11-20"
    text = report.text(32)
    for needle in ("D0 实时到账", "+0.10% +¥2.00/笔", "¥10.54", "¥351.96", "2026-11-20"):
        assert needle in text, needle


def test_the_header_names_merchant_batch_period_settlement_time_and_version():
    text = build_report(_facts()).text(48)
    for needle in ("结算单", "SETTLEMENT REPORT", "测试商户", "898110048990001", "12345678",
                   "000003", "2026-11-20 09:00:00", "2026-11-20 18:00:00",
                   "2026-11-20 18:30:00", "posterm 0.1.0", "OPERATOR NO"):
        assert needle in text, needle
    period = build_report(_facts()).as_json()["period"]
    assert period == {"first": "2026-11-20T09:00:00+08:00", "last": "2026-11-20T18:00:00+08:00"}


def test_a_balanced_settlement_says_so_once_with_no_upload_lines():
    text = build_report(_facts()).text(32)
    assert re.search(r"结算结果 RESULT +平 BALANCED", text)
    assert "UPLOADED" not in text and "HOST" not in text and "AFTER UPLOAD" not in text


def test_unbalanced_then_balanced_after_the_upload_shows_both_and_the_hosts_figures():
    report = build_report(_unbalanced_then_uploaded())
    text = report.text(32)
    assert re.search(r"结算结果 RESULT +不平 UNBALANCED", text)
    assert "批上送 5 笔 / UPLOADED 5" in text
    assert "AFTER UPLOAD" in text and text.index("AFTER UPLOAD") < text.rindex("平 BALANCED")
    # The foreign debit differs: the host's figure is shown under the terminal's.
    assert re.search(r"借记 DEBIT +2 +¥280\.00\n主机 HOST +1 +¥200\.00", text)
    assert re.search(r"外卡 FOREIGN +不平 UNBALANCED", text)
    assert re.search(r"内卡 DOMESTIC +平 BALANCED", text)
    assert text.count("主机 HOST") == 1
    assert "UPLOAD PROBLEMS: 1" in text and "rejected 30" in text
    assert "000007 预授权完成 COMPLETION" in text
    figures = report.as_json()
    assert figures["result"] == "unbalanced" and figures["result_after_upload"] == "balanced"
    assert figures["final_result"] == "balanced" and figures["uploaded"] == 5
    assert figures["upload_problems"] == [{"stan": 7, "txn_type": "completion",
                                           "pan_masked": "541333******0011", "amount": 8000,
                                           "problem": "rejected 30"}]
    assert figures["host_totals"]["foreign"]["debit_amount"] == 20000


def test_an_error_settlement_has_no_host_figures():
    report = build_report(_facts(result="error", host_totals=None))
    text = report.text(32)
    assert re.search(r"结算结果 RESULT +错误 ERROR", text)
    assert "HOST" not in text and "UPLOADED" not in text
    assert report.as_json()["host_totals"] is None
    assert re.search(r"借记 DEBIT +2 +¥112\.50", text)     # the terminal's own totals still show


def test_a_failed_reversal_is_handed_to_people():
    report = build_report(_facts())
    text = report.text(32)
    assert "冲正失败 请人工处理" in text and "HANDLE MANUALLY" in text
    block = text[text.index("冲正失败"):]
    assert "000010 消费 SALE" in block and "476173******0010" in block and "¥43.21" in block
    assert [r["stan"] for r in report.as_json()["reversal_failed"]] == [10]


def test_unknown_results_and_naive_times_are_refused():
    with pytest.raises(ValueError, match="result"):
        build_report(_facts(result="fine"))
    with pytest.raises(ValueError, match="aware"):
        build_report(_facts(settled_at=datetime(2026, 11, 20, 18, 30)))


def test_an_empty_batch_reports_zeroes():
    report = build_report(_facts(records=(), terminal_totals=Totals(),
                                 host_totals=Totals().with_results(Totals())))
    text = report.text(32)
    assert "无 NONE" in text and report.as_json()["fees"]["net"] == 0
    assert report.as_json()["period"] == {"first": None, "last": None}


@pytest.mark.parametrize("width", [32, 48])
@pytest.mark.parametrize("facts", [_facts(), _unbalanced_then_uploaded(),
                                   _facts(result="error", host_totals=None, fees=D0)],
                         ids=["balanced", "uploaded", "error-d0"])
def test_every_line_fits_the_paper(facts, width):
    document = build_report(facts).document(width)
    for line in document.lines:                      # laid out to fit, not hard-wrapped
        assert text_width(line.text) <= (width // 2 if line.double else width), line.text
    for line in document.plain_text(width).splitlines():
        assert text_width(line) <= width, line


@pytest.mark.parametrize("width", [32, 48])
def test_no_clear_pan_anywhere(width):
    problem = UploadProblem(stan=2, txn_type="sale", pan_masked=CLEAR_PANS[1], amount=20000,
                            problem="no reply")      # a caller's slip: a clear PAN
    report = build_report(_facts(upload_problems=(problem,), uploaded=4,
                                 result_after_upload="balanced"))
    outputs = report.text(width) + json.dumps(report.as_json(), ensure_ascii=False)
    for pan in CLEAR_PANS:
        assert pan not in outputs
    assert "476173******0010" in outputs
    assert not re.search(r"\d{12,}", outputs.replace(MERCHANT.merchant_id, ""))


def test_the_preview_is_a_png_that_grows_with_the_lines(tmp_path):
    document = build_report(_unbalanced_then_uploaded()).document(32)
    path = write_preview(document, 32, tmp_path / "previews" / "settlement.png")
    assert path.exists()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert image.getextrema()[0] < 128           # something dark was drawn
    short = Document("short", [Line("结算单"), Line("SETTLEMENT")])
    longer = Document("longer", [*short.lines, *[Line(f"line {n}") for n in range(10)]])
    with Image.open(write_preview(short, 32, tmp_path / "short.png")) as a, \
            Image.open(write_preview(longer, 32, tmp_path / "longer.png")) as b:
        assert a.size[0] == b.size[0] == width
        assert a.size[1] < b.size[1] < height
    with Image.open(write_preview(document, 48, tmp_path / "wide.png")) as wide:
        assert wide.size[0] > width


def test_the_preview_lines_up_cjk_as_two_columns(tmp_path):
    # "结算" takes four columns; the 'X' after it must start where the 'X' under "abcd" does.
    document = Document("columns", [Line("结算X"), Line("abcdX")])
    with Image.open(write_preview(document, 32, tmp_path / "c.png")) as image:
        pixels = image.load()
        w = image.size[0]
        pitch = settlement_report.FONT_PX + settlement_report.LINE_GAP_PX
        top = settlement_report.MARGIN_PX

        def ink_columns(row):
            return [x for x in range(w)
                    if any(pixels[x, y] < 128 for y in range(top + row * pitch,
                                                             top + (row + 1) * pitch))]
        cell = (max(ink_columns(1)) - settlement_report.MARGIN_PX) // 5
        assert abs(max(ink_columns(0)) - max(ink_columns(1))) <= cell // 2


def test_the_preview_falls_back_to_a_plain_font_and_warns_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(settlement_report, "CJK_FONTS", ("/nonexistent/cjk.ttc",))
    settlement_report._font.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="app.settlement_report"):
            for n in range(2):
                write_preview(Document("d", [Line("结算单 SETTLEMENT")]), 32,
                              tmp_path / f"{n}.png")
        assert sum("no CJK" in r.getMessage() for r in caplog.records) == 1
        with Image.open(tmp_path / "1.png") as image:
            assert image.format == "PNG"
    finally:
        settlement_report._font.cache_clear()
