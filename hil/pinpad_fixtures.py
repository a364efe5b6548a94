"""Fixtures for the PIN pad: the bench's ``pinpad`` URL, or the virtual ABECS PIN pad
(``python -m drivers.virtual.pinpad``) on a pseudo-terminal, started and stopped by its PID.

The virtual pad is started with ``--link`` (a symlink to its pty in the test's temporary
folder) and ``--control`` (a FIFO for scripting the customer); :attr:`VirtualPinPad.url` is
the pty itself, :attr:`VirtualPinPad.stable_url` the symlink, which still leads to the pad
after :meth:`VirtualPinPad.restart` gives it a new pty.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hil.bench import Bench
from hil.processes import stop_process

__all__ = [
    "TEST_MASTER_KEY",
    "TEST_SLOT",
    "VirtualPinPad",
    "pinpad_url",
    "virtual_pinpad",
]

#: The master key the virtual pad holds in slot :data:`TEST_SLOT` (public test value).
TEST_MASTER_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TEST_SLOT = 1

_READY = re.compile(r"^virtual pinpad on (?P<pty>/\S+)")
_START_TIMEOUT = 15.0
_REPO = Path(__file__).resolve().parent.parent


class VirtualPinPad:
    """One virtual PIN pad process and the files it uses (link, control FIFO, log)."""

    def __init__(self, workdir: Path, options: list[str]) -> None:
        self.workdir = workdir
        self.link = workdir / "pinpad"
        self.control = workdir / "pinpad.control"
        self.log = workdir / "pinpad.log"
        self.options = options
        self.pty = ""
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """``serial:/dev/pts/N?baudrate=19200``: this run's pty."""
        return f"serial:{self.pty}?baudrate=19200"

    @property
    def stable_url(self) -> str:
        """``serial:<link>?baudrate=19200``: the same path across restarts."""
        return f"serial:{self.link}?baudrate=19200"

    def start(self) -> str:
        """Start the pad; return :attr:`url`."""
        self.stop()
        argv = [sys.executable, "-m", "drivers.virtual.pinpad", "-v",
                "--link", os.fspath(self.link), "--control", os.fspath(self.control),
                *self.options]
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(argv, cwd=_REPO, stdout=subprocess.PIPE,
                                         stderr=log, text=True)
        line = self._readiness_line(self.proc)
        match = _READY.match(line)
        if match is None:
            self.stop()
            raise RuntimeError(f"virtual PIN pad did not start: {line!r} {self.log_text()[-2000:]}")
        self.pty = match["pty"]
        return self.url

    def restart(self) -> str:
        """Stop the pad and start a new process (a new pty, the same link and options)."""
        return self.start()

    def _readiness_line(self, proc: subprocess.Popen[str]) -> str:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(_START_TIMEOUT):
                return f"(nothing within {_START_TIMEOUT:.0f} s)"
        return proc.stdout.readline().strip()

    def send(self, command: str) -> None:
        """One control command (``pin 1234``, ``cancel``, ``corrupt 1``...; see the emulator)."""
        if not self.running:
            raise RuntimeError("the virtual PIN pad is not running")
        fd = os.open(self.control, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, command.encode("utf-8") + b"\n")
        finally:
            os.close(fd)

    def log_text(self) -> str:
        """What the pad logged (events, never a PIN, key or track)."""
        return self.log.read_text(encoding="utf-8") if self.log.exists() else ""

    def stop(self) -> None:
        """Stop the pad by its PID (SIGTERM, then SIGKILL if it lingers)."""
        proc, self.proc = self.proc, None
        stop_process(proc)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _options(
    *, pin: str | None, swipe: str | None, msr: bool, master_keys: dict[int, bytes],
    corrupt_next: int, idle: float | None,
) -> list[str]:
    options: list[str] = []
    if pin is not None:
        options += ["--pin", pin]
    if swipe is not None:
        options += ["--swipe", swipe]
    if not msr:
        options.append("--no-msr")
    for slot, key in master_keys.items():
        options += ["--master-key", f"{slot}:{key.hex()}"]
    if corrupt_next:
        options += ["--corrupt-next", str(corrupt_next)]
    if idle is not None:
        options += ["--idle", str(idle)]
    return options


@pytest.fixture
def virtual_pinpad(bench: Bench) -> Iterator[Callable[..., VirtualPinPad]]:
    """A factory: ``virtual_pinpad(pin="123456", swipe=None, msr=True, master_keys=...,
    corrupt_next=0, idle=None)`` starts a virtual PIN pad and returns it (``.url`` is
    ``serial:/dev/pts/N?baudrate=19200``); every pad is stopped by PID at teardown. By default
    the pad holds :data:`TEST_MASTER_KEY` in slot :data:`TEST_SLOT`. Skips on a real bench,
    whose customer cannot be scripted."""
    if not bench.virtual:
        pytest.skip("needs the virtual PIN pad (a real bench's customer cannot be scripted)")
    pads: list[VirtualPinPad] = []
    folders: list[tempfile.TemporaryDirectory[str]] = []

    def start(
        *, pin: str | None = "123456", swipe: str | None = None, msr: bool = True,
        master_keys: dict[int, bytes] | None = None, corrupt_next: int = 0,
        idle: float | None = None,
    ) -> VirtualPinPad:
        keys = {TEST_SLOT: TEST_MASTER_KEY} if master_keys is None else master_keys
        # A short folder name: the link goes into device URLs and error messages.
        folder = tempfile.TemporaryDirectory(prefix="vpp-")
        folders.append(folder)
        pad = VirtualPinPad(Path(folder.name), _options(
            pin=pin, swipe=swipe, msr=msr, master_keys=keys, corrupt_next=corrupt_next, idle=idle,
        ))
        pads.append(pad)
        pad.start()
        return pad

    try:
        yield start
    finally:
        for pad in pads:
            pad.stop()
        for folder in folders:
            folder.cleanup()


@pytest.fixture
def pinpad_url(bench: Bench) -> Iterator[str]:
    """The PIN pad's URL: the bench's, or a virtual pad's ``serial:/dev/pts/N?baudrate=19200``
    (PIN 123456 typed, :data:`TEST_MASTER_KEY` in slot :data:`TEST_SLOT`, the
    ``unionpay-credit-swipe`` card swiped when asked)."""
    if not bench.virtual:
        yield bench.url("pinpad")
        return
    with tempfile.TemporaryDirectory(prefix="vpp-") as folder:
        pad = VirtualPinPad(Path(folder), _options(
            pin="123456", swipe="unionpay-credit-swipe", msr=True,
            master_keys={TEST_SLOT: TEST_MASTER_KEY}, corrupt_next=0, idle=None,
        ))
        try:
            yield pad.start()
        finally:
            pad.stop()
