"""Swipes: Luhn, expiry and the chip check, and the fallback after a chip failure, on the
mock devices (a swipe is presented to the mock PIN pad as a customer would swipe)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from app.cardread import read_card
from app.emv.carddata import from_swipe, luhn_ok
from app.emv.errors import CardError
from hal.registry import DeviceContext, open_devices
from hal.testcards import test_card

TODAY = date(2026, 5, 4)


@pytest.fixture
def devices(tmp_path):
    devs = open_devices({r: "mock:" for r in ("card_reader", "contactless", "pinpad", "printer")},
                        DeviceContext(data_dir=tmp_path))
    yield devs
    devs.close()


def test_luhn():
    assert luhn_ok("6226090000000048") and not luhn_ok("6226090000000049")


@pytest.mark.parametrize("track2,message", [
    ("6226090000000049=30121010000000000", "check digit"),
    ("6250940000000019=21011010000000000", "card expired"),
    ("6226090000000048=30122010000000000", "has a chip: insert the card"),
    ("6226090000000048=30136010000000000", "expiry date"),
    ("62260900=3012", "bad swipe"),
])
def test_a_swipe_is_checked(track2, message):
    with pytest.raises(CardError, match=message):
        from_swipe(track2, None, today=TODAY)


def test_a_chip_card_swiped_after_its_chip_failed_is_a_fallback():
    card = from_swipe("6226090000000048=30122010000000000", None, fallback=True, today=TODAY)
    assert (card.fallback, card.interface, card.service_code) == (True, "swipe", "201")
    assert card.entry_mode(True) == "021"


def test_swiping_a_chip_card_on_the_pin_pad_is_told_to_insert(devices):
    devices.pinpad.present(replace(test_card("unionpay-debit-chip"), interface="swipe"))
    with pytest.raises(CardError, match="insert the card"):
        read_card(devices, interface=None, amount=1250, timeout=2)


def test_a_dead_chip_turns_to_the_swipe_as_a_fallback(devices):
    dead = test_card("chip-failure-fallback")
    devices.card_reader.present(dead)
    devices.pinpad.present(replace(dead, interface="swipe"))
    card = read_card(devices, interface=None, amount=1250, timeout=3)
    assert (card.interface, card.fallback, card.pan) == ("swipe", True, dead.pan)
    assert "SWIPE" in devices.pinpad.last_display
