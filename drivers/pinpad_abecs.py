"""ABECS 2.12 PIN pad over a serial line (pyserial): URL ``serial:/dev/ttyUSB0?baudrate=19200``.

Two layers, as the specification ("Pinpad Abecs - Protocolo de Comunicação e Funcionamento",
v2.12, sections 2.2 and 2.3) draws them:

- the link level: ``SYN data ETB CRC`` packets with DC3 escaping, ACK/NAK with up to three
  tries, CAN answered by EOT to abort a blocking command (:class:`PacketDecoder`,
  :class:`AbecsLink`); the virtual PIN pad uses the same framing code;
- the commands posterm needs (OPN, CLO, GIN, GIX, DSP, GKY, GPN, CEX + GTK), behind
  :class:`hal.interfaces.PinPad` (:class:`AbecsPinPad`).

ABECS has no command to inject a master key or to check a working key's check value (a
working key travels, encrypted under the master key, inside every GPN). posterm adds two
vendor-extension commands for that, which the virtual PIN pad implements and a real pad
answers with ``ERR010`` (unknown command); see docs/pinpad.md:

- ``XMK`` (load a clear master key; provisioning of the virtual pad only);
- ``XKV`` (check that a working key decrypts under a master key to the given check value).

Nothing here logs a PAN, PIN block, track data or key.
"""

from __future__ import annotations

import binascii
import logging
import math
import termios
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import serial

from hal.device_url import DeviceURL
from hal.errors import Cancelled, DeviceError, DeviceUnavailable, InvalidKey, Timeout
from hal.interfaces import MagStripe, PinPad
from hal.registry import DeviceContext

__all__ = [
    "AbecsLink",
    "AbecsPinPad",
    "LinkError",
    "PacketDecoder",
    "Received",
    "Response",
    "abecs_params",
    "build_packet",
    "connect",
    "crc16",
    "decode_track",
    "encode_command",
    "encode_track",
    "escape",
    "parse_abecs_data",
    "parse_response",
    "unescape",
]

log = logging.getLogger(__name__)

# Link-level control bytes (section 2.2).
EOT = 0x04
ACK = 0x06
DC3 = 0x13
NAK = 0x15
SYN = 0x16
ETB = 0x17
CAN = 0x18

MAX_DATA = 2049  # PKTDATA before escaping
TRIES = 3  # sends of a command, bad responses, CANs
ACK_TIMEOUT = 2.0  # seconds for ACK/NAK after a command
BYTE_TIMEOUT = 2.0  # seconds between two bytes of a packet
EOT_TIMEOUT = 2.0  # seconds for EOT after CAN
RESPONSE_TIMEOUT = 10.0  # a non-blocking command's response
SILENCE = 0.5  # quiet line before NAKing a bad packet
POLL = 0.05  # read granularity: how soon a cancel or a deadline is noticed

# ABECS return codes (section 3.1.1) that posterm maps.
ST_OK = 0
ST_INVCALL = 10
ST_INVPARM = 11
ST_TIMEOUT = 12
ST_CANCEL = 13
ST_MANDAT = 19
ST_INTERR = 40
ST_MCDATAERR = 41
ST_ERRKEY = 42
ST_PINBUSY = 44
ST_ERRCRYPT = 46

# Abecs-command parameter and response-data identifiers (section 3.1.3).
SPE_IDLIST = 0x0001
SPE_CEXOPT = 0x0006
SPE_TRACKS = 0x0007
SPE_TIMEOUT = 0x000C
PP_SERNUM = 0x8001
PP_MODEL = 0x8003
PP_MNNAME = 0x8004
PP_SOVER = 0x8006
PP_SPECVER = 0x8007
PP_MANVERS = 0x8008
PP_MKTDESP = 0x8032
PP_EVENT = 0x8040
PP_TRK2INC = 0x8042
PP_TRACK1 = 0x8044
PP_TRACK2 = 0x8045
PP_TRACK3 = 0x8046

# GKY answers a key as its return code.
_KEYS = {0: "ok", 4: "f1", 5: "f2", 6: "f3", 7: "f4", 8: "clear"}


# --- framing ----------------------------------------------------------------------------


def crc16(data: bytes) -> int:
    """The packet CRC of section 7.2: CRC-16/CCITT, polynomial 0x1021, initial value 0, no
    reflection and no final XOR (which is what ``binascii.crc_hqx(data, 0)`` computes)."""
    return binascii.crc_hqx(data, 0)


def escape(data: bytes) -> bytes:
    """PKTDATA as sent: DC3, SYN and ETB each become DC3 followed by the byte + 20h."""
    # DC3 first, so the DC3s the other two replacements insert are not escaped again.
    return data.replace(b"\x13", b"\x13\x33").replace(b"\x16", b"\x13\x36").replace(b"\x17", b"\x13\x37")


def unescape(data: bytes) -> bytes:
    """The inverse of :func:`escape`; ``ValueError`` on a DC3 with nothing after it."""
    out = bytearray()
    it = iter(data)
    for byte in it:
        if byte == DC3:
            nxt = next(it, None)
            if nxt is None:
                raise ValueError("DC3 at the end of the data")
            out.append((nxt - 0x20) & 0xFF)
        else:
            out.append(byte)
    return bytes(out)


def build_packet(data: bytes) -> bytes:
    """One packet: SYN, escaped data, ETB, then the CRC of the *unescaped* data and ETB,
    most significant byte first (format X2). The CRC bytes themselves are not escaped."""
    if len(data) > MAX_DATA:
        raise ValueError(f"a packet holds at most {MAX_DATA} bytes, not {len(data)}")
    crc = crc16(data + bytes((ETB,)))
    return bytes((SYN,)) + escape(data) + bytes((ETB,)) + crc.to_bytes(2, "big")


@dataclass(frozen=True)
class Received:
    """What :meth:`PacketDecoder.feed` recognised: a checked packet, a packet that failed its
    CRC or framing (``bad``), or a single byte outside any packet (``control``: ACK, NAK,
    EOT, CAN or line noise)."""

    packet: bytes | None = None
    control: int | None = None
    bad: bool = False


class PacketDecoder:
    """Reassembles packets from the bytes of a serial line, one byte at a time."""

    _IDLE, _DATA, _ESC, _CRC = range(4)

    def __init__(self) -> None:
        self._state = self._IDLE
        self._data = bytearray()
        self._crc = bytearray()

    @property
    def in_packet(self) -> bool:
        """Whether a packet has started (SYN seen) and not yet ended."""
        return self._state != self._IDLE

    def reset(self) -> None:
        """Forget a packet under way (after an inter-byte timeout)."""
        self._state = self._IDLE
        self._data.clear()
        self._crc.clear()

    def feed(self, byte: int) -> Received | None:
        """Take one byte; return what it completed, or None while a packet is incomplete."""
        state = self._state
        if state == self._IDLE:
            if byte == SYN:
                self._state = self._DATA
                self._data.clear()
                self._crc.clear()
                return None
            return Received(control=byte)
        if state == self._DATA:
            if byte == ETB:
                self._state = self._CRC
            elif byte == DC3:
                self._state = self._ESC
            elif byte == SYN:
                # A SYN can only start a packet: the one under way was cut short.
                self._data.clear()
                return Received(bad=True)
            else:
                self._data.append(byte)
            return self._check_length()
        if state == self._ESC:
            # Section 2.2.3: "subtrai 20h do byte recebido".
            self._data.append((byte - 0x20) & 0xFF)
            self._state = self._DATA
            return self._check_length()
        self._crc.append(byte)
        if len(self._crc) < 2:
            return None
        data = bytes(self._data)
        good = int.from_bytes(self._crc, "big") == crc16(data + bytes((ETB,)))
        self.reset()
        return Received(packet=data) if good else Received(bad=True)

    def _check_length(self) -> Received | None:
        if len(self._data) > MAX_DATA:
            self.reset()
            return Received(bad=True)
        return None


# --- link level (the SPE's side) ---------------------------------------------------------

# What pyserial and the OS raise when a port goes away (termios.error from tcflush).
_PORT_ERRORS = (serial.SerialException, OSError, termios.error)


class LinkError(DeviceUnavailable):
    """The line failed: the port went away, the pad stopped answering, or three bad tries."""


class Interrupted(Exception):
    """A blocking command was stopped by CAN/EOT; ``reason`` is 'cancel' or 'timeout'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AbecsLink:
    """The terminal (SPE) side of the link level on an open pyserial port (section 2.2.2).

    One thread exchanges packets; :meth:`send_can` may be called from another thread to
    abort a blocking command. The port's read timeout should be short (:data:`POLL`).
    """

    def __init__(
        self,
        port: serial.SerialBase,
        *,
        ack_timeout: float = ACK_TIMEOUT,
        byte_timeout: float = BYTE_TIMEOUT,
        eot_timeout: float = EOT_TIMEOUT,
        silence: float = SILENCE,
    ) -> None:
        self._port = port
        self._ack_timeout = ack_timeout
        self._byte_timeout = byte_timeout
        self._eot_timeout = eot_timeout
        self._silence = silence
        self._decoder = PacketDecoder()
        self._buffer = bytearray()
        self._write_lock = threading.Lock()

    # raw I/O: every pyserial/OS error becomes a LinkError

    def _write(self, data: bytes) -> None:
        with self._write_lock:
            try:
                self._port.write(data)
            except _PORT_ERRORS as exc:
                raise LinkError("The PIN pad is disconnected") from exc

    def _read(self, until: float) -> int | None:
        """The next byte, or None if none came by ``until`` (a monotonic time)."""
        if self._buffer:
            byte = self._buffer[0]
            del self._buffer[0]
            return byte
        while time.monotonic() < until:
            try:
                chunk = self._port.read(max(1, self._port.in_waiting))
            except _PORT_ERRORS as exc:
                raise LinkError("The PIN pad is disconnected") from exc
            if chunk:
                self._buffer += chunk[1:]
                return chunk[0]
        return None

    def discard_input(self) -> None:
        """Drop whatever is waiting on the line (a late response or EOT) before a new command."""
        self._buffer.clear()
        self._decoder.reset()
        try:
            self._port.reset_input_buffer()
        except _PORT_ERRORS as exc:
            raise LinkError("The PIN pad is disconnected") from exc

    def _wait_silence(self) -> None:
        """Section 2.2.3: discard bytes until the line has been quiet for a while (bounded)."""
        give_up = time.monotonic() + 4 * self._silence + self._byte_timeout
        quiet_until = time.monotonic() + self._silence
        while time.monotonic() < give_up:
            if self._read(min(quiet_until, give_up)) is None:
                break
            quiet_until = time.monotonic() + self._silence
        self._decoder.reset()

    # packets

    def send(self, data: bytes) -> None:
        """Send one packet and wait for its ACK; on NAK send it again, three tries in all."""
        packet = build_packet(data)
        for attempt in range(1, TRIES + 1):
            self._write(packet)
            answer = self._wait_ack()
            if answer == ACK:
                return
            if answer is None:
                raise LinkError("The PIN pad does not answer")
            log.info("PIN pad answered NAK (try %d of %d)", attempt, TRIES)
        raise LinkError(f"The PIN pad refused the command {TRIES} times (line noise?)")

    def _wait_ack(self) -> int | None:
        until = time.monotonic() + self._ack_timeout
        while (byte := self._read(until)) is not None:
            if byte in (ACK, NAK):
                return byte
        return None

    def receive(
        self,
        *,
        deadline: float | None,
        blocking: bool,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> bytes:
        """Wait for one packet from the pad and return its data; NAK a bad one (section 2.2.2.2).

        ``deadline`` (monotonic) of a non-blocking command: :class:`LinkError` when it passes.
        For a blocking command (``blocking``), the deadline or ``cancelled()`` turning true
        sends CAN, waits for EOT and raises :class:`Interrupted`.
        """
        bad = 0
        last_byte = time.monotonic()
        while True:
            now = time.monotonic()
            if blocking and cancelled():
                self.abort(can_sent=True)
                raise Interrupted("cancel")
            if deadline is not None and now >= deadline:
                if not blocking:
                    raise LinkError("The PIN pad stopped answering")
                self.abort(can_sent=False)
                raise Interrupted("timeout")
            until = now + POLL if deadline is None else min(now + POLL, deadline)
            byte = self._read(until)
            if byte is None:
                if self._decoder.in_packet and time.monotonic() - last_byte > self._byte_timeout:
                    self._decoder.reset()
                    bad = self._reject(bad)
                continue
            last_byte = time.monotonic()
            got = self._decoder.feed(byte)
            if got is not None and got.control == EOT and blocking and cancelled():
                raise Interrupted("cancel")  # the EOT for the CAN send_can() sent already
            if got is None or got.control is not None:
                continue  # inside a packet, or a stray byte (a late EOT, noise) between packets
            if got.bad:
                bad = self._reject(bad)
                continue
            assert got.packet is not None
            return got.packet

    def _reject(self, bad: int) -> int:
        # Section 2.2.3 flow: the third bad packet in a row is an error; before that, wait for
        # a quiet line and ask for the packet again with NAK.
        bad += 1
        if bad >= TRIES:
            raise LinkError(f"The PIN pad's answer was garbled {TRIES} times (line noise?)")
        self._wait_silence()
        log.info("garbled packet from the PIN pad: NAK (%d of %d)", bad, TRIES - 1)
        self._write(bytes((NAK,)))
        return bad

    # cancelling

    def send_can(self) -> None:
        """Send CAN now (safe from another thread while :meth:`receive` blocks)."""
        self._write(bytes((CAN,)))

    def abort(self, *, can_sent: bool = False, tries: int = TRIES) -> None:
        """Section 2.2.2.3: CAN until the pad answers EOT (other bytes are ignored), up to
        ``tries`` CANs, two seconds each; :class:`LinkError` if no EOT comes."""
        for attempt in range(tries):
            if attempt or not can_sent:
                self.send_can()
            until = time.monotonic() + self._eot_timeout
            while (byte := self._read(until)) is not None:
                if byte == EOT:
                    self._decoder.reset()
                    return
        raise LinkError("The PIN pad does not answer CAN")


# --- application level ------------------------------------------------------------------


def encode_command(cmd_id: str, *blocks: bytes) -> bytes:
    """``CMD_ID`` (3 letters) then each block as a 3-digit length and its bytes (section 2.3.1)."""
    if len(cmd_id) != 3 or not cmd_id.isascii() or not cmd_id.isalpha():
        raise ValueError(f"a command id is three letters, not {cmd_id!r}")
    out = bytearray(cmd_id.encode("ascii"))
    for block in blocks:
        if len(block) > 999:
            raise ValueError(f"a command block holds at most 999 bytes, not {len(block)}")
        out += f"{len(block):03d}".encode("ascii") + block
    return bytes(out)


@dataclass(frozen=True)
class Response:
    """A pad's answer: ``RSP_ID``, ``RSP_STAT`` and the data blocks (section 2.3.2)."""

    cmd: str
    status: int
    blocks: tuple[bytes, ...] = ()

    @property
    def data(self) -> bytes:
        """All blocks joined (Abecs commands may split their data over several blocks)."""
        return b"".join(self.blocks)


def parse_response(data: bytes) -> Response:
    """Split a response packet; ``ValueError`` if it is not ``ID STAT (LEN BLOCK)*``."""
    if len(data) < 6 or not data[3:6].isdigit():
        raise ValueError("a response starts with a 3-letter id and a 3-digit status")
    cmd = data[:3].decode("ascii", errors="replace")
    blocks: list[bytes] = []
    pos = 6
    while pos < len(data):
        size_text = data[pos:pos + 3]
        if len(size_text) != 3 or not size_text.isdigit():
            raise ValueError("a response block has no 3-digit length")
        size = int(size_text)
        block = data[pos + 3:pos + 3 + size]
        if len(block) != size:
            raise ValueError("a response block is shorter than its length")
        blocks.append(block)
        pos += 3 + size
    return Response(cmd, int(data[3:6]), tuple(blocks))


def abecs_params(params: Iterable[tuple[int, bytes]]) -> bytes:
    """Abecs-command parameters: each as a 2-byte id, 2-byte length and value (section 3.1.3.1)."""
    out = bytearray()
    for ident, value in params:
        out += ident.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value
    return bytes(out)


def parse_abecs_data(data: bytes) -> dict[int, bytes]:
    """Abecs-command parameters or response data by id; the first of a repeated id wins
    (section 6.2.2). ``ValueError`` if the structure is cut short."""
    found: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise ValueError("an Abecs data object is cut short")
        ident = int.from_bytes(data[pos:pos + 2], "big")
        size = int.from_bytes(data[pos + 2:pos + 4], "big")
        value = data[pos + 4:pos + 4 + size]
        if len(value) != size:
            raise ValueError("an Abecs data object is shorter than its length")
        found.setdefault(ident, value)
        pos += 4 + size
    return found


_TRACK_SYMBOLS = "0123456789:;<=>?"


def encode_track(track: str) -> bytes:
    """Track 2/3 as PP_TRACK2/PP_TRACK3 carry it: one symbol per nibble, padded with Fh."""
    nibbles = [_TRACK_SYMBOLS.index(ch) for ch in track]
    if len(nibbles) % 2:
        nibbles.append(0xF)
    return bytes(hi << 4 | lo for hi, lo in zip(nibbles[::2], nibbles[1::2]))


def decode_track(data: bytes) -> str:
    """The inverse of :func:`encode_track`, without the Fh padding."""
    text = "".join(_TRACK_SYMBOLS[b >> 4] + _TRACK_SYMBOLS[b & 0xF] for b in data)
    return text.rstrip("?")


def screen(text: str) -> bytes:
    """``text`` as DSP's 2 lines of 16 characters in ISO 8859-1 (section 7.3.2); characters the
    pad cannot show become '?'. A single long line wraps onto the second line."""
    lines = text.split("\n")
    if len(lines) == 1 and len(lines[0]) > 16:
        lines = [lines[0][:16], lines[0][16:]]
    padded = "".join(line[:16].ljust(16) for line in (lines + ["", ""])[:2])
    return padded.encode("latin-1", errors="replace")


def _status_name(status: int) -> str:
    return {
        ST_INVCALL: "ST_INVCALL", ST_INVPARM: "ST_INVPARM", ST_TIMEOUT: "ST_TIMEOUT",
        ST_CANCEL: "ST_CANCEL", ST_MANDAT: "ST_MANDAT", ST_INTERR: "ST_INTERR",
        ST_MCDATAERR: "ST_MCDATAERR", ST_ERRKEY: "ST_ERRKEY", ST_PINBUSY: "ST_PINBUSY",
        ST_ERRCRYPT: "ST_ERRCRYPT",
    }.get(status, f"code {status:03d}")


# Default translation of return codes into hal errors; a call may override the message.
_STATUS_ERRORS: dict[int, tuple[type[DeviceError], str]] = {
    ST_TIMEOUT: (Timeout, "Nothing was entered on the PIN pad in time"),
    ST_CANCEL: (Cancelled, "The customer cancelled on the PIN pad"),
    ST_ERRKEY: (InvalidKey, "The PIN pad has no key in that slot"),
    ST_ERRCRYPT: (InvalidKey, "The PIN pad refused the key"),
    ST_MCDATAERR: (DeviceError, "The card could not be read: swipe it again"),
    ST_PINBUSY: (DeviceUnavailable, "The PIN pad is busy: try again in a minute"),
    ST_INTERR: (DeviceUnavailable, "The PIN pad reported an internal error"),
}


class AbecsPinPad(PinPad):
    """An ABECS PIN pad on a serial port (or any pyserial URL).

    The port is opened lazily and reopened after a failure, so the same object works again
    once a pulled cable is plugged back in (or the virtual pad restarts behind the same path).
    """

    def __init__(self, port: str, *, baudrate: int = 19200, url: str | None = None) -> None:
        self._port_url = port
        self._baudrate = baudrate
        self._url = url or port
        self._port: serial.SerialBase | None = None
        self._link: AbecsLink | None = None
        self._lock = threading.RLock()  # one command at a time
        self._cancel = threading.Event()
        self._blocking = False
        # Working keys as GPN carries them: encrypted under the slot's master key.
        self._working_keys: dict[int, bytes] = {}
        self._info: dict[str, Any] | None = None
        self._closed = False

    # --- connection ---------------------------------------------------------------------

    def _open(self) -> AbecsLink:
        if self._link is not None:
            return self._link
        try:
            port = serial.serial_for_url(
                self._port_url, baudrate=self._baudrate, timeout=POLL, write_timeout=ACK_TIMEOUT
            )
        except (*_PORT_ERRORS, ValueError) as exc:
            raise DeviceUnavailable(f"The PIN pad is not connected ({self._port_url})") from exc
        link = AbecsLink(port)
        try:
            link.discard_input()
            # Section 2.2.2.3: start with CAN, to stop a blocking command a previous run left.
            link.abort(tries=1)
            self._port, self._link = port, link
            response = self._exchange(encode_command("OPN"), blocking=False)
        except BaseException:
            self._drop()
            port.close()
            raise
        if response.status != ST_OK:
            self._drop()
            raise DeviceUnavailable(f"The PIN pad refused OPN ({_status_name(response.status)})")
        log.info("PIN pad open on %s", self._port_url)
        return link

    def _drop(self) -> None:
        """Forget the port (closing it); the next operation opens it again."""
        port, self._port, self._link, self._info = self._port, None, None, None
        if port is not None:
            try:
                port.close()
            except _PORT_ERRORS:
                pass

    def open(self) -> bool:
        """Try to open the pad now; False (and a log line) if it is not there yet."""
        try:
            with self._lock:
                self._open()
        except DeviceUnavailable as exc:
            log.warning("PIN pad %s: %s", self._url, exc)
            return False
        return True

    # --- commands -----------------------------------------------------------------------

    def _exchange(self, packet_data: bytes, *, blocking: bool, timeout: float | None = None) -> Response:
        link = self._link
        assert link is not None
        link.discard_input()
        link.send(packet_data)
        if blocking:
            deadline = None if timeout is None else time.monotonic() + timeout
        else:
            deadline = time.monotonic() + RESPONSE_TIMEOUT
        sent = packet_data[:3].decode("ascii")
        while True:
            data = link.receive(deadline=deadline, blocking=blocking, cancelled=self._cancel.is_set)
            try:
                response = parse_response(data)
            except ValueError as exc:
                raise LinkError(f"The PIN pad sent an unreadable answer ({exc})") from None
            if response.cmd == "NTM":
                continue  # a notification for the operator during a blocking command (2.3.3)
            if response.cmd in (sent, "ERR"):
                return response
            log.warning("PIN pad answered %s to %s: ignored", response.cmd, sent)

    def _command(
        self, cmd_id: str, *blocks: bytes, blocking: bool = False, timeout: float | None = None
    ) -> Response:
        """Send one command and return the pad's response; errors of the line become
        :class:`DeviceUnavailable` (and the port is reopened next time)."""
        with self._lock:
            if self._closed:
                raise DeviceUnavailable("The PIN pad is closed")
            self._open()
            if blocking:
                self._cancel.clear()
                self._blocking = True
            try:
                return self._exchange(encode_command(cmd_id, *blocks), blocking=blocking, timeout=timeout)
            except LinkError:
                self._drop()
                raise
            finally:
                self._blocking = False

    @staticmethod
    def _check(response: Response, messages: Mapping[int, str] | None = None) -> Response:
        """Raise the hal error for a failed response (``messages`` overrides the wording)."""
        status = response.status
        if status == ST_OK:
            return response
        messages = messages or {}
        if response.cmd == "ERR":
            raise DeviceError(messages.get(status, "The PIN pad does not know this command"))
        error, text = _STATUS_ERRORS.get(
            status, (DeviceError, f"The PIN pad refused {response.cmd} ({_status_name(status)})")
        )
        raise error(messages.get(status, text))

    # --- Device -------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Driver, role and URL plus what GIN tells: manufacturer, model, firmware, serial number."""
        with self._lock:
            if self._info is None:
                response = self._check(self._command("GIN", b"00"))
                text = response.data.decode("latin-1").ljust(100)
                fields = {
                    "manufacturer": text[0:20], "model": text[20:39], "os_version": text[40:60],
                    "spec_version": text[60:64], "firmware": text[64:80], "serial_number": text[80:100],
                }
                info: dict[str, Any] = {key: value.strip() for key, value in fields.items()}
                info["contactless"] = text[39] == "C"
                self._info = info
            return {"driver": "pinpad_abecs", "role": "pinpad", "url": self._url, **self._info}

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._link is not None:
                try:
                    self._exchange(encode_command("CLO", screen("")), blocking=False)
                except DeviceError as exc:
                    log.info("PIN pad did not take CLO: %s", exc)
            self._drop()

    # --- PinPad -------------------------------------------------------------------------

    def display(self, text: str) -> None:
        self._check(self._command("DSP", screen(text)))

    def has_master_key(self, index: int) -> bool:
        slot = _slot(index)
        response = self._command("GIX", abecs_params([(SPE_IDLIST, PP_MKTDESP.to_bytes(2, "big"))]))
        self._check(response, {ST_INVCALL: "This PIN pad cannot list its keys (no GIX)"})
        try:
            keymap = parse_abecs_data(response.data).get(PP_MKTDESP, b"")
        except ValueError:
            raise DeviceError("The PIN pad sent an unreadable key list") from None
        return len(keymap) > slot and keymap[slot:slot + 1] == b"1"

    def load_master_key(self, index: int, key: bytes) -> None:
        """Vendor extension XMK: only the virtual PIN pad takes a master key over the line; a
        real pad gets its master keys in a key-injection facility and answers ``ERR010``."""
        slot = _slot(index)
        if len(key) not in (16, 24):
            raise InvalidKey(f"A master key is 16 or 24 bytes, not {len(key)}")
        block = f"1{slot:02d}".encode("ascii") + key.hex().upper().encode("ascii")
        response = self._command("XMK", block)
        if response.cmd == "ERR":
            raise InvalidKey("This PIN pad takes master keys only from a key-injection device")
        self._check(response)
        self._working_keys.pop(slot, None)
        log.info("master key loaded into PIN pad slot %02d", slot)

    def load_working_key(self, index: int, encrypted_key: bytes, kcv: bytes) -> None:
        """ABECS sends the working key, still encrypted under the master key, with every GPN;
        the pad decrypts it inside. Before keeping it, posterm asks the pad to check its check
        value (vendor extension XKV). A pad without XKV cannot check it: then only the master
        key's presence is checked, and a wrong key shows up as wrong-PIN declines."""
        slot = _slot(index)
        if len(encrypted_key) != 16:
            raise InvalidKey(f"A PIN key is 16 bytes encrypted, not {len(encrypted_key)}")
        if not 3 <= len(kcv) <= 8:
            raise InvalidKey(f"A key check value is 3 to 8 bytes, not {len(kcv)}")
        block = (
            f"1{slot:02d}".encode("ascii")
            + encrypted_key.hex().upper().encode("ascii")
            + kcv.hex().upper().encode("ascii")
        )
        response = self._command("XKV", block)
        if response.cmd == "ERR":
            if not self.has_master_key(slot):
                raise InvalidKey(f"The PIN pad has no master key in slot {slot:02d}")
            log.warning("PIN pad cannot check the PIN key's check value (no XKV); key kept")
        else:
            self._check(response, {
                ST_ERRKEY: f"The PIN pad has no master key in slot {slot:02d}",
                ST_ERRCRYPT: "PIN key check value does not match: sign on again",
            })
        self._working_keys[slot] = bytes(encrypted_key)
        log.info("PIN key for slot %02d accepted", slot)

    def get_pin_block(self, pan: str, index: int, timeout: float = 60.0) -> bytes:
        """GPN, method MK/WK:TDES:PIN (ISO 9564 format 0), one entry of 4 to 12 digits."""
        slot = _slot(index)
        encrypted_key = self._working_keys.get(slot)
        if encrypted_key is None:
            raise InvalidKey(f"No PIN key in slot {slot:02d}: sign on first")
        if not (pan.isascii() and pan.isdigit() and 2 <= len(pan) <= 19):
            raise ValueError("a PAN is 2 to 19 digits")
        block = b"".join((
            f"1{slot:02d}".encode("ascii"),  # GPN_METHOD 1 = MK/WK:TDES:PIN, GPN_KEYIDX
            encrypted_key.hex().upper().encode("ascii"),  # GPN_WKENC H32
            f"{len(pan):02d}".encode("ascii") + pan.ljust(19).encode("ascii"),  # GPN_PANLEN, GPN_PAN
            b"1",  # GPN_ENTRIES: one PIN
            b"0412",  # GPN_MIN1, GPN_MAX1
            screen("ENTER PIN"),  # GPN_MSG1 S32
        ))
        response = self._blocking_command("GPN", block, timeout=timeout, what="No PIN entered")
        self._check(response, {
            ST_TIMEOUT: "No PIN entered in time",
            ST_ERRKEY: f"The PIN pad has no master key in slot {slot:02d}",
        })
        text = response.data[:16]
        try:
            pin_block = bytes.fromhex(text.decode("ascii"))
        except ValueError:
            pin_block = b""
        if len(pin_block) != 8:
            raise DeviceError("The PIN pad sent an unreadable PIN block")
        return pin_block

    def read_magstripe(self, timeout: float) -> MagStripe:
        """CEX waiting for a swipe, then GTK for the full tracks in clear (section 3.3.12)."""
        pad_timeout = max(1, min(255, math.ceil(timeout)))
        params = abecs_params([(SPE_CEXOPT, b"010000"), (SPE_TIMEOUT, bytes((pad_timeout,)))])
        # The pad's own timer (whole seconds) normally answers first; ours is the safety net.
        response = self._blocking_command("CEX", params, timeout=timeout + 1.0, what="No card swiped")
        if response.status in (ST_INVCALL, ST_INVPARM):
            raise DeviceUnavailable("This PIN pad has no card swipe")
        self._check(response, {ST_TIMEOUT: "No card swiped"})
        try:
            event = parse_abecs_data(response.data).get(PP_EVENT)
        except ValueError:
            raise DeviceError("The PIN pad sent an unreadable event") from None
        if event != b"90":
            raise DeviceError("The PIN pad reported something other than a swipe")
        tracks = self._check(self._command("GTK", abecs_params([(SPE_TRACKS, b"0011")])))
        try:
            found = parse_abecs_data(tracks.data)
            track2 = decode_track(found[PP_TRACK2]) if PP_TRACK2 in found else ""
            track3 = decode_track(found[PP_TRACK3]) if PP_TRACK3 in found else None
        except (ValueError, IndexError):
            raise DeviceError("The PIN pad sent unreadable track data") from None
        if not track2:
            raise DeviceError("The card could not be read: swipe it again")
        return MagStripe(track2=track2, track3=track3 or None)

    def wait_key(self, timeout: float) -> str:
        """GKY: the next non-numeric key: 'ok', 'clear' or 'f1'..'f4'; :class:`Cancelled` for
        CANCEL, :class:`Timeout` when none is pressed in time. (Not part of hal's PinPad.)"""
        response = self._blocking_command("GKY", timeout=timeout, what="No key pressed")
        if response.status in _KEYS:
            return _KEYS[response.status]
        self._check(response, {ST_CANCEL: "The customer pressed CANCEL"})
        raise DeviceError(f"The PIN pad answered GKY with {_status_name(response.status)}")

    def cancel(self) -> None:
        """Abort a blocking command (PIN entry, swipe or key wait) from another thread: CAN
        goes out at once; the waiting call sees EOT and raises :class:`Cancelled`."""
        if not self._blocking:
            return
        self._cancel.set()
        link = self._link
        if link is not None:
            try:
                link.send_can()
            except LinkError as exc:
                log.info("CAN not sent: %s", exc)

    def _blocking_command(
        self, cmd_id: str, *blocks: bytes, timeout: float, what: str
    ) -> Response:
        try:
            return self._command(cmd_id, *blocks, blocking=True, timeout=timeout)
        except Interrupted as stop:
            if stop.reason == "cancel":
                raise Cancelled("Cancelled at the till") from None
            raise Timeout(f"{what} in time") from None


def _slot(index: int) -> int:
    if not isinstance(index, int) or not 0 <= index <= 99:
        raise InvalidKey(f"Key slot {index!r} is not 0 to 99")
    return index


def connect(role: str, url: DeviceURL, context: DeviceContext) -> AbecsPinPad:
    """Open ``serial:PATH?baudrate=N`` as an ABECS PIN pad. A pad that is not there yet is not
    an error here: it is looked for again at the first operation (and logged now)."""
    if role != "pinpad":
        raise DeviceUnavailable(f"{url.text} is an ABECS PIN pad URL, not a {role}")
    pad = AbecsPinPad(url.path, baudrate=int(url.options.get("baudrate", "19200")), url=url.text)
    pad.open()
    return pad
