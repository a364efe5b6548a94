"""Replaying recorded card sessions: a reader of its own at URL ``trace:PATH``, and the
answers the virtual cards give from a trace (the format and recording are in hal.trace).

A trace is JSON::

    {"interface": "contact" | "contactless", "atr": HEX,
     "apdus": [{"c": HEX, "r": HEX}, ...]}

"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hal.device_url import DeviceURL
from hal.errors import CardRemoved, DeviceUnavailable
from hal.interfaces import CardReader, ContactlessReader, Device
from hal.registry import DeviceContext
from hal.trace import check_trace, load_trace

__all__ = [
    "SW_NOT_FOUND",
    "TraceCardReader",
    "TraceContactlessReader",
    "TraceReplayer",
    "connect",
]

log = logging.getLogger(__name__)

SW_NOT_FOUND = b"\x6a\x82"
_SELECT = 0xA4


# --- replay ------------------------------------------------------------------------------


def _header_and_data(apdu: bytes) -> tuple[bytes, bytes]:
    """Header (CLA INS P1 P2) and command data of a short APDU, ignoring Le."""
    header, body = apdu[:4], apdu[4:]
    if len(body) > 1 and len(body) in (1 + body[0], 2 + body[0]) and body[0]:
        return header, body[1 : 1 + body[0]]
    return header, b""


class TraceReplayer:
    """Answers command APDUs from a trace, as the recorded card did.

    A command is matched by its exact bytes first, then by header and data (a different
    Le), then by header alone where the terminal's data varies (GPO, GENERATE AC, the
    unpredictable number) -- never for SELECT, whose data is the name. Among several
    matches the first one after the previous answer wins, so a command sent twice replays
    both recorded answers in order. Nothing matching: 6A82.
    """

    def __init__(self, trace: dict[str, Any]) -> None:
        check_trace(trace)
        self.interface: str = trace["interface"]
        self.atr = bytes.fromhex(trace["atr"])
        self._pairs = [(bytes.fromhex(p["c"]), bytes.fromhex(p["r"])) for p in trace["apdus"]]
        self._split = [_header_and_data(c) for c, _ in self._pairs]
        self._last = -1

    def reset(self) -> None:
        """Power-up: the next match is searched from the start of the trace."""
        self._last = -1

    def _pick(self, match: Callable[[int], bool]) -> int | None:
        found = [i for i in range(len(self._pairs)) if match(i)]
        if not found:
            return None
        return next((i for i in found if i > self._last), found[0])

    def transceive(self, apdu: bytes) -> bytes:
        """The recorded response to ``apdu`` (data + SW1 SW2), or 6A82."""
        apdu = bytes(apdu)
        header, data = _header_and_data(apdu)
        index = self._pick(lambda i: self._pairs[i][0] == apdu)
        if index is None:
            index = self._pick(lambda i: self._split[i] == (header, data))
        if index is None and len(apdu) >= 2 and apdu[1] != _SELECT:
            index = self._pick(lambda i: self._split[i][0] == header)
        if index is None:
            log.debug("trace has nothing for INS %02X", apdu[1] if len(apdu) > 1 else 0)
            return SW_NOT_FOUND
        self._last = index
        return self._pairs[index][1]


def trace_uid(atr: bytes) -> bytes:
    """The UID a replayed contactless card shows: 4 bytes (first 08, a random UID) from its ATR."""
    return b"\x08" + hashlib.sha256(atr).digest()[:3]


class _TraceReader:
    """A reader of its own that replays a trace file; the card is always present."""

    role = ""

    def __init__(self, url: DeviceURL, path: Path) -> None:
        self._url = url
        self._path = path
        self._replayer: TraceReplayer | None = None
        self._active = False
        self._closed = False
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        return {"driver": "trace", "role": self.role, "url": self._url.text,
                "model": f"trace replay of {self._path.name}"}

    def close(self) -> None:
        self._closed = True
        self._active = False

    def _activate(self) -> TraceReplayer:
        if self._closed:
            raise DeviceUnavailable("The trace reader is closed")
        # Read the file at each activation, so an edited or re-recorded trace is picked up.
        replayer = TraceReplayer(load_trace(self._path))
        replayer.reset()
        self._replayer, self._active = replayer, True
        return replayer

    def card_present(self) -> bool:
        return not self._closed

    def transceive(self, apdu: bytes) -> bytes:
        with self._lock:
            if self._closed:
                raise DeviceUnavailable("The trace reader is closed")
            if not self._active or self._replayer is None:
                raise CardRemoved("No card powered in the trace reader")
            return self._replayer.transceive(apdu)

    def _deactivate(self) -> None:
        self._active = False


class TraceCardReader(_TraceReader, CardReader):
    """``trace:PATH`` as a contact reader."""

    role = "card_reader"

    def wait_for_card(self, timeout: float) -> bytes:
        return self._activate().atr

    def power_off(self) -> None:
        self._deactivate()


class TraceContactlessReader(_TraceReader, ContactlessReader):
    """``trace:PATH`` as a contactless reader."""

    role = "contactless"

    def poll(self, timeout: float) -> bytes:
        return trace_uid(self._activate().atr)

    def release(self) -> None:
        self._deactivate()


def connect(role: str, url: DeviceURL, context: DeviceContext) -> Device:
    """Open ``trace:PATH`` for ``card_reader`` or ``contactless``; a relative path is taken
    from the current directory. :class:`TraceError` if the file is not a usable trace."""
    path = Path(url.path).expanduser()
    load_trace(path)  # refuse a missing or malformed file now, not at the first card
    if role == "card_reader":
        return TraceCardReader(url, path)
    if role == "contactless":
        return TraceContactlessReader(url, path)
    raise DeviceUnavailable(f"trace: cannot be a {role}")
