"""A slip the printer could not print is kept: the sale stands, the slip prints later."""

from __future__ import annotations

from conftest import set_config


def test_paper_out_keeps_the_sale_and_the_slip_prints_once_paper_is_back(terminal):
    set_config(terminal.data, "devices", "printer", "mock:?paper=out")
    sale = terminal.run("sale", "12.50", "--card", "unionpay-debit-chip", "--json")
    assert sale.returncode == 0, str(sale)
    out = sale.json()
    assert out["result"] == "approved" and out["receipt_printed"] is False
    assert "paper out" in out["receipt_errors"][0]
    assert "reprint --pending" in sale.stderr
    row = terminal.run("txns", "--json").json()["transactions"][0]
    assert (row["state"], row["receipt"]) == ("approved", "unprinted")
    assert not list((terminal.data / "receipts").glob("*.txt"))

    still_out = terminal.run("reprint", "--pending", "--json")
    assert still_out.returncode == 3 and still_out.json()["reprinted"][0]["printed"] is False

    set_config(terminal.data, "devices", "printer", "mock:")
    done = terminal.run("reprint", "--pending", "--json")
    assert done.returncode == 0, str(done)
    assert done.json()["reprinted"] == [{"stan": out["stan"], "printed": True,
                                         "duplicate": False, "errors": []}]
    slips = sorted((terminal.data / "receipts").glob("*.txt"))
    assert len(slips) == 2
    assert all("DUPLICATE" not in s.read_text(encoding="utf-8") for s in slips)
    assert terminal.run("txns", "--json").json()["transactions"][0]["receipt"] == "printed"
    assert terminal.run("reprint", "--pending", "--json").json()["reprinted"] == []


def test_a_reprint_on_request_is_marked_duplicate(terminal):
    sale = terminal.run("sale", "8.00", "--card", "visa-chip", "--json")
    assert sale.returncode == 0, str(sale)
    again = terminal.run("reprint", "--stan", str(int(sale.json()["stan"])))
    assert again.returncode == 0, str(again)
    slips = sorted((terminal.data / "receipts").glob("*.txt"))
    assert len(slips) == 4
    assert sum("DUPLICATE" in s.read_text(encoding="utf-8") for s in slips) == 2
    missing = terminal.run("reprint", "--stan", "999")
    assert missing.returncode == 1 and "999" in missing.stderr
