"""The host ledger: schema, sealed keys, masked and hashed PANs, unique messages, RRNs."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from host.errors import DuplicateTransaction, HostKeyError, LedgerError
from host.ledger import MIGRATIONS, RRN_BLOCK, Ledger

PAN = "6226090000000048"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def sale(ledger: Ledger, stan: int, **over: object) -> dict:
    fields: dict = dict(terminal_id="12345678", merchant_id="898110048990001", batch=1,
                        stan=stan, mti="0200", txn_type="sale", processing_code="000000",
                        amount=1234, currency="156", pan=PAN, entry_mode="051",
                        response_code="00", rrn=ledger.next_rrn(), auth_code="123456",
                        state="approved", settlement_date="1122")
    fields.update(over)
    return ledger.record(**fields)


@pytest.fixture()
def ledger(tmp_path: Path):
    with Ledger.open(tmp_path / "hostdir") as opened:
        opened.register("12345678", "898110048990001", "Test Shop", TMK)
        yield opened


def test_open_creates_the_dir_a_0600_key_and_a_wal_database(tmp_path: Path) -> None:
    hostdir = tmp_path / "a" / "b"
    with Ledger.open(hostdir) as ledger:
        assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert ledger.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    key = hostdir / "host.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_text().strip()) == 64


def test_reopening_keeps_the_key_and_the_keys_still_open(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        ledger.register("12345678", "898110048990001", "Shop", TMK)
        ledger.store_working_keys("12345678", b"P" * 16, b"M" * 16)
    with Ledger.open(tmp_path) as ledger:
        keys = ledger.keys("12345678")
    assert keys is not None and (keys.tmk, keys.pik, keys.mak) == (TMK, b"P" * 16, b"M" * 16)
    assert "P" * 16 not in repr(keys)


def test_keys_under_another_host_key_do_not_open(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        ledger.register("12345678", "898110048990001", "Shop", TMK)
    (tmp_path / "host.key").write_text("00" * 32 + "\n")
    with Ledger.open(tmp_path) as ledger, pytest.raises(HostKeyError):
        ledger.keys("12345678")


def test_register_twice_needs_replace_and_replace_drops_working_keys(ledger: Ledger) -> None:
    ledger.store_working_keys("12345678", b"P" * 16, b"M" * 16)
    with pytest.raises(LedgerError):
        ledger.register("12345678", "898110048990001", "Shop", TMK)
    ledger.register("12345678", "898110048990002", "New Shop", bytes(16), replace=True)
    keys = ledger.keys("12345678")
    assert keys is not None and keys.tmk == bytes(16) and keys.mak is None
    terminal = ledger.terminal("12345678")
    assert terminal is not None and terminal["merchant_id"] == "898110048990002"
    assert terminal["signed_on_utc"] is None and "tmk_sealed" not in terminal


def test_unknown_terminal_is_none(ledger: Ledger) -> None:
    assert ledger.terminal("99999999") is None and ledger.keys("99999999") is None


def test_pan_is_stored_masked_and_hashed_only(ledger: Ledger) -> None:
    row = sale(ledger, 1)
    assert row["pan_masked"] == "622609******0048"
    assert row["pan_hash"] == ledger.pan_hash(PAN) != ledger.pan_hash("6226090000000055")
    assert "pan" not in row
    stored = ledger.transactions()[0]
    assert PAN not in " ".join(str(v) for v in stored.values())


def test_the_same_terminal_batch_stan_and_mti_is_refused(ledger: Ledger) -> None:
    sale(ledger, 1)
    with pytest.raises(DuplicateTransaction):
        sale(ledger, 1)
    sale(ledger, 1, batch=2)
    sale(ledger, 1, mti="0100")
    assert len(ledger.transactions("12345678")) == 3


def test_find_and_reverse(ledger: Ledger) -> None:
    row = sale(ledger, 7)
    assert ledger.find("12345678", 1, 7, "0200")["id"] == row["id"]  # type: ignore[index]
    assert ledger.find("12345678", 1, 8) is None
    ledger.mark_reversed(row["id"], "98")
    ledger.mark_reversed(row["id"], "06")          # already reversed: no change
    found = ledger.find("12345678", 1, 7)
    assert found is not None and (found["state"], found["reversal_reason"]) == ("reversed", "98")


def test_transactions_filter_by_terminal(ledger: Ledger) -> None:
    sale(ledger, 1)
    sale(ledger, 1, terminal_id="87654321")
    assert [t["terminal_id"] for t in ledger.transactions()] == ["12345678", "87654321"]
    assert len(ledger.transactions("87654321")) == 1
    assert ledger.transactions("00000000") == []


def test_rrns_are_12_digits_and_never_repeat_across_restarts(tmp_path: Path) -> None:
    seen: list[str] = []
    for _ in range(3):
        with Ledger.open(tmp_path) as ledger:
            seen += [ledger.next_rrn() for _ in range(RRN_BLOCK + 5)]
    assert all(len(r) == 12 and r.isdigit() for r in seen)
    assert len(set(seen)) == len(seen)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Ledger.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "host.db")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(LedgerError, match="newer"):
        Ledger.open(tmp_path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "host.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError):
        Ledger.open(tmp_path)
