"""Shared parts of the integration tests: the real ``posterm`` and ``posterm-host`` processes.

Nothing of ours is mocked or patched. The host simulator runs as its own process on a free
loopback port, the terminal is the ``posterm`` command run as a subprocess, and a small TCP
relay between the two records every length-prefixed frame each way, so the tests can check
what really went over the wire.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app import config as config_mod

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
RUN_TIMEOUT = 30
HOST_SILENT_TIMEOUT = 1          # seconds: host.response_timeout for the host-silent card
LISTEN_PREFIX = "posterm-host listening on "


# -- running the commands ---------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One finished ``posterm`` process."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def __str__(self) -> str:
        return (f"$ posterm {' '.join(self.args)}\nexit {self.returncode}\n"
                f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "POSTERM_DATA"}
    env.update({"PYTHONIOENCODING": "utf-8", "COLUMNS": "160"})
    return env


def posterm_cmd(*args: str | Path, timeout: float = RUN_TIMEOUT) -> Run:
    """Run ``posterm ARGS`` as its own process."""
    shown = tuple(str(a) for a in args)
    proc = subprocess.run([PY, "-m", "app", *shown], check=False, capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout, cwd=REPO, env=_env())
    return Run(shown, proc.returncode, proc.stdout, proc.stderr)


def posterm(data: Path, *args: str | Path, timeout: float = RUN_TIMEOUT) -> Run:
    """Run ``posterm --data DATA ARGS``."""
    return posterm_cmd("--data", data, *args, timeout=timeout)


def assert_one_clean_error_line(run: Run, code: int) -> str:
    """The CLI contract for a failure: exit ``code``, one line on stderr, no traceback."""
    assert run.returncode == code, str(run)
    assert "Traceback" not in run.stdout + run.stderr, str(run)
    assert len(run.stderr_lines) == 1, str(run)
    assert len(run.stderr.splitlines()) == 1, str(run)     # not even blank lines around it
    return run.stderr_lines[0]


def set_config(data: Path, section: str, key: str, value: Any) -> None:
    """Rewrite one key of DATA/posterm.toml (validated load, atomic write)."""
    values = config_mod.load(data).values
    values[section][key] = value
    config_mod.write(data, values)


def free_closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the host simulator -----------------------------------------------------------------------

class HostSim:
    """``posterm-host --data DIR --listen 127.0.0.1:0`` as a process; stop() sends SIGTERM."""

    def __init__(self, data: Path, log: Path, *flags: str) -> None:
        self.data = data
        self.log_path = log
        data.mkdir(parents=True, exist_ok=True)
        self._log = open(log, "w", encoding="utf-8")  # noqa: SIM115 (open while the host runs)
        self.proc = subprocess.Popen(
            [PY, "-m", "host", "--data", str(data), "--listen", "127.0.0.1:0", *flags],
            stdout=subprocess.PIPE, stderr=self._log, text=True, cwd=REPO, env=_env())
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith(LISTEN_PREFIX):
            self.stop()
            raise RuntimeError(f"posterm-host did not start: {line!r}; log: "
                               f"{log.read_text(encoding='utf-8')}")
        self.address = line[len(LISTEN_PREFIX):]
        host, _, port = self.address.rpartition(":")
        self.host, self.port = host, int(port)
        self.control_address = None
        if "--control" in flags:
            self.control_address = self.proc.stdout.readline().strip().rsplit(" ", 1)[1]

    def control(self, command: str) -> str:
        """One command to the host's control port (``fault add drop:mti=0200``, ``stats``)."""
        assert self.control_address, "start the host with --control 127.0.0.1:0"
        host, _, port = self.control_address.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(command.encode() + b"\n")
            return sock.makefile().readline().strip()

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()
        return self.proc.returncode

    def ledger_rows(self) -> list[dict[str, Any]]:
        """HOSTDIR/host.db ``transactions``, read-only, oldest first."""
        return read_host_ledger(self.data)


def read_host_ledger(host_data: Path) -> list[dict[str, Any]]:
    uri = f"file:{host_data / 'host.db'}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM transactions ORDER BY id")]
    finally:
        conn.close()


# -- a relay that records the traffic ---------------------------------------------------------

@dataclass(frozen=True)
class Captured:
    """One frame as it went over the wire, 2-byte length prefix included."""

    direction: str          # "request" (terminal -> host) or "reply" (host -> terminal)
    raw: bytes

    @property
    def body(self) -> bytes:      # without the length prefix
        return self.raw[2:]

    @property
    def iso(self) -> bytes:       # without length, TPDU (5) and header (6)
        return self.raw[13:]


class Relay:
    """A TCP relay on a free loopback port in front of ``upstream``, recording every frame."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.frames: list[Captured] = []
        self._lock = threading.Lock()
        self._closed = False
        self._sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [downstream, upstream]
            for src, dst, direction in ((downstream, upstream, "request"),
                                        (upstream, downstream, "reply")):
                threading.Thread(target=self._pump, args=(src, dst, direction),
                                 daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        pending = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                # Record before forwarding, so a frame is in the list before its answer.
                pending += data
                while len(pending) >= 2:
                    size = int.from_bytes(pending[:2], "big")
                    if len(pending) < 2 + size:
                        break
                    with self._lock:
                        self.frames.append(Captured(direction, pending[:2 + size]))
                    pending = pending[2 + size:]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        with self._lock:
            for s in self._sockets:
                try:
                    s.close()
                except OSError:
                    pass


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def catalogue() -> dict[str, dict[str, Any]]:
    """The test cards as ``posterm cards --json`` lists them, by name."""
    run = posterm_cmd("cards", "--json")
    assert run.returncode == 0, str(run)
    return {c["name"]: c for c in run.json()["cards"]}


@dataclass
class Terminal:
    """A terminal data directory provisioned on a running host simulator."""

    data: Path
    host: HostSim

    def run(self, *args: str | Path, timeout: float = RUN_TIMEOUT) -> Run:
        return posterm(self.data, *args, timeout=timeout)


def provision(data: Path, host_address: str, host_data: Path, *extra: str) -> Run:
    run = posterm_cmd("init", "--data", data, "--host", host_address, "--host-data", host_data,
                      "--json", *extra)
    assert run.returncode == 0, str(run)
    return run


@pytest.fixture
def host_sim(tmp_path: Path):
    """A fresh host simulator for one test, stopped with SIGTERM afterwards."""
    sim = HostSim(tmp_path / "host", tmp_path / "host-stderr.log")
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def terminal(tmp_path: Path, host_sim: HostSim) -> Terminal:
    """A terminal initialised and provisioned on ``host_sim`` (not yet signed on)."""
    data = tmp_path / "terminal"
    provision(data, host_sim.address, host_sim.data)
    return Terminal(data, host_sim)


# -- the scripted day that most checks read -----------------------------------------------------

#: (card profile, amount typed, extra arguments, expected exit code, expected F39)
DAY_SALES: list[tuple[str, str, tuple[str, ...], int, str | None]] = [
    ("unionpay-debit-chip", "12.50", (), 0, "00"),
    ("decline-51", "500.00", (), 1, "51"),
    ("wrong-pin", "30.00", (), 1, "55"),
    ("expired", "45.00", (), 1, "54"),
    ("visa-chip", "88.00", (), 0, "00"),
    ("mc-tap", "23.40", (), 0, "00"),
    ("unionpay-credit-swipe", "199.99", ("--pin", "123456"), 0, "00"),
    ("host-silent", "66.66", (), 3, None),
]


@dataclass
class Day:
    """A day of sales run through a recording relay; the host is stopped once it is over."""

    data: Path
    host_data: Path
    host_log: Path
    init: Run
    signon: Run
    sales: dict[str, Run]
    frames: list[Captured]
    host_rows: list[dict[str, Any]]
    journal: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="session")
def day(tmp_path_factory: pytest.TempPathFactory) -> Day:
    """init (via the relay), sign-on, then every sale of DAY_SALES with ``--json``."""
    base = tmp_path_factory.mktemp("day")
    data, host_data = base / "terminal", base / "host"
    sim = HostSim(host_data, base / "host-stderr.log")
    relay = Relay((sim.host, sim.port))
    try:
        init = provision(data, relay.address, host_data)
        set_config(data, "host", "response_timeout", HOST_SILENT_TIMEOUT)
        signon = posterm(data, "signon", "--json")
        sales = {}
        for card, amount, extra, _, _ in DAY_SALES:
            sales[card] = posterm(data, "sale", amount, "--card", card, *extra, "--json")
    finally:
        relay.close()
        sim.stop()
    txns = posterm(data, "txns", "--json")
    assert txns.returncode == 0, str(txns)
    return Day(data=data, host_data=host_data, host_log=base / "host-stderr.log", init=init,
               signon=signon, sales=sales, frames=list(relay.frames),
               host_rows=read_host_ledger(host_data), journal=txns.json()["transactions"])
