"""The day's takings charts (app/ui/charts.py) in a small app at 80x24 with fixed figures:
an SVG snapshot of how they look, and Pilot checks that the numbers beside the bars are the
report's, in both languages, that a new report redraws them, and that both charts fit in the
rows the reports screen leaves them."""

from __future__ import annotations

import itertools
from datetime import date, datetime

from textual.app import App, ComposeResult
from textual.widgets import Footer, Static

from app.dayreport import DayReport, build_day_report
from app.receipt import MerchantInfo
from app.ui.charts import DayCharts, HourChart, OrgChart, column_cell, column_height
from storage.journal import TransactionRecord

MERCHANT = MerchantInfo("测试商户 Test shop", "898110048990001", "12345678")
DAY = date(2026, 11, 21)
_ids = itertools.count(1)


def record(txn_type: str, amount: int, clock: str, org: str = "CUP", *,
           voided: bool = False) -> TransactionRecord:
    return TransactionRecord(
        id=next(_ids), txn_type=txn_type, state="APPROVED", amount=amount, currency="156",
        stan=1, batch=1, terminal_id="12345678", merchant_id="898110048990001", operator="01",
        pan_masked="622609******0048", pan_hash="h", card_org=org, entry_mode="051",
        card_seq=None, pin_entered=True, response_code="00", rrn=None, auth_code=None,
        settlement_date=None, created_utc="", created_local=f"2026-11-21T{clock}:00+08:00",
        updated_utc="", updated_local="", reversal_state=None, reversal_reason=None,
        receipt_state=None, original_id=None, voided_by=7 if voided else None,
        advice_state=None, extra={})


def fixed_report(*rows: TransactionRecord) -> DayReport:
    rows = rows or (
        record("sale", 1250, "09:05"), record("sale", 8800, "09:40", "VIS"),
        record("sale", 2340, "11:10", "MCC"), record("sale", 19999, "11:30"),
        record("refund", 3000, "14:00", "VIS"), record("sale", 5000, "12:00", voided=True),
        record("completion", 45000, "16:20", "JCB"), record("offline_sale", 500, "17:59", "AMX"),
        record("sale", 12800, "19:45"))
    return build_day_report(rows, DAY, merchant=MERCHANT,
                            made_at=datetime(2026, 11, 21, 20, 0).astimezone())


class ChartsApp(App):
    """What the reports screen will hold: a status line, a title, the charts, the keys."""

    def __init__(self, report: DayReport, language: str = "zh") -> None:
        super().__init__()
        self.report = report
        self.language = language

    def compose(self) -> ComposeResult:
        yield Static("01 · 批次 000001 · 主机联机", id="status")
        yield Static("报表 Reports · 当日营业额 Day's takings", id="title")
        yield DayCharts(self.report, language=self.language, id="charts")
        yield Footer()


def shown(app: App) -> str:
    return "\n".join(str(app.query_one(chart).render()) for chart in (HourChart, OrgChart))


def test_charts_look_as_in_the_snapshot(snap_compare):
    assert snap_compare(ChartsApp(fixed_report()), terminal_size=(80, 24))


async def test_the_numbers_beside_the_bars_are_the_reports():
    app = ChartsApp(fixed_report())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = shown(app)
        # The day: 1250 + 8800 + 2340 + 19999 + 45000 + 500 + 12800 in, 3000 out.
        for figure in ("净额 Net", "¥876.89", "-¥30.00", "¥906.89", "已撤销 Voided",
                       "1 ¥50.00", "16:00-17:00", "¥450.00"):
            assert figure in text, figure
        org_lines = str(app.query_one(OrgChart).render()).splitlines()
        jcb = next(line for line in org_lines if line.startswith("JCB"))
        assert jcb.split()[-3:] == ["1", "¥450.00", "51.3%"]
        cup = next(line for line in org_lines if line.startswith("银联 CUP"))
        assert cup.split()[-3:] == ["3", "¥340.49", "38.8%"]
        total = org_lines[-1]
        assert total.startswith("合计 Total") and total.split()[-3:] == ["8", "¥876.89",
                                                                       "100.0%"]
        assert max(line.count("█") for line in org_lines) == jcb.count("█")
        hour_lines = str(app.query_one(HourChart).render()).splitlines()
        assert "09" in hour_lines[-1] and "19" in hour_lines[-1]
        # 14:00 only refunded: its column is shaded, in the same place as the label "14".
        x = hour_lines[-1].index("14")
        assert hour_lines[-2][x] == "░" and "░" not in hour_lines[-2][:x]


async def test_both_charts_fit_between_the_title_and_the_keys_at_80x24():
    app = ChartsApp(fixed_report())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        hours, orgs = app.query_one(HourChart).region, app.query_one(OrgChart).region
        footer = app.query_one(Footer).region
        assert hours.y == 2 and orgs.bottom <= footer.y
        assert hours.height + orgs.height <= 18
        assert max(len(line) for line in shown(app).splitlines()) <= 80


async def test_english_labels_come_first_in_english():
    app = ChartsApp(fixed_report(), language="en")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = shown(app)
        assert "By hour 按小时" in text and "Net 净额" in text and "Total 合计" in text
        assert "¥876.89" in text


async def test_a_new_report_redraws_both_charts_and_an_empty_day_says_so():
    app = ChartsApp(fixed_report())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.query_one(DayCharts).report = fixed_report(record("sale", 4321, "10:00", "VIS"))
        await pilot.pause()
        text = shown(app)
        assert "¥43.21" in text and "¥876.89" not in text and "100.0%" in text
        app.query_one(DayCharts).report = fixed_report(record("sale", 1, "10:00", voided=True))
        await pilot.pause()
        assert shown(app).count("无交易 No takings") == 2


def test_columns_fill_in_eighths_from_the_bottom():
    assert column_height(100, 100) == 48 and column_height(0, 100) == 0
    assert column_height(1, 10**9) == 1                   # a sliver, never nothing
    tall = [column_cell(48, row) for row in range(6)]
    assert tall == ["█"] * 6
    assert [column_cell(12, row) for row in range(6)] == [" ", " ", " ", " ", "▄", "█"]
