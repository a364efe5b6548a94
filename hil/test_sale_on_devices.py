"""A whole sale on the devices: the posterm CLI against the host simulator, with the chip
card in pcscd's reader (or a tap through nfcpy's udp reader), the PIN typed on the ABECS
pad on a pty, and the slip decoded by the TCP printer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from hal.testcards import test_card
from hil.terminal_cli import REPO, posterm, terminal_on


def test_a_chip_sale_through_pcscd_the_abecs_pad_and_the_tcp_printer(
        tmp_path, host, virtual_cards, virtual_pinpad, virtual_printer):
    card = test_card("unionpay-debit-chip")
    reader = virtual_cards.start(card.name)
    # No master key in the pad yet: the terminal injects its TMK, as at provisioning.
    pad = virtual_pinpad(pin="123456", master_keys={})
    data = terminal_on(tmp_path, host, {"card_reader": reader.url, "contactless": "mock:",
                                        "pinpad": pad.url, "printer": virtual_printer.url})
    sale = posterm(data, "sale", "12.50", "--timeout", "20", "--json")
    assert sale.returncode == 0, sale.stdout + sale.stderr
    result = json.loads(sale.stdout)
    assert result["result"] == "approved" and result["pin_entered"] is True
    assert result["entry_mode"] == "051" and result["pan_masked"] == "622609******0048"
    assert result["receipt_printed"] is True
    paper = "\n".join(virtual_printer.documents(at_least=2))
    assert "622609******0048" in paper and "12.50" in paper and result["rrn"] in paper
    assert card.pan not in paper


def test_a_tap_sale_through_nfcpys_udp_reader(
        tmp_path, host, virtual_nfc_card, virtual_pinpad, virtual_printer):
    card = test_card("mc-tap")
    url = virtual_nfc_card.start(card.name)
    pad = virtual_pinpad(pin="123456", master_keys={})
    data = terminal_on(tmp_path, host, {"card_reader": "mock:", "contactless": url,
                                        "pinpad": pad.url, "printer": virtual_printer.url})
    sale = posterm(data, "sale", "23.40", "--timeout", "20", "--json")
    assert sale.returncode == 0, sale.stdout + sale.stderr
    result = json.loads(sale.stdout)
    assert result["result"] == "approved" and result["entry_mode"].startswith("07")
    assert result["pan_masked"] == "541333******0434"
    paper = "\n".join(virtual_printer.documents(at_least=2))
    assert "541333******0434" in paper and "23.40" in paper


def test_a_pin_pad_pulled_during_the_sale_ends_it_cleanly(
        tmp_path, host, virtual_cards, virtual_pinpad, virtual_printer):
    reader = virtual_cards.start("unionpay-debit-chip")
    pad = virtual_pinpad(pin=None, master_keys={})
    data = terminal_on(tmp_path, host, {"card_reader": reader.url, "contactless": "mock:",
                                        "pinpad": pad.url, "printer": virtual_printer.url})
    pad.send("never")                                   # the customer never types
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    sale = subprocess.Popen([sys.executable, "-m", "app", "--data", str(data), "sale", "9.99",
                             "--timeout", "20", "--json"], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while "GPN: the customer does not type" not in pad.log_text():
        assert time.monotonic() < deadline and sale.poll() is None, pad.log_text()
        time.sleep(0.05)
    pad.stop()                                          # the USB cable is pulled
    out, err = sale.communicate(timeout=60)
    assert sale.returncode == 3, out + err
    assert len([line for line in err.splitlines() if line.strip()]) == 1
    assert "Traceback" not in err
    rows = json.loads(posterm(data, "txns", "--json").stdout)["transactions"]
    assert all(r["state"] != "pending" or r["reversal"] == "armed" for r in rows)
    assert not [r for r in rows if r["state"] == "approved"]
