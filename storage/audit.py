"""The hash-chained audit log: each row stores prev_hash and hash = sha256(prev_hash + canonical JSON).

Editing a row breaks its own hash; deleting one breaks the link of the row after it; deleting
the newest rows disagrees with the head kept in table audit_head. The chain is plain SHA-256,
so it detects edits by mistake or by tools, not by someone who rewrites the whole chain.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from typing import Any

from storage.errors import StorageError
from storage.migrations import GENESIS_HASH

# A run of 13-19 digits that passes the Luhn check looks like a PAN.
_DIGIT_RUN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same content always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """sha256 hex of prev_hash followed by the canonical JSON of the row's content."""
    return hashlib.sha256((prev_hash + canonical_json(content)).encode("utf-8")).hexdigest()


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def refuse_pan(detail: dict[str, Any]) -> None:
    """Raise StorageError if anything in `detail` looks like a clear PAN (audit rows are not encrypted)."""
    text = canonical_json(detail)
    for match in _DIGIT_RUN.finditer(text):
        if _luhn_ok(match.group()):
            raise StorageError("audit detail looks like it holds a card number; store the masked PAN instead")


def append(conn: sqlite3.Connection, *, ts_utc: str, ts_local: str, actor: str, action: str,
           detail: dict[str, Any]) -> int:
    """Add one chained row; the caller holds the write transaction. Returns the row id."""
    refuse_pan(detail)
    last_id, prev_hash = conn.execute("SELECT last_id, last_hash FROM audit_head WHERE id = 1").fetchone()
    row_id = last_id + 1
    content = _content(row_id, ts_utc, ts_local, actor, action, detail)
    digest = row_hash(prev_hash, content)
    conn.execute(
        "INSERT INTO audit (id, ts_utc, ts_local, actor, action, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (row_id, ts_utc, ts_local, actor, action, canonical_json(detail), prev_hash, digest),
    )
    conn.execute("UPDATE audit_head SET last_id = ?, last_hash = ? WHERE id = 1", (row_id, digest))
    return row_id


def verify(conn: sqlite3.Connection) -> list[str]:
    """Check the whole chain; [] when intact, else one line per broken, edited or missing row."""
    problems: list[str] = []
    expected_id, prev_hash = 1, GENESIS_HASH
    rows = conn.execute(
        "SELECT id, ts_utc, ts_local, actor, action, detail, prev_hash, hash FROM audit ORDER BY id"
    )
    for row_id, ts_utc, ts_local, actor, action, detail_text, stored_prev, stored_hash in rows:
        if row_id != expected_id:
            gap = f"row {expected_id}" if row_id == expected_id + 1 else f"rows {expected_id}-{row_id - 1}"
            problems.append(f"audit {gap} missing (deleted) before row {row_id}")
        if stored_prev != prev_hash:
            problems.append(f"audit row {row_id} does not link to the row before it (prev_hash differs)")
        try:
            detail = json.loads(detail_text)
        except (TypeError, ValueError):
            detail = detail_text
        if row_hash(stored_prev, _content(row_id, ts_utc, ts_local, actor, action, detail)) != stored_hash:
            problems.append(f"audit row {row_id} ({action}) was edited: its hash does not match its content")
        expected_id, prev_hash = row_id + 1, stored_hash
    head = conn.execute("SELECT last_id, last_hash FROM audit_head WHERE id = 1").fetchone()
    if head is None:
        problems.append("audit head is missing")
    else:
        last_id, last_hash = head
        if last_id != expected_id - 1:
            problems.append(
                f"audit log ends at row {expected_id - 1} but its head says row {last_id}: newest rows deleted"
            )
        elif last_hash != prev_hash:
            problems.append(f"audit row {last_id} differs from the hash recorded in the audit head")
    return problems


def _content(row_id: int, ts_utc: str, ts_local: str, actor: str, action: str, detail: Any) -> dict[str, Any]:
    return {
        "id": row_id, "ts_utc": ts_utc, "ts_local": ts_local,
        "actor": actor, "action": action, "detail": detail,
    }
