"""``posterm iso``: decode any captured message and check its MAC."""

from __future__ import annotations

from app.errors import InputError
from sync import codec, frame, mac, message
from sync.errors import MessageError
from sync.spec import SPEC


def _bytes(hexdata: str) -> bytes:
    text = "".join(hexdata.split())
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InputError("HEX must be hexadecimal digits (spaces allowed)") from None


def decode_any(hexdata: str) -> tuple[frame.Frame, dict[str, str]]:
    """The first framing (length, TPDU, header or none of them) that decodes cleanly."""
    data = _bytes(hexdata)
    last: MessageError | None = None
    for candidate in frame.candidates(data):
        try:
            return candidate, codec.decode(candidate.iso)
        except MessageError as exc:
            last = exc
    raise InputError(f"not a message of this dialect: {last}")


def describe(doc: dict) -> str:
    lines = []
    if doc["tpdu"]:
        lines.append(f"TPDU    {doc['tpdu']}")
    if doc["header"]:
        lines.append(f"header  {doc['header']}")
    lines.append(f"MTI     {doc['mti']}")
    for key, value in sorted(doc["fields"].items(), key=lambda kv: int(kv[0])):
        lines.append(f"F{key:<4}   {value:<40} {SPEC[key]['desc']}")
    return "\n".join(lines)


def mac_of(hexdata: str, key_hex: str, algorithm: str) -> dict:
    """The MAC the message should carry in field 64 and whether it does."""
    frm, fields = decode_any(hexdata)
    key = _bytes(key_hex)
    if len(key) not in (8, 16):
        raise InputError("--key must be 8 or 16 bytes (16 or 32 hex digits)")
    if algorithm == "x919" and len(key) != 16:
        raise InputError("x919 needs a 16-byte key")
    if "64" in fields:
        block, carried = message.mac_block(frm.iso), frm.iso[-message.MAC_LEN:]
    else:
        with_slot = codec.encode({**fields, "64": "00" * message.MAC_LEN})
        block, carried = with_slot[:-message.MAC_LEN], None
    value = mac.compute(algorithm, key, block)
    return {"mac": value.hex().upper(), "mac_text": value.decode("ascii", "replace"),
            "field64": carried.hex().upper() if carried else None,
            "matches": None if carried is None else carried == value,
            "algorithm": algorithm, "block_length": len(block)}
