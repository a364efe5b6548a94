"""A logging filter that masks anything in a log line that looks like a card number.

The host logs masked PANs only; this is the guarantee behind that habit, for messages
that quote what a terminal sent (e.g. a decode error).
"""

from __future__ import annotations

import logging
import re

from host.sealing import mask_pan

_DIGIT_RUN = re.compile(r"(?<![0-9A-Fa-f])\d{13,19}(?![0-9A-Fa-f])")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact(text: str) -> str:
    """``text`` with every Luhn-valid run of 13-19 digits masked (first 6, last 4)."""
    return _DIGIT_RUN.sub(lambda m: mask_pan(m.group()) if _luhn_ok(m.group()) else m.group(),
                          text)


class RedactPans(logging.Filter):
    """Attach to a handler: rewrites each record's message with PANs masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
