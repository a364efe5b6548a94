"""The test-card catalogue: public test data that mock and virtual devices present.

Every profile is a 16-digit, Luhn-valid test PAN; the host simulator keys its behaviour
on the PAN, and the issuer's PIN for every card is 123456.

=====================  ================  =========  ======  ====================================
name                   PAN               expiry     via     host
=====================  ================  =========  ======  ====================================
unionpay-debit-chip    6226090000000048  3012       chip    approves (00)
unionpay-credit-swipe  6250940000000019  3012       swipe   approves (00)
visa-chip              4761739001010010  3012       chip    approves (00)
mc-tap                 5413330089010434  3012       tap     approves (00)
decline-51             6226090000000113  3012       chip    declines 51 (insufficient funds)
wrong-pin              6226090000000121  3012       chip    declines 55 (customer types 654321)
expired                6226090000000139  2101       chip    declines 54 (expired card)
host-silent            6226090000000147  3012       chip    never answers (reversal path)
=====================  ================  =========  ======  ====================================
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOGUE", "ISSUER_PIN", "TestCard", "test_card"]

#: The PIN every issuer (the host simulator) expects for every test card.
ISSUER_PIN = "123456"

# Discretionary data after the service code on track 2 (PVKI, PVV, CVV positions): all
# zeros, so nothing here looks like real card verification data.
_DISCRETIONARY = "0000000000"


@dataclass(frozen=True)
class TestCard:
    """One test-card profile: what the card holds and how the host treats it."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    pan: str
    expiry: str  # YYMM
    service_code: str  # '201' chip-capable, '101' magstripe only
    org: str  # 'CUP' | 'VIS' | 'MCC'
    interface: str  # 'chip' | 'tap' | 'swipe'
    aid: str  # hex
    label: str
    pin: str = ISSUER_PIN  # what the customer types by default
    seq: str = "01"  # PAN sequence number
    cardholder: str = "TEST/CARD"
    host_behaviour: str = "approves (00) with PIN 123456"
    description: str = ""

    def track2(self) -> str:
        """Track 2 as a swipe reads it: ``PAN=YYMM`` + service code + discretionary digits."""
        return f"{self.pan}={self.expiry}{self.service_code}{_DISCRETIONARY}"


_CUP_AID = "A000000333010101"
_CUP_LABEL = "UnionPay Debit"


def _cup_chip(name: str, pan: str, *, host: str, description: str, **extra: str) -> TestCard:
    return TestCard(
        name=name, pan=pan, expiry=extra.pop("expiry", "3012"), service_code="201", org="CUP",
        interface="chip", aid=_CUP_AID, label=_CUP_LABEL, host_behaviour=host,
        description=description, **extra,
    )


_CARDS = (
    _cup_chip(
        "unionpay-debit-chip", "6226090000000048",
        host="approves (00) with PIN 123456",
        description="UnionPay debit chip card, online PIN; the everyday approved sale",
    ),
    TestCard(
        name="unionpay-credit-swipe", pan="6250940000000019", expiry="3012",
        service_code="101", org="CUP", interface="swipe", aid="A000000333010102",
        label="UnionPay Credit",
        host_behaviour="approves (00) with PIN 123456",
        description="UnionPay credit magstripe-only card (service code 101), swiped on the PIN pad",
    ),
    TestCard(
        name="visa-chip", pan="4761739001010010", expiry="3012", service_code="201",
        org="VIS", interface="chip", aid="A0000000031010", label="VISA CREDIT",
        host_behaviour="approves (00) with PIN 123456",
        description="Visa credit chip card (foreign card), online PIN",
    ),
    TestCard(
        name="mc-tap", pan="5413330089010434", expiry="3012", service_code="201",
        org="MCC", interface="tap", aid="A0000000041010", label="MASTERCARD",
        host_behaviour="approves (00) with PIN 123456",
        description="Mastercard contactless card, tapped on the contactless reader",
    ),
    _cup_chip(
        "decline-51", "6226090000000113",
        host="declines 51 (insufficient funds)",
        description="UnionPay debit chip card whose account has no funds",
    ),
    _cup_chip(
        "wrong-pin", "6226090000000121", pin="654321",
        host="declines 55 (incorrect PIN): the customer types 654321, the issuer expects 123456",
        description="UnionPay debit chip card and a customer who types the wrong PIN",
    ),
    _cup_chip(
        "expired", "6226090000000139", expiry="2101",
        host="declines 54 (expired card)",
        description="UnionPay debit chip card that expired in January 2021",
    ),
    _cup_chip(
        "host-silent", "6226090000000147",
        host="never answers: the terminal times out and sends a reversal",
        description="UnionPay debit chip card whose authorisation the host never answers",
    ),
)

CATALOGUE: dict[str, TestCard] = {card.name: card for card in _CARDS}


def test_card(name: str) -> TestCard:
    """The profile called ``name``; ``KeyError`` names the profiles that exist."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(
            f"no test card {name!r}; known test cards: {', '.join(CATALOGUE)}"
        ) from None


test_card.__test__ = False  # type: ignore[attr-defined]  # not a pytest test function
