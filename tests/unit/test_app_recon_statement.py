"""The statement reader: real files of every format and encoding, written by the test, read
through profiles into StatementLine / Unparseable; posterm-host's own three formats read back
with the bundled profiles; the documented examples of docs/reconcile.md read as documented;
every bad input is an error naming its line or an unparseable line, never a silent skip."""

from __future__ import annotations

import inspect
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

from app.errors import InputError
from app.recon.model import StatementLine, SummaryFigures, Unparseable
from app.recon.profile import Profile, load_profile
from app.recon.statement import StatementError, StatementReader, open_statement
from host.statement import Statement

ROOT = Path(__file__).resolve().parents[2]
PAN = "6226090000000048"            # a full card number, as some banks print it
MASKED = "622609******0048"

BANK_PROFILE = """
format = "csv"
encoding = "{encoding}"
[columns]
date = "交易日期"
stan = "凭证号"
rrn = "参考号"
card = "卡号"
type = "交易类型"
amount = "交易金额"
fee = "手续费"
[types]
"消费" = "sale"
"退货" = "refund"
"""
BANK_HEADER = "交易日期,凭证号,参考号,卡号,交易类型,交易金额,手续费,备注"
BANK_LINES = [
    "2026-11-20,000002,000000000002,622609******0048,消费,100.00,0.60,",
    "2026-11-20,000004,000000000004,622609******0048,退货,25.00,0.15,顾客退货",
]


def _profile(tmp_path: Path, text: str, name: str = "bank.toml") -> Profile:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_profile(str(path), Path("x"))


def _read(path: Path, profile: Profile) -> tuple[list[StatementLine | Unparseable],
                                                 StatementReader]:
    reader = open_statement(path, profile)
    return list(reader.lines()), reader


def _write(path: Path, lines: list[str], encoding: str = "utf-8", end: str = "\r\n") -> Path:
    path.write_bytes((end.join(lines) + end).encode(encoding))
    return path


def _fields(line: StatementLine | Unparseable) -> tuple[object, ...]:
    assert isinstance(line, StatementLine), line
    return (line.line_no, line.date, line.stan, line.rrn, line.card_masked, line.card_last4,
            line.txn_type, line.amount, line.fee)


EXPECTED_BANK = [
    (2, "2026-11-20", 2, "000000000002", MASKED, "0048", "sale", 10000, 60),
    (3, "2026-11-20", 4, "000000000004", MASKED, "0048", "refund", -2500, -15),
]


# -- encodings -------------------------------------------------------------------------------

@pytest.mark.parametrize(("encoding", "profile_encoding", "bom"), [
    ("gbk", "gbk", b""), ("gb18030", "gb18030", b""), ("utf-8", "utf-8", b""),
    ("utf-8", "utf-8", b"\xef\xbb\xbf"), ("utf-8", "utf-8-sig", b"\xef\xbb\xbf"),
    ("utf-8", "utf-8-sig", b"")])
def test_each_encoding_reads_the_same_lines(tmp_path: Path, encoding: str,
                                            profile_encoding: str, bom: bytes) -> None:
    lines = [BANK_HEADER, *BANK_LINES]
    if encoding == "gb18030":        # a character GBK does not have (4 bytes in GB18030)
        lines[2] = lines[2].replace("顾客退货", "顾客退货𠀀")
    path = tmp_path / "stmt.csv"
    path.write_bytes(bom + ("\r\n".join(lines) + "\r\n").encode(encoding))
    items, reader = _read(path, _profile(tmp_path, BANK_PROFILE.format(encoding=profile_encoding)))
    assert [_fields(line) for line in items] == EXPECTED_BANK
    assert reader.lines_read == 3
    assert reader.summary is None and reader.summary_expected is False


def test_a_gbk_file_read_as_utf8_is_an_error_naming_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "stmt.csv",
                  ["date,stan,rrn,amount", "2026-11-20,000002,000000000002,1.00",
                   "2026-11-20,000003,000000000003,2.00,退货"], "gbk")
    profile = _profile(tmp_path, 'format = "csv"\n[columns]\nrrn = "rrn"\namount = "amount"')
    with pytest.raises(StatementError) as caught:
        _read(path, profile)
    assert str(caught.value) == ("stmt.csv: line 3: not valid UTF-8 text (byte 0xCD at"
                                 " column 37); check the profile's encoding")
    assert isinstance(caught.value, InputError)


def test_a_utf8_file_read_as_gbk_fails_on_its_bom_or_on_bytes_gbk_lacks(tmp_path: Path) -> None:
    profile = _profile(tmp_path, BANK_PROFILE.format(encoding="gbk"))
    path = tmp_path / "stmt.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join([BANK_HEADER, *BANK_LINES]).encode())
    with pytest.raises(StatementError, match=r"^stmt.csv: line 1: the file starts with a UTF-8"
                       r" byte-order mark but the profile's encoding is gbk"):
        _read(path, profile)
    path.write_bytes("date,stan\r\n1,€\r\n".encode())   # E2 82 AC: no GBK text
    with pytest.raises(StatementError, match=r"^stmt.csv: line 2: not valid GBK text \(byte"
                       r" 0xAC at column 4\); check the profile's encoding$"):
        _read(path, profile)


# -- the posterm-host statement, its three formats -------------------------------------------

def _host_line(stan: int, txn_type: str, status: str, amount: int, fee: int,
               auth: str = "316838") -> dict[str, object]:
    return {"merchant_id": "898110048990001", "terminal_id": "12345678",
            "txn_date": "2026-11-20", "txn_time": f"14:30:{stan:02d}", "stan": f"{stan:06d}",
            "batch": "000001", "rrn": f"{stan:012d}", "auth_code": auth, "card": MASKED,
            "type": txn_type, "type_zh": {"sale": "消费", "refund": "退货"}[txn_type],
            "status": status, "amount": amount, "fee": fee, "net": amount - fee,
            "payout_date": "2026-11-23"}


HOST = Statement("2026-11-20", None, [
    _host_line(2, "sale", "approved", 10000, 60),
    _host_line(3, "sale", "adjusted", 30000, 180),
    _host_line(4, "refund", "approved", -2500, -15),
    _host_line(5, "sale", "added", 1234, 7, auth=""),
])
HOST_EXPECTED = [
    # stan, type, status, amount, fee, net, auth
    (2, "sale", "settled", 10000, 60, 9940, "316838"),
    (3, "sale", "settled", 30000, 180, 29820, "316838"),
    (4, "refund", "settled", -2500, -15, -2485, "316838"),
    (5, "sale", "settled", 1234, 7, 1227, None),
]


@pytest.mark.parametrize(("fmt", "first_line", "summary_line", "lines_read"), [
    ("csv", 2, 8, 8), ("txt", 4, 9, 12), ("xlsx", 2, 8, 8)])
def test_posterm_host_statements_read_back_with_the_bundled_profiles(
        tmp_path: Path, fmt: str, first_line: int, summary_line: int, lines_read: int) -> None:
    path = tmp_path / f"statement.{fmt}"
    HOST.write(path, fmt)
    items, reader = _read(path, load_profile(None, path))
    assert all(isinstance(line, StatementLine) for line in items)
    assert [(x.stan, x.txn_type, x.status, x.amount, x.fee, x.net, x.auth_code)
            for x in items] == HOST_EXPECTED                       # type: ignore[union-attr]
    assert [x.line_no for x in items] == list(range(first_line, first_line + 4))
    first = items[0]
    assert isinstance(first, StatementLine)
    assert (first.merchant_id, first.terminal_id, first.batch, first.rrn) == (
        "898110048990001", "12345678", 1, "000000000002")
    assert (first.date, first.time, first.settlement_date) == (
        "2026-11-20", "14:30:02", "2026-11-23")
    assert (first.card_masked, first.card_last4) == (MASKED, "0048")
    assert reader.summary == SummaryFigures(summary_line, 4, 38734, 232, 38502)
    assert reader.summary_expected is True
    assert reader.lines_read == lines_read


def test_an_empty_posterm_host_statement_has_no_lines_and_a_summary_of_zero(
        tmp_path: Path) -> None:
    for fmt in ("csv", "txt", "xlsx"):
        path = tmp_path / f"empty.{fmt}"
        Statement("2026-11-21", "12345678", []).write(path, fmt)
        items, reader = _read(path, load_profile(None, path))
        assert items == []
        assert reader.summary is not None and reader.summary.count == 0
        assert reader.summary.amount == 0


# -- the documented examples -----------------------------------------------------------------

def _documented(name: str) -> str:
    """The code block that docs/reconcile.md marks as ``<!-- example: NAME ... -->``."""
    doc = (ROOT / "docs" / "reconcile.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {re.escape(name)}[^>]*-->\n```[a-z]*\n(.*?)```", doc,
                      re.DOTALL)
    assert match, name
    return match.group(1)


def test_the_documented_gbk_bank_csv_reads_as_documented(tmp_path: Path) -> None:
    path = tmp_path / "bank-gbk.csv"
    path.write_bytes(_documented("bank-gbk.csv").replace("\n", "\r\n").encode("gbk"))
    profile_path = tmp_path / "bank-gbk.toml"
    profile_path.write_text(_documented("bank-gbk.toml"), encoding="utf-8")
    items, reader = _read(path, load_profile(str(profile_path), path))
    assert [(x.line_no, x.stan, x.rrn, x.txn_type, x.amount, x.fee, x.net, x.status)
            for x in items] == [                                   # type: ignore[union-attr]
        (6, 2, "000000000002", "sale", 100000, 600, 99400, None),
        (7, 4, "000000000004", "refund", -2500, -15, -2485, None),
        (8, 5, "000000000007", "completion", 11234, 67, 11167, None)]
    cards = [(x.card_masked, x.card_last4) for x in items]        # type: ignore[union-attr]
    assert cards == [(MASKED, "0048"), (MASKED, "0048"), ("625996******0016", "0016")]
    first = items[0]
    assert isinstance(first, StatementLine)
    assert (first.date, first.time, first.terminal_id, first.batch, first.auth_code,
            first.settlement_date) == ("2026-11-20", "14:30:00", "12345678", 1, "316838",
                                       "2026-11-23")
    assert reader.summary == SummaryFigures(9, 3, 108734, 652, 108082)
    assert PAN not in repr(items)


def test_the_documented_fixed_width_txt_reads_as_documented(tmp_path: Path) -> None:
    path = tmp_path / "acquirer-fixed.txt"
    path.write_text(_documented("acquirer-fixed.txt"), encoding="utf-8")
    profile_path = tmp_path / "acquirer-fixed.toml"
    profile_path.write_text(_documented("acquirer-fixed.toml"), encoding="utf-8")
    items, reader = _read(path, load_profile(str(profile_path), path))
    assert [(x.line_no, x.stan, x.time, x.txn_type, x.status, x.amount, x.fee)
            for x in items] == [                                   # type: ignore[union-attr]
        (3, 2, "14:30:00", "sale", "settled", 10000, 60),
        (4, 4, "14:35:12", "refund", "settled", -2500, -15),
        (5, 6, "16:00:00", "sale", "settled", 88800, 533)]
    assert reader.summary == SummaryFigures(6, 3, 96300, None, None)
    assert reader.lines_read == 8


# -- per-line problems -----------------------------------------------------------------------

CSV_PROFILE = """
format = "csv"
[columns]
date = "date"
time = "time"
stan = "stan"
rrn = "rrn"
card = "card"
type = "type"
status = "status"
amount = "amount"
[statuses]
ok = "settled"
"""
CSV_HEADER = "date,time,stan,rrn,card,type,status,amount"


def _csv(tmp_path: Path, *lines: str, profile: str = CSV_PROFILE,
         end: str = "\r\n") -> tuple[list[StatementLine | Unparseable], StatementReader]:
    path = _write(tmp_path / "stmt.csv", [CSV_HEADER, *lines], end=end)
    return _read(path, _profile(tmp_path, profile))


def test_a_non_numeric_amount_is_an_unparseable_line_with_its_line_and_column(
        tmp_path: Path) -> None:
    items, _ = _csv(tmp_path, "2026-11-20,14:30:00,1,000000000001,,sale,ok,1.00",
                    "2026-11-20,14:30:00,2,000000000002,,sale,ok,abc",
                    "2026-11-20,14:30:00,3,000000000003,,sale,ok,3.00")
    assert [type(x).__name__ for x in items] == ["StatementLine", "Unparseable",
                                                 "StatementLine"]
    assert items[1] == Unparseable(3, "amount", "amount 'abc' is not a number of yuan", "abc")
    assert items[2].amount == 300                                  # type: ignore[union-attr]


@pytest.mark.parametrize(("cell", "column", "reason"), [
    ("2026-11-20,14:30:00,1,r1,,sale,ok,12.345", "amount", ("amount '12.345' has more than 2"
     " decimals")),
    ("2026-11-20,14:30:00,1,r1,,sale,ok,", "amount", "amount is empty"),
    ("2026-11-20,14:30:00,1,r1,,sale,ok,-1.00-", "amount", ("amount '-1.00-' has more than"
     " one sign")),
    ("2026-13-01,14:30:00,1,r1,,sale,ok,1.00", "date", ("date '2026-13-01' is not a date"
     " written as %Y-%m-%d or %Y%m%d or %Y/%m/%d")),
    ("2026-11-20,25:00:00,1,r1,,sale,ok,1.00", "time", "time '25:00:00' is not a time"),
    ("2026-11-20,14:30:00,1a,r1,,sale,ok,1.00", "stan", "stan '1a' is not a number"),
    ("2026-11-20,14:30:00,1,r1,,purchase,ok,1.00", "type", ("type 'purchase' is not in the"
     " profile's [types]")),
    ("2026-11-20,14:30:00,1,r1,,sale,,1.00", "status", ("status '' is not in the profile's"
     " [statuses] (it has: 'ok')")),
    ("2026-11-20,14:30:00,1,r1,,sale,成功,1.00", "status", ("status '成功' is not in the"
     " profile's [statuses]")),
    ("2026-11-20,14:30:00,1,r1,6226-09AB,sale,ok,1.00", "card", ("card '**26-09AB' is not"
     " a card number")),
])
def test_every_unreadable_cell_is_an_unparseable_line_saying_why(
        tmp_path: Path, cell: str, column: str, reason: str) -> None:
    items, _ = _csv(tmp_path, cell, "2026-11-20,14:30:00,9,r9,,sale,ok,9.00")
    bad = items[0]
    assert isinstance(bad, Unparseable)
    assert (bad.line_no, bad.column) == (2, column)
    assert bad.reason.startswith(reason), bad.reason
    assert isinstance(items[1], StatementLine) and items[1].amount == 900


@pytest.mark.parametrize(("text", "fen"), [
    ("1,234.56", 123456), ("¥12.00", 1200), ("￥12", 1200), ("12.00元", 1200),
    ("RMB 12.50", 1250), ("+7.1", 710), ("-25.00", -2500), ("(25.00)", -2500),
    ("25.00-", -2500), ("0.00", 0), (" 3.00 ", 300), ("'15.00", 1500)])
def test_amounts_as_banks_print_them_become_fen(tmp_path: Path, text: str, fen: int) -> None:
    items, _ = _csv(tmp_path, f'2026-11-20,14:30:00,1,r1,,sale,ok,"{text}"')
    assert isinstance(items[0], StatementLine), items[0]
    assert items[0].amount == fen


def test_amounts_in_fen_must_be_whole(tmp_path: Path) -> None:
    profile = CSV_PROFILE.replace("[statuses]", '[amounts]\nunit = "fen"\n[statuses]')
    items, _ = _csv(tmp_path, "2026-11-20,14:30:00,1,r1,,sale,ok,1234",
                    "2026-11-20,14:30:00,2,r2,,sale,ok,12.5", profile=profile)
    assert isinstance(items[0], StatementLine) and items[0].amount == 1234
    assert isinstance(items[1], Unparseable)
    assert items[1].reason == "amount '12.5' is not a whole number of fen"


def test_a_refund_is_negative_whatever_sign_the_file_printed(tmp_path: Path) -> None:
    items, _ = _csv(tmp_path, "2026-11-20,14:30:00,1,r1,,refund,ok,25.00",
                    "2026-11-20,14:30:00,2,r2,,refund,ok,-25.00",
                    "2026-11-20,14:30:00,3,r3,,sale,ok,-5.00")
    assert [x.amount for x in items] == [-2500, -2500, -500]      # type: ignore[union-attr]


def test_a_truncated_last_line_is_unparseable_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "stmt.csv"
    whole = f"2026-11-20,14:30:00,1,000000000001,{PAN},sale,ok,1.00"
    path.write_text(f"{CSV_HEADER}\r\n{whole}\r\n{whole[:45]}", encoding="utf-8")
    items, reader = _read(path, _profile(tmp_path, CSV_PROFILE))
    assert isinstance(items[0], StatementLine)
    bad = items[1]
    assert isinstance(bad, Unparseable)
    assert (bad.line_no, bad.column) == (3, None)
    assert bad.reason == "5 column(s) where 8 are needed (the header has 8); a truncated line?"
    # the cut card cell has only 10 digits left: all but its last four are masked
    assert bad.text == "2026-11-20,14:30:00,1,000000000001,******0000"
    assert reader.lines_read == 3


def test_a_line_with_more_cells_than_the_header_is_unparseable(tmp_path: Path) -> None:
    items, _ = _csv(tmp_path, "2026-11-20,14:30:00,1,r1,,sale,ok,1,234.00",
                    "2026-11-20,14:30:00,2,r2,,sale,ok,2.00,,")
    assert isinstance(items[0], Unparseable)
    assert items[0].reason == "9 columns where the header has 8"
    assert isinstance(items[1], StatementLine)          # trailing empty cells are harmless


def test_a_fixed_width_line_too_short_for_the_positions_is_unparseable(
        tmp_path: Path) -> None:
    path = tmp_path / "stmt.txt"
    path.write_text("000001  100\n000002  2\n000003\n", encoding="utf-8")
    profile = _profile(tmp_path, 'format = "fixed"\n[columns]\nstan = [1, 6]\n'
                       'amount = [8, 11]\n[amounts]\nunit = "fen"')
    items, _ = _read(path, profile)
    assert [x.amount for x in items[:2]] == [100, 2]               # type: ignore[union-attr]
    assert items[2] == Unparseable(3, None, "the line is 6 characters long and ends before"
                                   " amount at 8-11 (a truncated line?)", "000003")


# -- cells: cleaning and cards ---------------------------------------------------------------

def test_excel_formula_text_backticks_and_apostrophes_keep_leading_zeros(
        tmp_path: Path) -> None:
    items, _ = _csv(tmp_path, '2026-11-20,14:30:00,"=""000123""",="000000000123",,sale,ok,1.00',
                    "2026-11-20,14:30:00,'000124,'000000000124,,sale,ok,1.00",
                    "2026-11-20,14:30:00,`000125,`000000000125,,sale,ok,1.00",
                    "2026-11-20,14:30:00, 000126 , 000000000126 ,,sale,ok,1.00")
    assert [(x.stan, x.rrn) for x in items] == [                   # type: ignore[union-attr]
        (123, "000000000123"), (124, "000000000124"), (125, "000000000125"),
        (126, "000000000126")]


@pytest.mark.parametrize(("printed", "masked", "last4"), [
    (PAN, MASKED, "0048"), ("6226 0900 0000 0048", MASKED, "0048"),
    ("622609******0048", MASKED, "0048"), ("622609xxxxxx0048", MASKED, "0048"),
    ("6226090000****48", "622609********48", None), ("****0048", "****0048", "0048"),
    ("0048", None, "0048"), ("6226091234567890123", "622609*********0123", "0123"),
    ("", None, None)])
def test_cards_are_kept_only_masked_with_their_last_four(
        tmp_path: Path, printed: str, masked: str | None, last4: str | None) -> None:
    items, _ = _csv(tmp_path, f"2026-11-20,14:30:00,1,r1,{printed},sale,ok,1.00")
    line = items[0]
    assert isinstance(line, StatementLine)
    assert (line.card_masked, line.card_last4) == (masked, last4)


def test_a_full_card_number_is_never_echoed_by_an_unparseable_line(tmp_path: Path) -> None:
    items, _ = _csv(tmp_path, f"2026-11-20,14:30:00,1,r1,{PAN}Z,sale,ok,1.00",
                    f"2026-11-20,14:30:00,2,{PAN},{PAN},sale,ok,1.00.0")
    assert isinstance(items[0], Unparseable) and isinstance(items[1], Unparseable)
    assert PAN not in repr(items)
    assert items[0].text == "622609******0048Z"


# -- where the data ends ---------------------------------------------------------------------

def test_blank_lines_inside_the_data_are_passed_over_when_the_data_ends_at_eof(
        tmp_path: Path) -> None:
    items, reader = _csv(tmp_path, "2026-11-20,14:30:00,1,r1,,sale,ok,1.00", "", ",,,,,,,",
                         "2026-11-20,14:30:00,2,r2,,sale,ok,2.00")
    assert [(x.line_no, x.amount) for x in items] == [(2, 100), (5, 200)]  # type: ignore
    assert reader.lines_read == 5


def test_a_transaction_after_the_blank_line_that_ends_the_data_is_reported(
        tmp_path: Path) -> None:
    profile = CSV_PROFILE.replace('format = "csv"', 'format = "csv"\nend = "blank"')
    items, _ = _csv(tmp_path, "2026-11-20,14:30:00,1,r1,,sale,ok,1.00", "",
                    "some footer text", "2026-11-20,14:30:00,2,r2,,sale,ok,2.00",
                    profile=profile)
    assert isinstance(items[0], StatementLine)
    assert len(items) == 2 and isinstance(items[1], Unparseable)
    assert items[1].line_no == 5
    assert items[1].reason.startswith("a transaction line after the end of the data")


def test_a_declared_summary_that_is_absent_leaves_summary_none(tmp_path: Path) -> None:
    profile = CSV_PROFILE + '[summary]\nstyle = "row"\nmarker = "^合计$"\ncount = 2\namount = 3\n'
    items, reader = _csv(tmp_path, "2026-11-20,14:30:00,1,r1,,sale,ok,1.00", profile=profile)
    assert len(items) == 1
    assert reader.summary_expected is True and reader.summary is None


def test_a_summary_row_ends_the_data_even_at_eof_and_its_bad_figure_is_reported(
        tmp_path: Path) -> None:
    profile = CSV_PROFILE + '[summary]\nstyle = "row"\nmarker = "^合计$"\ncount = 2\namount = 3\n'
    items, reader = _csv(tmp_path, "2026-11-20,14:30:00,1,r1,,sale,ok,1.00",
                         "合计,1,abc", profile=profile)
    assert isinstance(items[0], StatementLine)
    assert items[1] == Unparseable(3, "summary amount", "amount 'abc' is not a number of yuan",
                                   "abc")
    assert reader.summary == SummaryFigures(3, 1, None, None, None)


def test_footer_rows_are_not_data_and_may_hold_the_summary(tmp_path: Path) -> None:
    profile = CSV_PROFILE.replace('format = "csv"', 'format = "csv"\nfooter_rows = 2') + (
        '[summary]\nstyle = "labels"\nlabel = 1\nvalue = 2\ncount = "笔数"\n')
    items, reader = _csv(tmp_path, "2026-11-20,14:30:00,1,r1,,sale,ok,1.00",
                         "2026-11-20,14:30:00,2,r2,,sale,ok,2.00", "笔数：,2", "",
                         "制表人 张三", profile=profile)
    assert [x.amount for x in items] == [100, 200]                # type: ignore[union-attr]
    assert reader.summary == SummaryFigures(4, 2, None, None, None)


# -- other formats ---------------------------------------------------------------------------

def test_quoted_cells_may_hold_the_delimiter_and_line_ends(tmp_path: Path) -> None:
    items, reader = _csv(tmp_path, '2026-11-20,14:30:00,1,r1,,sale,ok,"1,000.00"',
                         '"2026-11-20","14:30:00","2","r\n2",,sale,ok,2.00',
                         "2026-11-20,14:30:00,3,r3,,sale,ok,3.00")
    assert [(x.line_no, x.rrn, x.amount) for x in items] == [    # type: ignore[union-attr]
        (2, "r1", 100000), (3, "r\n2", 200), (5, "r3", 300)]
    assert reader.lines_read == 5


@pytest.mark.parametrize(("delimiter", "word"), [("\t", "tab"), ("|", "|"), ("||", "||")])
def test_delimited_files_without_a_header_by_column_number(
        tmp_path: Path, delimiter: str, word: str) -> None:
    path = _write(tmp_path / "stmt.txt", [delimiter.join(["000000000001", "12.00", "消费"]),
                                          delimiter.join(["000000000002", "3.00", "退货"])])
    profile = _profile(tmp_path, f'format = "delimited"\ndelimiter = "{word}"\nheader = false\n'
                       '[columns]\nrrn = 1\namount = 2\ntype = 3\n'
                       '[types]\n"消费" = "sale"\n"退货" = "refund"')
    items, _ = _read(path, profile)
    assert [(x.rrn, x.amount, x.txn_type) for x in items] == [   # type: ignore[union-attr]
        ("000000000001", 1200, "sale"), ("000000000002", -300, "refund")]


def test_fixed_width_gbk_by_byte_positions(tmp_path: Path) -> None:
    path = tmp_path / "stmt.txt"
    # 交易 takes 4 bytes in GBK, so the amount starts at byte 6 (character 4)
    path.write_bytes("01 消费    12.00\n02 退货     3.00\n".encode("gbk"))
    profile = _profile(tmp_path, 'format = "fixed"\nencoding = "gbk"\npositions = "bytes"\n'
                       '[columns]\nstan = [1, 2]\ntype = [4, 7]\namount = [8, 15]\n'
                       '[types]\n"消费" = "sale"\n"退货" = "refund"')
    items, _ = _read(path, profile)
    assert [(x.stan, x.txn_type, x.amount) for x in items] == [  # type: ignore[union-attr]
        (1, "sale", 1200), (2, "refund", -300)]
    cut = _profile(tmp_path, 'format = "fixed"\nencoding = "gbk"\npositions = "bytes"\n'
                   '[columns]\nstan = [1, 2]\ntype = [4, 6]\namount = [8, 15]', "cut.toml")
    items, _ = _read(path, cut)
    assert isinstance(items[0], Unparseable)
    assert items[0].reason.startswith("positions 4-6 cut a character in two")


def _workbook(path: Path, rows: list[list[object]], title: str = "对账单") -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


XLSX_PROFILE = """
format = "xlsx"
sheet = "对账单"
skip_rows = 1
[columns]
datetime = "交易时间"
stan = "凭证号"
rrn = "参考号"
amount = "金额"
fee = "手续费"
"""


def test_xlsx_numbers_dates_and_apostrophe_text(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "stmt.xlsx", [
        ["商户: 测试超市"],
        ["交易时间", "凭证号", "参考号", "金额", "手续费"],
        [datetime(2026, 11, 20, 14, 30, 5), 2, "'000000000002", 0.3, 0.0],
        ["2026-11-20 15:00:00", "000003", "000000000003", Decimal("1234.56"), 7],
        [datetime(2026, 11, 20, 16, 0), 4, "000000000004", "abc", None],
        [datetime(2026, 11, 20, 16, 0), 5, "000000000005", 12.345, None],
    ])
    items, reader = _read(path, _profile(tmp_path, XLSX_PROFILE))
    first, second, bad, inexact = items
    assert isinstance(first, StatementLine) and isinstance(second, StatementLine)
    assert (first.line_no, first.date, first.time, first.stan, first.rrn) == (
        3, "2026-11-20", "14:30:05", 2, "000000000002")
    assert (first.amount, first.fee) == (30, 0)
    assert (second.amount, second.fee, second.time) == (123456, 700, "15:00:00")
    assert isinstance(bad, Unparseable) and (bad.line_no, bad.column) == (5, "金额")
    # a number cell with a third decimal is not rounded into fen silently
    assert isinstance(inexact, Unparseable)
    assert inexact.reason == "amount '12.345' has more than 2 decimals"
    assert reader.lines_read == 6


def test_xlsx_whole_and_two_decimal_numbers_are_exact_fen(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "stmt.xlsx", [
        ["x"], ["交易时间", "凭证号", "参考号", "金额", "手续费"],
        ["2026-11-20 14:30:00", 1, "r1", 87.34, 0.52],
        ["2026-11-20 14:30:00", 2, "r2", 100.0, 0.6],
        ["2026-11-20 14:30:00", 3, "r3", -25, -0.15]])
    items, _ = _read(path, _profile(tmp_path, XLSX_PROFILE))
    assert [(x.amount, x.fee) for x in items] == [                # type: ignore[union-attr]
        (8734, 52), (10000, 60), (-2500, -15)]


def test_xlsx_sheet_by_number_and_a_missing_sheet(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "stmt.xlsx", [["x"], ["交易时间", "凭证号", "参考号", "金额"],
                                              ["2026-11-20 14:30:00", 1, "r1", 1]], "Sheet1")
    by_number = XLSX_PROFILE.replace('sheet = "对账单"', "sheet = 1").replace('fee = "手续费"', "")
    items, _ = _read(path, _profile(tmp_path, by_number))
    assert [x.amount for x in items] == [100]                      # type: ignore[union-attr]
    with pytest.raises(StatementError, match=r"^stmt.xlsx: no sheet '对账单'; the workbook has:"
                       r" Sheet1$"):
        _read(path, _profile(tmp_path, XLSX_PROFILE))
    second = by_number.replace("sheet = 1", "sheet = 2")
    with pytest.raises(StatementError, match=r"no sheet number 2; the workbook has 1 sheet"):
        _read(path, _profile(tmp_path, second))


def test_a_csv_given_to_an_xlsx_profile_and_an_xlsx_to_a_csv_profile(tmp_path: Path) -> None:
    csv_file = _write(tmp_path / "stmt.xlsx", [BANK_HEADER, *BANK_LINES])
    with pytest.raises(StatementError, match=r"^stmt.xlsx: not an XLSX file"):
        _read(csv_file, _profile(tmp_path, XLSX_PROFILE))
    book = _workbook(tmp_path / "book.csv", [["a"]])
    with pytest.raises(StatementError, match=r"^book.csv: line \d+: not valid UTF-8 text .*"
                       r"this looks like an XLSX file"):
        _read(book, _profile(tmp_path, BANK_PROFILE.format(encoding="utf-8")))


# -- whole-file errors -----------------------------------------------------------------------

def test_missing_empty_and_headerless_files_are_one_line_errors(tmp_path: Path) -> None:
    profile = _profile(tmp_path, BANK_PROFILE.format(encoding="utf-8"))
    with pytest.raises(StatementError, match=r"^nowhere.csv: no such file$"):
        open_statement(tmp_path / "nowhere.csv", profile)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"\xef\xbb\xbf\r\n")
    with pytest.raises(StatementError, match=r"^empty.csv: the file is empty$"):
        open_statement(empty, profile)
    with pytest.raises(StatementError, match=r"is a folder"):
        open_statement(tmp_path, profile)
    short = _write(tmp_path / "short.csv", ["商户,测试"])
    with pytest.raises(StatementError, match=r"^short.csv: no header line after the 1 skipped"):
        _read(short, _profile(tmp_path, "skip_rows = 1\n" + BANK_PROFILE.format(
            encoding="utf-8"), "p3.toml"))


def test_a_mapped_column_missing_from_the_header_names_it_and_lists_the_header(
        tmp_path: Path) -> None:
    path = _write(tmp_path / "stmt.csv", ["交易日期,凭证号,卡号,交易类型,交易金额,手续费",
                                          "2026-11-20,1,,消费,1.00,0.01"])
    with pytest.raises(StatementError) as caught:
        _read(path, _profile(tmp_path, BANK_PROFILE.format(encoding="utf-8")))
    assert str(caught.value) == (
        "stmt.csv: line 1: no column '参考号' (rrn) in the header; the header has: '交易日期',"
        " '凭证号', '卡号', '交易类型', '交易金额', '手续费'")


# -- streaming -------------------------------------------------------------------------------

def test_lines_are_streamed_not_read_into_a_list_first(tmp_path: Path) -> None:
    body = [f"2026-11-20,14:30:00,{n},{n:012d},,sale,ok,1.00" for n in range(1, 50_001)]
    path = _write(tmp_path / "big.csv", [CSV_HEADER, *body])
    reader = open_statement(path, _profile(tmp_path, CSV_PROFILE))
    items = reader.lines()
    assert inspect.isgenerator(items)
    first = next(items)
    assert isinstance(first, StatementLine) and first.stan == 1
    assert 0 < reader.lines_read < 10_000          # only the first block has been read
    assert sum(1 for _ in items) == 49_999
    assert reader.lines_read == 50_001


def test_crlf_lf_and_mixed_line_ends_read_the_same_over_many_blocks(tmp_path: Path) -> None:
    """A big file is read a block at a time: CRLF-only and LF-only blocks are split on their
    end as it is, a block with mixed ends (CR alone, as old Mac exports) is made LF first."""
    body = [f"2026-11-20,14:30:{n % 60:02d},{n},{n:012d},622609******{n % 10_000:04d},"
            f"{'refund' if n % 7 == 0 else 'sale'},ok,{n % 900 + 1}.{n % 100:02d}"
            for n in range(1, 30_001)]
    lines = [CSV_HEADER, *body]
    profile = _profile(tmp_path, CSV_PROFILE)
    read = {}
    for name, end in (("crlf", "\r\n"), ("lf", "\n")):
        read[name] = [_fields(line) for line in _read(_write(tmp_path / f"{name}.csv", lines,
                                                             end=end), profile)[0]]
    ends = ["\r\n", "\n", "\r"]
    mixed = "".join(line + ends[n % 3] for n, line in enumerate(lines))
    (tmp_path / "mixed.csv").write_bytes(mixed.encode())
    items, reader = _read(tmp_path / "mixed.csv", profile)
    read["mixed"] = [_fields(line) for line in items]
    assert reader.lines_read == 30_001
    assert read["crlf"] == read["lf"] == read["mixed"]
    assert len(read["lf"]) == 30_000
    assert read["lf"][6][6:8] == ("refund", -(7 % 900 + 1) * 100 - 7)     # line 8: n = 7
    assert read["lf"][0][4:6] == ("622609******0001", "0001")
