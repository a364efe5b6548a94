"""Amounts typed by people (yuan, at most two decimals) to integer fen, and back."""

from __future__ import annotations

import re

from app.errors import InputError

_AMOUNT = re.compile(r"^(\d{1,10})(?:\.(\d{1,2}))?$")


def parse_yuan(text: str) -> int:
    """``'12.50'`` -> 1250. Refuses negatives, zero, more than two decimals and non-numbers."""
    match = _AMOUNT.match(text.strip())
    if not match:
        raise InputError(f"amount {text!r} is not valid: use yuan with at most two decimals, "
                         "e.g. 12.50")
    fen = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    if fen <= 0:
        raise InputError(f"amount {text!r} must be more than zero")
    return fen


def format_yuan(fen: int, *, grouped: bool = False) -> str:
    """1250 -> ``'12.50'``; ``grouped`` puts thousands separators in (123456789 ->
    ``'1,234,567.89'``), as reports print it."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d}" if grouped else f"{sign}{yuan}.{cents:02d}"
