"""Building dialect requests from the transaction table, and the MAC over a message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sync import codec, mac
from sync.errors import MacError, MessageError
from sync.txntypes import TxnType

MAC_FIELD = "64"
MAC_LEN = 8


@dataclass(frozen=True)
class TerminalIds:
    """What identifies the terminal on every message."""

    terminal_id: str
    merchant_id: str


def field60(txn: TxnType, batch: int, *, network_code: str | None = None) -> str:
    """60.1 type code + 60.2 batch (6 digits) + 60.3 network management code."""
    spec = txn.spec
    return f"{spec.type_code}{batch:06d}{network_code or spec.network_code}"


def build(txn: TxnType, ids: TerminalIds, *, stan: int, batch: int,
          fields: Mapping[str, object] | None = None) -> dict[str, str]:
    """A request's fields: the table row's common fields, then the caller's."""
    spec = txn.spec
    doc: dict[str, object] = {"t": spec.mti, "11": f"{stan:06d}", "41": ids.terminal_id,
                              "42": ids.merchant_id, "60": field60(txn, batch)}
    if spec.processing_code is not None:
        doc["3"] = spec.processing_code
    if spec.condition_code is not None:
        doc["25"] = spec.condition_code
    doc.update(fields or {})
    if "4" in doc:
        doc.setdefault("49", "156")
    return {k: str(v) for k, v in doc.items() if v is not None}


def encode_with_mac(fields: Mapping[str, object], algorithm: str, key: bytes | None) -> bytes:
    """Encode; when ``key`` is given, field 64 carries the MAC of everything before it."""
    if key is None:
        return codec.encode({k: v for k, v in fields.items() if k != MAC_FIELD})
    raw = codec.encode({**fields, MAC_FIELD: "00" * MAC_LEN})
    return raw[:-MAC_LEN] + mac.compute(algorithm, key, raw[:-MAC_LEN])


def mac_block(raw: bytes) -> bytes:
    """What the MAC covers: the message from the MTI through the field before 64."""
    # MTI (2 bytes) then the primary bitmap (8 bytes): bit 64 is the bitmap's last bit.
    if len(raw) < 10 + MAC_LEN or not raw[9] & 0x01:
        raise MessageError("message has no field 64")
    return raw[:-MAC_LEN]


def verify_mac(raw: bytes, algorithm: str, key: bytes) -> None:
    """Raise MacError unless field 64 is the MAC of the message."""
    block = mac_block(raw)
    if mac.compute(algorithm, key, block) != raw[-MAC_LEN:]:
        raise MacError("MAC check failed: the message is not trusted")
