"""Logging for posterm: one log file per data directory and a filter that redacts card data.

The filter masks anything in a log line that looks like a PAN (13-19 digits passing the
Luhn check) or track data, whatever code wrote it, so a careless log call cannot put card
data on disk.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

_DIGITS = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")
_TRACK = re.compile(r"[0-9]{12,19}[=D][0-9]{4,}")


def _luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def redact(text: str) -> str:
    """``text`` with track data and PAN-like numbers masked (first 6, last 4)."""
    text = _TRACK.sub("[track data removed]", text)
    return _DIGITS.sub(lambda m: (m.group()[:6] + "*" * (len(m.group()) - 10) + m.group()[-4:])
                       if _luhn(m.group()) else m.group(), text)


class RedactingFilter(logging.Filter):
    """Rewrites every record's message through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def setup_logging(log_path: Path | None, *, verbose: bool = False) -> None:
    """Log to ``log_path`` (INFO) and to stderr only when verbose, always through the filter."""
    # Warnings (a library's deprecations) go to the log file, never to the cashier's screen.
    logging.captureWarnings(True)
    # A log line that cannot be written (a full disk) is dropped, not printed at the
    # cashier as a "Logging error" traceback; the journal's own error says what is wrong.
    logging.raiseExceptions = False
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.INFO)
    handlers: list[logging.Handler] = []
    if log_path is not None:
        # opened at the first line: a read-only or full disk loses log lines, never the
        # command (the journal's own error then says what is wrong with the disk)
        handlers.append(logging.FileHandler(log_path, encoding="utf-8", delay=True))
    if verbose:
        handlers.append(logging.StreamHandler())
    if not handlers:
        # Some libraries call logging.basicConfig() on import (python-escpos does), which
        # would print INFO lines at the cashier; a root handler makes that a no-op.
        handlers.append(logging.NullHandler())
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in handlers:
        handler.addFilter(RedactingFilter())
        handler.setFormatter(fmt)
        root.addHandler(handler)
