"""No clear card data on disk or in logs: byte search of the db, -wal and -shm files."""

from __future__ import annotations

import logging
import os
from dataclasses import replace

import pytest

from storage.errors import StorageError
from storage.journal import Journal, NewTransaction

ROOT_KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
PAN = "6226090000000048"
EXPIRY = "2812"

SALE = NewTransaction(
    txn_type="sale", amount=100, currency="156", stan=1, batch=1,
    terminal_id="12345678", merchant_id="898310048990001", operator="01",
    pan=PAN, expiry=EXPIRY, card_org="CUP", entry_mode="051", card_seq="001",
    pin_entered=True,
)


def pan_forms(pan: str) -> list[bytes]:
    """The ways a PAN can sit in a file: ASCII, UTF-16, packed BCD (F-padded if odd), ASCII-hex."""
    bcd_hex = pan + ("F" if len(pan) % 2 else "")
    return [
        pan.encode("ascii"),
        pan.encode("utf-16-le"),
        pan.encode("utf-16-be"),
        bytes.fromhex(bcd_hex),
        pan.encode("ascii").hex().encode("ascii"),
        pan.encode("ascii").hex().upper().encode("ascii"),
    ]


def journal_files(db_path) -> dict[str, bytes]:
    files = {}
    for suffix in ("", "-wal", "-shm"):
        path = db_path.parent / (db_path.name + suffix)
        if path.exists():
            files[path.name] = path.read_bytes()
    return files


def assert_no_pan_on_disk(db_path, pan: str) -> None:
    files = journal_files(db_path)
    assert files, "no journal files found"
    for name, data in files.items():
        for form in pan_forms(pan):
            assert form not in data, f"{form!r} found in {name}"


def test_pan_never_on_disk_while_open_and_after_close_but_card_for_returns_it(tmp_path):
    db_path = tmp_path / "journal.db"
    j = Journal.open(db_path, ROOT_KEY)
    txn_id = j.begin(SALE)
    j.complete(txn_id, approved=True, response_code="00", rrn="123456789012", auth_code="A12345")
    other = j.begin(replace(SALE, stan=2))
    j.set_reversal_reason(other, "A0")
    assert (db_path.parent / (db_path.name + "-wal")).stat().st_size > 0
    assert_no_pan_on_disk(db_path, PAN)  # in the WAL before any checkpoint
    assert j.card_for(txn_id) == (PAN, EXPIRY)
    j.close()
    assert_no_pan_on_disk(db_path, PAN)  # after the checkpoint into the main file
    j = Journal.open(db_path, ROOT_KEY)
    assert j.card_for(other) == (PAN, EXPIRY)
    assert j.get(txn_id).pan_masked == "622609******0048"
    j.close()


def test_odd_length_pan_also_stays_off_disk(tmp_path):
    db_path = tmp_path / "journal.db"
    pan = "6212345678901234567"
    with Journal.open(db_path, ROOT_KEY) as j:
        txn_id = j.begin(replace(SALE, pan=pan))
        assert_no_pan_on_disk(db_path, pan)
        assert j.card_for(txn_id) == (pan, EXPIRY)
        assert j.get(txn_id).pan_masked == "621234*********4567"


def test_no_pan_or_key_in_logs(tmp_path, caplog):
    mak = os.urandom(16)
    with caplog.at_level(logging.DEBUG), Journal.open(tmp_path / "journal.db", ROOT_KEY) as j:
        txn_id = j.begin(SALE)
        j.put_key("mak", mak)
        j.complete(txn_id, approved=True, response_code="00", rrn="1", auth_code="1")
        j.card_for(txn_id)
    assert caplog.records, "expected some log lines"
    for form in (PAN, PAN[-10:], ROOT_KEY.hex(), mak.hex()):
        assert form not in caplog.text


def test_fingerprint_is_keyed_per_root_key(tmp_path):
    with Journal.open(tmp_path / "a.db", ROOT_KEY) as a, Journal.open(tmp_path / "b.db", OTHER_KEY) as b:
        ha = a.get(a.begin(SALE)).pan_hash
        hb = b.get(b.begin(SALE)).pan_hash
        assert ha == a.get(a.begin(replace(SALE, stan=2))).pan_hash
    assert ha != hb


def test_wrong_root_key_cannot_open_the_card_data(tmp_path, caplog):
    db_path = tmp_path / "journal.db"
    with Journal.open(db_path, ROOT_KEY) as j:
        txn_id = j.begin(SALE)
        j.put_key("mak", b"\x01" * 16)
    with caplog.at_level(logging.ERROR, logger="storage.journal"):
        j = Journal.open(db_path, OTHER_KEY)
    try:
        assert j.root_key_matches is False
        assert "different root key" in caplog.text
        with pytest.raises(StorageError, match="wrong key file or damaged row"):
            j.card_for(txn_id)
        with pytest.raises(StorageError, match="cannot be decrypted"):
            j.get_key("mak")
        assert j.get(txn_id).pan_masked == "622609******0048"  # the rest of the row still reads
    finally:
        j.close()


def test_sealed_card_is_bound_to_its_row(tmp_path):
    """A card blob copied from one row into another does not decrypt."""
    import sqlite3

    db_path = tmp_path / "journal.db"
    with Journal.open(db_path, ROOT_KEY) as j:
        first = j.begin(SALE)
        second = j.begin(replace(SALE, stan=2, pan="6226090000000055"))
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE transactions SET card = (SELECT card FROM transactions WHERE id = ?) WHERE id = ?",
                     (first, second))
    conn.close()
    with Journal.open(db_path, ROOT_KEY) as j:
        assert j.card_for(first) == (PAN, EXPIRY)
        with pytest.raises(StorageError):
            j.card_for(second)
