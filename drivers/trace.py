"""Recorded card sessions: the trace format, its replay (URL ``trace:PATH``) and its recording.

A trace is JSON::

    {"interface": "contact" | "contactless", "atr": HEX,
     "apdus": [{"c": HEX, "r": HEX}, ...]}

A field problem recorded on one bench (``record_session``) replays on any laptop, through
``trace:PATH`` or through pcscd with the virtual card serving the file. Traces are masked
(:func:`mask_sensitive`) before they are written unless the recorder asks to keep them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hal.device_url import DeviceURL
from hal.errors import CardRemoved, DeviceError, DeviceUnavailable
from hal.interfaces import CardReader, ContactlessReader, Device
from hal.registry import DeviceContext

__all__ = [
    "SW_NOT_FOUND",
    "TraceCardReader",
    "TraceContactlessReader",
    "TraceError",
    "TraceRecorder",
    "TraceReplayer",
    "connect",
    "load_trace",
    "mask_pan",
    "mask_sensitive",
    "record_session",
    "save_trace",
]

log = logging.getLogger(__name__)

SW_OK = b"\x90\x00"
SW_NOT_FOUND = b"\x6a\x82"
INTERFACES = ("contact", "contactless")

_SELECT = 0xA4
_VERIFY = 0x20


class TraceError(DeviceError):
    """A trace file cannot be used, or a recorded session stopped before the card was read."""


# --- the format ---------------------------------------------------------------------------


def _hex(text: object, where: str) -> bytes:
    if not isinstance(text, str):
        raise TraceError(f"trace: {where} is not a hex string")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise TraceError(f"trace: {where} is not valid hex") from None


def check_trace(trace: object) -> dict[str, Any]:
    """``trace`` if it has the trace format's shape; :class:`TraceError` saying what is wrong."""
    if not isinstance(trace, dict):
        raise TraceError("trace: not a JSON object")
    if trace.get("interface") not in INTERFACES:
        raise TraceError("trace: 'interface' must be 'contact' or 'contactless'")
    _hex(trace.get("atr"), "'atr'")
    apdus = trace.get("apdus")
    if not isinstance(apdus, list):
        raise TraceError("trace: 'apdus' must be a list")
    for i, pair in enumerate(apdus):
        if not isinstance(pair, dict):
            raise TraceError(f"trace: apdus[{i}] is not an object")
        if len(_hex(pair.get("c"), f"apdus[{i}].c")) < 4:
            raise TraceError(f"trace: apdus[{i}].c is shorter than an APDU header")
        if len(_hex(pair.get("r"), f"apdus[{i}].r")) < 2:
            raise TraceError(f"trace: apdus[{i}].r has no status word")
    return trace


def load_trace(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a trace file; :class:`TraceError` with one line if it cannot be used."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TraceError(f"trace file {path} cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise TraceError(f"trace file {path} is not JSON") from None
    return check_trace(data)


def save_trace(trace: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``trace`` as JSON (one APDU pair a line, so a diff reads well)."""
    check_trace(trace)
    pairs = ",\n".join(
        "    " + json.dumps({"c": p["c"], "r": p["r"]}) for p in trace["apdus"]
    )
    head = {k: v for k, v in trace.items() if k != "apdus"}
    body = json.dumps(head, indent=2)[:-2]
    text = f'{body},\n  "apdus": [\n{pairs}\n  ]\n}}\n' if pairs else json.dumps(trace, indent=2)
    Path(path).write_text(text, encoding="utf-8")


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


# --- recording ---------------------------------------------------------------------------


class TraceRecorder(Device):
    """Wraps a hal reader and records its ATR and every command/response into :attr:`trace`.

    ``TraceRecorder(reader)`` returns a :class:`CardReader` or :class:`ContactlessReader`
    (whichever ``reader`` is), so it can stand in for the reader anywhere.
    """

    def __new__(cls, reader: CardReader | ContactlessReader) -> TraceRecorder:  # noqa: PYI034
        target: type[TraceRecorder] = cls
        if cls is TraceRecorder:
            if isinstance(reader, ContactlessReader):
                target = _RecordingContactlessReader
            elif isinstance(reader, CardReader):
                target = _RecordingCardReader
            else:
                raise TypeError(f"cannot record a {type(reader).__name__}")
        return super().__new__(target)

    def __init__(self, reader: CardReader | ContactlessReader) -> None:
        self.reader = reader
        interface = "contactless" if isinstance(reader, ContactlessReader) else "contact"
        self.trace: dict[str, Any] = {"interface": interface, "atr": "", "apdus": []}

    def info(self) -> dict[str, Any]:
        return {**self.reader.info(), "recording": True}

    def close(self) -> None:
        self.reader.close()

    def card_present(self) -> bool:
        return self.reader.card_present()

    def transceive(self, apdu: bytes) -> bytes:
        response = self.reader.transceive(apdu)
        self.trace["apdus"].append({"c": bytes(apdu).hex().upper(),
                                    "r": bytes(response).hex().upper()})
        return response


class _RecordingCardReader(TraceRecorder, CardReader):
    def wait_for_card(self, timeout: float) -> bytes:
        assert isinstance(self.reader, CardReader)
        atr = self.reader.wait_for_card(timeout)
        self.trace["atr"] = bytes(atr).hex().upper()
        return atr

    def power_off(self) -> None:
        assert isinstance(self.reader, CardReader)
        self.reader.power_off()


class _RecordingContactlessReader(TraceRecorder, ContactlessReader):
    def poll(self, timeout: float) -> bytes:
        assert isinstance(self.reader, ContactlessReader)
        uid = self.reader.poll(timeout)
        # A contactless card has no ATR of its own; PC/SC readers build one. Record what the
        # reader reports if it can tell, else a PC/SC-style ATR with no historical bytes.
        atr = self.reader.info().get("atr")
        self.trace["atr"] = atr.upper() if isinstance(atr, str) and atr else "3B80800101"
        return uid

    def release(self) -> None:
        assert isinstance(self.reader, ContactlessReader)
        self.reader.release()


# --- masking -----------------------------------------------------------------------------

_TRACK2_TAGS = {"57", "9F6B"}  # track 2 equivalent data (cn, 'D' separator, F padded)
_NAME_TAGS = {"5F20", "9F0B"}  # cardholder name, extended name


def mask_pan(pan: str) -> str:
    """``pan`` with everything but the first 6 and last 4 digits replaced by 9s (same length)."""
    if len(pan) <= 10:
        return pan[:2] + "9" * max(0, len(pan) - 2)
    return pan[:6] + "9" * (len(pan) - 10) + pan[-4:]


def _display_mask(pan: str) -> str:
    return pan[:6] + "*" * max(0, len(pan) - 10) + pan[-4:] if len(pan) > 10 else "*" * len(pan)


def _tlv_items(data: bytes, start: int, end: int) -> Iterator[tuple[str, bool, int, int]]:
    """(tag hex, constructed?, value start, value end) of each TLV in ``data[start:end]``;
    ValueError if the bytes are not BER-TLV."""
    i = start
    while i < end:
        if data[i] in (0x00, 0xFF):  # padding between objects
            i += 1
            continue
        t0 = i
        constructed = bool(data[i] & 0x20)
        if data[i] & 0x1F == 0x1F:
            i += 1
            while i < end and data[i] & 0x80:
                i += 1
        i += 1
        if i >= end:
            raise ValueError("TLV cut short in its tag or length")
        tag = data[t0:i].hex().upper()
        length = data[i]
        i += 1
        if length & 0x80:
            n = length & 0x7F
            if n == 0 or n > 3 or i + n > end:
                raise ValueError("bad TLV length")
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        if i + length > end:
            raise ValueError("TLV value runs past its container")
        yield tag, constructed, i, i + length
        i += length


def _mask_track2(digits: str) -> str:
    """Track 2 digits ('D' separator, F padding): mask the PAN, zero the discretionary data,
    keep expiry and service code."""
    pan, sep, rest = digits.partition("D")
    if not sep:
        return mask_pan(pan.rstrip("F")) + pan[len(pan.rstrip("F")):]
    body = rest.rstrip("F")
    padding = rest[len(body):]
    kept = body[:7]  # YYMM + service code
    return mask_pan(pan) + "D" + kept + "0" * (len(body) - len(kept)) + padding


def _mask_track1(text: str) -> str:
    """Track 1 ('B' PAN '^' NAME '^' YYMM SSS discretionary): mask PAN and name, zero the rest."""
    parts = text.split("^")
    if len(parts) < 3:
        return re.sub(r"\d", "0", text)
    head, name, tail = parts[0], parts[1], "^".join(parts[2:])
    fc, pan = (head[:1], head[1:]) if head[:1].isalpha() else ("", head)
    tail = tail[:7] + re.sub(r"[0-9A-Za-z]", "0", tail[7:])
    return fc + mask_pan(pan) + "^" + re.sub(r"[0-9A-Za-z]", "X", name) + "^" + tail


def _masked_value(tag: str, value: bytes) -> bytes | None:
    """The masked form of a sensitive tag's value (same length), None if ``tag`` is not one."""
    if tag == "5A":
        digits = value.hex().upper()
        pan = digits.rstrip("F")
        return bytes.fromhex(mask_pan(pan) + digits[len(pan):])
    if tag in _TRACK2_TAGS:
        return bytes.fromhex(_mask_track2(value.hex().upper()))
    if tag == "9F20":  # track 2 discretionary data (cn)
        digits = value.hex().upper()
        body = digits.rstrip("F")
        return bytes.fromhex("0" * len(body) + digits[len(body):])
    if tag == "56":
        return _mask_track1(value.decode("latin-1")).encode("latin-1")
    if tag == "9F1F":  # track 1 discretionary data (ans)
        return re.sub(rb"[0-9A-Za-z]", b"0", value)
    if tag in _NAME_TAGS:
        return re.sub(rb"[0-9A-Za-z]", b"X", value)
    return None


def _mask_tlv(buf: bytearray, start: int, end: int, pans: set[str]) -> None:
    for tag, constructed, vs, ve in _tlv_items(bytes(buf), start, end):
        if constructed:
            _mask_tlv(buf, vs, ve, pans)
            continue
        value = bytes(buf[vs:ve])
        if tag == "5A":
            pans.add(value.hex().upper().rstrip("F"))
        elif tag in _TRACK2_TAGS:
            pans.add(value.hex().upper().partition("D")[0].rstrip("F"))
        masked = _masked_value(tag, value)
        if masked is not None:
            buf[vs:ve] = masked


def _scrub(data: bytes, pans: set[str]) -> bytes:
    """Replace any remaining copy of a clear PAN (packed BCD or ASCII digits) by its mask."""
    for pan in pans:
        if len(pan) < 12 or not pan.isdigit():
            continue
        masked = mask_pan(pan)
        if len(pan) % 2 == 0:
            data = data.replace(bytes.fromhex(pan), bytes.fromhex(masked))
        data = data.replace(pan.encode("ascii"), masked.encode("ascii"))
    return data


def mask_sensitive(trace: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``trace`` safe to share: in every response the PAN (5A, 57, 9F6B, 56) shows
    only its first 6 and last 4 digits, track discretionary data (9F1F, 9F20 and inside 57,
    9F6B, 56) is zeroed and the cardholder name (5F20, 9F0B) is X'd -- each value keeping its
    length, so the TLV structure stays valid and the replay still reads. Expiry and service
    code stay. Offline PIN data in VERIFY commands is blanked too."""
    check_trace(trace)
    pans: set[str] = set()
    pairs: list[tuple[bytes, bytearray]] = []
    for pair in trace["apdus"]:
        command, response = bytes.fromhex(pair["c"]), bytearray.fromhex(pair["r"])
        try:
            _mask_tlv(response, 0, len(response) - 2, pans)
        except ValueError:
            pass  # not TLV (or cut short): the byte scrub below still removes known PANs
        if len(command) > 5 and command[1] == _VERIFY:
            # VERIFY carries an offline PIN block; keep its control byte, blank the digits.
            command = command[:6] + b"\xff" * (len(command) - 6)
        pairs.append((command, response))
    masked = [{"c": _scrub(c, pans).hex().upper(), "r": _scrub(bytes(r), pans).hex().upper()}
              for c, r in pairs]
    return {**trace, "apdus": masked}


# --- recording a session -----------------------------------------------------------------

PSE = b"1PAY.SYS.DDF01"
PPSE = b"2PAY.SYS.DDF01"

# Tried in this order when a contact card has no PSE (EMV's list of candidate AIDs).
CANDIDATE_AIDS = (
    "A000000333010101", "A000000333010102", "A000000333010103",  # UnionPay debit/credit/quasi
    "A0000000031010", "A0000000041010", "A00000002501", "A0000000651010",
)

_TERMINAL_DATA = {
    "5F2A": bytes.fromhex("0156"),  # transaction currency: CNY
    "9F1A": bytes.fromhex("0156"),  # terminal country: China
    "9C": b"\x00",  # goods and services
    "9F66": bytes.fromhex("26000080"),  # TTQ: contact + contactless EMV, online capable
    "9F35": b"\x22",  # attended, offline with online capability
    "9F40": bytes.fromhex("6000F0A001"),
}


def _tlv_values(data: bytes) -> dict[str, bytes]:
    """Every primitive TLV value in ``data`` by tag (the first of each), constructed ones opened."""
    found: dict[str, bytes] = {}

    def walk(start: int, end: int) -> None:
        for tag, constructed, vs, ve in _tlv_items(data, start, end):
            if constructed:
                walk(vs, ve)
            else:
                found.setdefault(tag, data[vs:ve])

    try:
        walk(0, len(data))
    except ValueError:
        pass
    return found


def _aids_in(data: bytes) -> list[bytes]:
    aids: list[bytes] = []

    def walk(start: int, end: int) -> None:
        for tag, constructed, vs, ve in _tlv_items(data, start, end):
            if constructed:
                walk(vs, ve)
            elif tag == "4F":
                aids.append(data[vs:ve])

    try:
        walk(0, len(data))
    except ValueError:
        pass
    return aids


def _select(transceive: Callable[[bytes], bytes], name: bytes) -> bytes:
    return transceive(bytes([0x00, 0xA4, 0x04, 0x00, len(name)]) + name + b"\x00")


def _fill_dol(dol: bytes, values: dict[str, bytes]) -> bytes:
    """Fill a data object list from ``values``: right-aligned numbers, zeros where unknown."""
    out = b""
    for tag, _, length in _dol_entries(dol):
        value = values.get(tag, b"")
        out += value[:length].rjust(length, b"\x00")
    return out


def _dol_entries(dol: bytes) -> Iterator[tuple[str, int, int]]:
    i = 0
    while i < len(dol):
        t0 = i
        if dol[i] & 0x1F == 0x1F:
            i += 1
            while i < len(dol) and dol[i] & 0x80:
                i += 1
        i += 1
        if i >= len(dol):
            return
        yield dol[t0:i].hex().upper(), t0, dol[i]
        i += 1


def _ok(response: bytes, what: str) -> bytes:
    if len(response) < 2 or response[-2:] != SW_OK:
        sw = response[-2:].hex().upper() if len(response) >= 2 else "nothing"
        raise TraceError(f"card answered {sw} to {what}")
    return response[:-2]


def _read_card(transceive: Callable[[bytes], bytes], contactless: bool,
               amount_fen: int) -> dict[str, Any]:
    """SELECT the directory and the application, GPO, READ RECORD per AFL; what was learnt."""
    learnt: dict[str, Any] = {}
    directory = _select(transceive, PPSE if contactless else PSE)
    aids: list[bytes] = []
    if directory[-2:] == SW_OK:
        aids = _aids_in(directory[:-2])
        directory_sfi = _tlv_values(directory[:-2]).get("88")
        if not aids and directory_sfi and not contactless:
            for record in range(1, 17):  # the PSE's directory records, up to 6A83
                p2 = (directory_sfi[0] << 3) | 4
                answer = transceive(bytes([0x00, 0xB2, record, p2, 0x00]))
                if answer[-2:] != SW_OK:
                    break
                aids += _aids_in(answer[:-2])
    candidates = [a for a in aids] or [bytes.fromhex(a) for a in CANDIDATE_AIDS]
    fci = None
    for aid in candidates:
        answer = _select(transceive, aid)
        if answer[-2:] == SW_OK:
            fci = answer[:-2]
            learnt["aid"] = (_tlv_values(fci).get("84") or aid).hex().upper()
            break
    if fci is None:
        raise TraceError("card has no supported application")
    fci_values = _tlv_values(fci)
    label = fci_values.get("50")
    learnt["label"] = label.decode("ascii", "replace") if label else None
    terminal = dict(_TERMINAL_DATA)
    terminal["9F02"] = bytes.fromhex(f"{amount_fen:012d}")
    terminal["9F03"] = bytes(6)
    terminal["9F37"] = os.urandom(4)
    data = _fill_dol(fci_values.get("9F38", b""), terminal)
    gpo = _ok(transceive(bytes([0x80, 0xA8, 0x00, 0x00, len(data) + 2, 0x83, len(data)])
                         + data + b"\x00"), "GET PROCESSING OPTIONS")
    if gpo[:1] == b"\x80" and len(gpo) >= 4:
        afl = gpo[4 : 2 + gpo[1]]  # format 1: 80 L AIP(2) AFL
        records: dict[str, bytes] = {}
    else:
        records = _tlv_values(gpo)
        afl = records.get("94", b"")
    for i in range(0, len(afl) - 3, 4):
        sfi, first, last = afl[i] >> 3, afl[i + 1], afl[i + 2]
        for record in range(first, last + 1):
            body = _ok(transceive(bytes([0x00, 0xB2, record, (sfi << 3) | 4, 0x00])),
                       "READ RECORD")
            for tag, value in _tlv_values(body).items():
                records.setdefault(tag, value)
    track2 = (records.get("57") or records.get("9F6B") or b"").hex().upper()
    pan = records.get("5A", b"").hex().upper().rstrip("F") or track2.partition("D")[0]
    expiry = records.get("5F24", b"").hex()[:4] or track2.partition("D")[2][:4] or None
    learnt["pan_masked"] = _display_mask(pan) if pan else None
    learnt["expiry"] = expiry
    return learnt


def record_session(reader: CardReader | ContactlessReader, out_path: str | os.PathLike[str],
                   *, amount_fen: int = 0, keep_sensitive: bool = False,
                   timeout: float = 30.0) -> dict[str, Any]:
    """Read the card on ``reader`` (SELECT PSE/PPSE and the application, GPO, READ RECORD),
    record the session and write it to ``out_path`` (masked unless ``keep_sensitive``).

    Returns a summary: ``interface``, ``aid``, ``label``, ``pan_masked``, ``expiry``,
    ``apdus`` (count), ``masked``, ``path`` and, when the read stopped half-way (the card
    refused a command or left), ``error`` -- the trace is written anyway, since that is the
    field problem worth replaying. Waiting for the card raises the reader's own hal errors.
    """
    recorder = TraceRecorder(reader)
    contactless = isinstance(recorder, ContactlessReader)
    if isinstance(recorder, ContactlessReader):
        recorder.poll(timeout)
    else:
        assert isinstance(recorder, CardReader)
        recorder.wait_for_card(timeout)
    summary: dict[str, Any] = {"interface": recorder.trace["interface"], "aid": None,
                               "label": None, "pan_masked": None, "expiry": None}
    try:
        summary.update(_read_card(recorder.transceive, contactless, amount_fen))
    except (TraceError, CardRemoved) as exc:
        summary["error"] = str(exc)
    finally:
        try:
            if isinstance(recorder, ContactlessReader):
                recorder.release()
            else:
                assert isinstance(recorder, CardReader)
                recorder.power_off()
        except DeviceError as exc:
            log.warning("could not release the card after recording: %s", exc)
    trace = recorder.trace if keep_sensitive else mask_sensitive(recorder.trace)
    save_trace(trace, out_path)
    summary.update(apdus=len(trace["apdus"]), masked=not keep_sensitive, path=str(out_path))
    log.info("recorded %d APDUs of %s to %s", len(trace["apdus"]),
             summary["pan_masked"] or "an unread card", out_path)
    return summary
