"""Mock PIN pad: working keys under the master key, ISO 9564-0 PIN blocks, swipes."""

import threading

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from hal.errors import Cancelled, DeviceUnavailable, InvalidKey, Timeout
from hal.registry import DeviceContext, open_device
from hal.testcards import test_card

MASTER = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
WORKING = bytes.fromhex("1111111111111111" "2222222222222222")


def ecb(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(TripleDES(key + key[:8]), modes.ECB())
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


@pytest.fixture
def pad(tmp_path):
    device = open_device("pinpad", "mock:", context=DeviceContext(tmp_path))
    yield device
    device.close()


def load_keys(pad, index=1):
    pad.load_master_key(index, MASTER)
    pad.load_working_key(index, ecb(MASTER, WORKING), ecb(WORKING, bytes(8))[:4])


def test_known_kcv_of_the_standard_test_key():
    assert ecb(MASTER, bytes(8))[:4].hex().upper() == "08D7B4FB"


def test_pin_block_is_iso_format_0_under_the_working_key(pad):
    load_keys(pad)
    card = test_card("unionpay-debit-chip")  # PAN 6226090000000048, PIN 123456
    pad.present(card)
    block = pad.get_pin_block(card.pan, 1, timeout=1)
    assert len(block) == 8
    # Independently: PIN field 06 123456 FFFFFFFF, PAN field 0000 + 12 digits before the check digit.
    pin_field = bytes.fromhex("06123456FFFFFFFF")
    pan_field = bytes.fromhex("0000" + "609000000004")
    expected = bytes(a ^ b for a, b in zip(pin_field, pan_field))
    assert ecb(WORKING, block, decrypt=True) == expected


def test_explicit_pin_overrides_the_profile_pin(pad):
    load_keys(pad)
    card = test_card("visa-chip")
    pad.present(card, pin="9876")
    clear = ecb(WORKING, pad.get_pin_block(card.pan, 1, timeout=1), decrypt=True)
    pan_field = bytes.fromhex("0000" + card.pan[-13:-1])
    assert bytes(a ^ b for a, b in zip(clear, pan_field)) == bytes.fromhex("049876FFFFFFFFFF")


def test_wrong_kcv_raises_invalid_key(pad):
    pad.load_master_key(1, MASTER)
    with pytest.raises(InvalidKey):
        pad.load_working_key(1, ecb(MASTER, WORKING), b"\x00\x00\x00\x00")


def test_working_key_without_master_key_raises_invalid_key(pad):
    assert not pad.has_master_key(2)
    with pytest.raises(InvalidKey):
        pad.load_working_key(2, ecb(MASTER, WORKING), ecb(WORKING, bytes(8))[:4])


def test_pin_entry_without_a_working_key_raises_invalid_key(pad):
    pad.present(test_card("visa-chip"))
    with pytest.raises(InvalidKey):
        pad.get_pin_block("4761739001010010", 1, timeout=0.05)


def test_pin_entry_times_out_when_nothing_is_presented(pad):
    load_keys(pad)
    with pytest.raises(Timeout):
        pad.get_pin_block("6226090000000048", 1, timeout=0.05)


def test_cancel_from_another_thread_cancels_pin_entry(pad):
    load_keys(pad)
    timer = threading.Timer(0.05, pad.cancel)
    timer.start()
    with pytest.raises(Cancelled):
        pad.get_pin_block("6226090000000048", 1, timeout=2)
    timer.join()


def test_swipe_card_gives_its_track2_once(pad):
    card = test_card("unionpay-credit-swipe")
    pad.present(card)
    stripe = pad.read_magstripe(1)
    assert stripe.track2 == card.track2()
    assert card.pan not in repr(stripe)
    with pytest.raises(Timeout):
        pad.read_magstripe(0.05)


def test_pad_without_reader_is_unavailable_for_swipes(tmp_path):
    pad = open_device("pinpad", "mock:?msr=no", context=DeviceContext(tmp_path))
    with pytest.raises(DeviceUnavailable):
        pad.read_magstripe(0.05)


def test_display_records_the_text(pad):
    pad.display("请输入密码")
    assert pad.last_display == "请输入密码"
