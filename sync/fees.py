"""The merchant's fees and payout: the same arithmetic on the terminal and the host.

The acquirer charges a merchant discount rate (MDR) per transaction, rounded half up to the
fen: a card rate (e.g. 0.60%) and a QR rate (e.g. 0.38%). A merchant is paid either T+1
(the next business day after the batch is settled) or in real time, D0 (实时到账, the same
day), for a surcharge: an extra rate and/or a fixed fee per transaction. A refund gives the
rate part of its fee back (never the fixed D0 fee); signed figures make that plain: a
refund's gross, fee and net are negative. The terminal's settlement report predicts what
the host's statement then shows, so reconciliation can check every line's fee and net.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

MODES = ("T1", "D0")
#: F22 entry modes that are a scanned code (QR): the QR rate applies.
QR_ENTRY_PREFIXES = ("03",)
_RATE = re.compile(r"(\d{1,2}(?:\.\d{1,4})?)%")


def parse_rate(text: str) -> Decimal:
    """'0.60%' -> Decimal('0.60'); ValueError for anything else (0% to 99.9999%)."""
    match = _RATE.fullmatch(str(text).strip())
    if match is None:
        raise ValueError(f"{text!r} is not a rate like 0.60%")
    return Decimal(match.group(1))


@dataclass(frozen=True)
class Line:
    """One transaction's money, signed from the merchant's side (fen)."""

    gross: int
    fee: int
    net: int


@dataclass(frozen=True)
class FeeSchedule:
    """A merchant's rates and settlement mode."""

    mode: str = "T1"
    card_rate: Decimal = Decimal("0.60")
    qr_rate: Decimal = Decimal("0.38")
    d0_rate: Decimal = Decimal(0)
    d0_fixed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"settlement mode must be T1 or D0, not {self.mode!r}")
        if self.d0_fixed < 0:
            raise ValueError("the D0 fixed fee cannot be negative")

    @classmethod
    def from_texts(cls, mode: str, card_rate: str, qr_rate: str, d0_rate: str = "0%",
                   d0_fixed: int = 0) -> FeeSchedule:
        return cls(mode, parse_rate(card_rate), parse_rate(qr_rate), parse_rate(d0_rate),
                   int(d0_fixed))

    def as_json(self) -> dict[str, object]:
        return {"mode": self.mode, "card_rate": f"{self.card_rate}%",
                "qr_rate": f"{self.qr_rate}%", "d0_rate": f"{self.d0_rate}%",
                "d0_fixed": self.d0_fixed}

    @classmethod
    def from_json(cls, data: dict) -> FeeSchedule:
        return cls.from_texts(data.get("mode", "T1"), data.get("card_rate", "0.60%"),
                              data.get("qr_rate", "0.38%"), data.get("d0_rate", "0%"),
                              int(data.get("d0_fixed", 0)))

    @staticmethod
    def channel(entry_mode: str | None) -> str:
        return "qr" if (entry_mode or "").startswith(QR_ENTRY_PREFIXES) else "card"

    def rate(self, entry_mode: str | None) -> Decimal:
        base = self.qr_rate if self.channel(entry_mode) == "qr" else self.card_rate
        return base + (self.d0_rate if self.mode == "D0" else Decimal(0))

    def line(self, direction: str, amount: int, entry_mode: str | None) -> Line:
        """Gross, fee and net of one transaction ('debit' to the merchant, 'credit' back)."""
        fee = int((Decimal(amount) * self.rate(entry_mode) / 100)
                  .quantize(Decimal(1), rounding=ROUND_HALF_UP))
        if direction == "debit":
            fee += self.d0_fixed if self.mode == "D0" else 0
            return Line(amount, fee, amount - fee)
        if direction == "credit":
            return Line(-amount, -fee, -amount + fee)
        raise ValueError(f"direction must be debit or credit, not {direction!r}")

    def payout_date(self, settled: date) -> date:
        """When the money arrives: D0 the same day, T1 the next business day (Mon-Fri)."""
        if self.mode == "D0":
            return settled
        day = settled + timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        return day
