"""The test-card catalogue: valid PANs, parsable track 2, the documented profiles."""

import re

import pytest

from hal.testcards import CATALOGUE, ISSUER_PIN, test_card


def luhn_valid(pan: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(pan)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def test_luhn_check_itself_knows_good_from_bad():
    assert luhn_valid("4761739001010010")
    assert not luhn_valid("4761739001010011")


@pytest.mark.parametrize("card", CATALOGUE.values(), ids=list(CATALOGUE))
def test_every_pan_is_16_digits_and_luhn_valid(card):
    assert len(card.pan) == 16 and card.pan.isdigit()
    assert luhn_valid(card.pan)


def test_pans_are_distinct():
    pans = [card.pan for card in CATALOGUE.values()]
    assert len(set(pans)) == len(pans)


def test_module_docstring_lists_every_pan():
    import hal.testcards

    for card in CATALOGUE.values():
        assert card.pan in hal.testcards.__doc__


@pytest.mark.parametrize("card", CATALOGUE.values(), ids=list(CATALOGUE))
def test_every_track2_parses_back_to_the_profile(card):
    match = re.fullmatch(r"(\d{12,19})=(\d{4})(\d{3})(\d*)", card.track2())
    assert match, card.track2()
    pan, expiry, service_code, _discretionary = match.groups()
    assert (pan, expiry, service_code) == (card.pan, card.expiry, card.service_code)
    assert len(card.track2()) <= 37


def test_the_documented_profiles_exist_with_their_attributes():
    assert set(CATALOGUE) == {
        "unionpay-debit-chip", "unionpay-credit-swipe", "visa-chip", "mc-tap",
        "decline-51", "wrong-pin", "expired", "host-silent",
    }
    cup = test_card("unionpay-debit-chip")
    assert (cup.org, cup.interface, cup.aid, cup.label) == ("CUP", "chip", "A000000333010101", "UnionPay Debit")
    assert test_card("unionpay-credit-swipe").service_code == "101"
    assert test_card("unionpay-credit-swipe").interface == "swipe"
    visa = test_card("visa-chip")
    assert (visa.pan, visa.aid, visa.label) == ("4761739001010010", "A0000000031010", "VISA CREDIT")
    mc = test_card("mc-tap")
    assert (mc.aid, mc.interface, mc.org) == ("A0000000041010", "tap", "MCC")
    assert test_card("expired").expiry == "2101"
    assert ISSUER_PIN == "123456"


def test_wrong_pin_profile_types_a_pin_the_issuer_does_not_expect():
    assert test_card("wrong-pin").pin == "654321"
    assert all(c.pin == "123456" for c in CATALOGUE.values() if c.name != "wrong-pin")


def test_unknown_name_raises_keyerror_listing_the_names():
    with pytest.raises(KeyError) as info:
        test_card("no-such-card")
    assert "no-such-card" in str(info.value)
    assert "visa-chip" in str(info.value)
