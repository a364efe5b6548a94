"""Mock contact and contactless readers, opened through the registry."""

import threading

import pytest

from drivers.cardsim import PPSE, PSE
from hal.errors import CardRemoved, Timeout
from hal.registry import DeviceContext, open_device
from hal.testcards import test_card


@pytest.fixture
def reader(tmp_path):
    device = open_device("card_reader", "mock:", context=DeviceContext(tmp_path))
    yield device
    device.close()


@pytest.fixture
def contactless(tmp_path):
    device = open_device("contactless", "mock:", context=DeviceContext(tmp_path))
    yield device
    device.close()


def select(name: bytes) -> bytes:
    return bytes.fromhex("00A40400") + bytes([len(name)]) + name + b"\x00"


def test_wait_for_card_times_out_with_no_card(reader):
    with pytest.raises(Timeout):
        reader.wait_for_card(0.05)


def test_a_tap_card_presented_to_the_contact_reader_is_ignored(reader):
    reader.present(test_card("mc-tap"))
    assert not reader.card_present()
    with pytest.raises(Timeout):
        reader.wait_for_card(0.05)


def test_a_chip_card_gives_an_atr_and_answers_apdus(reader):
    reader.present(test_card("unionpay-debit-chip"))
    atr = reader.wait_for_card(1)
    assert atr[0] == 0x3B and atr.endswith(b"\x90\x00")
    assert reader.transceive(select(PSE))[-2:] == b"\x90\x00"


def test_a_card_presented_from_another_thread_wakes_the_waiting_reader(reader):
    timer = threading.Timer(0.05, reader.present, args=(test_card("visa-chip"),))
    timer.start()
    assert reader.wait_for_card(2)
    timer.join()


def test_transceive_after_the_card_left_raises_card_removed(reader):
    reader.present(test_card("unionpay-debit-chip"))
    reader.wait_for_card(1)
    reader.remove()
    with pytest.raises(CardRemoved):
        reader.transceive(select(PSE))


def test_power_off_ends_the_presentation(reader):
    reader.present(test_card("unionpay-debit-chip"))
    reader.wait_for_card(1)
    reader.power_off()
    assert not reader.card_present()


def test_contactless_reader_takes_tap_cards_only(contactless):
    contactless.present(test_card("unionpay-debit-chip"))
    with pytest.raises(Timeout):
        contactless.poll(0.05)
    contactless.present(test_card("mc-tap"))
    uid = contactless.poll(1)
    assert len(uid) == 4
    assert contactless.transceive(select(PPSE))[-2:] == b"\x90\x00"
    contactless.release()
    assert not contactless.card_present()
    with pytest.raises(CardRemoved):
        contactless.transceive(select(PPSE))
