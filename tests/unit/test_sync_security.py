"""MACs, key check values and PIN blocks, each against an independent construction."""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from sync import crypto, mac, message
from sync.errors import KeyCheckError, MacError, MessageError
from sync.txntypes import TxnType

KEY16 = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def _des(key8: bytes, block: bytes) -> bytes:
    enc = Cipher(TripleDES(key8 * 3), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def _tdes(key16: bytes, block: bytes) -> bytes:
    enc = Cipher(TripleDES(key16 + key16[:8]), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def test_key_check_value_of_the_classic_test_key():
    # 0123456789ABCDEF FEDCBA9876543210 encrypts eight zero bytes to 08D7B4FB629D0885.
    assert crypto.check_value(KEY16) == bytes.fromhex("08D7B4FB")


def test_unionpay_ecb_mac_follows_the_published_steps():
    data = bytes(range(1, 30))                  # 29 bytes: last block is zero-padded
    padded = data + bytes(3)
    folded = bytes(8)
    for i in range(0, 32, 8):
        folded = bytes(a ^ b for a, b in zip(folded, padded[i:i + 8]))
    hexed = folded.hex().upper().encode()
    step1 = _tdes(KEY16, hexed[:8])
    step2 = _tdes(KEY16, bytes(a ^ b for a, b in zip(step1, hexed[8:])))
    expected = step2.hex().upper().encode()[:8]
    assert mac.ecb_mac(KEY16, data) == expected
    # With a single-length key the same steps use single DES.
    k8 = KEY16[:8]
    s1 = _des(k8, hexed[:8])
    s2 = _des(k8, bytes(a ^ b for a, b in zip(s1, hexed[8:])))
    assert mac.ecb_mac(k8, data) == s2.hex().upper().encode()[:8]


def test_x919_mac_equals_des_cbc_then_decrypt_k2_encrypt_k1():
    data = b"Now is the time for all "
    k1, k2 = KEY16[:8], KEY16[8:]
    cbc = Cipher(TripleDES(k1 * 3), modes.CBC(bytes(8))).encryptor()
    last = (cbc.update(data) + cbc.finalize())[-8:]
    dec = Cipher(TripleDES(k2 * 3), modes.ECB()).decryptor()
    expected = _des(k1, dec.update(last) + dec.finalize())
    assert mac.x919_mac(KEY16, data) == expected
    with pytest.raises(MessageError):
        mac.x919_mac(k1, data)


def test_field64_verifies_and_any_changed_byte_fails():
    doc = message.build(TxnType.SALE, message.TerminalIds("12345678", "898110048990001"),
                        stan=5, batch=1, fields={"4": 1250})
    raw = message.encode_with_mac(doc, "ecb", KEY16)
    message.verify_mac(raw, "ecb", KEY16)
    for pos in (0, 12, len(raw) - 9, len(raw) - 1):
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        with pytest.raises((MacError, MessageError)):
            message.verify_mac(bytes(bad), "ecb", KEY16)
    with pytest.raises(MacError):
        message.verify_mac(raw, "ecb", bytes(16))


def test_working_key_under_the_master_key_is_checked_by_its_check_value():
    tmk, pik = KEY16, bytes.fromhex("11223344556677888877665544332211")
    encrypted = _tdes(tmk, pik[:8]) + _tdes(tmk, pik[8:])
    assert crypto.unwrap_working_key(tmk, encrypted, crypto.check_value(pik), "PIN key") == pik
    with pytest.raises(KeyCheckError):
        crypto.unwrap_working_key(tmk, encrypted, b"\x00\x00\x00\x00", "PIN key")


def test_pin_is_recovered_from_an_iso9564_format0_block():
    pan, pin, pik = "6226090000000048", "123456", KEY16
    pin_field = bytes.fromhex(f"0{len(pin)}{pin}".ljust(16, "F"))
    pan_field = bytes.fromhex("0000" + pan[-13:-1])
    block = _tdes(pik, bytes(a ^ b for a, b in zip(pin_field, pan_field)))
    assert crypto.clear_pin_from_block(pik, block, pan) == pin
    with pytest.raises(MessageError):
        crypto.clear_pin_from_block(bytes(16), block, pan)
