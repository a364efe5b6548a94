"""Recorded card sessions: the trace format, recording a session and masking its card data.

A trace is JSON::

    {"interface": "contact" | "contactless", "atr": HEX,
     "apdus": [{"c": HEX, "r": HEX}, ...]}

A field problem recorded on one bench replays on any laptop, through ``trace:PATH``
(drivers.trace) or through pcscd with the virtual card serving the file. Traces are masked
(:func:`mask_sensitive`) before they are written unless the recorder asks to keep them.
Pure data and a wrapper around hal readers: no device I/O here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hal.errors import DeviceError
from hal.interfaces import CardReader, ContactlessReader, Device

__all__ = [
    "INTERFACES",
    "TraceError",
    "TraceRecorder",
    "check_trace",
    "load_trace",
    "mask_pan",
    "mask_sensitive",
    "save_trace",
]

INTERFACES = ("contact", "contactless")
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
