"""Real ESC/POS receipt printers over python-escpos: ``usb:``, ``serial:``, ``tcp:``, ``file:`` URLs.

python-escpos owns the connection (``Usb``, ``Serial``, ``Network``, ``File``) and the
ESC/POS; :func:`drivers.escpos_render.render` lays a document out. This module picks the
connection and the model's profile from the URL, asks the printer for its status (DLE EOT)
before each document where the printer answers, and turns every connection failure into a
:class:`~hal.errors.PrinterFault` with one line for the cashier. The connection is opened
lazily and re-opened on the next operation after it broke, so the same object survives a
printer that was switched off or unplugged.

URL options: ``model=NAME`` (see :data:`MODELS`) and ``width=32|48`` (columns; 58 mm paper
is 32, 80 mm is 48), ``baudrate=N`` for ``serial:``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from escpos.escpos import Escpos  # type: ignore[import-untyped]
from escpos.exceptions import DeviceNotFoundError  # type: ignore[import-untyped]
from escpos.exceptions import Error as EscposError
from escpos.printer import File, Network, Serial, Usb  # type: ignore[import-untyped]

from drivers.escpos_render import render
from hal.device_url import DeviceURL
from hal.document import Document, Line, char_width
from hal.errors import DeviceUnavailable, PrinterFault
from hal.interfaces import Printer, PrinterStatus
from hal.registry import DeviceContext

__all__ = ["MODELS", "EscposPrinter", "PrinterModel", "connect"]

log = logging.getLogger(__name__)

DLE_EOT = b"\x10\x04"
STATUS_TIMEOUT = 1.0  # seconds to wait for a DLE EOT answer
WRITE_TIMEOUT = 5.0  # seconds for a TCP connect or a write that the printer does not take


@dataclass(frozen=True)
class PrinterModel:
    """What the driver needs to know about a model: columns, Chinese ROM, python-escpos profile."""

    name: str
    width: int  # columns of the normal font
    chinese: bool  # has a GB18030 character ROM (FS & Chinese mode)
    escpos_profile: str  # python-escpos capabilities profile (code pages, cutter)
    description: str


MODELS: dict[str, PrinterModel] = {
    m.name: m
    for m in (
        PrinterModel("generic-58", 32, True, "default", "58 mm Chinese thermal printer with cutter"),
        PrinterModel("generic-80", 48, True, "default", "80 mm Chinese thermal printer with cutter"),
        PrinterModel("pos-5890", 32, True, "POS-5890", "POS-5890/XP-58 family, 58 mm, tear bar"),
        PrinterModel("tm-t20ii", 48, False, "TM-T20II", "Epson TM-T20II, code pages only"),
    )
}
DEFAULT_MODEL = "generic-58"
_MODEL_BY_WIDTH = {32: "generic-58", 48: "generic-80"}

# DLE EOT answers (ESC/POS): bits 1 and 4 set, bits 0 and 7 clear in every status byte.
_FIXED_MASK, _FIXED_BITS = 0x93, 0x12
_OFFLINE = 0x08  # DLE EOT 1
_COVER_OPEN = 0x04  # DLE EOT 2
_ERROR = 0x40  # DLE EOT 2: an error occurred (cutter jam, head too hot ...)
_PAPER_END = 0x60  # DLE EOT 4: roll paper end sensor


def choose_model(options: Mapping[str, str]) -> tuple[PrinterModel, int]:
    """The model and column count a URL's options ask for; :class:`DeviceUnavailable` if unknown."""
    width_text = options.get("width")
    width: int | None = None
    if width_text is not None:
        if width_text not in ("32", "48"):
            raise DeviceUnavailable(f"printer width {width_text!r} must be 32 or 48 columns")
        width = int(width_text)
    name = options.get("model") or (_MODEL_BY_WIDTH[width] if width else DEFAULT_MODEL)
    model = MODELS.get(name.lower())
    if model is None:
        raise DeviceUnavailable(f"unknown printer model {name!r} (models: {', '.join(MODELS)})")
    return model, width or model.width


class _Network(Network):  # type: ignore[misc]
    """python-escpos's Network, connected by ``socket.create_connection`` so that IPv6
    addresses and host names resolving to them work too."""

    def open(self, raise_not_found: bool = True) -> None:
        self.close()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise DeviceNotFoundError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self.device = sock


def _connection(url: DeviceURL, profile: str) -> Escpos:
    """A python-escpos printer for ``url``, not yet opened."""
    if url.scheme == "usb":
        vid, pid = url.path.split(":")
        return Usb(int(vid, 16), int(pid, 16), timeout=int(WRITE_TIMEOUT * 1000), profile=profile)
    if url.scheme == "serial":
        baudrate = int(url.options.get("baudrate", "9600"))
        return Serial(url.path, baudrate=baudrate, timeout=WRITE_TIMEOUT, profile=profile)
    if url.scheme == "tcp":
        host, _, port = url.path.rpartition(":")
        return _Network(host.strip("[]"), int(port), timeout=WRITE_TIMEOUT, profile=profile)
    if url.scheme == "file":
        return File(url.path, profile=profile)
    raise DeviceUnavailable(f"printer URL scheme '{url.scheme}:' is not an ESC/POS connection")


def _query(conn: Escpos, n: int) -> int | None:
    """Send DLE EOT ``n`` and return the status byte; None if nothing valid came back in time.

    :class:`OSError` (or a pyusb/pyserial error derived from it) if the link is gone.
    """
    device = conn.device
    if isinstance(conn, File):
        return None  # a file or /dev/usb/lp* opened for writing: nothing to read back
    if isinstance(conn, Network):
        _drain_socket(device)
        device.sendall(DLE_EOT + bytes([n]))
        device.settimeout(STATUS_TIMEOUT)
        try:
            data = device.recv(1)
        except TimeoutError:
            return None
        finally:
            device.settimeout(WRITE_TIMEOUT)
        if not data:
            raise ConnectionResetError("the printer closed the connection")
    elif isinstance(conn, Serial):
        device.reset_input_buffer()
        device.write(DLE_EOT + bytes([n]))
        device.timeout = STATUS_TIMEOUT
        try:
            data = device.read(1)
        finally:
            device.timeout = WRITE_TIMEOUT
    else:  # Usb: answers come on the bulk IN endpoint
        import usb.core  # type: ignore[import-not-found]  # only here when pyusb is installed

        device.write(conn.out_ep, DLE_EOT + bytes([n]), int(WRITE_TIMEOUT * 1000))
        try:
            data = bytes(device.read(conn.in_ep, 16, int(STATUS_TIMEOUT * 1000)))[-1:]
        except usb.core.USBTimeoutError:
            return None
    if not data or data[0] & _FIXED_MASK != _FIXED_BITS:
        return None
    return data[0]


def _drain_socket(sock: socket.socket) -> None:
    """Throw away late answers; :class:`ConnectionResetError` if the printer hung up meanwhile."""
    sock.setblocking(False)
    try:
        while True:
            try:
                data = sock.recv(256)
            except BlockingIOError:
                return
            if not data:
                raise ConnectionResetError("the printer closed the connection")
    finally:
        sock.settimeout(WRITE_TIMEOUT)


class EscposPrinter(Printer):
    """A receipt printer on a python-escpos connection, re-opened lazily after a failure."""

    def __init__(self, url: DeviceURL, model: PrinterModel, width: int) -> None:
        self._url = url
        self.model = model
        self.width = width
        self.encoding = "gb18030" if model.chinese else "cp437"
        self._conn: Escpos | None = None
        self._answers = False  # the printer has answered a DLE EOT at least once
        self._silent: Escpos | None = None  # a connection on which it did not answer
        self._closed = False
        self._warned_cjk = False
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        return {
            "driver": "escpos",
            "role": "printer",
            "url": self._url.text,
            "model": self.model.name,
            "description": self.model.description,
            "width": self.width,
            "encoding": self.encoding,
            "answers_status": self._answers,
        }

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop()

    def status(self) -> PrinterStatus:
        with self._lock:
            if self._closed:
                return PrinterStatus(online=False)
            try:
                answered = self._status()
            except PrinterFault:
                return PrinterStatus(online=False)
            return answered or PrinterStatus(online=True)

    def print_document(self, doc: Document) -> None:
        with self._lock:
            if self._closed:
                raise PrinterFault("Printer not connected")
            status = self._status()
            if status is not None:
                if status.paper_out:
                    raise PrinterFault("Printer paper out: load paper")
                if status.cover_open:
                    raise PrinterFault("Printer cover open: close it")
                if not status.online:
                    raise PrinterFault("Printer error (cutter jam or overheated): check the printer")
            conn = self._open()
            # After ESC @ the printer is back on its default code page, but python-escpos's
            # encoder remembers the page it selected last: make it select one again.
            conn.magic.encoding = None
            try:
                render(self._printable(doc), conn, width=self.width, encoding=self.encoding)
            except PrinterFault as exc:
                if isinstance(exc.__cause__, OSError):
                    self._drop()
                    raise PrinterFault(
                        "Printer connection lost while printing: check it, then reprint"
                    ) from exc
                raise
            log.info("printed %r on %s", doc.title, self._url.text)

    # --- connection ----------------------------------------------------------------------

    def _open(self) -> Escpos:
        if self._conn is None:
            conn = _connection(self._url, self.model.escpos_profile)
            try:
                conn.open()
            except (DeviceNotFoundError, EscposError, OSError) as exc:
                log.warning("printer %s not reachable: %s", self._url.text, exc)
                raise PrinterFault(
                    f"Printer not reachable ({self._url.text}): check cable and power"
                ) from exc
            if isinstance(conn, Serial):
                # Without a write timeout a printer holding DTR/DSR (offline) blocks forever.
                conn.device.write_timeout = WRITE_TIMEOUT
            self._conn = conn
            log.info("printer %s connected", self._url.text)
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._silent = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _status(self) -> PrinterStatus | None:
        """Ask the printer; None if it does not answer status queries (a file, some models).

        An old connection that turns out broken is re-opened once: printers drop idle
        connections, and a printer switched off and on again is a new peer.
        """
        fresh = self._conn is None
        for _attempt in (1, 2):
            conn = self._open()
            try:
                status = self._ask(conn)
            except (OSError, EscposError) as exc:
                self._drop()
                if fresh:
                    log.warning("printer %s: %s", self._url.text, exc)
                    raise PrinterFault(
                        f"Printer not reachable ({self._url.text}): check cable and power"
                    ) from exc
                fresh = True
                continue
            if status is None and self._answers and not fresh:
                # It answered before and is silent now: a dead connection (cable pulled,
                # printer restarted). A new connection tells whether it is still there.
                self._drop()
                fresh = True
                continue
            return status
        return None  # not reached

    def _ask(self, conn: Escpos) -> PrinterStatus | None:
        if conn is self._silent:
            # Asked once on this connection without an answer: do not wait again, but
            # still notice a peer that hung up.
            if isinstance(conn, Network):
                _drain_socket(conn.device)
            return None
        printer = _query(conn, 1)
        if printer is None:
            self._silent = conn
            return None
        self._answers = True
        offline_cause, paper = _query(conn, 2), _query(conn, 4)
        if offline_cause is None or paper is None:
            return None
        paper_out = bool(paper & _PAPER_END)
        cover_open = bool(offline_cause & _COVER_OPEN)
        error = bool(printer & _OFFLINE or offline_cause & _ERROR) and not (paper_out or cover_open)
        return PrinterStatus(online=not error, paper_out=paper_out, cover_open=cover_open)

    # --- text the model can print --------------------------------------------------------

    def _printable(self, doc: Document) -> Document:
        """``doc`` as this model can print it: without a Chinese ROM, CJK becomes '?'."""
        if self.model.chinese or all(line.text.isascii() for line in doc.lines):
            return doc
        lines = tuple(_without_cjk(line) for line in doc.lines)
        if lines != doc.lines and not self._warned_cjk:
            self._warned_cjk = True
            log.warning("printer model %s has no Chinese characters: printing '?' for them",
                        self.model.name)
        return replace(doc, lines=lines)


def _without_cjk(line: Line) -> Line:
    if line.text.isascii():
        return line
    return replace(line, text="".join("?" if char_width(ch) == 2 else ch for ch in line.text))


def connect(role: str, url: DeviceURL, context: DeviceContext) -> Printer:
    """Open the printer at ``url`` (the registry's driver entry point); nothing is sent yet."""
    if role != "printer":
        raise DeviceUnavailable(f"the ESC/POS driver opens printers, not a {role}")
    if url.scheme == "usb" and not Usb.is_usable():
        raise DeviceUnavailable(
            "usb: printers need the Python package 'pyusb', which is not installed"
        )
    if url.scheme == "serial" and not Serial.is_usable():
        raise DeviceUnavailable(
            "serial: printers need the Python package 'pyserial', which is not installed"
        )
    model, width = choose_model(url.options)
    return EscposPrinter(url, model, width)
