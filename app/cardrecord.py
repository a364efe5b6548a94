"""``posterm card record``: one card session on any reader, saved as a replayable trace.

The trace format (shared with ``trace:PATH`` readers and the virtual cards)::

    {"interface": "contact"|"contactless", "atr": HEX, "apdus": [{"c": HEX, "r": HEX}, ...]}

Unless the recording is made with ``keep_sensitive``, card data is masked in place before
the file is written: the PAN keeps its first 6 and last 4 digits, the rest filled with one digit (so the masked PAN shown
for the replay is the live one's), discretionary track data, track 1 and the cardholder
name are overwritten, and a VERIFY command's PIN data is blanked. The TLV structure and
every length stay as they were, so the trace replays through the same code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.cardread import CardData, _read_emv
from app.errors import InputError
from hal.interfaces import CardReader, ContactlessReader, TestCardSlot
from hal.registry import DeviceContext, open_device
from hal.testcards import TestCard

#: Tags whose whole value is overwritten (track 1 and its discretionary data, name).
_BLANK_TEXT = {"56", "5F20", "9F1F", "9F0B"}
#: Tags holding digits with a PAN at the start (BCD; D separates the PAN on track 2).
_PAN_DIGITS = {"5A", "57", "9F6B", "9F20"}
VERIFY_INS = 0x20


def _tlv_items(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[str, int, int]]:
    """(tag, value start, value end) of every primitive object, constructed ones walked into."""
    end = len(data) if end is None else end
    i = start
    while i < end:
        if data[i] in (0x00, 0xFF):          # padding between objects
            i += 1
            continue
        t0 = i
        constructed = data[i] & 0x20
        i += 1
        if data[t0] & 0x1F == 0x1F:
            while i < end and data[i] & 0x80:
                i += 1
            i += 1
        tag = data[t0:i].hex().upper()
        if i >= end:
            return
        length = data[i]
        i += 1
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[i:i + n], "big")
            i += n
        if i + length > end:
            return                               # truncated: leave the rest as it is
        if constructed:
            yield from _tlv_items(data, i, i + length)
        else:
            yield tag, i, i + length
        i += length


def _mask_digits(value: bytes) -> bytes:
    digits = value.hex().upper()
    pan_end = digits.find("D")
    pan_end = len(digits.rstrip("F")) if pan_end < 0 else pan_end
    pan = digits[:pan_end]
    # A fill digit unlike the first hidden one, so the result is never the clear PAN.
    fill = "9" if pan[6:7] != "9" else "0"
    masked = pan[:6] + fill * (len(pan) - 10) + pan[-4:] if len(pan) > 10 else pan
    rest = digits[pan_end:]
    if rest.startswith("D"):
        # D YYMM SSS, then discretionary data: keep expiry and service code, zero the rest.
        rest = rest[:8] + "".join("F" if c == "F" else "0" for c in rest[8:])
    return bytes.fromhex(masked + rest)


def mask_sensitive(trace: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``trace`` with card data masked in place (same lengths, same TLV)."""
    apdus = []
    for pair in trace["apdus"]:
        command, response = bytearray.fromhex(pair["c"]), bytearray.fromhex(pair["r"])
        if len(command) > 5 and command[1] == VERIFY_INS:
            command[5:5 + command[4]] = b"\xFF" * command[4]
        body = bytes(response[:-2])
        for tag, lo, hi in _tlv_items(body):
            if tag in _PAN_DIGITS:
                response[lo:hi] = _mask_digits(body[lo:hi])
            elif tag in _BLANK_TEXT:
                response[lo:hi] = b"X" * (hi - lo)
        apdus.append({"c": command.hex().upper(), "r": response.hex().upper()})
    return {**trace, "apdus": apdus}


class _Recorder:
    """Passes APDUs to a reader and keeps every command/response pair."""

    def __init__(self, transceive) -> None:
        self._transceive = transceive
        self.apdus: list[dict[str, str]] = []

    def __call__(self, command: bytes) -> bytes:
        response = self._transceive(command)
        self.apdus.append({"c": command.hex().upper(), "r": response.hex().upper()})
        return response


def record(reader_url: str, out: Path, *, data_dir: Path, keep_sensitive: bool = False,
           contactless: bool = False, test_card: TestCard | None = None, amount: int = 0,
           timeout: float = 30.0) -> tuple[CardData, dict[str, Any]]:
    """Read the card on ``reader_url`` once, recording; write the trace to ``out``.

    ``test_card`` is presented first when the reader is a mock or virtual one.
    """
    context = DeviceContext(data_dir=data_dir)
    role = "contactless" if contactless or reader_url.startswith("nfc:") else "card_reader"
    device = open_device(role, reader_url, context=context)
    try:
        if test_card is not None:
            if not isinstance(device, TestCardSlot):
                raise InputError("--card presents a test card to mock readers only")
            device.present(test_card)
        if isinstance(device, ContactlessReader):
            atr, interface = device.poll(timeout), "contactless"
            recorder = _Recorder(device.transceive)
            try:
                card = _read_emv(recorder, "tap", amount)
            finally:
                device.release()
        elif isinstance(device, CardReader):
            atr, interface = device.wait_for_card(timeout), "contact"
            recorder = _Recorder(device.transceive)
            try:
                card = _read_emv(recorder, "chip", amount)
            finally:
                device.power_off()
        else:
            raise InputError(f"{reader_url} is not a card reader")
    finally:
        device.close()
    trace = {"interface": interface, "atr": atr.hex().upper(), "apdus": recorder.apdus}
    if not keep_sensitive:
        trace = mask_sensitive(trace)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(trace, fh, indent=1)
        fh.write("\n")
    os.replace(tmp, out)
    return card, trace
