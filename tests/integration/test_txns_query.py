"""Transaction query (流水查询), its exports and reprint, through the real ``posterm`` CLI
against the host simulator: a day of sales on different cards and amounts, a void, a
refund and a declined sale; then every filter and format, the files read back, slips
reprinted as 重打印 DUPLICATE on the mock printer's paper, and bad input refused in one line.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import pytest
from conftest import HostSim, Run, assert_one_clean_error_line, posterm, provision, set_config

from hal.document import text_width

PW = "sup3r-visor"


@dataclass
class QueryDay:
    data: Path
    stans: dict[str, str]          # name -> STAN ("000003")
    today: str                     # local YYYY-MM-DD of the day's rows

    def run(self, *args: str | Path) -> Run:
        return posterm(self.data, *args)

    def stans_of(self, *args: str) -> list[str]:
        run = self.run("txns", *args, "--json")
        assert run.returncode == 0, str(run)
        by_stan = {v: k for k, v in self.stans.items()}
        return [by_stan[r["stan"]] for r in run.json()["transactions"]]


@pytest.fixture(scope="module")
def qday(tmp_path_factory: pytest.TempPathFactory):
    """sale1 12.50 (voided), sale2 88.00 (visa, partly refunded 30.00), declined 500.00,
    sale4 23.40 (tap), sale5 199.99 (swipe), void of sale1, refund of sale2."""
    base = tmp_path_factory.mktemp("query")
    sim = HostSim(base / "host", base / "host-stderr.log")
    data = base / "terminal"
    try:
        provision(data, sim.address, sim.data, "--supervisor-password", PW)
        assert posterm(data, "signon").returncode == 0
        stans = {}
        for name, amount, card, extra, code in (
                ("sale1", "12.50", "unionpay-debit-chip", (), 0),
                ("sale2", "88.00", "visa-chip", (), 0),
                ("declined", "500.00", "decline-51", (), 1),
                ("sale4", "23.40", "mc-tap", (), 0),
                ("sale5", "199.99", "unionpay-credit-swipe", ("--pin", "123456"), 0)):
            run = posterm(data, "sale", amount, "--card", card, *extra, "--json")
            assert run.returncode == code, str(run)
            stans[name] = run.json()["stan"]
        void = posterm(data, "void", str(int(stans["sale1"])), "--supervisor-password", PW,
                       "--json")
        assert void.returncode == 0, str(void)
        stans["void"] = void.json()["stan"]
        rows = posterm(data, "txns", "--json").json()["transactions"]
        sale2 = next(r for r in rows if r["stan"] == stans["sale2"])
        mmdd = sale2["time_local"][5:7] + sale2["time_local"][8:10]
        refund = posterm(data, "refund", "30.00", "--rrn", sale2["rrn"], "--date", mmdd,
                         "--card", "visa-chip", "--supervisor-password", PW, "--json")
        assert refund.returncode == 0, str(refund)
        stans["refund"] = refund.json()["stan"]
        yield QueryDay(data, stans, sale2["time_local"][:10])
    finally:
        sim.stop()


NEWEST_FIRST = ["refund", "void", "sale5", "sale4", "declined", "sale2", "sale1"]
NET_YUAN = "281.39"       # 88.00 + 23.40 + 199.99 - 30.00; the voided sale and the void: 0


def test_json_keeps_its_shape_and_lists_the_day_newest_first(qday):
    run = qday.run("txns", "--json")
    doc = run.json()
    assert list(doc) == ["transactions"]
    assert set(doc["transactions"][0]) == {
        "txn_id", "type", "state", "amount", "amount_yuan", "currency", "stan", "batch",
        "pan_masked", "card_org", "entry_mode", "response_code", "rrn", "auth_code",
        "reversal", "receipt", "voided_by", "original_id", "advice", "time_utc", "time_local"}
    assert qday.stans_of() == NEWEST_FIRST
    assert qday.run("txns", "--format", "json").stdout == run.stdout
    assert qday.stans_of("--batch", "1") == NEWEST_FIRST


def test_status_filters_tell_voided_from_approved(qday):
    assert qday.stans_of("--status", "voided") == ["sale1"]
    assert qday.stans_of("--status", "approved") == ["refund", "void", "sale5", "sale4",
                                                     "sale2"]
    assert qday.stans_of("--status", "declined", "--status", "voided") == ["declined",
                                                                          "sale1"]
    assert qday.stans_of("--status", "reversed") == []


def test_type_amount_card_date_batch_and_limit_filters(qday):
    assert qday.stans_of("--type", "refund") == ["refund"]
    assert qday.stans_of("--type", "sale", "--status", "approved") == ["sale5", "sale4",
                                                                       "sale2"]
    assert qday.stans_of("--type", "void", "--type", "refund") == ["refund", "void"]
    assert qday.stans_of("--min", "23.40", "--max", "88") == ["refund", "sale4", "sale2"]
    assert qday.stans_of("--min", "199.99") == ["sale5", "declined"]
    assert qday.stans_of("--max", "12.50") == ["void", "sale1"]
    assert qday.stans_of("--card-last4", "0010") == ["refund", "sale2"]
    assert qday.stans_of("--card-last4", "0048") == ["void", "sale1"]
    assert qday.stans_of("--from", qday.today, "--to", qday.today) == NEWEST_FIRST
    yesterday = (date.fromisoformat(qday.today) - timedelta(days=1)).isoformat()
    assert qday.stans_of("--to", yesterday) == []
    assert qday.stans_of("--from", f"{qday.today} 00:00", "--to",
                         f"{qday.today} 23:59") == NEWEST_FIRST
    assert qday.stans_of("--batch", "2") == []
    assert qday.stans_of("--limit", "2") == ["refund", "void"]


def test_the_table_is_in_the_cashiers_language_with_a_totals_line(qday):
    run = qday.run("txns")
    assert run.returncode == 0, str(run)
    assert "交易流水" in run.stdout and "已撤销" in run.stdout and "退货" in run.stdout
    assert f"合计 7 笔，成功 4 笔，净额 ¥{NET_YUAN}" in run.stdout
    only = qday.run("txns", "--card-last4", "0010")
    assert "合计 2 笔，成功 2 笔，净额 ¥58.00" in only.stdout


def test_csv_export_reads_back_with_yuan_text_stans_and_totals(qday, tmp_path):
    path = tmp_path / "day.csv"
    run = qday.run("txns", "-o", path)
    assert run.returncode == 0 and run.stdout.strip() == f"wrote 7 transaction(s) to {path}"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf") and b"\r\n" in path.read_bytes()
    with open(path, encoding="utf-8-sig", newline="") as f:
        lines = list(csv.reader(f))
    head = lines[0]
    assert head[:4] == ["交易时间", "交易类型", "状态", "金额(元)"]
    body = [dict(zip(head, line)) for line in lines[1:8]]
    assert [b["凭证号"] for b in body] == [qday.stans[n] for n in NEWEST_FIRST]
    assert [b["金额(元)"] for b in body] == ["30.00", "12.50", "199.99", "23.40", "500.00",
                                            "88.00", "12.50"]
    assert [b["状态"] for b in body][-3:] == ["拒绝", "成功", "已撤销"]
    assert body[0]["交易类型"] == "退货" and body[0]["卡号"].endswith("0010")
    assert all("*" in b["卡号"] and len(b["卡号"].replace("*", "")) == 10 for b in body)
    assert lines[8] == [] and lines[9:] == [["笔数", "7"], ["成功笔数", "4"],
                                            ["净额(元)", NET_YUAN]]
    voided = tmp_path / "voided.csv"
    assert qday.run("txns", "--status", "voided", "--format", "csv", "-o", voided) \
        .returncode == 0
    with open(voided, encoding="utf-8-sig", newline="") as f:
        assert [line[6] for line in list(csv.reader(f))[1:2]] == [qday.stans["sale1"]]


def test_xlsx_export_has_numbers_for_money_and_text_for_stans(qday, tmp_path):
    path = tmp_path / "day.xlsx"
    assert qday.run("txns", "--type", "sale", "-o", path).returncode == 0
    sheet = openpyxl.load_workbook(path).active
    assert sheet.title.startswith("交易流水") and sheet.freeze_panes == "A2"
    head = [c.value for c in sheet[1]]
    amount, stan = head.index("金额(元)") + 1, head.index("凭证号") + 1
    values = [(sheet.cell(r, amount).value, sheet.cell(r, stan).value) for r in range(2, 6)]
    assert values == [(199.99, qday.stans["sale5"]), (23.4, qday.stans["sale4"]),
                      (500, qday.stans["declined"]), (88, qday.stans["sale2"])]
    assert sheet.cell(2, amount).data_type == "n" and sheet.cell(2, stan).data_type == "s"
    assert sheet.cell(2, 1).is_date


def test_txt_on_stdout_and_in_a_file_are_the_same_aligned_text(qday, tmp_path):
    out = qday.run("txns", "--format", "txt")
    assert out.returncode == 0, str(out)
    path = tmp_path / "day.txt"
    assert qday.run("txns", "-o", path).returncode == 0
    assert path.read_text(encoding="utf-8") == out.stdout
    lines = out.stdout.splitlines()
    assert lines[0] == "交易流水" and lines[-1] == f"净额(元)  {NET_YUAN}"
    rule = lines[2]
    amount_end = len(" ".join(rule.split("  ")[:4])) + 3      # four columns, 2-space gaps
    for line in lines[3:10]:                   # the amounts end in the same display column
        cut = ""
        for ch in line:
            if text_width(cut + ch) > amount_end:
                break
            cut += ch
        assert cut[-3] == "." and cut[-2:].isdigit(), line


def test_json_to_a_file_is_the_same_document(qday, tmp_path):
    path = tmp_path / "day.json"
    assert qday.run("txns", "--json", "-o", path).returncode == 0
    assert json.loads(path.read_text(encoding="utf-8")) == qday.run("txns", "--json").json()


def _new_slips(data: Path, before: set[Path]) -> list[str]:
    return [p.read_text(encoding="utf-8")
            for p in sorted(set((data / "receipts").glob("*.txt")) - before)]


def test_reprint_last_and_a_stan_print_duplicate_slips(qday):
    receipts = qday.data / "receipts"
    before = set(receipts.glob("*.txt"))
    last = qday.run("reprint", "last", "--json")
    assert last.returncode == 0, str(last)
    assert last.json()["reprinted"] == [{"stan": qday.stans["refund"], "printed": True,
                                         "duplicate": True, "errors": []}]
    slips = _new_slips(qday.data, before)
    assert len(slips) == 2 and all("重打印 DUPLICATE" in s for s in slips)
    assert all(qday.stans["refund"] in s and "退货" in s for s in slips)

    before = set(receipts.glob("*.txt"))
    one = qday.run("reprint", str(int(qday.stans["sale5"])))
    assert one.returncode == 0 and one.stdout.strip() == f"STAN {qday.stans['sale5']}: printed"
    slips = _new_slips(qday.data, before)
    assert len(slips) == 2 and all("重打印 DUPLICATE" in s and "199.99" in s for s in slips)
    assert qday.run("reprint", "--stan", qday.stans["sale4"]).returncode == 0


@pytest.mark.parametrize("args, code, words", [
    (("reprint", "999"), 1, "no approved transaction with STAN 000999"),
    (("reprint", "DECLINED"), 1, "no approved transaction with STAN"),
    (("reprint", "abc"), 2, "give 'last' or a STAN"),
    (("reprint", "last", "--pending"), 2, "not an argument and --pending"),
    (("txns", "--from", "2026-02-30"), 2, "--from: '2026-02-30' is not a real date"),
    (("txns", "--to", "22/11/2026"), 2, "--to: '22/11/2026' is not a date"),
    (("txns", "--from", "2026-11-22", "--to", "2026-11-21"), 2, "--to: 2026-11-21 is before"),
    (("txns", "--min", "1.234"), 2, "--min: amount '1.234' is not valid"),
    (("txns", "--min", "50", "--max", "10"), 2, "--max 10 is below --min 50"),
    (("txns", "--card-last4", "12a4"), 2, "--card-last4: '12a4' is not four digits"),
    (("txns", "--type", "sales"), 2, "unknown --type 'sales': use sale, void, refund"),
    (("txns", "--status", "settled"), 2, "unknown status 'settled': use approved"),
    (("txns", "--limit", "0"), 2, "--limit: 0 is not a positive whole number"),
    (("txns", "--format", "pdf"), 2, "unknown --format 'pdf'"),
    (("txns", "--format", "xlsx"), 2, "--format xlsx writes a file: give -o FILE"),
    (("txns", "-o", "OUT/day.xls"), 2, "cannot tell the format from '.xls'"),
    (("txns", "-o", "OUT/missing/day.csv"), 2, "cannot write"),
    (("txns", "--json", "--format", "csv"), 2, "--json and --format csv disagree"),
])
def test_bad_input_is_one_clean_line(qday, tmp_path, args, code, words):
    args = tuple(a.replace("OUT", str(tmp_path)) for a in args)
    if "DECLINED" in args:
        args = tuple(str(int(qday.stans["declined"])) if a == "DECLINED" else a for a in args)
    line = assert_one_clean_error_line(qday.run(*args), code)
    assert words in line, line
    assert not list(tmp_path.glob("**/*.xls")) and not list(tmp_path.glob("**/.*.tmp"))


def test_english_headings_when_the_cashier_language_is_english(qday, tmp_path):
    set_config(qday.data, "terminal", "language", "en")
    try:
        path = tmp_path / "day.csv"
        assert qday.run("txns", "--status", "voided", "-o", path).returncode == 0
        with open(path, encoding="utf-8-sig", newline="") as f:
            lines = list(csv.reader(f))
        assert lines[0][:4] == ["Time", "Type", "Status", "Amount (CNY)"]
        assert lines[1][1:4] == ["Sale", "voided", "12.50"]
        table = qday.run("txns")
        assert f"Total 7 transaction(s), 4 approved counted, net ¥{NET_YUAN}" in table.stdout
    finally:
        set_config(qday.data, "terminal", "language", "zh")
