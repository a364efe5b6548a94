"""The control port: a line protocol on loopback to change a running host's fault rules.

One command per line, one reply line per command: ``ok <JSON>`` or ``error <text>``.

    fault add SPEC      ok {"id": 3, "rule": "drop:mti=0200:rate=0.05"}
    fault list          ok [{"id": 3, "rule": "...", "left": null, ...}, ...]
    fault remove ID     ok {"removed": 3}
    fault clear         ok {"cleared": 2}
    stats               ok {"messages": 120, "faults": {"drop": 6, ...}, "rules": 1, "seed": 7}
    help                ok ["fault add SPEC", ...]

``nc 127.0.0.1 PORT`` is enough for a person; ``posterm-host fault --control`` wraps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

from host.errors import HostError
from host.faults import SYNTAX, FaultSpecError, FaultTable, parse_rule

logger = logging.getLogger(__name__)

MAX_LINE = 1024
COMMANDS = ["fault add SPEC", "fault list", "fault remove ID", "fault clear", "stats", "help"]


class ControlError(HostError):
    """The control port cannot be reached or its answer is not the protocol."""


class ControlRefused(ControlError):
    """The host understood the line and refused it (e.g. a bad fault rule)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback name or address (the control port has no login)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Control:
    """Executes control commands against one host's fault table."""

    def __init__(self, faults: FaultTable):
        self.faults = faults
        self._writers: set[asyncio.StreamWriter] = set()
        self._commands: dict[tuple[str, ...], Callable[[str], Any]] = {
            ("fault", "add"): self._add,
            ("fault", "list"): self._list,
            ("fault", "remove"): self._remove,
            ("fault", "clear"): self._clear,
            ("stats",): self._stats,
            ("help",): self._help,
        }

    def execute(self, line: str) -> str:
        """The reply line (without its newline) to one command line."""
        words = line.split()
        for size in (2, 1):
            command = self._commands.get(tuple(w.lower() for w in words[:size]))
            if command is not None:
                argument = " ".join(words[size:])
                try:
                    return "ok " + json.dumps(command(argument))
                except FaultSpecError as exc:
                    return f"error {exc}"
        return f"error unknown command {line.strip()[:40]!r}; commands: {', '.join(COMMANDS)}"

    def _add(self, spec: str) -> dict[str, Any]:
        if not spec:
            raise FaultSpecError(f"fault add needs a rule: {SYNTAX}")
        rule = self.faults.add(parse_rule(spec))
        logger.info("control: fault rule %d added: %s", rule.id, rule.text())
        return {"id": rule.id, "rule": rule.text()}

    def _list(self, extra: str) -> list[dict[str, Any]]:
        self._no_argument("fault list", extra)
        return [rule.as_json() for rule in self.faults.rules]

    def _remove(self, argument: str) -> dict[str, int]:
        if not argument.isdigit():
            raise FaultSpecError("fault remove needs a rule id (see fault list)")
        for rule in self.faults.rules:
            if rule.id == int(argument):
                self.faults.rules.remove(rule)
                logger.info("control: fault rule %d removed", rule.id)
                return {"removed": rule.id}
        raise FaultSpecError(f"no fault rule {argument}")

    def _clear(self, extra: str) -> dict[str, int]:
        self._no_argument("fault clear", extra)
        cleared = self.faults.clear()
        logger.info("control: %d fault rule(s) cleared", cleared)
        return {"cleared": cleared}

    def _stats(self, extra: str) -> dict[str, Any]:
        self._no_argument("stats", extra)
        return self.faults.stats()

    def _help(self, _extra: str) -> list[str]:
        return COMMANDS + [f"SPEC = {SYNTAX}"]

    @staticmethod
    def _no_argument(command: str, extra: str) -> None:
        if extra:
            raise FaultSpecError(f"{command} takes no argument")

    # -- the socket ----------------------------------------------------------------------

    async def serve_connection(self, reader: asyncio.StreamReader,
                               writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as exc:
                    if not exc.partial.strip():
                        break
                    line = exc.partial
                except asyncio.LimitOverrunError:
                    writer.write(b"error line too long\n")
                    break
                if line.strip():
                    reply = self.execute(line.decode("utf-8", "replace"))
                    writer.write(reply.encode() + b"\n")
                    await writer.drain()
                if not line.endswith(b"\n"):
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def close_connections(self) -> None:
        for writer in list(self._writers):
            writer.close()

    async def start(self, host: str, port: int) -> asyncio.Server:
        """Listen on host:port (loopback only; 0 = a free port)."""
        return await asyncio.start_server(self.serve_connection, host, port, limit=MAX_LINE)


def send(host: str, port: int, line: str, *, timeout: float = 5.0) -> Any:
    """Send one command to a running host's control port; its JSON payload, or ControlError."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(line.strip().encode() + b"\n")
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise ControlError(f"cannot reach the control port {host}:{port}: "
                           f"{exc.strerror or exc}") from None
    reply = data.decode("utf-8", "replace").strip()
    status, _, payload = reply.partition(" ")
    if status == "ok":
        return json.loads(payload)
    if status == "error":
        raise ControlRefused(payload)
    raise ControlError(f"unexpected reply from {host}:{port}: {reply[:80]!r}")
