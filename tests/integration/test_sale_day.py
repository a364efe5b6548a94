"""A day at the till over real TCP: sign-on, approved and declined sales, the host that never
answers, and what the terminal journal, the host ledger, the receipts and the disk hold after.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import DAY_SALES, HOST_SILENT_TIMEOUT, Day

APPROVED_CARDS = [c for c, _, _, code, _ in DAY_SALES if code == 0]
DECLINED_CARDS = [c for c, _, _, code, _ in DAY_SALES if code == 1]
ANSWERED_CARDS = APPROVED_CARDS + DECLINED_CARDS
EXPECTED = {card: (amount, code, f39) for card, amount, _, code, f39 in DAY_SALES}


def _fen(amount: str) -> int:
    yuan, _, cents = amount.partition(".")
    return int(yuan) * 100 + int(cents.ljust(2, "0"))


def _journal_row(day: Day, stan: str) -> dict:
    rows = [r for r in day.journal if r["stan"] == stan]
    assert len(rows) == 1, f"journal rows with STAN {stan}: {rows}"
    return rows[0]


def _host_sales(day: Day, stan: str, batch: str) -> list[dict]:
    return [r for r in day.host_rows
            if r["mti"] == "0200" and r["stan"] == int(stan) and r["batch"] == int(batch)]


def test_sign_on_succeeds_with_json_reply_and_a_batch(day: Day):
    assert day.signon.returncode == 0, str(day.signon)
    reply = day.signon.json()
    assert reply["result"] == "ok"
    assert reply["response_code"] == "00"
    assert re.fullmatch(r"\d{6}", reply["batch"]), reply
    assert int(reply["batch"]) >= 1


@pytest.mark.parametrize("card", ANSWERED_CARDS)
def test_sale_exit_code_and_response_code_match_the_card(day: Day, card: str):
    run = day.sales[card]
    _, code, f39 = EXPECTED[card]
    assert run.returncode == code, str(run)
    assert "Traceback" not in run.stdout + run.stderr
    out = run.json()
    assert out["response_code"] == f39
    assert out["result"] == ("approved" if code == 0 else "declined")


@pytest.mark.parametrize("card", ANSWERED_CARDS)
def test_sale_json_carries_the_contract_fields(day: Day, card: str, catalogue: dict):
    out = day.sales[card].json()
    amount, _, _ = EXPECTED[card]
    pan = catalogue[card]["pan"]
    assert out["amount"] == _fen(amount)
    assert type(out["amount"]) is int
    assert re.fullmatch(r"\d{6}", out["stan"]), out
    assert out["batch"] == day.signon.json()["batch"]
    assert out["pan_masked"] == pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
    assert re.fullmatch(r"\d{12}", out["rrn"] or ""), out
    if out["result"] == "approved":
        assert re.fullmatch(r"[0-9A-Za-z]{6}", out["auth_code"] or ""), out
    else:
        assert not out["auth_code"], out


def test_each_sale_got_its_own_stan_and_rrn(day: Day):
    outs = [day.sales[c].json() for c in ANSWERED_CARDS]
    assert len({o["stan"] for o in outs}) == len(outs)
    assert len({o["rrn"] for o in outs}) == len(outs)


@pytest.mark.parametrize("card", ANSWERED_CARDS)
def test_terminal_journal_and_host_ledger_agree_on_each_sale(day: Day, card: str):
    out = day.sales[card].json()
    row = _journal_row(day, out["stan"])
    assert row["state"] == out["result"]
    assert (row["amount"], row["rrn"], row["auth_code"], row["response_code"], row["batch"]) \
        == (out["amount"], out["rrn"], out["auth_code"], out["response_code"], out["batch"])

    hosts = _host_sales(day, out["stan"], out["batch"])
    assert len(hosts) == 1, f"host ledger rows for STAN {out['stan']}: {hosts}"
    host = hosts[0]
    assert host["amount"] == row["amount"]
    assert host["rrn"] == row["rrn"]
    assert (host["auth_code"] or None) == (row["auth_code"] or None)
    assert host["response_code"] == row["response_code"]
    assert host["state"] == out["result"]
    assert host["pan_masked"] == out["pan_masked"]


def test_journal_holds_exactly_the_days_sales_and_nothing_pending(day: Day):
    stans = {day.sales[c].json()["stan"] for c in ANSWERED_CARDS}
    sales = [r for r in day.journal if r["type"] == "sale"]
    assert len(sales) == len(DAY_SALES)
    assert stans <= {r["stan"] for r in sales}
    assert not [r for r in day.journal if r["state"] == "pending"]
    assert not [r for r in day.journal if r["reversal"] == "armed"]


# -- 5. the host that never answers --------------------------------------------------------------

def _silent_row(day: Day, catalogue: dict) -> dict:
    pan = catalogue["host-silent"]["pan"]
    masked = pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
    rows = [r for r in day.journal if r["pan_masked"] == masked]
    assert len(rows) == 1, rows
    return rows[0]


def test_host_silent_sale_exits_3_with_one_line_naming_the_reversal(day: Day):
    run = day.sales["host-silent"]
    assert run.returncode == 3, str(run)
    assert "Traceback" not in run.stdout + run.stderr
    assert len(run.stderr.splitlines()) == 1, str(run)
    assert "revers" in run.stderr.lower()
    assert f"{HOST_SILENT_TIMEOUT} s" in run.stderr
    out = run.json()
    assert out["result"] == "error" and out["exit_code"] == 3


def test_host_silent_sale_ends_reversed_in_the_journal(day: Day, catalogue: dict):
    row = _silent_row(day, catalogue)
    assert row["state"] == "reversed", row
    assert row["reversal"] == "done", row
    assert row["amount"] == _fen(EXPECTED["host-silent"][0])


def test_host_silent_reversal_was_sent_right_after_the_timeout(day: Day, catalogue: dict):
    row = _silent_row(day, catalogue)
    stan = int(row["stan"])
    from sync import codec
    order = [(f.direction, codec.decode(f.iso)) for f in day.frames]
    i_req = next(i for i, (d, m) in enumerate(order)
                 if d == "request" and m["t"] == "0200" and int(m["11"]) == stan)
    # No reply to the sale, and the very next request is its reversal (0400, same STAN, 98).
    nxt = order[i_req + 1]
    assert nxt[0] == "request", order[i_req + 1:]
    assert nxt[1]["t"] == "0400" and int(nxt[1]["11"]) == stan
    assert nxt[1]["39"] == "98"
    assert nxt[1]["4"] == f"{row['amount']:012d}"
    reply = order[i_req + 2]
    assert reply[0] == "reply" and reply[1]["t"] == "0410" and reply[1]["39"] == "00"


def test_host_ledger_has_no_approved_row_for_the_silent_sale(day: Day, catalogue: dict):
    row = _silent_row(day, catalogue)
    hosts = _host_sales(day, row["stan"], row["batch"])
    assert hosts, "the host never recorded the silent sale (the test saw no request reach it)"
    assert all(h["state"] != "approved" for h in hosts), hosts
    assert all(h["amount"] == row["amount"] for h in hosts)
    assert [h["reversal_reason"] for h in hosts] == ["98"]


# -- 6. receipts --------------------------------------------------------------------------------

@pytest.mark.parametrize("copy", ["merchant", "cardholder"])
def test_approved_sale_leaves_a_receipt_preview_per_copy(day: Day, copy: str):
    out = day.sales["unionpay-debit-chip"].json()
    assert out["result"] == "approved"
    previews = [p for p in (day.data / "receipts").glob("*.txt")
                if copy in p.name and out["rrn"] in p.read_text(encoding="utf-8")]
    assert len(previews) == 1, sorted(p.name for p in (day.data / "receipts").glob("*"))
    text = previews[0].read_text(encoding="utf-8")
    for shown in (out["pan_masked"], "12.50", out["stan"], out["rrn"], out["auth_code"]):
        assert shown in text, f"{shown!r} not on the {copy} copy:\n{text}"


def test_declined_sales_print_no_receipt(day: Day):
    texts = [p.read_text(encoding="utf-8") for p in (day.data / "receipts").glob("*.txt")]
    assert texts
    for card in DECLINED_CARDS:
        stan = day.sales[card].json()["stan"]
        rrn = day.sales[card].json()["rrn"]
        assert not [t for t in texts if rrn in t], f"a receipt for declined {card} (STAN {stan})"


# -- 2. no clear PAN at rest --------------------------------------------------------------------

def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _needles(pan: str) -> dict[str, bytes]:
    return {"ascii": pan.encode(), "bcd": bytes.fromhex(pan),
            "ascii-hex": pan.encode().hex().encode(),
            "ascii-hex-upper": pan.encode().hex().upper().encode()}


def test_terminal_data_dir_holds_the_expected_files(day: Day):
    names = {p.relative_to(day.data).as_posix() for p in _files(day.data)}
    assert {"posterm.db", "posterm.log", "posterm.toml"} <= names, names
    assert any(n.startswith("receipts/") and n.endswith(".txt") for n in names), names
    assert (day.data / "posterm.log").stat().st_size > 0


def test_no_full_pan_anywhere_in_the_terminal_data_dir(day: Day, catalogue: dict):
    found = []
    for path in _files(day.data):
        blob = path.read_bytes()
        for card in catalogue.values():
            for form, needle in _needles(card["pan"]).items():
                if needle in blob:
                    found.append(f"{path.relative_to(day.data)}: {card['name']} PAN as {form}")
    assert not found, "\n".join(found)


def test_no_full_pan_anywhere_in_the_host_data_dir_or_its_log(day: Day, catalogue: dict):
    files = _files(day.host_data) + [day.host_log]
    assert any(p.name == "host.db" for p in files)
    found = []
    for path in files:
        blob = path.read_bytes()
        for card in catalogue.values():
            for form, needle in _needles(card["pan"]).items():
                if needle in blob:
                    found.append(f"{path}: {card['name']} PAN as {form}")
    assert not found, "\n".join(found)


def test_pan_scan_would_see_a_pan_on_the_wire(day: Day, catalogue: dict):
    """The scan's needles are right: the same PAN forms do occur in the captured requests."""
    pan = catalogue["unionpay-debit-chip"]["pan"]
    wire = b"".join(f.raw for f in day.frames if f.direction == "request")
    assert _needles(pan)["bcd"] in wire
