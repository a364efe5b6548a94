"""Timestamps as the journal stores them: UTC ISO-8601 with a 'Z', and local time with offset."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current instant as an aware UTC datetime (the default clock)."""
    return datetime.now(UTC)


def stamp(moment: datetime) -> tuple[str, str]:
    """Return (utc, local) strings for one instant, e.g. ('2026-11-21T23:58:47Z', '2026-11-22T07:58:47+08:00').

    A naive datetime is taken to be UTC. Local time is the terminal's system time zone.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.replace(microsecond=0)
    utc = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return utc, moment.astimezone().isoformat()
