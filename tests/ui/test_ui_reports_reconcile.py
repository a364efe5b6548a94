"""The reports (报表) and reconcile (对账) screens driven with the keyboard against a real
posterm-host: a day of sales, a void and a balanced settlement made by real ``posterm``
processes, its statement exported by ``posterm-host statement`` (as
tests/integration/test_reconcile.py does) and edited the way a bank's file can differ.
What the screens show is checked against the same commands' ``--json``; each test works on
its own copy of the day's data directory.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from app.amount import format_yuan
from app.ui.app import PostermApp

from .conftest import SUPERVISOR, HostSim, Till, integration, make_till
from .test_ui_snapshots import steady
from .uipilot import app_of, idle, screen_name, sign_on, text_of, until

SIZE = (80, 24)


# -- the settled day, made once --------------------------------------------------------------

@dataclass
class SettledDay:
    till: Till                  # the template data directory (copied by each test)
    host: HostSim
    statement: Path             # the day's own statement, as posterm-host exports it
    edited: Path                # the same with a changed amount, a line removed, one added
    sales: dict[str, dict]


def _ok(run: integration.Run) -> dict:
    assert run.returncode == 0, str(run)
    return run.json() if run.stdout.lstrip().startswith("{") else {}


def _read_csv(path: Path) -> tuple[list[dict], list[str]]:
    text = path.read_bytes().decode("utf-8-sig")      # a blank line ends the data
    rows = list(csv.DictReader(io.StringIO(text.split("\r\n\r\n")[0])))
    return rows, list(rows[0].keys())


def _fen(yuan: str) -> int:
    return int(Decimal(yuan) * 100)


def _write_csv(path: Path, header: list[str], rows: list[dict]) -> Path:
    """A statement in posterm-host's CSV layout, its totals line counted from ``rows``."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, header, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    fen = [sum(_fen(r[k]) for r in rows) for k in ("amount", "fee", "net")]
    buf.write(f"\r\nsummary,count,amount,fee,net\r\ntotal,{len(rows)},"
              + ",".join(map(format_yuan, fen)) + "\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))
    return path


@pytest.fixture(scope="module")
def settled(tmp_path_factory) -> Iterator[SettledDay]:
    base = tmp_path_factory.mktemp("ui-reports-day")
    host = HostSim(base / "host", base / "host.log")
    try:
        till = make_till(base, host)
        data = till.data
        _ok(integration.posterm(data, "signon"))
        s = {"debit": _ok(integration.posterm(data, "sale", "12.50", "--card",
                                              "unionpay-debit-chip", "--json")),
             "visa": _ok(integration.posterm(data, "sale", "88.00", "--card", "visa-chip",
                                             "--json")),
             "voided": _ok(integration.posterm(data, "sale", "20.00", "--card", "mc-tap",
                                               "--json")),
             "removed": _ok(integration.posterm(data, "sale", "55.55", "--card",
                                                "unionpay-debit-chip", "--json"))}
        _ok(integration.posterm(data, "void", s["voided"]["stan"], "--supervisor-password",
                                SUPERVISOR))
        assert _ok(integration.posterm(data, "settle", "--json"))["result"] == "balanced"
        conn = sqlite3.connect(f"file:{host.data / 'host.db'}?mode=ro", uri=True)
        try:
            (cleared,), = conn.execute("SELECT DISTINCT cleared_date FROM transactions"
                                       " WHERE cleared_date IS NOT NULL").fetchall()
        finally:
            conn.close()
        statement = base / "statements" / "day.csv"
        statement.parent.mkdir()
        out = subprocess.run([integration.PY, "-m", "host", "statement", "--data",
                              str(host.data), "--date", cleared, "--format", "csv", "-o",
                              str(statement)], check=False, capture_output=True, text=True,
                             cwd=integration.REPO, env=integration._env(), timeout=60)
        assert out.returncode == 0, out.stderr
        rows, header = _read_csv(statement)
        assert len(rows) == 3                        # the voided sale is not on it
        by_stan = {r["stan"]: r for r in rows}
        rows.remove(by_stan[s["removed"]["stan"]])                 # 漏单
        by_stan[s["debit"]["stan"]]["amount"] = "12.60"            # 错单
        visa = by_stan[s["visa"]["stan"]]
        rows.append({**visa, "stan": "000900", "rrn": "999999999999", "amount": "9.99",
                     "fee": "0.06", "net": "9.93", "card": "411111******9999"})
        edited = _write_csv(statement.parent / "edited.csv", header, rows)
        yield SettledDay(till, host, statement, edited, s)
    finally:
        host.stop()


@pytest.fixture
def day_till(settled: SettledDay, tmp_path: Path) -> Till:
    """A copy of the settled day's terminal, on the same running host."""
    data = tmp_path / "till"
    shutil.copytree(settled.till.data, data)
    return Till(data, settled.host)


async def open_screen(pilot, key: str, name: str) -> None:
    await sign_on(pilot)
    await pilot.press(key)
    await until(pilot, lambda: screen_name(pilot) == name, name)
    await idle(pilot)


def notice(pilot) -> str:
    return text_of(pilot, "#notice")


# -- reports ----------------------------------------------------------------------------------

def charts_text(pilot) -> str:
    from app.ui.charts import HourChart, OrgChart
    return "\n".join(str(pilot.app.screen.query_one(c).render()) for c in (HourChart, OrgChart))


async def test_reports_show_the_days_takings_as_the_cli_and_move_between_days(
        day_till: Till):
    cli = _ok(integration.posterm(day_till.data, "report", "day", "--json"))
    app = PostermApp(day_till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "9", "ReportsScreen")
        screen = app.screen
        await until(pilot, lambda: screen.report is not None, "the day's report")
        shown = {k: v for k, v in screen.report.as_json().items() if k != "made_at"}
        assert shown == {k: v for k, v in cli.items()
                         if k not in ("made_at", "printed", "print_error")}
        today = screen.report.day
        assert today.isoformat() == cli["date"]
        assert screen.query_one("#date").value == today.isoformat()
        text = charts_text(pilot)
        # 12.50 + 88.00 + 55.55 in; the voided 20.00 beside, not in the net
        assert "¥156.05" in text and "已撤销 Voided" in text and "¥20.00" in text, text
        assert "银联 CUP" in text and "VISA" in text.upper(), text
        assert screen.report.total.net == 15605
        await pilot.press("f7")                               # the day before: nothing
        await idle(pilot)
        assert screen.report.day == today - timedelta(days=1)
        assert screen.query_one("#date").value == (today - timedelta(days=1)).isoformat()
        assert "无交易 No takings" in charts_text(pilot)
        await pilot.press("f8")
        await idle(pilot)
        assert screen.report.day == today and "¥156.05" in charts_text(pilot)
        # a date typed replaces the one shown; Enter
        field = screen.query_one("#date")
        await pilot.press(*"2026-02-30")
        assert field.value == "2026-02-30"
        await pilot.press("enter")                             # no such day
        await idle(pilot)
        assert "YYYY-MM-DD" in notice(pilot) and screen.report.day == today
        field.value = ""
        await pilot.press("enter")                             # empty
        assert "YYYY-MM-DD" in notice(pilot)
        await pilot.press(*today.isoformat(), "enter")
        await idle(pilot)
        assert screen.report.day == today and notice(pilot) == ""
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu")


def printed_texts(till: Till) -> list[str]:
    folder = till.data / "receipts"
    return [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))]


async def test_the_days_takings_are_printed_and_a_printer_out_of_paper_is_one_line(
        day_till: Till):
    from app.ui.mockpanel import toggle_paper
    before = len(printed_texts(day_till))
    app = PostermApp(day_till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "9", "ReportsScreen")
        await until(pilot, lambda: app.screen.report is not None, "the day's report")
        assert toggle_paper(app_of(pilot).term) is True        # the paper runs out
        await pilot.press("f9")
        await idle(pilot)
        line = notice(pilot)
        assert line.startswith("报表未打印") and "paper out" in line, line
        assert len(printed_texts(day_till)) == before
        assert toggle_paper(app_of(pilot).term) is False       # paper back
        await pilot.press("f9")
        await idle(pilot)
        assert notice(pilot) == "已打印 Printed"
    papers = printed_texts(day_till)
    assert len(papers) == before + 1
    assert "当日营业额" in papers[-1] and "156.05" in papers[-1] and "#" in papers[-1]


async def test_the_last_settlements_report_is_previewed_then_printed_as_a_duplicate(
        day_till: Till):
    cli = _ok(integration.posterm(day_till.data, "report", "last-settlement", "--no-print",
                                  "--json"))
    before = len(printed_texts(day_till))
    app = PostermApp(day_till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "9", "ReportsScreen")
        screen = app.screen
        await pilot.press("f6")
        await idle(pilot)
        assert screen.view_name == "settlement"
        assert screen.copy.batch == cli["batch"] and screen.copy.printed is False
        head = text_of(pilot, "#dup-head")
        assert f"批次 {cli['batch']:06d}: 平 BALANCED" in head, head
        slip = text_of(pilot, "#dup-slip")
        assert "结算" in slip and "156.05" in slip, slip
        assert "重打印 DUPLICATE" in str(screen.query_one("#dup-preview").border_title)
        assert len(printed_texts(day_till)) == before            # previewed, not printed
        await pilot.press("f9")
        await idle(pilot)
        assert notice(pilot) == "已打印 Printed (重打印)" and screen.copy.printed
        await pilot.press("escape")                             # back to the day
        assert screen.view_name == "day"
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu")
    papers = printed_texts(day_till)
    assert len(papers) == before + 1 and "重打印 DUPLICATE" in papers[-1]


async def test_no_settlement_yet_is_one_line_and_an_empty_day_says_so(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "9", "ReportsScreen")
        screen = app.screen
        await until(pilot, lambda: screen.report is not None, "the day's report")
        assert "无交易 No takings" in charts_text(pilot)
        await pilot.press("f6")
        await idle(pilot)
        assert screen.view_name == "day"
        assert notice(pilot) == "no settlement yet: nothing to reprint"


def fixed_day_report(app: PostermApp):
    """The journal's rows of today, put at fixed hours of a fixed day (the clock decides
    both), counted by the same build_day_report the screen's day_report uses."""
    from app.dayreport import build_day_report
    term = app.term
    assert term is not None
    rows = term.journal.transactions(limit=100)
    fixed = [dataclasses.replace(r, created_local=f"2026-01-02T{9 + i:02d}:15:00+08:00")
             for i, r in enumerate(sorted(rows, key=lambda r: r.id))]
    return build_day_report(fixed, date(2026, 1, 2), merchant=term.merchant,
                            made_at=datetime(2026, 1, 2, 20, 0).astimezone())


def test_reports_screen_snapshot(snap_compare, day_till: Till):
    async def run_before(pilot) -> None:
        await open_screen(pilot, "9", "ReportsScreen")
        await until(pilot, lambda: pilot.app.screen.report is not None, "the report")
        pilot.app.screen.show_report(fixed_day_report(app_of(pilot)))
        await steady(pilot)

    assert snap_compare(PostermApp(day_till.data), terminal_size=SIZE, run_before=run_before)


# -- reconcile --------------------------------------------------------------------------------

async def type_into(pilot, selector: str, text: str) -> None:
    field = pilot.app.screen.query_one(selector)
    field.value = ""
    field.focus()
    await pilot.pause()
    await pilot.press(*text)


def recon_json(till: Till, *args: str) -> dict:
    run = integration.posterm(till.data, "recon", *args, "--json")
    assert run.returncode in (0, 1), str(run)
    return run.json()


async def reconcile_file(pilot, path: Path | str, *, profile: str = "", date_from: str = "",
                         date_to: str = "") -> None:
    """Type the form's fields and Enter in the statement field; waits for the flow."""
    for selector, text in (("#profile", profile), ("#from", date_from), ("#to", date_to)):
        pilot.app.screen.query_one(selector).value = text
    await type_into(pilot, "#statement", str(path))
    await pilot.press("enter")
    await idle(pilot)


def counts_shown(pilot) -> str:
    return text_of(pilot, "#counts")


async def test_the_days_own_statement_matches_every_line(settled: SettledDay,
                                                         day_till: Till):
    app = PostermApp(day_till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "0", "ReconcileScreen")
        screen = app.screen
        assert "posterm-host-csv" in text_of(pilot, "#start")    # the bundled profiles
        await type_into(pilot, "#statement", str(settled.statement))
        await type_into(pilot, "#profile", "posterm-host-c")
        await pilot.press("right")                              # the suggestion taken
        assert screen.query_one("#profile").value == "posterm-host-csv"
        today = date.today().isoformat()
        await type_into(pilot, "#from", today)
        await pilot.press("enter")                              # Enter in any field runs
        await idle(pilot)
        assert screen.view is not None and screen.view_name == "result"
        counts = counts_shown(pilot)
        assert "相符" in counts and "      3" in counts, counts
        assert text_of(pilot, "#check") == "合计核对: 对账单合计与明细相符"
        assert notice(pilot) == "全部相符 Every line matched"
        assert screen.query_one("#items").row_count == 0
    out = recon_json(day_till, "show")
    assert out["counts"]["matched"] == 3 and out["profile"] == "posterm-host-csv"
    assert out["period"] == [today, today]                     # --from alone: that day


async def test_a_profile_given_as_a_toml_file(settled: SettledDay, day_till: Till):
    from app.recon import profile
    toml = Path(profile.__file__).parent / "profiles" / "posterm-host-csv.toml"
    app = PostermApp(day_till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "0", "ReconcileScreen")
        await reconcile_file(pilot, settled.edited, profile=str(toml))
        assert app.screen.view.run.profile == "posterm-host-csv"
        assert app.screen.query_one("#items").row_count == 3


async def test_differences_are_listed_shown_and_resolved_behind_the_supervisor(
        settled: SettledDay, day_till: Till):
    s = settled.sales
    app = PostermApp(day_till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "0", "ReconcileScreen")
        screen = app.screen
        await reconcile_file(pilot, settled.edited)
        run = recon_json(day_till, "show")
        assert {c: n for c, n in run["counts"].items() if n} == {
            "matched": 1, "amount_mismatch": 1, "journal_only": 1, "statement_only": 1}
        head = text_of(pilot, "#run-head")
        assert head.startswith(f"第{run['run']}次 edited.csv (posterm-host-csv)"), head
        counts = counts_shown(pilot)
        for label in ("错单(金额不符)", "漏单(本机有,对账单无)", "对账单有,本机无"):
            assert label in counts, counts
        table = screen.query_one("#items")
        assert table.row_count == 3 and app.focused is table
        shown = [[str(cell) for cell in table.get_row_at(i)] for i in range(3)]
        assert [r[0] for r in shown] == [str(i["id"]) for i in run["items"]]
        amount = next(r for r in shown if r[1] == "金额不符")
        assert amount[3] == s["debit"]["stan"] and amount[4:] == ["12.50", "12.60", "未处理"]
        assert notice(pilot).startswith("未处理差错 3/3")
        # Enter on the amount mismatch: the difference whole
        row = shown.index(amount)
        await pilot.press("home", *(["down"] * row), "enter")
        await until(pilot, lambda: screen_name(pilot) == "DifferenceScreen", "the difference")
        item_text = text_of(pilot, "#item")
        assert "错单(金额不符)" in item_text, item_text
        assert re.search(r"金额 Amount +12\.50 +12\.60\n", item_text), item_text
        assert "622609******0048" in item_text and "6226090000000048" not in item_text
        await pilot.press("enter")                              # no note: refused here
        assert "写明如何处理" in text_of(pilot, "#item-notice")
        await pilot.press(*"bank keyed 12.60", "enter")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press(*"not-the-password", "enter")
        await idle(pilot)
        assert screen_name(pilot) == "DifferenceScreen"
        refused = text_of(pilot, "#item-notice")
        assert "密码" in refused or "password" in refused, refused
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press("escape")                             # the supervisor says no
        assert text_of(pilot, "#item-notice") == "已取消 Cancelled"
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press(*SUPERVISOR, "enter")
        await until(pilot, lambda: screen_name(pilot) == "ReconcileScreen", "back to the run")
        await idle(pilot)
        assert notice(pilot) == "差错已处理 Difference resolved"
        assert str(table.get_row_at(row)[6]) == "已处理" and table.cursor_row == row
        # Enter on it again: resolved, with who and the note; no note field
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "DifferenceScreen", "the difference")
        assert "已处理 resolved (99" in text_of(pilot, "#item") and not app.screen.query("#note")
        await pilot.press("escape")
        # F5: the runs, as 'recon list'; Enter shows one
        await pilot.press("f5")
        await idle(pilot)
        runs = screen.query_one("#runs")
        assert screen.view_name == "runs" and runs.row_count == 1
        listed_row = [str(cell) for cell in runs.get_row_at(0)]
        assert listed_row[0] == str(run["run"]) and listed_row[4] == "2", listed_row
        await pilot.press("enter")
        await idle(pilot)
        assert screen.view_name == "result" and screen.view.run.id == run["run"]
        # the same file again: the stored run; F4 reconciles it again as a new one
        await reconcile_file(pilot, settled.edited)
        assert screen.view.reused and "F4" in text_of(pilot, "#run-head")
        await pilot.press("f4")
        await idle(pilot)
        assert not screen.view.reused and screen.view.run.id != run["run"]
        assert all(not i.resolved for i in screen.view.items)
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu")
    listed = recon_json(day_till, "list")["runs"]
    assert [r["unresolved"] for r in listed] == [3, 2]
    first = recon_json(day_till, "show", str(run["run"]))
    [done] = [i for i in first["items"] if i["resolved"]]
    assert (done["class"], done["note"], done["resolved_by"]) == (
        "amount_mismatch", "bank keyed 12.60", "99")
    audit = _ok(integration.posterm(day_till.data, "audit", "verify", "--json"))
    assert audit["intact"] is True


async def open_first_difference(pilot, statement: Path) -> None:
    await open_screen(pilot, "0", "ReconcileScreen")
    await reconcile_file(pilot, statement)
    await pilot.press("home", "enter")
    await until(pilot, lambda: screen_name(pilot) == "DifferenceScreen", "the difference")


async def supervisor_says(pilot, password: str) -> str:
    """Enter in the note field, the password in the prompt; the line the box shows after."""
    await pilot.press("enter")
    await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
    await pilot.press(*password, "enter")
    await idle(pilot)
    return text_of(pilot, "#item-notice") if screen_name(pilot) == "DifferenceScreen" else ""


async def test_a_locked_supervisor_is_refused_and_the_difference_stays_open(
        settled: SettledDay, day_till: Till):
    integration.set_config(day_till.data, "operators", "max_failures", 2)
    app = PostermApp(day_till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_first_difference(pilot, settled.edited)
        await pilot.press(*"checked with the bank")
        first = await supervisor_says(pilot, "wrong-1")
        assert first.startswith("主管密码错误，还可尝试 1 次"), first
        second = await supervisor_says(pilot, "wrong-2")
        assert second.startswith("主管密码错误，") and "已锁定" in second, second
        third = await supervisor_says(pilot, SUPERVISOR)           # right, but locked
        assert "已锁定" in third and screen_name(pilot) == "DifferenceScreen", third
        await pilot.press("escape")
        assert str(app.screen.query_one("#items").get_row_at(0)[6]) == "未处理"
    assert not any(i["resolved"] for i in recon_json(day_till, "show")["items"])


async def test_a_supervisor_password_to_change_first_is_changed_in_the_prompt(
        settled: SettledDay, day_till: Till):
    from app.terminal import Terminal
    with Terminal(day_till.data) as term:                # as a reset leaves it: change first
        term.journal.set_operator("99", role="supervisor", name="Supervisor 主管",
                                  password=SUPERVISOR, must_change=True)
    new = "sup-13579"
    app = PostermApp(day_till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_first_difference(pilot, settled.edited)
        await pilot.press(*"phoned the bank")
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        await pilot.press(*SUPERVISOR, "enter")
        await idle(pilot)
        # refused as 'change it first': the prompt again, asking for the new one twice
        await until(pilot, lambda: screen_name(pilot) == "SupervisorPrompt", "the prompt")
        assert "修改" in text_of(pilot, "#prompt-notice"), text_of(pilot, "#prompt-notice")
        await pilot.press(*SUPERVISOR, "enter", *new, "enter", *new, "enter")
        await until(pilot, lambda: screen_name(pilot) == "ReconcileScreen", "back to the run")
        await idle(pilot)
        assert notice(pilot) == "差错已处理 Difference resolved"
    [done] = [i for i in recon_json(day_till, "show")["items"] if i["resolved"]]
    assert done["note"] == "phoned the bank" and done["resolved_by"] == "99"
    other = next(i for i in recon_json(day_till, "show")["items"] if not i["resolved"])
    ok = integration.posterm(day_till.data, "recon", "resolve", str(other["id"]), "--note",
                             "same", "--supervisor-password", new)
    assert ok.returncode == 0, str(ok)                  # the new password is the one now


async def test_bad_files_and_fields_are_one_line_naming_the_line_and_column(
        settled: SettledDay, day_till: Till, tmp_path: Path):
    original = settled.statement.read_text(encoding="utf-8-sig")
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(original.encode("gbk"))
    cut = tmp_path / "cut.csv"
    cut.write_text(original.replace("rrn,", "ref,", 1), encoding="utf-8-sig")
    rows, header = _read_csv(settled.statement)   # the day and 40,000 other terminals' lines
    others = [{**rows[0], "terminal_id": f"{70000000 + n}"} for n in range(40_000)]
    big = _write_csv(tmp_path / "big.csv", header, rows + others)
    app = PostermApp(day_till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "0", "ReconcileScreen")
        screen = app.screen
        cases = [
            ({"path": ""}, ["statement file's path"]),
            ({"path": tmp_path / "nope.csv"}, ["nope.csv", "no such statement file"]),
            ({"path": gbk}, ["gbk.csv", "line 2"]),
            ({"path": cut}, ["line 1", "rrn"]),
            ({"path": settled.statement, "profile": "no-such-bank"}, ["no-such-bank"]),
            ({"path": settled.statement, "date_from": "2026-13-01"}, ["--from", "2026-13-01"]),
            ({"path": settled.statement, "date_from": "2026-02-02",
              "date_to": "2026-02-01"}, ["after"]),
        ]
        for fields, words in cases:
            await reconcile_file(pilot, fields.pop("path"), **fields)
            line = notice(pilot)
            assert "\n" not in line and "Traceback" not in line, line
            for word in words:
                assert word in line, (fields, line)
            assert screen.view is None and screen_name(pilot) == "ReconcileScreen"
        await pilot.press("f5")                                  # no runs yet
        await idle(pilot)
        assert notice(pilot) == "尚未对过账 No reconciliation runs yet"
        await pilot.press("escape")
        # Esc while the statement is being read (Enter and Esc as one step: a Pilot press
        # waits for the flow): back to the menu at once, the run ends and is stored unseen
        for selector in ("#profile", "#from", "#to"):
            screen.query_one(selector).value = ""
        screen.query_one("#statement").value = str(big)
        screen.run_form(force=False)
        assert app.busy                                   # the statement being read
        screen.action_back()
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu")
        await idle(pilot)
        assert screen_name(pilot) == "MenuScreen"
    log = day_till.data / "posterm.log"
    assert "internal error" not in (log.read_text(encoding="utf-8") if log.exists() else "")
    stored = recon_json(day_till, "show")
    assert stored["file"] == "big.csv" and stored["other_terminal_lines"] == 40_000
    assert stored["counts"]["matched"] == 3


def test_reconcile_screen_snapshot(snap_compare, settled: SettledDay, day_till: Till):
    async def run_before(pilot) -> None:
        await open_screen(pilot, "0", "ReconcileScreen")
        await reconcile_file(pilot, settled.edited)
        pilot.app.screen.query_one("#statement").value = "statements/edited.csv"
        await steady(pilot)

    assert snap_compare(PostermApp(day_till.data), terminal_size=SIZE, run_before=run_before)


def test_difference_detail_snapshot(snap_compare, settled: SettledDay, day_till: Till):
    async def run_before(pilot) -> None:
        from app.ui.reconcile import DifferenceScreen
        await open_screen(pilot, "0", "ReconcileScreen")
        await reconcile_file(pilot, settled.edited)
        screen = pilot.app.screen
        screen.query_one("#statement").value = "statements/edited.csv"
        item = next(i for i in screen.view.items if i.cls == "amount_mismatch")
        # the day and time the clock decided, fixed for the picture
        await pilot.app.push_screen(DifferenceScreen(
            dataclasses.replace(item, txn_date="2026-01-02", txn_time="10:30:00"), "zh"))
        await steady(pilot)

    assert snap_compare(PostermApp(day_till.data), terminal_size=SIZE, run_before=run_before)


def test_last_settlement_preview_snapshot(snap_compare, day_till: Till):
    async def run_before(pilot) -> None:
        from .test_ui_snapshots import fixed_text
        await open_screen(pilot, "9", "ReportsScreen")
        await until(pilot, lambda: pilot.app.screen.report is not None, "the report")
        await pilot.press("f6")
        await idle(pilot)
        screen = pilot.app.screen
        screen.show_settlement(dataclasses.replace(screen.copy,
                                                   text=fixed_text(screen.copy.text)))
        screen.query_one("#date").value = "2026-01-02"
        await steady(pilot)

    assert snap_compare(PostermApp(day_till.data), terminal_size=SIZE, run_before=run_before)


async def test_in_english_the_labels_come_english_first(till_factory):
    till = till_factory(language="en")
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "9", "ReportsScreen")
        await until(pilot, lambda: app.screen.report is not None, "the day's report")
        assert text_of(pilot, "#title") == "Reports 报表 · Day's takings 当日营业额"
        assert "No takings 无交易" in charts_text(pilot)
        assert text_of(pilot, "#date-keys") == "F7 day before  F8 day after  Enter"
        await pilot.press("escape", "0")
        await until(pilot, lambda: screen_name(pilot) == "ReconcileScreen", "reconcile")
        assert text_of(pilot, "#start").startswith("Type the statement file's path, Enter")
        await pilot.press("f5")
        await idle(pilot)
        assert notice(pilot) == "No reconciliation runs yet 尚未对过账"


async def test_a_statement_whose_totals_disagree_with_its_lines_is_marked(
        settled: SettledDay, day_till: Till, tmp_path: Path):
    text = settled.statement.read_bytes().decode("utf-8-sig")
    stale = tmp_path / "stale.csv"
    head, _, _ = text.rpartition("total,")
    stale.write_bytes(b"\xef\xbb\xbf" + (head + "total,4,999.99,0.00,999.99\r\n").encode())
    app = PostermApp(day_till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "0", "ReconcileScreen")
        await reconcile_file(pilot, stale)
        check = text_of(pilot, "#check")
        assert check.startswith("合计核对: 对账单合计与明细不符"), check
        assert app.screen.query_one("#check").has_class("mismatch")
    assert recon_json(day_till, "show")["summary_check"] == "mismatch"
