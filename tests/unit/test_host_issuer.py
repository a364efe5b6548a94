"""Issuer decisions keyed by PAN, with the PIN checked from the PIN block."""

from __future__ import annotations

from datetime import date

import pytest

from host import issuer
from host.issuer import Card, decide
from sync import crypto

PIK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
TODAY = date(2026, 11, 22)


def block(pin: str, pan: str) -> bytes:
    pin_field = bytes.fromhex(("0" + f"{len(pin):X}" + pin).ljust(16, "F"))
    pan_field = bytes.fromhex("0000" + pan[:-1][-12:])
    return crypto.encrypt(PIK, bytes(a ^ b for a, b in zip(pin_field, pan_field)))


def test_the_catalogue_matches_hal_testcards() -> None:
    testcards = pytest.importorskip("hal.testcards")
    behaviours = {"decline-51": issuer.Behaviour.INSUFFICIENT_FUNDS,
                  "expired": issuer.Behaviour.EXPIRED, "host-silent": issuer.Behaviour.SILENT}
    expected = {card.pan: behaviours.get(name, issuer.Behaviour.APPROVE)
                for name, card in testcards.CATALOGUE.items()}
    assert issuer.CARDS == expected
    assert testcards.ISSUER_PIN == issuer.ISSUER_PIN


def decide_for(pan: str, amount: int = 100, expiry: str = "3012",
               pin: str | None = "123456") -> issuer.Decision:
    return decide(Card(pan, expiry), amount, pin_block=block(pin, pan) if pin else None,
                  pik=PIK, today=TODAY)


def test_approved_with_a_six_digit_auth_code() -> None:
    decision = decide_for("6226090000000048")
    assert decision.approved and not decision.silent
    assert decision.auth_code is not None and len(decision.auth_code) == 6
    assert decision.auth_code.isdigit()


@pytest.mark.parametrize("pan, amount, expiry, pin, code", [
    ("6226090000000113", 100, "3012", "123456", "51"),
    ("6226090000000139", 100, "3012", "123456", "54"),     # the expired card, whatever F14 says
    ("6226090000000048", 100, "2610", "123456", "54"),     # before this month
    ("6226090000000121", 100, "3012", "654321", "55"),
    ("6226090000000048", 100, "3012", "1234", "55"),
    ("6226090000000040", 100, "3012", "123456", "14"),
    ("6226090000000048", 0, "3012", "123456", "13"),
    ("6226090000000048", 100_000_001, "3012", "123456", "61"),
])
def test_declines(pan: str, amount: int, expiry: str, pin: str, code: str) -> None:
    decision = decide_for(pan, amount, expiry, pin)
    assert decision.response_code == code and decision.auth_code is None


def test_this_month_is_not_expired_and_the_limit_itself_is_allowed() -> None:
    assert decide_for("6226090000000048", expiry="2611").approved
    assert decide_for("6226090000000048", amount=100_000_000).approved


def test_host_silent_never_answers() -> None:
    assert decide_for("6226090000000147").silent


def test_a_pin_block_under_another_key_is_a_wrong_pin() -> None:
    pan = "6226090000000048"
    decision = decide(Card(pan, "3012"), 100, pin_block=block("123456", pan),
                      pik=bytes(16), today=TODAY)
    assert decision.response_code == "55"


def test_no_pin_block_is_not_pin_checked() -> None:
    assert decide_for("6226090000000048", pin=None).approved


def test_card_from_track_2_or_f2() -> None:
    assert issuer.card_from_fields({"35": "6250940000000019=30121010000000000"}) == \
        Card("6250940000000019", "3012")
    assert issuer.card_from_fields({"2": "6226090000000048", "14": "3012"}) == \
        Card("6226090000000048", "3012")
    assert issuer.card_from_fields({"4": "000000000100"}) is None
