"""Issuer decisions, keyed by PAN as a real issuer's would be.

The cards are the terminal's test-card catalogue (``hal/testcards.py``), copied here by
PAN because the host never imports the terminal. Every card's PIN is 123456; the PIN is
checked, not ruled: the ``wrong-pin`` card is declined 55 because its customer types
another PIN.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from enum import Enum

from sync import crypto
from sync.errors import MessageError

ISSUER_PIN = "123456"
MAX_AMOUNT = 100_000_000   # fen: above this the issuer answers 61


class Behaviour(Enum):
    """What the issuer does with a card, apart from the checks every card gets."""

    APPROVE = "approve"
    INSUFFICIENT_FUNDS = "decline-51"
    EXPIRED = "expired"
    SILENT = "host-silent"


#: (profile name, PAN, behaviour), one line per card of hal/testcards.py's catalogue.
_CATALOGUE: tuple[tuple[str, str, Behaviour], ...] = (
    ("unionpay-debit-chip", "6226090000000048", Behaviour.APPROVE),
    ("unionpay-credit-swipe", "6250940000000019", Behaviour.APPROVE),
    ("visa-chip", "4761739001010010", Behaviour.APPROVE),
    ("mc-tap", "5413330089010434", Behaviour.APPROVE),
    ("decline-51", "6226090000000113", Behaviour.INSUFFICIENT_FUNDS),
    ("wrong-pin", "6226090000000121", Behaviour.APPROVE),   # its customer types 654321
    ("expired", "6226090000000139", Behaviour.EXPIRED),      # expiry 2101
    ("host-silent", "6226090000000147", Behaviour.SILENT),
    ("unionpay-dual-app", "6226090000000154", Behaviour.APPROVE),
    ("blocked-app", "6226090000000162", Behaviour.APPROVE),
    ("signature-cvm", "6226090000000170", Behaviour.APPROVE),
    ("over-floor-limit", "6226090000000188", Behaviour.APPROVE),
    ("declines-after-approval", "6226090000000196", Behaviour.APPROVE),  # the card declines
    ("chip-failure-fallback", "6226090000000204", Behaviour.APPROVE),
    ("qpboc-tap", "6226090000000212", Behaviour.APPROVE),
)

#: PAN -> behaviour.
CARDS: dict[str, Behaviour] = {pan: behaviour for _, pan, behaviour in _CATALOGUE}
#: Test-card profile name -> PAN (e.g. for fault rules that name a card).
PROFILES: dict[str, str] = {name: pan for name, pan, _ in _CATALOGUE}


@dataclass(frozen=True)
class Card:
    """What the request says about the card."""

    pan: str
    expiry: str | None     # YYMM from F14 or track 2


@dataclass(frozen=True)
class Decision:
    """The issuer's answer; ``silent`` means it never answers (the reply is lost)."""

    response_code: str
    auth_code: str | None = None
    silent: bool = False

    @property
    def approved(self) -> bool:
        return self.response_code == "00"


def card_from_fields(fields: dict[str, str]) -> Card | None:
    """The card of a request: PAN from F2, else from track 2 (F35, ``=`` separator)."""
    track2 = fields.get("35")
    track_pan, track_expiry = None, None
    if track2 and "=" in track2:
        track_pan, rest = track2.split("=", 1)
        track_expiry = rest[:4] if len(rest) >= 4 and rest[:4].isdigit() else None
    pan = fields.get("2") or track_pan
    if not pan:
        return None
    return Card(pan=pan, expiry=fields.get("14") or track_expiry)


def _expired(expiry: str | None, today: date) -> bool:
    if not expiry or len(expiry) != 4 or not expiry.isdigit():
        return False
    return expiry < f"{today:%y%m}"


def decide(card: Card | None, amount: int, *, pin_block: bytes | None, pik: bytes | None,
           today: date | None = None, arqc_ok: bool | None = None) -> Decision:
    """Authorise ``amount`` fen on ``card``.

    Order: the amount (13, 61), the card (14), the chip's cryptogram (05 when ``arqc_ok``
    is False; None: no chip data), then the issuer: silent, expired (54), PIN (55), funds
    (51), approved (00 and a 6-digit authorisation code). A request without a PIN block
    (no CVM) is not PIN-checked.
    """
    today = today or date.today()
    if amount <= 0:
        return Decision("13")
    if amount > MAX_AMOUNT:
        return Decision("61")
    behaviour = CARDS.get(card.pan) if card else None
    if card is None or behaviour is None:
        return Decision("14")
    if arqc_ok is False:
        # A cryptogram that does not verify: the card is not genuine, or the data it signed
        # was changed on the way. "Do not honour", as issuers answer a failed ARQC.
        return Decision("05")
    if behaviour is Behaviour.SILENT:
        # The issuer approved, but its answer never reaches the terminal.
        return Decision("00", _auth_code(), silent=True)
    if behaviour is Behaviour.EXPIRED or _expired(card.expiry, today):
        return Decision("54")
    if pin_block is not None and not _pin_ok(card.pan, pin_block, pik):
        return Decision("55")
    if behaviour is Behaviour.INSUFFICIENT_FUNDS:
        return Decision("51")
    return Decision("00", _auth_code())


#: What every test account holds, for balance inquiries (fen): ¥8,888.88.
TEST_BALANCE = 888_888


def inquire(card: Card | None, *, pin_block: bytes | None, pik: bytes | None,
            today: date | None = None) -> tuple[str, int | None]:
    """A balance inquiry: (response code, balance in fen when approved). The card's own
    checks as for a sale (14, 54, 55), no amount and no funds check."""
    behaviour = CARDS.get(card.pan) if card else None
    if card is None or behaviour is None:
        return "14", None
    if behaviour is Behaviour.EXPIRED or _expired(card.expiry, today or date.today()):
        return "54", None
    if pin_block is None or not _pin_ok(card.pan, pin_block, pik):
        return "55", None
    if behaviour is Behaviour.INSUFFICIENT_FUNDS:
        return "00", 0
    return "00", TEST_BALANCE


def auth_code() -> str:
    """A fresh 6-digit authorisation code."""
    return _auth_code()


def _pin_ok(pan: str, pin_block: bytes, pik: bytes | None) -> bool:
    if pik is None:
        return False
    try:
        return crypto.clear_pin_from_block(pik, pin_block, pan) == ISSUER_PIN
    except MessageError:
        return False


def _auth_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"
