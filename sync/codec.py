"""Encode and decode dialect messages: pyiso8583 with the dialect's field conventions.

``encode`` takes a plain dict (``"t"`` the MTI, field numbers as strings, values as str or
int) and fills what the wire format fixes: fixed numeric fields are zero-padded on the
left, track data has ``=`` sent as the nibble ``D``. ``decode`` gives the same shape back.
"""

from __future__ import annotations

from collections.abc import Mapping

import iso8583

from sync.errors import MessageError
from sync.spec import BINARY_FIELDS, NUMERIC_FIELDS, SPEC, TRACK_FIELDS

Fields = dict[str, str]


def _normalise(fields: Mapping[str, object]) -> Fields:
    doc: Fields = {}
    for key, value in fields.items():
        if value is None:
            continue
        text = str(value)
        spec = SPEC.get(key)
        if spec is None:
            raise MessageError(f"field {key} is not in the dialect")
        if key == "t":
            text = text.zfill(4)
        elif key in NUMERIC_FIELDS and spec["len_type"] == 0:
            if not text.isdigit():
                raise MessageError(f"field {key} must be digits, got {text!r}")
            digits = spec["max_len"] if spec.get("len_count") == "nibbles" else spec["max_len"] * 2
            text = text.zfill(digits)
        elif key in TRACK_FIELDS:
            text = text.replace("=", "D")
        elif key in BINARY_FIELDS:
            text = text.upper()
        doc[key] = text
    return doc


def encode(fields: Mapping[str, object]) -> bytes:
    """The ISO message (MTI, bitmap, fields) as bytes; MessageError if a field does not fit."""
    doc = _normalise(fields)
    doc.pop("p", None)
    try:
        raw, _ = iso8583.encode(doc, SPEC)
    except (iso8583.EncodeError, ValueError, TypeError) as exc:
        raise MessageError(f"cannot build message: {exc}") from None
    return bytes(raw)


def decode(raw: bytes) -> Fields:
    """Parse an ISO message (no length, TPDU or header); MessageError if it is malformed."""
    try:
        doc, _ = iso8583.decode(bytearray(raw), SPEC)
    except KeyError as exc:
        raise MessageError(f"malformed message: field {exc.args[0]} is not in the dialect") \
            from None
    except (iso8583.DecodeError, ValueError, TypeError, IndexError) as exc:
        raise MessageError(f"malformed message: {exc}") from None
    doc.pop("p", None)
    doc.pop("h", None)
    for key in TRACK_FIELDS & doc.keys():
        doc[key] = doc[key].replace("D", "=")
    return dict(doc)


def reply_mti(mti: str) -> str:
    """A reply's MTI is the request's plus 10 (0200 -> 0210); a repeat's (0221, ISO 8583's
    last digit 1) is answered as the original (0230)."""
    return f"{int(mti) // 10 * 10 + 10:04d}"
