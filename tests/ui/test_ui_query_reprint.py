"""The query (流水查询) and reprint (重打印) screens driven with the keyboard alone, against a
real posterm-host and a journal made by real ``posterm`` processes: what the screens list,
export and print is checked against ``posterm txns`` and ``posterm reprint`` (the same
functions), on the mock printer's paper (DATA/receipts) and in the files written."""

from __future__ import annotations

import csv
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest

from app.ui.app import PostermApp
from app.ui.mockpanel import toggle_paper
from app.ui.query import MAX_ROWS, PAGE

from .conftest import Till, integration
from .test_ui_snapshots import SIZE, fixed_text, steady
from .uipilot import idle, screen_name, sign_on, text_of, until


@dataclass
class Day:
    till: Till
    stans: dict[str, str]          # name -> STAN ("000003")


def cli(till: Till, *args: str | Path) -> integration.Run:
    run = integration.posterm(till.data, *args)
    return run


def make_day(till: Till) -> Day:
    """sale1 12.50 (chip, voided), sale2 88.00 (visa), declined 500.00, sale4 23.40 (tap),
    then the void of sale1 — by ``posterm`` processes, as a day at the till would leave."""
    assert cli(till, "signon").returncode == 0
    stans = {}
    for name, amount, card, code in (("sale1", "12.50", "unionpay-debit-chip", 0),
                                     ("sale2", "88.00", "visa-chip", 0),
                                     ("declined", "500.00", "decline-51", 1),
                                     ("sale4", "23.40", "mc-tap", 0)):
        run = cli(till, "sale", amount, "--card", card, "--json")
        assert run.returncode == code, str(run)
        stans[name] = run.json()["stan"]
    from .conftest import SUPERVISOR
    run = cli(till, "void", str(int(stans["sale1"])), "--supervisor-password", SUPERVISOR,
              "--json")
    assert run.returncode == 0, str(run)
    stans["void"] = run.json()["stan"]
    return Day(till, stans)


@pytest.fixture
def day(till: Till) -> Day:
    return make_day(till)


def txns_stans(till: Till, *args: str) -> list[str]:
    run = cli(till, "txns", "--json", *args)
    assert run.returncode == 0, str(run)
    return [r["stan"] for r in run.json()["transactions"]]


def table_stans(pilot) -> list[str]:
    table = pilot.app.screen.query_one("#txns")
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def open_query(pilot) -> None:
    await sign_on(pilot)
    await pilot.press("7")
    await until(pilot, lambda: screen_name(pilot) == "QueryScreen", "the query screen")
    await until(pilot, lambda: pilot.app.screen.flt is not None, "the first list")
    await idle(pilot)


async def go_to(pilot, field: str) -> None:
    """Tab (forward) until ``field`` has the focus."""
    for _ in range(12):
        focused = pilot.app.focused
        if focused is not None and focused.id == field:
            return
        await pilot.press("tab")
    raise AssertionError(f"no focus on #{field}: {pilot.app.focused}")


async def type_in(pilot, field: str, text: str) -> None:
    """Into the filter field ``field`` (replacing what it held), by the keyboard."""
    await go_to(pilot, field)
    await pilot.press("end", "ctrl+u", *text)


async def choose(pilot, field: str, value: str | None) -> None:
    """In the Select ``field``: open it, pick ``value`` (None: all) with the arrows."""
    from textual.widgets import Select
    select = pilot.app.screen.query_one(f"#{field}", Select)
    values = [None, *(v for _, v in select._options[1:])]
    await go_to(pilot, field)
    await pilot.press("enter", "home", *(["down"] * values.index(value)), "enter")
    await until(pilot, lambda: (select.value if isinstance(select.value, str) else None)
                == value, f"{value} chosen in #{field}")


async def search(pilot) -> None:
    """F5, then the list's end."""
    screen = pilot.app.screen
    generation = screen.generation
    await pilot.press("f5")
    await until(pilot, lambda: screen.generation > generation and not screen.loading,
                "the search")
    await idle(pilot)


def new_slips(till: Till, before: set[Path]) -> list[str]:
    return [p.read_text(encoding="utf-8")
            for p in sorted(set((till.data / "receipts").glob("*.txt")) - before)]


def slips_now(till: Till) -> set[Path]:
    return set((till.data / "receipts").glob("*.txt"))


async def test_query_lists_the_journal_newest_first_and_filters_as_txns_does(day: Day):
    till = day.till
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_query(pilot)
        assert table_stans(pilot) == txns_stans(till)
        assert table_stans(pilot)[0] == day.stans["void"] and len(table_stans(pilot)) == 5
        assert text_of(pilot, "#counts").startswith("符合条件 5 · 已列出 5")
        table = app.screen.query_one("#txns")
        row = [str(c) for c in table.get_row_at(3)]            # sale2, visa
        assert row[2:6] == ["消费", "¥88.00", "**0010", "成功"], row
        assert [str(c) for c in table.get_row_at(4)][5] == "已撤销"     # sale1, voided

        await type_in(pilot, "min", "20")
        await search(pilot)
        assert table_stans(pilot) == txns_stans(till, "--min", "20")
        await type_in(pilot, "max", "100")
        await search(pilot)
        assert table_stans(pilot) == txns_stans(till, "--min", "20", "--max", "100")
        assert len(table_stans(pilot)) == 2
        await type_in(pilot, "min", "")
        await type_in(pilot, "max", "")
        await type_in(pilot, "last4", "0048")
        await search(pilot)
        assert table_stans(pilot) == txns_stans(till, "--card-last4", "0048") \
            == [day.stans["void"], day.stans["sale1"]]
        await type_in(pilot, "last4", "")
        await choose(pilot, "q-status", "declined")
        await search(pilot)
        assert table_stans(pilot) == [day.stans["declined"]]
        await choose(pilot, "q-status", "voided")
        await choose(pilot, "q-type", "sale")
        await search(pilot)
        assert table_stans(pilot) == txns_stans(till, "--type", "sale", "--status", "voided") \
            == [day.stans["sale1"]]
        await choose(pilot, "q-status", None)
        await choose(pilot, "q-type", "void")
        await type_in(pilot, "batch", "1")
        await pilot.press("enter")                              # Enter in a field searches
        await until(pilot, lambda: table_stans(pilot) == [day.stans["void"]], "the void")
        await idle(pilot)
        await choose(pilot, "q-type", None)
        await type_in(pilot, "batch", "")
        today = txns_day(till)
        await type_in(pilot, "from", today)
        await type_in(pilot, "to", f"{today} 23:59")
        await search(pilot)
        assert len(table_stans(pilot)) == 5
        await type_in(pilot, "from", "2099-01-01")
        await type_in(pilot, "to", "")
        await search(pilot)
        assert table_stans(pilot) == []
        assert "没有符合条件的交易" in text_of(pilot, "#notice")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu")


def txns_day(till: Till) -> str:
    run = cli(till, "txns", "--json", "--limit", "1")
    return run.json()["transactions"][0]["time_local"][:10]


@pytest.mark.parametrize("field, text, words", [
    ("from", "2026-13-01", "起始时间 From: '2026-13-01' is not a real date"),
    ("to", "2026-11", "截止时间 To: '2026-11' is not a date"),
    ("min", "1.234", "最低金额 Min amount: amount '1.234' is not valid"),
    ("last4", "12", "卡号后4位 Card last 4: '12' is not four digits"),
    ("batch", "0", "批次 Batch: 0 is not a positive whole number"),
])
async def test_a_bad_filter_value_is_one_line_naming_its_field(till: Till, field: str,
                                                               text: str, words: str):
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_query(pilot)
        await type_in(pilot, field, text)
        await pilot.press("tab", "f5")
        line = text_of(pilot, "#notice")
        assert line.startswith(words) and "\n" not in line, line
        assert app.focused.id == field                    # back on the field to mend
        await pilot.press("f9")                           # no export of a bad filter either
        assert screen_name(pilot) == "QueryScreen"
        assert text_of(pilot, "#notice") == line


async def test_a_maximum_below_the_minimum_and_a_to_before_the_from(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_query(pilot)
        await type_in(pilot, "min", "50")
        await type_in(pilot, "max", "10")
        await pilot.press("enter")
        assert text_of(pilot, "#notice") == "最高金额 Max amount: 10 is below 50"
        assert app.focused.id == "max"
        await type_in(pilot, "max", "")
        await type_in(pilot, "from", "2026-11-22")
        await type_in(pilot, "to", "2026-11-21")
        await pilot.press("enter")
        assert text_of(pilot, "#notice").startswith("截止时间 To: 2026-11-21 is before")


def fill_journal(till: Till, n: int) -> None:
    """``n`` approved sales written straight into the till's journal (as bench/recon_data
    does for a big journal): STANs 1..n, one every 10 seconds from 2026-10-01 08:00."""
    from datetime import datetime, timedelta
    start = datetime(2026, 10, 1, 8, 0)
    conn = sqlite3.connect(till.data / "posterm.db")
    try:
        rows = []
        for i in range(1, n + 1):
            t = (start + timedelta(seconds=10 * i)).isoformat()
            rows.append(("sale", "APPROVED", 100 + i, "156", i, 1, "12345678",
                         "898110048990001", "01", f"622609******{i % 10000:04d}", "bench",
                         b"bench placeholder", "CUP", "051", None, 0, 0, "00",
                         f"{i:012d}", "123456", None, "{}", f"{t}Z", f"{t}+08:00", f"{t}Z",
                         f"{t}+08:00", "printed"))
        with conn:
            conn.executemany(
                "INSERT INTO transactions (txn_type, state, amount, currency, stan, batch,"
                " terminal_id, merchant_id, operator, pan_masked, pan_hash, card, card_org,"
                " entry_mode, card_seq, pin_entered, reversible, response_code, rrn, auth_code,"
                " settlement_date, extra, created_utc, created_local, updated_utc,"
                " updated_local, receipt_state) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?)", rows)
    finally:
        conn.close()


async def test_a_big_journal_is_read_a_page_at_a_time_and_the_list_is_capped(till: Till):
    n = 5000
    fill_journal(till, n)
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_query(pilot)
        table = app.screen.query_one("#txns")
        assert table.row_count == PAGE
        assert text_of(pilot, "#counts").startswith(f"符合条件 {n:,} · 已列出 {PAGE}")
        await go_to(pilot, "txns")
        await pilot.press("end")                                  # the end: the next page
        await until(pilot, lambda: table.row_count == 2 * PAGE, "the second page")
        await idle(pilot)
        expected = [f"{s:06d}" for s in range(n, n - 2 * PAGE, -1)]
        assert table_stans(pilot) == expected == txns_stans(till, "--limit", str(2 * PAGE))
        for _ in range(MAX_ROWS // PAGE + 3):                      # and on, up to the cap
            await pilot.press("end")
            await idle(pilot)
        assert table.row_count == MAX_ROWS
        assert "列表已满" in text_of(pilot, "#counts")
        await type_in(pilot, "min", "40")                         # a narrower filter
        await search(pilot)
        assert table.row_count == PAGE and table_stans(pilot)[0] == f"{n:06d}"
        assert text_of(pilot, "#counts").startswith(f"符合条件 {n - 3899:,}")


async def test_enter_on_a_row_shows_its_detail_and_f4_reprints_it_marked_duplicate(day: Day):
    till = day.till
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_query(pilot)
        await go_to(pilot, "txns")
        await pilot.press("down", "down", "down", "enter")       # sale2, 88.00 by visa
        await until(pilot, lambda: screen_name(pilot) == "DetailScreen", "the detail")
        detail = text_of(pilot, "#detail")
        assert f"凭证号: {day.stans['sale2']}" in detail and "金额: ¥88.00" in detail, detail
        assert "476173******0010  VISA" in detail and "状态: 成功" in detail
        assert "RMB ¥88.00" in text_of(pilot, "#detail-text")
        before = slips_now(till)
        await pilot.press("f4")
        await until(pilot, lambda: "已重打印" in text_of(pilot, "#detail-notice"), "printed")
        slips = new_slips(till, before)
        assert len(slips) == 2                          # merchant and cardholder copies
        assert all("重打印 DUPLICATE" in s and "88.00" in s and day.stans["sale2"] in s
                   for s in slips)

        assert toggle_paper(app.term)                    # the mock printer's paper runs out
        await pilot.press("f4")
        await until(pilot, lambda: "签购单未打印" in text_of(pilot, "#detail-notice"), "no paper")
        line = text_of(pilot, "#detail-notice")
        assert "F4" in line and "\n" not in line, line
        assert not toggle_paper(app.term)
        await pilot.press("f4")
        await until(pilot, lambda: "已重打印" in text_of(pilot, "#detail-notice"), "again")

        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "QueryScreen", "the list")
        await pilot.press("down", "enter")                        # sale1, voided
        await until(pilot, lambda: screen_name(pilot) == "DetailScreen", "the detail")
        assert f"已被撤销: {day.stans['void']}" in text_of(pilot, "#detail")
        await pilot.press("escape", "home", "enter")             # the void
        await until(pilot, lambda: screen_name(pilot) == "DetailScreen", "the detail")
        assert f"原交易: {day.stans['sale1']}" in text_of(pilot, "#detail")
        await pilot.press("escape", "down", "down", "enter")     # declined: no slip
        await until(pilot, lambda: screen_name(pilot) == "DetailScreen", "the detail")
        assert "状态: 拒绝" in text_of(pilot, "#detail") and "应答码: 51" in text_of(
            pilot, "#detail")
        before = slips_now(till)
        await pilot.press("f4")
        await idle(pilot)
        assert new_slips(till, before) == []
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "QueryScreen", "the list")


def read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def read_xlsx(path: Path) -> list[tuple]:
    return list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))


async def export(pilot, path: str) -> None:
    await pilot.press("f9")
    await until(pilot, lambda: screen_name(pilot) == "ExportPrompt", "the export prompt")
    await pilot.press(*path, "enter")
    await until(pilot, lambda: screen_name(pilot) == "QueryScreen", "back from the prompt")
    await idle(pilot)


async def test_f9_exports_the_filter_to_the_same_files_as_txns_o(day: Day, tmp_path: Path):
    till = day.till
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_query(pilot)
        await type_in(pilot, "min", "20")
        await export(pilot, str(tmp_path / "ui.csv"))
        assert text_of(pilot, "#notice") == f"已导出 Exported 3 → {tmp_path / 'ui.csv'}"
        await export(pilot, str(tmp_path / "ui.xlsx"))
        await type_in(pilot, "min", "")
        await export(pilot, "day.txt")                            # relative: DATA/exports
        assert text_of(pilot, "#notice").endswith(str(till.data / "exports" / "day.txt"))
        await export(pilot, "day.json")

        await export(pilot, "day.doc")
        assert "cannot tell the format from '.doc'" in text_of(pilot, "#notice")
        await export(pilot, str(tmp_path / "no" / "such" / "dir.csv"))
        assert text_of(pilot, "#notice").startswith(f"cannot write {tmp_path / 'no'}")
        await export(pilot, "day.txt/under-a-file.csv")          # exports/day.txt is a file
        assert text_of(pilot, "#notice").startswith(
            f"cannot write {till.data / 'exports' / 'day.txt' / 'under-a-file.csv'}")
        await pilot.press("f9")
        await until(pilot, lambda: screen_name(pilot) == "ExportPrompt", "the export prompt")
        await pilot.press("enter")
        assert text_of(pilot, "#export-notice") == "请输入文件名 Type a file name"
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "QueryScreen", "back")
        assert text_of(pilot, "#notice") == "已取消 Cancelled"

    for args in (("--min", "20", "-o", tmp_path / "cli.csv"),
                 ("--min", "20", "-o", tmp_path / "cli.xlsx"),
                 ("-o", tmp_path / "cli.txt"), ("-o", tmp_path / "cli.json")):
        assert cli(till, "txns", *args).returncode == 0
    assert read_csv(tmp_path / "ui.csv") == read_csv(tmp_path / "cli.csv")
    assert len(read_csv(tmp_path / "ui.csv")) == 1 + 3 + 4         # heading, rows, totals
    assert read_xlsx(tmp_path / "ui.xlsx") == read_xlsx(tmp_path / "cli.xlsx")
    exports = till.data / "exports"
    assert (exports / "day.txt").read_text("utf-8") == (tmp_path / "cli.txt").read_text("utf-8")
    assert (exports / "day.json").read_text("utf-8") == (tmp_path / "cli.json").read_text(
        "utf-8")
    assert not (exports / "day.doc").exists()


async def test_esc_while_an_export_runs_leaves_at_once_and_the_file_is_still_written(
        till: Till, tmp_path: Path):
    fill_journal(till, 20000)
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_query(pilot)
        await pilot.press("f9")
        await until(pilot, lambda: screen_name(pilot) == "ExportPrompt", "the export prompt")
        await pilot.press(*str(tmp_path / "big.xlsx"), "enter")
        await until(pilot, lambda: app.busy, "the export under way")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu")
        assert app.busy and not (tmp_path / "big.xlsx").exists()     # still writing
        await idle(pilot)
        await pilot.pause(0.3)
        assert screen_name(pilot) == "MenuScreen"
        assert not list(app._notifications)               # nothing said over the menu
    assert len(read_xlsx(tmp_path / "big.xlsx")) == 1 + 20000 + 4
    assert "internal error" not in (till.data / "posterm.log").read_text("utf-8")


async def test_in_english_the_query_speaks_english_first(till_factory):
    till = till_factory(language="en")
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_query(pilot)
        assert text_of(pilot, "#title") == "Query 交易查询"
        table = app.screen.query_one("#txns")
        assert [str(c.label) for c in table.columns.values()] == [
            "STAN", "Time", "Type", "Amount", "Card", "Status", "RRN"]
        assert text_of(pilot, "#counts").startswith("found 0 · listed 0")
        assert text_of(pilot, "#notice") == "No transaction matches 没有符合条件的交易"
        await type_in(pilot, "last4", "12")
        await pilot.press("enter")
        assert text_of(pilot, "#notice") == "Card last 4 卡号后4位: '12' is not four digits"


# -- reprint ------------------------------------------------------------------------------------

async def open_reprint(pilot) -> None:
    await sign_on(pilot)
    await pilot.press("8")
    await until(pilot, lambda: screen_name(pilot) == "ReprintScreen", "the reprint screen")
    await idle(pilot)


def listed(pilot) -> list[str]:
    options = pilot.app.screen.query_one("#recent")
    return [options.get_option_at_index(i).id for i in range(options.option_count)]


async def reprinted(pilot) -> None:
    await until(pilot, lambda: pilot.app.screen.state == "result", "the reprint")
    await idle(pilot)


async def test_reprint_last_with_f8_a_typed_stan_or_one_picked_marked_duplicate(day: Day):
    till = day.till
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_reprint(pilot)
        assert listed(pilot) == [str(int(day.stans[k])) for k in ("void", "sale4", "sale2",
                                                                  "sale1")]
        before = slips_now(till)
        await pilot.press("f8")                                   # the last one
        await reprinted(pilot)
        assert text_of(pilot, "#head") == f"重打印 DUPLICATE {day.stans['void']}"
        assert "已重打印 Reprinted" in text_of(pilot, "#notice")
        assert "重打印 DUPLICATE" in text_of(pilot, "#slip")
        slips = new_slips(till, before)
        assert len(slips) == 2 and all("重打印 DUPLICATE" in s and day.stans["void"] in s
                                       for s in slips)
        run = cli(till, "reprint", "last", "--json")             # the CLI's 'last' agrees
        assert run.json()["reprinted"][0]["stan"] == day.stans["void"]

        before = slips_now(till)
        await pilot.press(*str(int(day.stans["sale2"])), "enter")  # a STAN typed
        await reprinted(pilot)
        assert day.stans["sale2"] in text_of(pilot, "#head")
        assert "¥88.00" in text_of(pilot, "#details")
        slips = new_slips(till, before)
        assert len(slips) == 2 and all("88.00" in s and "重打印 DUPLICATE" in s for s in slips)

        before = slips_now(till)
        await pilot.press("tab", "down", "enter")                 # picked: sale4
        await reprinted(pilot)
        assert day.stans["sale4"] in text_of(pilot, "#head")
        assert all("23.40" in s for s in new_slips(till, before))
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "MenuScreen", "the menu")


async def test_reprint_refuses_a_declined_an_unknown_and_a_zero_stan_in_one_line(day: Day):
    till = day.till
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_reprint(pilot)
        before = slips_now(till)
        await pilot.press(*str(int(day.stans["declined"])), "enter")
        await reprinted(pilot)
        assert text_of(pilot, "#notice") == ("no approved transaction with STAN "
                                             f"{day.stans['declined']}")
        await pilot.press(*"999", "enter")
        await reprinted(pilot)
        assert text_of(pilot, "#notice") == "no approved transaction with STAN 000999"
        await pilot.press("0", "enter")
        assert text_of(pilot, "#notice") == "凭证号为 1 到 999999 A STAN is 1 to 999999"
        assert new_slips(till, before) == []


async def test_reprint_with_the_paper_out_says_so_and_f4_prints_once_paper_is_back(day: Day):
    till = day.till
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_reprint(pilot)
        await until(pilot, lambda: "打印机 正常" in text_of(pilot, "#mock-state"), "printer")
        await pilot.press("f6")                                   # the paper runs out
        before = slips_now(till)
        await pilot.press("f8")
        await reprinted(pilot)
        line = text_of(pilot, "#notice")
        assert line.startswith("签购单未打印 Receipt not printed: merchant copy not printed")
        assert line.endswith("装纸后按 F4 再打") and "\n" not in line, line
        assert new_slips(till, before) == []
        await pilot.press("f6", "f4")                             # paper back, again
        await until(pilot, lambda: "已重打印" in text_of(pilot, "#notice"), "printed")
        slips = new_slips(till, before)
        assert len(slips) == 2 and all(day.stans["void"] in s for s in slips)
        await pilot.press("f4")                                   # nothing left to retry
        await idle(pilot)
        assert len(new_slips(till, before)) == 2


async def test_reprint_on_an_empty_journal_has_nothing_to_print(till: Till):
    app = PostermApp(till.data)
    async with app.run_test(size=SIZE) as pilot:
        await open_reprint(pilot)
        assert listed(pilot) == [None]                            # "none"
        await pilot.press("enter")                                # blank: the last one
        await reprinted(pilot)
        assert text_of(pilot, "#notice") == "no approved transaction to reprint"


# -- snapshots ----------------------------------------------------------------------------------

FIXED_LIST_TIME = "01-02 10:30"


def test_query_screen_snapshot(snap_compare, day: Day):
    async def run_before(pilot) -> None:
        await open_query(pilot)
        table = pilot.app.screen.query_one("#txns")
        for key in list(table.rows):
            table.update_cell(key, "time", FIXED_LIST_TIME)
        await steady(pilot)

    assert snap_compare(PostermApp(day.till.data), terminal_size=SIZE, run_before=run_before)


def test_query_detail_snapshot(snap_compare, day: Day):
    async def run_before(pilot) -> None:
        import dataclasses

        from app.ui.query import DetailScreen
        await open_query(pilot)
        await go_to(pilot, "txns")
        await pilot.press("down", "down", "down", "enter")
        await until(pilot, lambda: screen_name(pilot) == "DetailScreen", "the detail")
        shown = pilot.app.screen
        view = shown.view
        auth = view.item["auth_code"]
        record = dataclasses.replace(view.record, auth_code="123456")
        item = {**view.item, "auth_code": "123456", "time_local": "2026-01-02T10:30:00+08:00"}
        fixed = dataclasses.replace(view, record=record, item=item,
                                    slip=fixed_text(view.slip or "", auth))
        pilot.app.pop_screen()
        pilot.app.push_screen(DetailScreen(shown.language, fixed))
        await until(pilot, lambda: screen_name(pilot) == "DetailScreen", "the fixed detail")
        await steady(pilot)

    assert snap_compare(PostermApp(day.till.data), terminal_size=SIZE, run_before=run_before)


def test_reprint_result_snapshot(snap_compare, day: Day):
    async def run_before(pilot) -> None:
        import re
        await open_reprint(pilot)
        await pilot.press("f8")
        await reprinted(pilot)
        screen = pilot.app.screen
        options = screen.query_one("#recent")
        items = [(int(o.id), re.sub(r" \d\d:\d\d ", " 10:30 ", str(o.prompt), count=1))
                 for o in (options.get_option_at_index(i) for i in range(options.option_count))]
        screen._listed(items)
        from textual.widgets import Static
        record_auth = cli(day.till, "txns", "--json", "--limit", "1").json()[
            "transactions"][0]["auth_code"]
        slip = screen.reprinted.slip
        screen.query_one("#slip", Static).update(fixed_text(slip, record_auth))
        await steady(pilot)

    assert snap_compare(PostermApp(day.till.data), terminal_size=SIZE, run_before=run_before)
