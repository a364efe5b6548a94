"""Fixtures for the contact chip reader: the bench's ``card_reader`` URL, or pcscd with
vsmartcard's virtual reader (vpcd) and our virtual card (``python -m drivers.virtual.card``)
in it -- each process started and stopped by its PID.

vpcd gives pcscd one reader per port it listens on (here ``Virtual PCD 00 00`` on 35963 and
``Virtual PCD 00 01`` on 35964); a port takes one card at a time, so the virtual card of a
slot is restarted when a test wants a different profile or trace. All PC/SC tests run in one
pytest process: the session's pcscd and cards are shared.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hal.testcards import TestCard, test_card
from hil.bench import Bench
from hil.processes import readiness_line, stop_process

__all__ = [
    "PcscDaemon",
    "VirtualCard",
    "VirtualCards",
    "card_reader_card",
    "card_reader_url",
    "pcscd",
    "virtual_card",
    "virtual_cards",
]

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
PCSCD_PID_FILE = Path("/run/pcscd/pcscd.pid")
VPCD_PORT = 35963  # slot 0; slot n listens on VPCD_PORT + n
_START_TIMEOUT = 10.0
_REPO = Path(__file__).resolve().parent.parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True




class PcscDaemon:
    """pcscd for the session: the running one if there is one, else our own (``owned``), which
    can be stopped and started again to make the readers vanish and come back."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.owned = False
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as pcscd
            prefix="pcscd-", suffix=".log", delete=False)

    @staticmethod
    def running_pid() -> int | None:
        """The PID of a live pcscd with its socket in place, else None."""
        try:
            pid = int(PCSCD_PID_FILE.read_text().strip("\0 \n"))
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) and PCSCD_SOCKET.exists() else None

    def ensure(self) -> None:
        """Reuse a running pcscd, or start one in the foreground and wait for vpcd's port."""
        if self.proc is not None and self.proc.poll() is None:
            return
        if self.running_pid() is not None:
            self.owned = False
        else:
            binary = shutil.which("pcscd") or "/usr/sbin/pcscd"
            if not Path(binary).exists():
                raise FileNotFoundError("pcscd is not installed (apt-get install pcscd)")
            self.proc = subprocess.Popen([binary, "--foreground"], stdout=self._log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            self.owned = True
        deadline = time.monotonic() + _START_TIMEOUT
        while reader_state(0) is None:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"pcscd exited at start: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"pcscd has no vpcd reader on port {VPCD_PORT} "
                                   "(is vsmartcard-vpcd installed?)")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop our pcscd by its PID (only one we started)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc)

    def restart(self) -> None:
        self.stop()
        self.ensure()

    def log_tail(self) -> str:
        return Path(self._log.name).read_text(errors="replace")[-2000:]

    def close(self) -> None:
        self.stop()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


def reader_state(slot: int) -> tuple[str, bool | None] | None:
    """(reader name, card present?) of vpcd's reader for ``slot`` (None while pcscd is still
    powering a new card up), None if pcscd lacks the reader."""
    from smartcard import scard

    hr, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hr != scard.SCARD_S_SUCCESS:
        return None
    try:
        hr, readers = scard.SCardListReaders(context, [])
        if hr != scard.SCARD_S_SUCCESS:
            return None
        names = sorted(r for r in readers if "Virtual PCD" in r)
        # vpcd names its readers "Virtual PCD 00 <slot>", one per port in order.
        name = next((r for r in names if r.endswith(f" {slot:02d}")), None)
        if name is None:
            return None
        hr, states = scard.SCardGetStatusChange(context, 0, [(name, scard.SCARD_STATE_UNAWARE)])
        if hr != scard.SCARD_S_SUCCESS:
            return None
        _, event, atr = states[0]
        if not event & scard.SCARD_STATE_PRESENT:
            return name, False
        # Present with an ATR: pcscd has powered the card up once and knows it.
        return name, True if len(atr) > 0 else None
    finally:
        scard.SCardReleaseContext(context)


def wait_card_state(slot: int, present: bool, timeout: float = 5.0) -> str:
    """Wait until pcscd sees the slot's card ``present`` (or not); the reader's name."""
    deadline = time.monotonic() + timeout
    while True:
        state = reader_state(slot)
        if state is not None and state[1] == present:
            return state[0]
        if time.monotonic() > deadline:
            raise RuntimeError(f"pcscd did not see the card {'in' if present else 'out of'} "
                               f"vpcd slot {slot} within {timeout:.0f} s (state {state})")
        time.sleep(0.05)


@dataclass
class VirtualCard:
    """One running virtual card process and the reader it sits in."""

    slot: int
    args: tuple[str, ...]
    proc: subprocess.Popen[str]
    reader: str
    dirty: bool = False  # pulled out or told to leave: restart before reuse
    stderr: tempfile._TemporaryFileWrapper[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"pcsc:{self.reader}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def remove(self) -> None:
        """Pull the card out (SIGUSR1: the card closes its vpcd link) and wait till pcscd sees it."""
        self.dirty = True
        os.kill(self.proc.pid, signal.SIGUSR1)
        wait_card_state(self.slot, present=False)

    def insert(self) -> None:
        """Put the card back (SIGUSR2) and wait till pcscd sees it."""
        os.kill(self.proc.pid, signal.SIGUSR2)
        wait_card_state(self.slot, present=True)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None


class VirtualCards:
    """The virtual card of each vpcd slot: started, restarted with other options, stopped."""

    def __init__(self, daemon: PcscDaemon) -> None:
        self.daemon = daemon
        self.cards: dict[int, VirtualCard] = {}

    def start(self, profile: str | None = None, *, trace: str | os.PathLike[str] | None = None,
              interface: str | None = None, t0_chaining: bool = False,
              remove_after: int | None = None, slot: int = 0) -> VirtualCard:
        """The slot's card serving ``profile`` (or ``trace``) with these options; the running
        one if it already does and is untouched, else a new process."""
        args: list[str] = ["--trace", os.fspath(trace)] if trace is not None else \
            ["--profile", profile or "unionpay-debit-chip"]
        if interface:
            args += ["--interface", interface]
        if t0_chaining:
            args.append("--t0-chaining")
        if remove_after is not None:
            args += ["--remove-after", str(remove_after)]
        self.daemon.ensure()
        current = self.cards.get(slot)
        if (current is not None and current.running and not current.dirty
                and current.args == tuple(args)):
            current.dirty = remove_after is not None
            return current
        self.stop(slot)
        stderr = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the card
            mode="w+", prefix="vcard-", suffix=".log")
        argv = [sys.executable, "-m", "drivers.virtual.card", "--port",
                str(VPCD_PORT + slot), *args]
        proc = subprocess.Popen(argv, cwd=_REPO, stdout=subprocess.PIPE, stderr=stderr,
                                text=True)
        line = _readiness_line(proc)
        if " on vpcd " not in line:
            stop_process(proc)
            stderr.seek(0)
            raise RuntimeError(f"virtual card did not start: {line!r} {stderr.read()[-2000:]}")
        reader = wait_card_state(slot, present=True)
        card = VirtualCard(slot, tuple(args), proc, reader, dirty=remove_after is not None,
                           stderr=stderr)
        self.cards[slot] = card
        return card

    def stop(self, slot: int) -> None:
        """Stop the slot's card process by its PID and wait till pcscd sees the slot empty."""
        card = self.cards.pop(slot, None)
        if card is None:
            return
        stop_process(card.proc)
        if card.proc.stdout is not None:
            card.proc.stdout.close()
        if card.stderr is not None:
            card.stderr.close()
        if self.daemon.running_pid() is not None:
            wait_card_state(slot, present=False)

    def close(self) -> None:
        for slot in list(self.cards):
            self.stop(slot)


def _readiness_line(proc: subprocess.Popen[str]) -> str:
    return readiness_line(proc, _START_TIMEOUT)


def _need_pyscard() -> None:
    pytest.importorskip("smartcard", reason="pyscard is not installed (extra 'devices')")


@pytest.fixture(scope="session")
def pcscd(bench: Bench) -> Iterator[PcscDaemon]:
    """pcscd for the session: a running one is reused, else one is started and, at the end,
    stopped by its PID. Skips on a real bench (its pcscd is the system's) and without pcscd."""
    if not bench.virtual:
        pytest.skip("the virtual PC/SC reader is not used on a real bench")
    _need_pyscard()
    daemon = PcscDaemon()
    try:
        daemon.ensure()
    except (FileNotFoundError, RuntimeError) as exc:
        daemon.close()
        pytest.skip(f"no pcscd with vsmartcard's vpcd here: {exc}")
    try:
        yield daemon
    finally:
        daemon.close()


@pytest.fixture(scope="session")
def virtual_cards(pcscd: PcscDaemon) -> Iterator[VirtualCards]:
    """The session's virtual cards, one per vpcd slot; all stopped at the end."""
    cards = VirtualCards(pcscd)
    try:
        yield cards
    finally:
        cards.close()


@pytest.fixture
def virtual_card(virtual_cards: VirtualCards) -> Callable[..., VirtualCard]:
    """A factory: ``virtual_card(profile=..., trace=..., interface=..., t0_chaining=...,
    remove_after=..., slot=0)`` (re)starts the slot's virtual card and returns it; its
    ``.url`` is the reader URL (``pcsc:Virtual PCD 00 00``)."""
    return virtual_cards.start


@pytest.fixture
def card_reader_card(bench: Bench) -> TestCard:
    """The test-card profile of the card on the contact reader (the bench file's
    ``[cards] card_reader``, else ``unionpay-debit-chip``)."""
    return test_card(bench.cards.get("card_reader", "unionpay-debit-chip"))


@pytest.fixture
def card_reader_url(bench: Bench, request: pytest.FixtureRequest,
                    card_reader_card: TestCard) -> str:
    """The contact reader's URL: the bench's, or the virtual card serving
    :func:`card_reader_card` in pcscd's first vpcd reader."""
    if not bench.virtual:
        _need_pyscard()
        return bench.url("card_reader")
    cards: VirtualCards = request.getfixturevalue("virtual_cards")
    return cards.start(card_reader_card.name).url
