"""Card-data protection: sealing, masking, keyed fingerprints, key wrapping."""

from __future__ import annotations

import pytest

from storage.errors import KeyFileError, StorageError
from storage.pan import CardDataProtector, mask_pan

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))
PAN = "6226090000000048"


@pytest.mark.parametrize("pan, masked", [
    ("6226090000000048", "622609******0048"),
    ("4761739001010010", "476173******0010"),
    ("6226090000000000048", "622609*********0048"),
    ("4111111111111", "411111***1111"),
    ("123456789012", "********9012"),
])
def test_mask_pan_keeps_first_six_and_last_four_and_the_length(pan, masked):
    assert mask_pan(pan) == masked
    assert len(mask_pan(pan)) == len(pan)


def test_seal_and_open_round_trip_with_a_fresh_nonce_each_time():
    p = CardDataProtector(KEY_A)
    a, b = p.seal(PAN, aad=b"x"), p.seal(PAN, aad=b"x")
    assert a != b and a[:12] != b[:12]
    assert PAN.encode() not in a
    assert p.open(a, aad=b"x") == PAN


def test_open_with_wrong_key_or_aad_or_damaged_blob_is_a_storage_error():
    blob = CardDataProtector(KEY_A).seal(PAN, aad=b"row 1")
    for protector, aad, data in [
        (CardDataProtector(KEY_B), b"row 1", blob),
        (CardDataProtector(KEY_A), b"row 2", blob),
        (CardDataProtector(KEY_A), b"row 1", blob[:-1] + bytes([blob[-1] ^ 1])),
        (CardDataProtector(KEY_A), b"row 1", b"short"),
    ]:
        with pytest.raises(StorageError, match="cannot be decrypted: wrong key file or damaged row"):
            protector.open(data, aad=aad)


def test_fingerprint_is_stable_and_keyed():
    a1, a2 = CardDataProtector(KEY_A), CardDataProtector(KEY_A)
    assert a1.fingerprint(PAN) == a2.fingerprint(PAN)
    assert len(a1.fingerprint(PAN)) == 64
    assert a1.fingerprint(PAN) != CardDataProtector(KEY_B).fingerprint(PAN)
    assert a1.fingerprint(PAN) != a1.fingerprint("6226090000000055")


def test_subkeys_are_separate_per_purpose():
    p = CardDataProtector(KEY_A)
    wrapped = p.wrap_key("mak", b"\x11" * 16)
    assert p.unwrap_key("mak", wrapped) == b"\x11" * 16
    with pytest.raises(StorageError):
        p.open(wrapped, aad=b"mak")  # sealed under the key-wrap subkey, not the PAN one


def test_wrapped_key_is_bound_to_its_name():
    p = CardDataProtector(KEY_A)
    wrapped = p.wrap_key("pik", b"\x22" * 16)
    with pytest.raises(StorageError, match="'mak' cannot be decrypted"):
        p.unwrap_key("mak", wrapped)


def test_root_key_must_be_32_bytes():
    with pytest.raises(KeyFileError):
        CardDataProtector(b"short")


def test_repr_shows_no_key_material():
    assert "hidden" in repr(CardDataProtector(KEY_A))
