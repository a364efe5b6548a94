"""The day's takings (``posterm report day``) through real ``posterm`` processes against a
real ``posterm-host``: a day of sales on mock devices (chip, tap, swipe, a decline, a void, a
refund, a pre-authorisation and its completion, an offline sale), then the report's JSON
equals what those commands said they took, by hour and by card organisation; the console
text, the printed paper, and the refusals in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import HostSim, Run, assert_one_clean_error_line, posterm, provision, set_config

from hal.document import text_width

PW = "sup3r-visor"


@dataclass
class TakingsDay:
    data: Path
    day: str                          # local YYYY-MM-DD of the day's rows
    counted: list[dict]               # what each command that took money said (its JSON)
    refunds: list[dict]
    voided: list[dict]
    times: dict[str, str]             # STAN -> time_local

    def run(self, *args: str | Path) -> Run:
        return posterm(self.data, *args)


def _ok(run: Run) -> dict:
    assert run.returncode == 0, str(run)
    return run.json()


@pytest.fixture(scope="module")
def takings(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("takings")
    sim = HostSim(base / "host", base / "host-stderr.log")
    data = base / "terminal"
    try:
        provision(data, sim.address, sim.data, "--supervisor-password", PW)
        _ok(posterm(data, "signon", "--json"))

        def sale(amount: str, card: str, *extra: str) -> dict:
            return _ok(posterm(data, "sale", amount, "--card", card, *extra, "--json"))

        voided = sale("12.50", "unionpay-debit-chip")
        visa = sale("88.00", "visa-chip")
        declined = posterm(data, "sale", "500.00", "--card", "decline-51", "--json")
        assert declined.returncode == 1, str(declined)
        tap = sale("23.40", "mc-tap")
        swipe = sale("199.99", "unionpay-credit-swipe", "--pin", "123456")
        _ok(posterm(data, "void", str(int(voided["stan"])), "--supervisor-password", PW,
                    "--json"))
        rows = _ok(posterm(data, "txns", "--json"))["transactions"]
        sold = next(r for r in rows if r["stan"] == visa["stan"])
        mmdd = sold["time_local"][5:7] + sold["time_local"][8:10]
        refund = _ok(posterm(data, "refund", "30.00", "--rrn", visa["rrn"], "--date", mmdd,
                             "--card", "visa-chip", "--supervisor-password", PW, "--json"))
        pre = _ok(posterm(data, "preauth", "300.00", "--card", "unionpay-debit-chip",
                          "--json"))
        completion = _ok(posterm(data, "complete", "320.00", "--preauth",
                                 str(int(pre["stan"])), "--card", "unionpay-debit-chip",
                                 "--json"))
        _ok(posterm(data, "preauth", "80.00", "--card", "unionpay-debit-chip", "--json"))
        # Below the floor limit the offline-capable card approves offline (TC).
        set_config(data, "emv", "floor_limit", 10_000)
        set_config(data, "emv", "tac_online", "0000000000")
        set_config(data, "emv", "tac_default", "0000000000")
        offline = sale("5.00", "over-floor-limit")
        assert offline["response_code"] == "Y1", offline
        rows = _ok(posterm(data, "txns", "--json"))["transactions"]
        days = {r["time_local"][:10] for r in rows}
        if len(days) != 1:
            pytest.skip(f"the day's commands ran across midnight: {sorted(days)}")
        yield TakingsDay(data, days.pop(), [visa, tap, swipe, completion, offline],
                         [refund], [voided], {r["stan"]: r["time_local"] for r in rows})
    finally:
        sim.stop()


def test_the_json_figures_are_the_sum_of_what_was_taken(takings):
    data = _ok(takings.run("report", "day", "--json"))
    assert data["date"] == takings.day
    sales = sum(s["amount"] for s in takings.counted)
    refunds = sum(r["amount"] for r in takings.refunds)
    assert sales == 8800 + 2340 + 19999 + 32000 + 500
    assert data["total"] == {
        "sales": {"count": len(takings.counted), "amount": sales},
        "refunds": {"count": len(takings.refunds), "amount": -refunds},
        "net": {"count": len(takings.counted) + len(takings.refunds),
                "amount": sales - refunds}}
    assert data["voided"] == {"count": 1, "amount": takings.voided[0]["amount"]}
    assert data["printed"] is False and data["print_error"] is None


def test_by_hour_and_by_card_organisation_add_up_to_the_commands(takings):
    data = _ok(takings.run("report", "day", "--date", takings.day, "--json"))
    hours: dict[int, int] = {}
    orgs: dict[str, int] = {}
    for signed, runs in ((1, takings.counted), (-1, takings.refunds)):
        for run in runs:
            hour = int(takings.times[run["stan"]][11:13])
            hours[hour] = hours.get(hour, 0) + signed * run["amount"]
            orgs[run["card_org"]] = orgs.get(run["card_org"], 0) + signed * run["amount"]
    assert {h["hour"]: h["net"]["amount"] for h in data["hours"] if h["net"]["count"]} == hours
    assert {o["org"]: o["net"]["amount"] for o in data["orgs"]} == orgs
    assert data["orgs"][0]["org"] == "CUP" and data["orgs"][0]["name"] == "银联 CUP"
    assert sum(h["net"]["amount"] for h in data["hours"]) == data["total"]["net"]["amount"]
    assert sum(o["net"]["amount"] for o in data["orgs"]) == data["total"]["net"]["amount"]
    assert sum(o["share_permille"] for o in data["orgs"]) in range(998, 1003)


def test_the_console_shows_the_charts_in_80_columns(takings):
    run = takings.run("report", "day")
    assert run.returncode == 0 and run.stderr == "", str(run)
    lines = run.stdout.splitlines()
    assert max(text_width(line) for line in lines) <= 80
    net = _ok(takings.run("report", "day", "--json"))["total"]["net"]["amount"]
    assert f"¥{net // 100:,}.{net % 100:02d}" in run.stdout
    assert "当日营业额" in run.stdout and "按卡组织 By card organisation" in run.stdout
    assert "█" in run.stdout


def test_print_puts_it_on_the_paper_with_ascii_bars(takings):
    before = set((takings.data / "receipts").glob("*day-*.txt"))
    data = _ok(takings.run("report", "day", "--print", "--json"))
    assert data["printed"] is True
    (paper,) = set((takings.data / "receipts").glob("*day-*.txt")) - before
    text = paper.read_text(encoding="utf-8")
    assert max(text_width(line) for line in text.splitlines()) <= 32
    assert "#" in text and "█" not in text
    net = data["total"]["net"]["amount"]
    assert f"¥{net // 100:,}.{net % 100:02d}" in text


def test_paper_out_is_one_warning_line_and_exit_3(takings, tmp_path):
    set_config(takings.data, "devices", "printer", "mock:?paper=out")
    try:
        run = takings.run("report", "day", "--print")
    finally:
        set_config(takings.data, "devices", "printer", "mock:")
    line = assert_one_clean_error_line(run, 3)
    assert line.startswith("posterm: warning: not printed:") and "paper" in line
    assert "当日营业额" in run.stdout


def test_another_day_is_empty_and_a_bad_date_is_one_line_exit_2(takings):
    empty = _ok(takings.run("report", "day", "--date", "2000-01-01", "--json"))
    assert empty["total"]["net"] == {"count": 0, "amount": 0} and empty["orgs"] == []
    assert empty["peak_hour"] is None
    for bad in ("2026-02-30", "yesterday", "2026/11/21"):
        line = assert_one_clean_error_line(takings.run("report", "day", "--date", bad), 2)
        assert "YYYY-MM-DD" in line
