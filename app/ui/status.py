"""The status line at the top of every screen: merchant, terminal, operator, batch, host
online or offline, pending reversal and advices waiting for the host, posterm's version."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.cells import cell_len
from textual.widgets import Static

from app import version
from app.ui.words import say

if TYPE_CHECKING:
    from app.terminal import Terminal

#: Cells the merchant's name keeps before the parts are set one space apart.
MERCHANT_MIN = 12

#: Seconds a connection to the host may take before the status line says offline.
PROBE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Status:
    """What the status line shows; ``host_online`` None while not known yet."""

    merchant: str = ""
    terminal_id: str = ""
    operator: str = ""
    batch: int | None = None
    host_online: bool | None = None
    reversals: int = 0
    advices: int = 0


def probe_host(term: Terminal) -> bool:
    """Whether the host accepts a connection (no message is sent, nothing journaled)."""
    try:
        with socket.create_connection(term.config.host_address, timeout=PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def read_status(term: Terminal, operator: str, host_online: bool | None) -> Status:
    """The journal's side of the status (a worker thread calls this: it reads SQLite)."""
    journal = term.journal
    t = term.config["terminal"]
    return Status(merchant=t["merchant_name"], terminal_id=t["terminal_id"], operator=operator,
                  batch=journal.current_batch(), host_online=host_online,
                  reversals=len(journal.pending_reversals()),
                  advices=len(journal.pending_advices()))


def render_status(status: Status, language: str, width: int) -> str:
    """One line: the merchant name is cut to what the width leaves."""
    if status.host_online is None:
        host = f"{say('host', language)} …"
    else:
        host = say("online" if status.host_online else "offline", language)
    batch = f"{status.batch:06d}" if status.batch is not None else "------"
    parts = [f"{say('terminal', language)} {status.terminal_id or '--------'}",
             f"{say('operator', language)} {status.operator or '--'}",
             f"{say('batch', language)} {batch}", host,
             f"{say('reversal', language)} {status.reversals}",
             f"{say('advices', language)} {status.advices}", f"v{version()}"]
    tail = "  " + "  ".join(parts)
    if width - cell_len(tail) - 1 < MERCHANT_MIN:         # 80 columns in Chinese: closer
        tail = " " + " ".join(parts)
    room = max(4, width - cell_len(tail) - 1)
    name = status.merchant or "posterm"
    while cell_len(name) > room:
        name = name[:-2] + "…"
    return " " + name + tail


class StatusLine(Static):
    """Follows the app's ``status`` reactive."""

    DEFAULT_CSS = """
    StatusLine { dock: top; height: 1; background: $primary-darken-2; color: $text; }
    StatusLine.offline { background: $error-darken-1; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "status", self._show, init=True)

    def on_resize(self) -> None:
        self._show(self.app.status)  # type: ignore[attr-defined]

    def _show(self, status: Status) -> None:
        language = self.app.ui_language  # type: ignore[attr-defined]
        self.set_class(status.host_online is False, "offline")
        self.update(render_status(status, language, self.size.width or 80))
