"""Fixtures for the contactless reader: the bench's ``contactless`` URL, or the virtual NFC
card (``python -m drivers.virtual.nfc``) on nfcpy's udp driver, started and stopped by PID.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hal.testcards import TestCard, test_card
from hil.bench import Bench
from hil.processes import readiness_line, stop_process

__all__ = ["VirtualNfcCard", "contactless_card", "contactless_url", "virtual_nfc_card"]

_READY = re.compile(r"^virtual nfc card .* on udp (?P<host>[^ ]+):(?P<port>\d+)$")
_START_TIMEOUT = 15.0
_REPO = Path(__file__).resolve().parent.parent


class VirtualNfcCard:
    """The virtual NFC card process; :meth:`start` again (after :meth:`stop`) keeps the udp
    port, so a reader opened on :attr:`url` finds the new card."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0  # 0 until the first start: the card picks a free port and says which
        self.proc: subprocess.Popen[str] | None = None
        self.ready_line = ""
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in close())

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the virtual NFC card has not been started yet")
        return f"nfc:udp:{self.host}:{self.port}"

    def start(self, profile: str = "mc-tap", *, trace: str | os.PathLike[str] | None = None,
              leave_after: int | None = None, frame_size: int | None = None,
              technology: str = "A") -> str:
        """Start the card with ``profile`` (or ``trace``), as a Type ``technology`` (A or B)
        ISO-DEP card, and return the reader URL."""
        self.stop()
        argv = [sys.executable, "-m", "drivers.virtual.nfc",
                "--listen", f"{self.host}:{self.port}", "--type", technology]
        argv += ["--trace", os.fspath(trace)] if trace is not None else ["--profile", profile]
        if leave_after is not None:
            argv += ["--leave-after", str(leave_after)]
        if frame_size is not None:
            argv += ["--frame-size", str(frame_size)]
        self._stderr.seek(0)
        self._stderr.truncate()
        self.proc = subprocess.Popen(argv, cwd=_REPO, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True)
        line = self._readiness_line(self.proc)
        match = _READY.match(line)
        if match is None:
            self.stop()
            raise RuntimeError(f"virtual NFC card did not start: {line!r} {self._errors()}")
        self.ready_line, self.port = line, int(match["port"])
        return self.url

    def restart(self, profile: str = "mc-tap", **options: object) -> str:
        """Stop the card process and start a new one on the same port."""
        return self.start(profile, **options)  # type: ignore[arg-type]

    def _readiness_line(self, proc: subprocess.Popen[str]) -> str:
        return readiness_line(proc, _START_TIMEOUT)

    def _errors(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().strip()[-2000:]

    def stop(self) -> None:
        """Stop the card process by its PID (SIGTERM, then SIGKILL if it lingers)."""
        proc, self.proc = self.proc, None
        stop_process(proc)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        self.stop()
        self._stderr.close()


@pytest.fixture
def virtual_nfc_card(bench: Bench) -> Iterator[VirtualNfcCard]:
    """A virtual NFC card to start, restart and stop (not started yet); skips on a real bench,
    whose card a person holds."""
    if not bench.virtual:
        pytest.skip("needs the virtual NFC card (a real bench's card cannot be scripted)")
    card = VirtualNfcCard()
    try:
        yield card
    finally:
        card.close()


@pytest.fixture
def contactless_url(bench: Bench) -> Iterator[str]:
    """The contactless reader's URL: the bench's, or ``nfc:udp:...`` with the virtual card
    serving the ``mc-tap`` profile."""
    if not bench.virtual:
        yield bench.url("contactless")
        return
    card = VirtualNfcCard()
    try:
        yield card.start("mc-tap")
    finally:
        card.close()


@pytest.fixture
def contactless_card(bench: Bench) -> TestCard:
    """The test-card profile the contactless reader's card matches (the bench file's
    ``[cards] contactless``, else ``mc-tap``)."""
    return test_card(bench.cards.get("contactless", "mc-tap"))

