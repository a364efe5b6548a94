"""Reconciliation (对账) end to end: a day settled on the real ``posterm-host``, its statement
exported by ``posterm-host statement``, then edited the way a bank's file can differ, and
``posterm reconcile`` puts every change in its class and the rest in matched.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import subprocess
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from conftest import (
    PY,
    REPO,
    HostSim,
    _env,
    assert_one_clean_error_line,
    posterm,
    posterm_cmd,
    set_config,
)

from app.amount import format_yuan

PW = "recon-supervisor-1"
COUNTED = ("matched", "probable", "amount_mismatch", "journal_only", "statement_only",
           "status_mismatch", "fee_mismatch", "unparseable")


@dataclass
class SettledDay:
    data: Path
    host_data: Path
    cleared: str                 # the host's clearing date, YYYY-MM-DD
    sales: dict[str, dict]       # name -> the sale's --json


def _ok(run):
    assert run.returncode == 0, str(run)
    return run.json() if run.stdout.lstrip().startswith("{") else run


def _host(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "host", *map(str, args)], check=False, capture_output=True,
                          text=True,
                          cwd=REPO, env=_env(), timeout=60)


@pytest.fixture(scope="module")
def day(tmp_path_factory) -> SettledDay:
    """Sales on three cards, a voided sale, a refund, then a balanced settlement."""
    base = tmp_path_factory.mktemp("recon-day")
    host = HostSim(base / "host", base / "host.log")
    data = base / "terminal"
    try:
        _ok(posterm_cmd("init", "--data", data, "--host", host.address, "--host-data",
                        host.data, "--supervisor-password", PW))
        set_config(data, "host", "response_timeout", 2)
        _ok(posterm(data, "signon"))
        s: dict[str, dict] = {}
        s["debit"] = _ok(posterm(data, "sale", "12.50", "--card", "unionpay-debit-chip",
                                 "--json"))
        s["visa"] = _ok(posterm(data, "sale", "88.00", "--card", "visa-chip", "--json"))
        s["voided"] = _ok(posterm(data, "sale", "20.00", "--card", "mc-tap", "--json"))
        _ok(posterm(data, "void", s["voided"]["stan"], "--supervisor-password", PW))
        s["swiped"] = _ok(posterm(data, "sale", "30.00", "--card", "unionpay-credit-swipe",
                                  "--pin", "123456", "--json"))
        txn = next(r for r in _ok(posterm(data, "txns", "--json"))["transactions"]
                   if r["stan"] == s["swiped"]["stan"])
        s["refund"] = _ok(posterm(data, "refund", "5.00", "--rrn", s["swiped"]["rrn"],
                                  "--date", txn["time_local"][5:7] + txn["time_local"][8:10],
                                  "--card", "unionpay-credit-swipe", "--pin", "123456",
                                  "--supervisor-password", PW, "--json"))
        s["removed"] = _ok(posterm(data, "sale", "55.55", "--card", "unionpay-debit-chip",
                                   "--json"))
        s["reversed"] = _ok(posterm(data, "sale", "7.77", "--card", "visa-chip", "--json"))
        settled = _ok(posterm(data, "settle", "--json"))
        assert settled["result"] == "balanced", settled
    finally:
        host.stop()
    conn = sqlite3.connect(f"file:{host.data / 'host.db'}?mode=ro", uri=True)
    try:
        (cleared,), = conn.execute("SELECT DISTINCT cleared_date FROM transactions"
                                   " WHERE cleared_date IS NOT NULL").fetchall()
    finally:
        conn.close()
    return SettledDay(data, host.data, cleared, s)


def _statement(day: SettledDay, path: Path, fmt: str) -> Path:
    out = _host("statement", "--data", day.host_data, "--date", day.cleared, "--format", fmt,
                "-o", path)
    assert out.returncode == 0, out.stderr
    return path


def _read_csv(path: Path) -> tuple[list[dict], list[str]]:
    text = path.read_bytes().decode("utf-8-sig")      # keep the CRLFs: a blank line ends the data
    body = text.split("\r\n\r\n")[0]
    rows = list(csv.DictReader(io.StringIO(body)))
    return rows, list(rows[0].keys())


def _write_csv(path: Path, header: list[str], rows: list[dict], *, summary: bool = True,
               stale_total: str | None = None) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, header, lineterminator="\r\n")
    w.writeheader()
    w.writerows(rows)
    if summary:
        fen = [sum(_fen(r[k]) for r in rows) for k in ("amount", "fee", "net")]
        total = stale_total or (f"total,{len(rows)}," + ",".join(map(format_yuan, fen)))
        buf.write("\r\nsummary,count,amount,fee,net\r\n" + total + "\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))
    return path


def _by_stan(rows: list[dict], stan: str) -> dict:
    return next(r for r in rows if r["stan"] == stan)


def _edited(day: SettledDay, tmp_path: Path, *, stale_summary: bool = False) -> Path:
    """The day's statement with one change of every kind the merchant must catch."""
    original = _statement(day, tmp_path / "original.csv", "csv")
    rows, header = _read_csv(original)
    s = day.sales
    assert len(rows) == 6                 # the voided sale is not on it; the refund is
    stale = original.read_text(encoding="utf-8-sig").strip().splitlines()[-1]
    # a line removed (漏单)
    rows.remove(_by_stan(rows, s["removed"]["stan"]))
    # an amount changed (错单)
    _by_stan(rows, s["debit"]["stan"])["amount"] = "12.60"
    # a fee changed
    visa = _by_stan(rows, s["visa"]["stan"])
    visa["fee"] = str(Decimal(visa["fee"]) + Decimal("0.01"))
    # a status changed: settled here, reversed there
    _by_stan(rows, s["reversed"]["stan"])["status"] = "reversed"
    # a line added that the terminal never did
    rows.append({**visa, "stan": "000900", "rrn": "999999999999", "amount": "9.99",
                 "fee": "0.06", "net": "9.93", "card": "411111******9999"})
    # the voided sale, settled by the bank all the same
    rows.append({**visa, "stan": s["voided"]["stan"], "rrn": s["voided"]["rrn"],
                 "amount": "20.00", "fee": "0.12", "net": "19.88"})
    # a line whose RRN and STAN the bank garbled: found by amount, card and time
    swiped = _by_stan(rows, s["swiped"]["stan"])
    swiped["rrn"], swiped["stan"] = "000000000000", "999999"
    return _write_csv(tmp_path / "edited.csv", header, rows,
                      stale_total=stale if stale_summary else None)


def test_the_days_own_statement_matches_every_line_in_every_format(day, tmp_path):
    for fmt in ("csv", "txt", "xlsx"):
        stmt = _statement(day, tmp_path / f"statement.{fmt}", fmt)
        out = _ok(posterm(day.data, "reconcile", stmt, "--json"))
        assert out["counts"] == {c: (6 if c == "matched" else 0) for c in COUNTED}, (fmt, out)
        assert out["summary_check"] == "ok", out
        assert out["items"] == [] and out["reused"] is False
        assert out["profile"] == f"posterm-host-{fmt}"


def test_every_change_to_the_statement_lands_in_its_class(day, tmp_path):
    s = day.sales
    run = posterm(day.data, "reconcile", _edited(day, tmp_path), "--json")
    assert run.returncode == 1, str(run)              # differences to handle
    out = run.json()
    assert out["counts"] == {"matched": 1, "probable": 1, "amount_mismatch": 1,
                             "journal_only": 1, "statement_only": 1, "status_mismatch": 2,
                             "fee_mismatch": 1, "unparseable": 0}, out
    assert out["summary_check"] == "ok"
    by_class: dict[str, list[dict]] = {}
    for item in out["items"]:
        by_class.setdefault(item["class"], []).append(item)
    stan = lambda name: int(s[name]["stan"])
    assert [i["stan"] for i in by_class["journal_only"]] == [stan("removed")]
    [wrong] = by_class["amount_mismatch"]
    assert (wrong["stan"], wrong["journal_amount"], wrong["statement_amount"]) == (
        stan("debit"), 1250, 1260)
    [fee] = by_class["fee_mismatch"]
    assert fee["stan"] == stan("visa") and fee["fee_statement"] == fee["fee_expected"] + 1
    assert sorted((i["stan"], i["journal_status"], i["statement_status"])
                  for i in by_class["status_mismatch"]) == sorted([
        (stan("voided"), "voided", "settled"), (stan("reversed"), "settled", "reversed")])
    [added] = by_class["statement_only"]
    assert (added["rrn"], added["statement_amount"], added["txn_id"]) == (
        "999999999999", 999, None)
    [probable] = by_class["probable"]
    assert probable["journal_amount"] == probable["statement_amount"] == 3000
    assert probable["txn_id"] is not None
    assert all(i["resolved"] is False for i in out["items"])
    # nothing card-sensitive in what a run shows: masked cards only
    assert all(i["card"] is None or "*" in i["card"] for i in out["items"])


def test_a_statement_whose_printed_totals_disagree_with_its_lines_is_reported(day, tmp_path):
    out = posterm(day.data, "reconcile", _edited(day, tmp_path, stale_summary=True), "--json")
    assert out.returncode == 1, str(out)
    assert out.json()["summary_check"] == "mismatch"
    text = posterm(day.data, "recon", "show")
    assert "summary check" in text.stdout or "合计核对" in text.stdout


def test_differences_are_resolved_by_a_supervisor_and_a_rerun_is_the_same_run(day, tmp_path):
    edited = _edited(day, tmp_path)
    first = posterm(day.data, "reconcile", edited, "--json", "--force").json()
    items = first["items"]
    wrong = posterm(day.data, "recon", "resolve", str(items[0]["id"]), "--note", "x",
                    "--supervisor-password", "not-it")
    assert_one_clean_error_line(wrong, 1)
    no_note = posterm(day.data, "recon", "resolve", str(items[0]["id"]), "--note", " ",
                      "--supervisor-password", PW)
    assert_one_clean_error_line(no_note, 2)
    for item in items:
        done = _ok(posterm(day.data, "recon", "resolve", str(item["id"]), "--note",
                           f"called the bank about line {item['line']}",
                           "--supervisor-password", PW, "--json"))
        assert done["item"]["resolved"] is True and done["item"]["resolved_by"] == "99"
    again = posterm(day.data, "recon", "resolve", str(items[0]["id"]), "--note", "twice",
                    "--supervisor-password", PW)
    assert_one_clean_error_line(again, 2)
    rerun = posterm(day.data, "reconcile", edited, "--json")
    assert rerun.returncode == 0, str(rerun)          # every difference handled
    out = rerun.json()
    assert out["run"] == first["run"] and out["reused"] is True
    assert all(i["resolved"] for i in out["items"]) and len(out["items"]) == len(items)
    forced = posterm(day.data, "reconcile", edited, "--json", "--force").json()
    assert forced["run"] != first["run"] and not any(i["resolved"] for i in forced["items"])
    audit = _ok(posterm(day.data, "audit", "verify", "--json"))
    assert audit["intact"] is True, audit


def test_the_report_is_written_as_xlsx_csv_and_txt(day, tmp_path):
    edited = _edited(day, tmp_path)
    for suffix in ("xlsx", "csv", "txt"):
        report = tmp_path / f"report.{suffix}"
        run = posterm(day.data, "reconcile", edited, "-o", report, "--json", "--force")
        assert run.returncode == 1, str(run)
        items = run.json()["items"]
        if suffix == "xlsx":
            sheet = openpyxl.load_workbook(report).active
            cells = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
            flat = [str(c) for row in cells for c in row if c is not None]
        else:
            flat = report.read_text(encoding="utf-8-sig").split()
        text = " ".join(flat)
        for item in items:
            assert item["detail"] in text or item["detail_zh"] in text, (suffix, item)
        assert "999999999999" in text
        assert "消费" in text and "已撤销" in text and "settled" not in text   # labels, not codes


def test_bad_statement_files_give_one_line_naming_the_line_and_column(day, tmp_path):
    original = _statement(day, tmp_path / "original.csv", "csv")
    rows, header = _read_csv(original)
    # a non-numeric amount and a duplicated row: per-line items, never skipped
    rows[1]["amount"] = "abc"
    rows.append(dict(rows[0]))
    run = posterm(day.data, "reconcile", _write_csv(tmp_path / "bad.csv", header, rows,
                                                    summary=False), "--json")
    assert run.returncode == 1, str(run)
    out = run.json()
    [bad] = [i for i in out["items"] if i["class"] == "unparseable"]
    assert bad["line"] == 3 and "amount" in bad["detail"] and "abc" in bad["detail"]
    [dup] = [i for i in out["items"] if i["class"] == "statement_only"]
    assert dup["line"] == 8 and "duplicate of line 2" in dup["detail"]
    assert out["summary_check"] == "absent"
    # wrong encoding: GBK bytes read as UTF-8
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(original.read_text(encoding="utf-8-sig").encode("gbk"))
    line = assert_one_clean_error_line(posterm(day.data, "reconcile", gbk), 2)
    assert "gbk.csv" in line and "line 2" in line
    # a missing column
    cut = tmp_path / "cut.csv"
    cut.write_text(original.read_text(encoding="utf-8-sig").replace("rrn,", "ref,", 1),
                   encoding="utf-8-sig")
    line = assert_one_clean_error_line(posterm(day.data, "reconcile", cut), 2)
    assert "line 1" in line and "rrn" in line
    # a truncated file: the last line cut in the middle, the summary gone
    whole = original.read_bytes()
    short = tmp_path / "short.csv"
    short.write_bytes(whole[: whole.index(b"\r\n\r\n") - 30])
    out = posterm(day.data, "reconcile", short, "--json").json()
    assert out["counts"]["unparseable"] == 1 and out["summary_check"] == "absent"
    # not a statement at all
    assert_one_clean_error_line(posterm(day.data, "reconcile", tmp_path / "nope.csv"), 2)
    assert_one_clean_error_line(posterm(day.data, "reconcile", original, "--profile",
                                        "no-such-bank"), 2)


def _documented(name: str) -> str:
    """The code block docs/reconcile.md marks as ``<!-- example: NAME -->``."""
    doc = (REPO / "docs" / "reconcile.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {re.escape(name)}[^>]*-->\n```[a-z]*\n(.*?)```", doc,
                      re.DOTALL)
    assert match, name
    return match.group(1)


def _fen(yuan: str) -> int:
    """Yuan with two decimals as printed on a statement, in fen (exact: no float)."""
    return int(Decimal(yuan) * 100)


def test_a_gbk_bank_csv_and_a_fixed_width_file_read_by_documented_profiles_match(day,
                                                                               tmp_path):
    """The day's statement laid out as the two documented bank files, read through the
    documented profiles (no code of ours knows these layouts): every line matched."""
    rows, _ = _read_csv(_statement(day, tmp_path / "host.csv", "csv"))
    kinds = {"sale": ("消费", "S"), "refund": ("退货", "R")}
    # The GBK bank CSV: a merchant block, full-width Chinese headings, text cells written
    # as ="…" and '…, positive refunds, label/value totals.
    head = _documented("bank-gbk.csv").splitlines()
    lines = head[:5]
    for r in rows:
        day_, time_ = r["txn_date"].replace("-", ""), r["txn_time"].replace(":", "")
        lines.append(f"{day_},{time_},{r['terminal_id']},'{r['stan']},{r['batch']},"
                     f"=\"{r['rrn']}\",{r['auth_code']},{r['card']},{kinds[r['type']][0]},"
                     f"{format_yuan(abs(_fen(r['amount'])))},{format_yuan(abs(_fen(r['fee'])))},"
                     f"{format_yuan(abs(_fen(r['net'])))},{r['payout_date'].replace('-', '')}")
    total = {k: sum(_fen(r[k]) for r in rows) for k in ("amount", "fee", "net")}
    lines += [f"合计笔数,{len(rows)}", f"合计金额,{format_yuan(total['amount'])}",
              f"手续费合计,{format_yuan(total['fee'])}", f"结算金额合计,{format_yuan(total['net'])}"]
    bank = tmp_path / "bank-20261122.csv"
    bank.write_bytes("\r\n".join(lines).encode("gbk") + b"\r\n")
    profile = tmp_path / "bank-gbk.toml"
    profile.write_text(_documented("bank-gbk.toml"), encoding="utf-8")
    out = _ok(posterm(day.data, "reconcile", bank, "--profile", profile, "--json"))
    assert out["counts"] == {c: (6 if c == "matched" else 0) for c in COUNTED}, out
    assert (out["summary_check"], out["profile"]) == ("ok", "bank-gbk")
    # The fixed-width file: positions, amounts in fen, type and response codes.
    fixed = _documented("acquirer-fixed.txt").splitlines()[:2]
    for r in rows:
        fixed.append(f"{r['terminal_id']:<8} {r['txn_date'].replace('-', '')} "
                     f"{r['txn_time'].replace(':', '')} {r['stan']} {r['rrn']} "
                     f"{r['card']:<19} {kinds[r['type']][1]:<2} 00 "
                     f"{abs(_fen(r['amount'])):>10} {abs(_fen(r['fee'])):>6}")
    fixed += [f"TOTAL    {len(rows)}", f"AMOUNT   {total['amount']}", "END OF REPORT"]
    txt = tmp_path / "acquirer-20261122.txt"
    txt.write_text("\n".join(fixed) + "\n", encoding="utf-8")
    profile = tmp_path / "acquirer-fixed.toml"
    profile.write_text(_documented("acquirer-fixed.toml"), encoding="utf-8")
    out = _ok(posterm(day.data, "reconcile", txt, "--profile", profile, "--json"))
    assert out["counts"] == {c: (6 if c == "matched" else 0) for c in COUNTED}, out
    assert (out["summary_check"], out["profile"]) == ("ok", "acquirer-fixed")
