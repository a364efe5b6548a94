"""Fixtures for the receipt printer: the bench's ``printer`` URL, or the virtual ESC/POS printer
(``python -m drivers.virtual.printer``) on a free TCP port, started and stopped by PID.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.bench import Bench
from hil.processes import stop_process

__all__ = ["VirtualPrinterProcess", "printer_url", "serial_printer_url", "virtual_printer"]

_READY = re.compile(r"^virtual printer on (?P<host>[^ ]+):(?P<port>\d+) "
                    r"control (?P<chost>[^ ]+):(?P<cport>\d+)")
_START_TIMEOUT = 10.0
_REPO = Path(__file__).resolve().parent.parent


class VirtualPrinterProcess:
    """The virtual printer as a subprocess. :meth:`start` after :meth:`stop` keeps the print
    port, so a printer object opened on :attr:`url` finds the new process."""

    def __init__(self, workdir: Path) -> None:
        self.host = "127.0.0.1"
        self.port = 0  # picked by the first start
        self.control_port = 0
        self.out_dir = workdir / "paper"
        self._log = workdir / "virtual-printer.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the virtual printer has not been started yet")
        return f"tcp:{self.host}:{self.port}"

    def start(self, *, paper_out: bool = False, cover_open: bool = False,
              answers_status: bool = True) -> str:
        """Start the printer process (on the same port as before, if any); return its URL."""
        self.stop()
        argv = [sys.executable, "-m", "drivers.virtual.printer", "--quiet",
                "--listen", f"{self.host}:{self.port}", "--out", str(self.out_dir)]
        argv += ["--paper-out"] * paper_out + ["--cover-open"] * cover_open
        argv += ["--no-status"] * (not answers_status)
        with self._log.open("wb") as log:  # a file, not a pipe: nothing can block the printer
            self.proc = subprocess.Popen(argv, cwd=_REPO, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            first = self._log.read_text(errors="replace").partition("\n")
            if first[1] and (match := _READY.match(first[0])):
                self.port, self.control_port = int(match["port"]), int(match["cport"])
                return self.url
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        output = self._log.read_text(errors="replace").strip()
        self.stop()
        raise RuntimeError(f"the virtual printer did not start: {output or 'no output'}")

    def stop(self) -> None:
        """SIGTERM the process by its PID; SIGKILL if it does not exit in time."""
        proc, self.proc = self.proc, None
        stop_process(proc)

    def control(self, command: str) -> str:
        """Send one control command (``paper out``, ``cover open``, ``dump`` ...); its answer."""
        with socket.create_connection((self.host, self.control_port), timeout=5) as sock:
            sock.sendall(command.encode() + b"\n")
            with sock.makefile("rb") as answers:
                return answers.readline().decode("utf-8").rstrip("\n")

    def set_paper(self, out: bool) -> None:
        assert self.control("paper out" if out else "paper ok") == "ok"

    def set_cover(self, open: bool) -> None:
        assert self.control("cover open" if open else "cover closed") == "ok"

    def dump(self) -> list[str]:
        """The documents this process printed, from the control port."""
        return list(json.loads(self.control("dump")))

    def documents(self, at_least: int = 0, timeout: float = 5.0) -> list[str]:
        """The decoded text of every document printed (across restarts), oldest first;
        waits up to ``timeout`` s for at least ``at_least`` of them to be filed."""
        deadline = time.monotonic() + timeout
        while True:
            files = sorted(self.out_dir.glob("[0-9]*.txt"))
            if len(files) >= at_least or time.monotonic() >= deadline:
                return [f.read_text(encoding="utf-8") for f in files]
            time.sleep(0.02)


@pytest.fixture
def virtual_printer(bench: Bench, tmp_path: Path) -> Iterator[VirtualPrinterProcess]:
    """A running virtual printer (skips on a real bench: its paper cannot be read back)."""
    if not bench.virtual:
        pytest.skip(f"needs the virtual printer; the bench {bench.path} has a real one")
    printer = VirtualPrinterProcess(tmp_path)
    printer.start()
    try:
        yield printer
    finally:
        printer.stop()


@pytest.fixture
def printer_url(bench: Bench, request: pytest.FixtureRequest) -> str:
    """The printer URL to test: the bench's, or a running virtual printer's."""
    if not bench.virtual:
        return bench.url("printer")
    printer: VirtualPrinterProcess = request.getfixturevalue("virtual_printer")
    return printer.url


@pytest.fixture
def serial_printer_url(virtual_printer: VirtualPrinterProcess, tmp_path: Path) -> Iterator[str]:
    """A ``serial:`` URL for the virtual printer: socat joins a pseudo-terminal to its port."""
    socat = shutil.which("socat")
    if socat is None:
        pytest.skip("socat is not installed (apt-get install socat)")
    link = tmp_path / "ttyPRINTER"
    proc = subprocess.Popen(
        [socat, f"pty,link={link},rawer,echo=0", f"tcp:{virtual_printer.host}:{virtual_printer.port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not link.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("socat did not make the pseudo-terminal")
            time.sleep(0.02)
        yield f"serial:{link}?baudrate=19200"
    finally:
        stop_process(proc)
