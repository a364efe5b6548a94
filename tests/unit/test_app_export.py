"""The table writer: every format written to a real file and read back (csv with utf-8-sig,
openpyxl for xlsx, json), TXT aligned with Chinese text, and a failed export leaves nothing."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from app.errors import EXIT_USAGE
from app.export import Column, ExportError, format_for, render_txt, write_table
from hal.document import text_width

COLUMNS = [
    Column("time", "Time", "时间", "date"),
    Column("merchant", "Merchant", "商户", "text"),
    Column("stan", "STAN", "凭证号", "text"),
    Column("amount", "Amount", "金额", "money"),
    Column("count", "Count", "笔数", "int"),
]
ROWS = [
    {"time": "2026-11-22T07:58:47+08:00", "merchant": "上海测试商户", "stan": "000123",
     "amount": 1250, "count": 1},
    {"time": "2026-11-22 09:00:00", "merchant": "Shop", "stan": "000124",
     "amount": 123456789, "count": 12},
    {"time": datetime(2026, 11, 23, 10, 5, 0), "merchant": "=HYPERLINK(\"x\")",
     "stan": "007", "amount": -300, "count": None},
]
FOOTER = [("合计笔数", "3"), ("合计金额", "1,234,569.39")]


def test_csv_is_utf8_with_bom_crlf_headings_in_the_language_and_yuan(tmp_path):
    path = tmp_path / "list.csv"
    assert write_table(path, COLUMNS, ROWS, language="zh", footer=FOOTER) == 3
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.count(b"\r\n") == raw.count(b"\n") == 7          # header, 3 rows, blank, 2
    with open(path, encoding="utf-8-sig", newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0] == ["时间", "商户", "凭证号", "金额", "笔数"]
    assert lines[1] == ["2026-11-22 07:58:47", "上海测试商户", "000123", "12.50", "1"]
    assert lines[2][3] == "1234567.89" and lines[3][3] == "-3.00" and lines[3][4] == ""
    assert lines[3][2] == "007"
    assert lines[4] == [] and lines[5:] == [["合计笔数", "3"], ["合计金额", "1,234,569.39"]]
    write_table(path, COLUMNS, ROWS[:1], language="en")
    with open(path, encoding="utf-8-sig", newline="") as f:
        assert next(csv.reader(f)) == ["Time", "Merchant", "STAN", "Amount", "Count"]


def test_xlsx_has_numbers_for_money_text_for_text_bold_frozen_header_and_widths(tmp_path):
    path = tmp_path / "list.xlsx"
    write_table(path, COLUMNS, ROWS, language="zh", title="交易流水 2026-11-22",
                footer=FOOTER)
    book = openpyxl.load_workbook(path)
    sheet = book.active
    assert sheet.title == "交易流水 2026-11-22"
    assert [c.value for c in sheet[1]] == ["时间", "商户", "凭证号", "金额", "笔数"]
    assert all(c.font.b for c in sheet[1])
    assert sheet.freeze_panes == "A2"
    time, merchant, stan, amount, count = sheet[2]
    assert time.value == datetime(2026, 11, 22, 7, 58, 47) and time.is_date
    assert (merchant.value, merchant.data_type) == ("上海测试商户", "s")
    assert (stan.value, stan.data_type, stan.number_format) == ("000123", "s", "@")
    assert amount.value == 12.5 and amount.data_type == "n" and amount.number_format == "0.00"
    assert count.value == 1 and count.data_type == "n"
    assert sheet["D3"].value == 1234567.89 and sheet["D4"].value == -3
    assert sheet["C4"].value == "007"
    assert (sheet["B4"].value, sheet["B4"].data_type) == ('=HYPERLINK("x")', "s")  # no formula
    assert sheet["E4"].value is None
    assert [sheet["A6"].value, sheet["B6"].value] == ["合计笔数", "3"]
    widths = {k: d.width for k, d in sheet.column_dimensions.items()}
    assert widths["B"] >= text_width("上海测试商户") and widths["A"] >= len("2026-11-22 07:58:47")
    assert widths["C"] < widths["A"]


def test_xlsx_keeps_the_exact_yuan_in_the_file(tmp_path):
    path = tmp_path / "money.xlsx"
    write_table(path, [Column("amount", "Amount", "金额", "money")],
                [{"amount": 1999}, {"amount": 10}], language="en")
    import zipfile
    sheet_xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert "<v>19.99</v>" in sheet_xml and "<v>0.1</v>" in sheet_xml


def test_txt_lines_up_with_chinese_counted_as_two_columns(tmp_path):
    path = tmp_path / "list.txt"
    write_table(path, COLUMNS, ROWS, language="zh", title="交易流水", footer=FOOTER)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "交易流水"
    head, rule, *body = lines[1:5]
    # Every column starts at the same display column on every line.
    starts = [i for i, ch in enumerate(rule) if ch == "-" and (i == 0 or rule[i - 1] == " ")]
    for line in (head, *body):
        for start in starts[1:]:
            assert text_width(_cut(line, start)) == start
            assert line[len(_cut(line, start)) - 1] == " " or start == 0
    # Money is right-aligned: the amounts end at the same column.
    amount_end = starts[3] + len(rule.split("  ")[3])
    for line in body:
        assert text_width(_cut(line, amount_end))
        assert _cut(line, amount_end).endswith(("12.50", "1,234,567.89", "-3.00"))
    assert "上海测试商户  " in body[0]
    assert lines[-2:] == ["合计笔数  3", "合计金额  1,234,569.39"]
    assert render_txt(COLUMNS, ROWS, language="zh", title="交易流水", footer=FOOTER) == text


def _cut(line: str, columns: int) -> str:
    """The longest start of ``line`` that takes at most ``columns`` display columns."""
    out = ""
    for ch in line:
        if text_width(out + ch) > columns:
            break
        out += ch
    return out


def test_json_keeps_fen_and_the_keys(tmp_path):
    path = tmp_path / "list.json"
    write_table(path, COLUMNS, ROWS, language="en", title="T", footer=[("Total", "3")])
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["title"] == "T" and [c["head"] for c in doc["columns"]][:2] == ["Time",
                                                                            "Merchant"]
    assert doc["rows"][0] == {"time": "2026-11-22 07:58:47", "merchant": "上海测试商户",
                              "stan": "000123", "amount": 1250, "count": 1}
    assert doc["rows"][2]["count"] is None and doc["footer"] == [{"label": "Total",
                                                                  "value": "3"}]


def test_format_comes_from_the_suffix_or_is_refused_in_one_line():
    assert format_for(Path("a.CSV"), None) == "csv"
    assert format_for(Path("a.data"), "xlsx") == "xlsx"
    for bad, words in ((Path("a.xls"), "'.xls'"), (Path("report"), "without a suffix")):
        with pytest.raises(ExportError) as err:
            format_for(bad, None)
        assert words in str(err.value) and ".csv, .xlsx, .txt or .json" in str(err.value)
        assert "\n" not in str(err.value) and err.value.exit_code == EXIT_USAGE
    with pytest.raises(ExportError, match="unknown export format 'pdf'"):
        format_for(Path("a.csv"), "pdf")


def test_a_failed_export_leaves_no_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("the previous export\n", encoding="utf-8")
    bad_rows = [ROWS[0], {"amount": 12.5}]                 # a float is not money
    with pytest.raises(ExportError, match="column amount: money must be whole fen"):
        write_table(path, COLUMNS, bad_rows, language="zh")
    assert path.read_text(encoding="utf-8") == "the previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.csv"]
    with pytest.raises(ExportError, match="column amount"):
        write_table(tmp_path / "new.xlsx", COLUMNS, bad_rows, language="zh")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.csv"]


def test_an_unwritable_place_is_one_line_naming_the_file(tmp_path):
    target = tmp_path / "no-such-dir" / "list.csv"
    with pytest.raises(ExportError) as err:
        write_table(target, COLUMNS, ROWS, language="zh")
    assert str(err.value) == f"cannot write {target}: No such file or directory"


def test_an_xlsx_longer_than_the_width_sample_keeps_every_row(tmp_path):
    rows = ({"time": "2026-11-22 09:00:00", "merchant": f"m{i}", "stan": f"{i:06d}",
             "amount": i, "count": i} for i in range(3_000))
    path = tmp_path / "big.xlsx"
    assert write_table(path, COLUMNS, rows, language="en") == 3_000
    sheet = openpyxl.load_workbook(path, read_only=True).active
    last = next(sheet.iter_rows(min_row=3_001, max_row=3_001, values_only=True))
    assert last[2:4] == ("002999", 29.99)
