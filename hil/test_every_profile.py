"""Every test-card profile through the real reader stacks — the chip ones in pcscd's virtual
reader, the tap ones through nfcpy's udp reader — with the PIN typed on the ABECS pad on a
pty: each sale, run by the posterm CLI against posterm-host, ends as the profile says."""

from __future__ import annotations

import json

import pytest

from app import config as config_mod
from hal.testcards import CATALOGUE
from hil.terminal_cli import posterm, terminal_on

#: How each profile's sale ends: (exit code, response code or None, journal state).
EXPECTED = {
    "unionpay-debit-chip": (0, "00", "approved"),
    "visa-chip": (0, "00", "approved"),
    "decline-51": (1, "51", "declined"),
    "wrong-pin": (1, "55", "declined"),
    "expired": (1, "54", "declined"),
    "host-silent": (3, None, "reversed"),
    "unionpay-dual-app": (0, "00", "approved"),
    "blocked-app": (0, "00", "approved"),
    "signature-cvm": (0, "00", "approved"),
    "over-floor-limit": (0, "00", "approved"),
    "declines-after-approval": (1, None, "reversed"),
    "chip-failure-fallback": (0, "00", "approved"),
    "mc-tap": (0, "00", "approved"),
    "qpboc-tap": (0, "00", "approved"),
}


def test_the_table_covers_every_card_read_by_a_reader():
    readable = {n for n, c in CATALOGUE.items() if c.interface in ("chip", "tap")}
    assert readable == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_profile_ends_as_it_says_through_the_reader_stacks(
        name, tmp_path, host, virtual_cards, virtual_nfc_card, virtual_pinpad,
        virtual_printer):
    card = CATALOGUE[name]
    pad = virtual_pinpad(pin=card.pin, master_keys={},
                         swipe=name if card.chip_fault else None)
    devices = {"pinpad": pad.url, "printer": virtual_printer.url}
    if card.interface == "tap":
        devices |= {"card_reader": "mock:", "contactless": virtual_nfc_card.start(name)}
    else:
        devices |= {"card_reader": virtual_cards.start(name).url, "contactless": "mock:"}
    data = terminal_on(tmp_path, host, devices)
    if name == "host-silent":                 # the timeout is the point: keep it short
        values = config_mod.load(data).values
        values["host"]["response_timeout"] = 1
        config_mod.write(data, values)
    sale = posterm(data, "sale", "12.34", "--timeout", "20", "--json")
    code, response, state = EXPECTED[name]
    assert sale.returncode == code, sale.stdout + sale.stderr
    if response is not None:
        assert json.loads(sale.stdout)["response_code"] == response
    rows = json.loads(posterm(data, "txns", "--json").stdout)["transactions"]
    assert rows and rows[0]["state"] == state, rows
    assert rows[0]["pan_masked"] == card.pan[:6] + "******" + card.pan[-4:]
