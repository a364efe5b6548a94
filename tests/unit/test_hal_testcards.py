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
        "unionpay-dual-app", "blocked-app", "signature-cvm", "over-floor-limit",
        "declines-after-approval", "chip-failure-fallback", "qpboc-tap",
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


def test_the_original_profiles_keep_their_pans() -> None:
    original = {
        "unionpay-debit-chip": "6226090000000048", "unionpay-credit-swipe": "6250940000000019",
        "visa-chip": "4761739001010010", "mc-tap": "5413330089010434",
        "decline-51": "6226090000000113", "wrong-pin": "6226090000000121",
        "expired": "6226090000000139", "host-silent": "6226090000000147",
    }
    assert {name: CATALOGUE[name].pan for name in original} == original


@pytest.mark.parametrize("card", CATALOGUE.values(), ids=list(CATALOGUE))
def test_every_profile_says_what_the_host_and_the_card_do(card) -> None:
    assert card.host_behaviour and card.description
    assert card.card_decision in ("online", "decline", "decline-after-approval")
    assert len(bytes.fromhex(card.imk_ac)) == 16
    for code in (card.iac_default, card.iac_denial, card.iac_online):
        assert len(bytes.fromhex(code)) == 5


@pytest.mark.parametrize("card", CATALOGUE.values(), ids=list(CATALOGUE))
def test_the_sale_application_is_one_of_the_chips_usable_applications(card) -> None:
    usable = [app for app in card.apps() if not app.blocked]
    assert (card.aid, card.label, card.seq) == (usable[0].aid, usable[0].label, usable[0].seq)


def test_the_branch_profiles_have_what_their_branch_needs() -> None:
    dual = test_card("unionpay-dual-app").apps()
    assert [(a.aid, a.priority, a.seq) for a in dual] == [
        ("A000000333010101", 1, "01"), ("A000000333010102", 2, "02")]
    assert [a.blocked for a in test_card("blocked-app").apps()] == [True, False]
    assert test_card("signature-cvm").cvm_list[16:18] == "1E"   # the first CV rule: signature
    assert test_card("over-floor-limit").iac_online == "0000008000"
    assert test_card("declines-after-approval").card_decision == "decline-after-approval"
    fallback = test_card("chip-failure-fallback")
    assert fallback.chip_fault and fallback.interface == "chip"
    assert fallback.track2().split("=")[1][4] == "2"             # service code 2xx: has a chip
    tap = test_card("qpboc-tap")
    assert (tap.interface, tap.quick_path, tap.org) == ("tap", True, "CUP")


def test_docs_cards_lists_every_profile_and_pan() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "cards.md").read_text()
    for card in CATALOGUE.values():
        assert card.name in text and card.pan in text
