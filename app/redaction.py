"""Logging for posterm: structured lines, and a filter that redacts card data and keys.

Every line is one JSON object (``ts`` UTC and ``local`` time, ``level``, ``logger``,
``msg``, and ``exc`` for an error's traceback), written to the data directory's log file,
to stderr with ``-v``, and to the systemd journal when posterm runs as a service whose
stderr is the journal (``$JOURNAL_STREAM``; then each line starts with its syslog priority,
``<6>``, which journald reads as the level). ``jq`` reads any of them.

The filter masks anything in a log line that looks like a PAN (13-19 digits passing the
Luhn check), track data, or key material or a PIN block (16 or more hex digits mixing
letters and digits), whatever code wrote it, so a careless log call cannot put card data
or keys on disk.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

_DIGITS = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")
_TRACK = re.compile(r"[0-9]{12,19}[=D][0-9]{4,}")
#: 16 or more hex digits with both letters and digits: a key, a PIN block, a cryptogram
#: (an all-digit run is left to the PAN test; words have no digits)
_HEX = re.compile(r"(?<![0-9A-Za-z])(?=[0-9A-Fa-f]*[A-Fa-f])(?=[0-9A-Fa-f]*[0-9])"
                  r"[0-9A-Fa-f]{16,}(?![0-9A-Za-z])")


def _luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def redact(text: str) -> str:
    """``text`` with track data, key-like hex and PAN-like numbers masked (first 6, last 4)."""
    text = _TRACK.sub("[track data removed]", text)
    text = _HEX.sub(lambda m: f"[{len(m.group())} hex digits removed]", text)
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


#: syslog priority of each level, as journald reads a "<N>" at the start of a line
_PRIORITY = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}


class JsonLines(logging.Formatter):
    """One JSON object a line; the traceback of an error goes through :func:`redact` too
    (the filter sees only the message). ``priority``: start the line with its syslog
    priority (``<3>`` error ... ``<7>`` debug) for journald."""

    def __init__(self, *, priority: bool = False) -> None:
        super().__init__()
        self.priority = priority

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        entry = {"ts": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
                 "local": moment.astimezone().isoformat(timespec="seconds"),
                 "level": record.levelname.lower(), "logger": record.name,
                 "msg": record.getMessage()}
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        line = json.dumps(entry, ensure_ascii=False)
        if self.priority:
            line = f"<{_PRIORITY.get(record.levelname, 6)}>{line}"
        return line


def stderr_is_journal() -> bool:
    """Whether stderr is the systemd journal: systemd sets ``$JOURNAL_STREAM`` to the
    device and inode of the stream it connected (sd_journal_stream_fd(3))."""
    value = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def setup_logging(log_path: Path | None, *, verbose: bool = False) -> None:
    """Log to ``log_path`` (INFO), to stderr when verbose or when stderr is the systemd
    journal, always as JSON lines through the filter."""
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
    journal = stderr_is_journal()
    if verbose or journal:
        stream = logging.StreamHandler()
        stream.setFormatter(JsonLines(priority=journal))
        handlers.append(stream)
    if not handlers:
        # Some libraries call logging.basicConfig() on import (python-escpos does), which
        # would print INFO lines at the cashier; a root handler makes that a no-op.
        handlers.append(logging.NullHandler())
    for handler in handlers:
        handler.addFilter(RedactingFilter())
        if handler.formatter is None:
            handler.setFormatter(JsonLines())
        root.addHandler(handler)
