"""The UnionPay POS ISO 8583:1987 dialect as one pyiso8583 spec (see shared/PROTOCOL.md).

Numeric fields are packed BCD; variable lengths are BCD and count digits for numeric
fields (2, 32, 35, 36, 48, 60, 61) and bytes for text and binary ones. Field values in a
decoded document are strings: digits for numeric fields, text for text fields, upper-case
hex for binary fields; track data carries ``=`` as ``D`` on the wire (see ``codec``).
"""

from __future__ import annotations

from typing import Any


def _fixed_n(digits: int, desc: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"data_enc": "b", "len_enc": "b", "len_type": 0, "desc": desc}
    if digits % 2:
        spec.update(max_len=digits, len_count="nibbles", left_pad="0")
    else:
        spec.update(max_len=digits // 2)
    return spec


def _var_n(len_bytes: int, max_digits: int, desc: str, pad: str = "0") -> dict[str, Any]:
    return {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": len_bytes,
        "max_len": max_digits,
        "len_count": "nibbles",
        "right_pad": pad,
        "desc": desc,
    }


def _fixed_text(size: int, desc: str) -> dict[str, Any]:
    return {"data_enc": "ascii", "len_enc": "b", "len_type": 0, "max_len": size, "desc": desc}


def _var_text(len_bytes: int, max_len: int, desc: str) -> dict[str, Any]:
    return {"data_enc": "gb18030", "len_enc": "bcd", "len_type": len_bytes, "max_len": max_len,
            "desc": desc}


def _fixed_b(size: int, desc: str) -> dict[str, Any]:
    return {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": size, "desc": desc}


def _var_b(len_bytes: int, max_len: int, desc: str) -> dict[str, Any]:
    return {"data_enc": "b", "len_enc": "bcd", "len_type": len_bytes, "max_len": max_len,
            "desc": desc}


SPEC: dict[str, dict[str, Any]] = {
    # TPDU and the 6-byte header are framing (sync.frame), not part of the ISO message.
    "h": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 0, "desc": "Header"},
    "t": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 2, "desc": "MTI"},
    "p": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 8, "desc": "Bitmap"},
    "2": _var_n(1, 19, "PAN"),
    "3": _fixed_n(6, "Processing code"),
    "4": _fixed_n(12, "Amount, fen"),
    "11": _fixed_n(6, "STAN"),
    "12": _fixed_n(6, "Local time hhmmss"),
    "13": _fixed_n(4, "Local date MMDD"),
    "14": _fixed_n(4, "Expiry YYMM"),
    "15": _fixed_n(4, "Settlement date MMDD"),
    "22": _fixed_n(3, "POS entry mode"),
    "23": _fixed_n(3, "Card sequence number"),
    "25": _fixed_n(2, "POS condition code"),
    "26": _fixed_n(2, "PIN capture code"),
    "32": _var_n(1, 11, "Acquiring institution id"),
    "35": _var_n(1, 37, "Track 2", pad="F"),
    "36": _var_n(2, 104, "Track 3", pad="F"),
    "37": _fixed_text(12, "RRN"),
    "38": _fixed_text(6, "Authorisation code"),
    "39": _fixed_text(2, "Response code"),
    "41": _fixed_text(8, "Terminal id"),
    "42": _fixed_text(15, "Merchant id"),
    "44": _var_text(1, 25, "Issuer / acquirer ids"),
    "48": _var_n(2, 322, "Settlement totals / batch upload"),
    "49": _fixed_text(3, "Currency"),
    "52": _fixed_b(8, "PIN block"),
    "53": _fixed_n(16, "Security control"),
    "54": _var_text(2, 20, "Balance amount"),
    "55": _var_b(2, 255, "ICC data"),
    "60": _var_n(2, 32, "Reserved private: type code, batch, network code"),
    "61": _var_n(2, 29, "Original message"),
    "62": _var_b(2, 512, "Reserved private (working keys)"),
    "63": _var_text(2, 163, "Reserved private (card organisation / operator)"),
    "64": _fixed_b(8, "MAC"),
}

BINARY_FIELDS = frozenset({"52", "55", "62", "64"})
TRACK_FIELDS = frozenset({"35", "36"})
NUMERIC_FIELDS = frozenset(k for k, v in SPEC.items() if k.isdigit() and v["data_enc"] == "b") \
    - BINARY_FIELDS - TRACK_FIELDS
