"""What the terminal learnt from a card, in memory only; and the swipe's checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from app.emv.errors import CardError

ORG_BY_RID = {"A000000333": "CUP", "A000000003": "VIS", "A000000004": "MCC",
              "A000000025": "AMX", "A000000065": "JCB"}
ENTRY_PREFIX = {"chip": "05", "tap": "07", "swipe": "02"}


@dataclass(frozen=True)
class CardData:
    """One card as read; never journaled in clear (the journal seals PAN and expiry)."""

    interface: str            # chip | tap | swipe
    pan: str = field(repr=False)
    expiry: str | None        # YYMM
    card_org: str
    track2: str | None = field(default=None, repr=False)
    track3: str | None = field(default=None, repr=False)
    card_seq: str | None = None
    aid: str | None = None
    label: str | None = None
    service_code: str | None = None
    preferred_name: str | None = None
    fallback: bool = False    # a swipe after the chip failed in this sale

    def entry_mode(self, pin_entered: bool) -> str:
        """Field 22: 05x chip, 07x contactless, 02x swipe (a fallback swipe too: the dialect
        marks fallback in 60.5, see docs/emv.md); x = 1 PIN entered, 2 no PIN."""
        return ENTRY_PREFIX[self.interface] + ("1" if pin_entered else "2")

    def expired(self, today: date | None = None) -> bool:
        return expiry_passed(self.expiry, today)


def org_for_aid(aid: str) -> str:
    return ORG_BY_RID.get(aid[:10].upper(), "CUP")


def org_for_pan(pan: str) -> str:
    return "CUP" if pan.startswith("62") else {"4": "VIS", "5": "MCC"}.get(pan[0], "CUP")


def expiry_passed(yymm: str | None, today: date | None = None) -> bool:
    """Whether the card's YYMM is before this month (a card is good through its month)."""
    if not yymm or len(yymm) < 4 or not yymm[:4].isdigit():
        return False
    today = today or date.today()
    return yymm[:4] < f"{today:%y%m}"


def luhn_ok(number: str) -> bool:
    """ISO/IEC 7812-1 check digit."""
    if not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def chip_service_code(service_code: str | None) -> bool:
    """Service code first digit 2 or 6: an ICC is on the card (ISO/IEC 7813)."""
    return bool(service_code) and service_code[0] in "26"


def from_swipe(track2: str, track3: str | None, *, fallback: bool = False,
               today: date | None = None) -> CardData:
    """The card on a swipe, checked: the track's shape, Luhn, expiry and, unless the chip
    failed first (fallback), that the card has no chip to insert."""
    pan, sep, rest = track2.partition("=")
    if not sep or not pan.isdigit() or not 12 <= len(pan) <= 19 or len(rest) < 7 \
            or not rest[:7].isdigit():
        raise CardError("bad swipe: swipe the card again")
    if not luhn_ok(pan):
        raise CardError("bad swipe (card number check digit): swipe the card again")
    expiry, service = rest[:4], rest[4:7]
    if not 1 <= int(expiry[2:]) <= 12:
        raise CardError("bad swipe (expiry date): swipe the card again")
    if chip_service_code(service) and not fallback:
        raise CardError("this card has a chip: insert the card")
    if expiry_passed(expiry, today):
        raise CardError(f"card expired ({expiry[2:]}/{expiry[:2]})")
    return CardData(interface="swipe", pan=pan, expiry=expiry, card_org=org_for_pan(pan),
                    track2=track2, track3=track3, service_code=service, fallback=fallback)
