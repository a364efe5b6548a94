"""Auto-settlement at a configured time, and the warning for a batch left open too long.

``AutoSettle.check`` is what a long-running posterm (``posterm watch``, the cashier UI) calls
every so often: it finishes an interrupted settlement at once, settles at
``settlement.auto_time`` once a day, sends what waits for the host, and says (at most once an
hour) when the open batch is older than ``settlement.warn_open_hours``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from hal.errors import DeviceError
from storage.errors import StorageError
from sync.errors import SyncError

if TYPE_CHECKING:
    from app.flows.settle import SettleOutcome
    from app.terminal import Terminal

log = logging.getLogger(__name__)

META_AUTO_DATE = "auto_settle_date"
WARN_EVERY = timedelta(hours=1)


def _now() -> datetime:
    return datetime.now().astimezone()


def due(now: datetime, auto_time: str, last_date: str | None) -> bool:
    """Is today's auto-settlement due: HH:MM reached and not yet done today (local)."""
    if not auto_time:
        return False
    return now.strftime("%H:%M") >= auto_time and last_date != now.date().isoformat()


def batch_age_warning(term: Terminal, now: datetime | None = None) -> str | None:
    """One line when the open batch's first transaction is older than the configured hours."""
    hours = term.config["settlement"]["warn_open_hours"]
    if not hours:
        return None
    batch = term.journal.current_batch()
    opened = term.journal.settlements.opened_at(batch)
    if opened is None:
        return None
    age = (now or _now()).astimezone(UTC) - datetime.fromisoformat(opened)
    if age < timedelta(hours=hours):
        return None
    return (f"batch {batch:06d} has been open {age.total_seconds() / 3600:.0f} h "
            f"(more than {hours} h): settle it (posterm settle)")


class AutoSettle:
    """The periodic duties of a running terminal; ``say`` shows one line to the person."""

    def __init__(self, term: Terminal, say: Callable[[str], None],
                 clock: Callable[[], datetime] = _now) -> None:
        self.term = term
        self.say = say
        self.clock = clock
        self._warned: datetime | None = None

    def check(self) -> SettleOutcome | None:
        """One round; returns the settlement's outcome when it settled. Never raises for a
        host, device or storage problem: it says it and tries again next round."""
        now = self.clock()
        try:
            self._warn_if_old(now)
            journal = self.term.journal
            if journal.settlements.active() is not None:
                return self._settle("an interrupted settlement")
            if due(now, self.term.config["settlement"]["auto_time"],
                   journal.get_meta(META_AUTO_DATE)):
                if not journal.settlements.counted(journal.current_batch()):
                    journal.set_meta(META_AUTO_DATE, now.date().isoformat())
                    self.say("auto-settlement: the batch is empty, nothing to settle today")
                    return None
                outcome = self._settle("auto-settlement")
                if outcome.row.step == "closed":
                    journal.set_meta(META_AUTO_DATE, now.date().isoformat())
                return outcome
            if journal.pending_reversals() or journal.pending_advices():
                self.term.session.flush_reversals()
                self.term.session.ensure_signed_on()
                self.term.session.flush_advices()
        except (SyncError, DeviceError, StorageError) as exc:
            self.say(f"{exc}; will try again")
        return None

    def _settle(self, why: str) -> SettleOutcome:
        from app.flows.settle import settle
        outcome = settle(self.term)
        row = outcome.row
        if row.step == "failed":
            self.say(f"{why}: batch {row.batch:06d} not settled: {row.error}")
        else:
            after = (f", after upload {row.result_after_upload}"
                     if row.result_after_upload else "")
            self.say(f"{why}: batch {row.batch:06d} settled, {row.result}{after}")
        log.info("%s of batch %06d: %s", why, row.batch, row.step)
        return outcome

    def _warn_if_old(self, now: datetime) -> None:
        if self._warned is not None and now - self._warned < WARN_EVERY:
            return
        warning = batch_age_warning(self.term, now)
        if warning:
            self._warned = now
            log.warning(warning)
            self.say(warning)
