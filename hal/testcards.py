"""The test-card catalogue: public test data that mock and virtual devices present.

Every profile is a 16-digit, Luhn-valid test PAN; the host simulator keys its behaviour
on the PAN, and the issuer's PIN for every card is 123456. Every chip application's
cryptogram key is derived from the public test issuer master key :data:`TEST_IMK_AC`
(see docs/cards.md for the whole contract: keys, cryptogram data, IAD formats).

=======================  ================  ======  ======  ====================================
name                     PAN               expiry  via     host / card
=======================  ================  ======  ======  ====================================
unionpay-debit-chip      6226090000000048  3012    chip    approves (00)
unionpay-credit-swipe    6250940000000019  3012    swipe   approves (00)
visa-chip                4761739001010010  3012    chip    approves (00)
mc-tap                   5413330089010434  3012    tap     approves (00); GENERATE AC in the tap
decline-51               6226090000000113  3012    chip    declines 51 (insufficient funds)
wrong-pin                6226090000000121  3012    chip    declines 55 (customer types 654321)
expired                  6226090000000139  2101    chip    declines 54 (expired card)
host-silent              6226090000000147  3012    chip    never answers (reversal path)
unionpay-dual-app        6226090000000154  3012    chip    approves; debit + credit, cardholder chooses
blocked-app              6226090000000162  3012    chip    approves; first application blocked (6283)
signature-cvm            6226090000000170  3012    chip    approves; CVM list puts signature first
over-floor-limit         6226090000000188  3012    chip    approves online; card allows TC offline
declines-after-approval  6226090000000196  3012    chip    approves; card answers AAC at 2nd GEN AC
chip-failure-fallback    6226090000000204  3012    chip    approves; SELECT answers 6F00, swipe it
qpboc-tap                6226090000000212  3012    tap     approves; cryptogram in the GPO answer
=======================  ================  ======  ======  ====================================
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOGUE", "ISSUER_PIN", "TEST_IMK_AC", "CardApplication", "TestCard", "test_card"]

#: The PIN every issuer (the host simulator) expects for every test card.
ISSUER_PIN = "123456"

#: Issuer master key for application cryptograms, the same public test value for every
#: card (the host simulator holds the same table). Test data: never a live key.
TEST_IMK_AC = "0123456789ABCDEFFEDCBA9876543210"

# Discretionary data after the service code on track 2 (PVKI, PVV, CVV positions): all
# zeros, so nothing here looks like real card verification data.
_DISCRETIONARY = "0000000000"

#: CVM list (tag 8E): amounts X and Y of zero, then online PIN if the terminal supports it
#: (apply the next rule if it fails), signature if supported, no CVM (EMV Book 3 C3).
CVM_ONLINE_PIN_FIRST = "00000000" "00000000" "4203" "1E03" "1F03"
#: Signature first when the terminal supports it, then online PIN, then no CVM.
CVM_SIGNATURE_FIRST = "00000000" "00000000" "1E03" "4203" "1F03"

# Issuer action codes (9F0D default, 9F0E denial, 9F0F online), the usual issuer choice:
# go online for ODA not performed/failed, expiry, new card, floor limit and random
# selection; deny for "requested service not allowed" (EMV Book 3 10.7, TVR in C5).
_IAC_DEFAULT, _IAC_DENIAL, _IAC_ONLINE = "DC4000A800", "0010000000", "DC4004F800"


@dataclass(frozen=True)
class CardApplication:
    """One payment application on a chip: its directory entry, FCI and PAN sequence number."""

    aid: str  # hex
    label: str
    priority: int = 1  # tag 87: 1 is the highest; bit 8 would ask for cardholder confirmation
    seq: str = "01"  # this application's PAN sequence number (5F34)
    preferred_name: str | None = None  # tag 9F12
    blocked: bool = False  # SELECT answers 6283 (EMV Book 1 12.3.3): not a candidate


@dataclass(frozen=True)
class TestCard:
    """One test-card profile: what the card holds and how the host treats it.

    ``aid``, ``label`` and ``seq`` name the application a sale ends up with (the first
    usable one); ``applications`` lists every application on the chip when there are
    several, in directory order. Fields after ``description`` shape the chip's EMV
    behaviour; their defaults make the everyday card of the profile's scheme.
    """

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
    applications: tuple[CardApplication, ...] = ()  # empty: one, from aid/label/seq
    chip_fault: bool = False  # every SELECT answers 6F00: the terminal falls back to the stripe
    quick_path: bool = False  # contactless qPBOC/qVSDC: the cryptogram in the GPO answer
    # What the card does at GENERATE AC: 'online' (ARQC; TC at the second GENERATE AC when
    # the issuer authenticated and approved), 'decline' (AAC at the first GENERATE AC),
    # 'decline-after-approval' (AAC at the second, whatever the host said).
    card_decision: str = "online"
    offline_limit: int = 0  # consecutive offline TCs the card agrees to (9F14); 0: never
    offline_upper_limit: int = 0  # 9F23, for the terminal's velocity checking
    cvm_list: str = CVM_ONLINE_PIN_FIRST  # tag 8E, hex
    iac_default: str = _IAC_DEFAULT
    iac_denial: str = _IAC_DENIAL
    iac_online: str = _IAC_ONLINE
    effective: str = "200101"  # YYMMDD, tag 5F25
    gpo_format: int | None = None  # 1 or 2; None: the scheme's usual (see drivers/cardsim)
    gac_format: int | None = None  # 1 or 2; None: the scheme's usual
    atc: int = 0  # the ATC before the first transaction of a fresh card
    imk_ac: str = TEST_IMK_AC

    def track2(self) -> str:
        """Track 2 as a swipe reads it: ``PAN=YYMM`` + service code + discretionary digits."""
        return f"{self.pan}={self.expiry}{self.service_code}{_DISCRETIONARY}"

    def apps(self) -> tuple[CardApplication, ...]:
        """The chip's applications in directory order (one, unless the profile lists several)."""
        return self.applications or (CardApplication(self.aid, self.label, seq=self.seq),)


_CUP_AID = "A000000333010101"
_CUP_LABEL = "UnionPay Debit"
_CUP_CREDIT_AID = "A000000333010102"
_CUP_CREDIT_LABEL = "UnionPay Credit"


def _cup_chip(name: str, pan: str, *, host: str, description: str, **extra: object) -> TestCard:
    fields: dict[str, object] = {
        "name": name, "pan": pan, "expiry": "3012", "service_code": "201", "org": "CUP",
        "interface": "chip", "aid": _CUP_AID, "label": _CUP_LABEL, "host_behaviour": host,
        "description": description}
    fields.update(extra)
    return TestCard(**fields)  # type: ignore[arg-type]


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
        description="Mastercard contactless card (M/Chip style: GPO, records, then GENERATE "
                    "AC during the tap), tapped on the contactless reader",
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
        "expired", "6226090000000139", expiry="2101", effective="180101",
        host="declines 54 (expired card)",
        description="UnionPay debit chip card that expired in January 2021",
    ),
    _cup_chip(
        "host-silent", "6226090000000147",
        host="never answers: the terminal times out and sends a reversal",
        description="UnionPay debit chip card whose authorisation the host never answers",
    ),
    _cup_chip(
        "unionpay-dual-app", "6226090000000154",
        applications=(
            CardApplication(_CUP_AID, _CUP_LABEL, priority=1, seq="01",
                            preferred_name="UNIONPAY DEBIT"),
            CardApplication(_CUP_CREDIT_AID, _CUP_CREDIT_LABEL, priority=2, seq="02",
                            preferred_name="UNIONPAY CREDIT"),
        ),
        host="approves (00) with PIN 123456, whichever application the cardholder chooses",
        description="UnionPay chip card with a debit (priority 1, PSN 01) and a credit "
                    "(priority 2, PSN 02) application: the cardholder chooses",
    ),
    _cup_chip(
        "blocked-app", "6226090000000162", aid=_CUP_CREDIT_AID, label=_CUP_CREDIT_LABEL,
        seq="02",
        applications=(
            CardApplication(_CUP_AID, _CUP_LABEL, priority=1, seq="01", blocked=True),
            CardApplication(_CUP_CREDIT_AID, _CUP_CREDIT_LABEL, priority=2, seq="02"),
        ),
        host="approves (00) with PIN 123456 (on the credit application)",
        description="UnionPay chip card whose debit application is blocked (SELECT answers "
                    "6283); the credit application is used",
    ),
    _cup_chip(
        "signature-cvm", "6226090000000170", cvm_list=CVM_SIGNATURE_FIRST,
        host="approves (00); no PIN block when the terminal takes a signature",
        description="UnionPay debit chip card whose CVM list asks for a signature first",
    ),
    _cup_chip(
        "over-floor-limit", "6226090000000188", offline_limit=3, offline_upper_limit=5,
        iac_default="0000000000", iac_denial="0000000000", iac_online="0000008000",
        host="approves (00) with PIN 123456 when the sale goes online",
        description="UnionPay debit chip card whose issuer action codes go online only when "
                    "the amount exceeds the terminal's floor limit (TVR byte 4 bit 8); under "
                    "it the card agrees to a TC (up to 3 offline sales in a row)",
    ),
    _cup_chip(
        "declines-after-approval", "6226090000000196", card_decision="decline-after-approval",
        host="approves (00) with PIN 123456, but the card answers AAC at the second GENERATE "
             "AC: the terminal reverses with reason 06",
        description="UnionPay debit chip card that declines after the host approved",
    ),
    _cup_chip(
        "chip-failure-fallback", "6226090000000204", chip_fault=True,
        host="approves (00) with PIN 123456 when swiped after the chip failed (fallback)",
        description="UnionPay debit card whose chip answers 6F00 to every SELECT; its stripe "
                    "(service code 201) is read after the failure, as a fallback",
    ),
    _cup_chip(
        "qpboc-tap", "6226090000000212", interface="tap", quick_path=True,
        host="approves (00) with PIN 123456 (online PIN above the contactless CVM limit)",
        description="UnionPay contactless (qPBOC) card: one tap, the ARQC in the GPO answer",
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
