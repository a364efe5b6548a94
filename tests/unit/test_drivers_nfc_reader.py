"""The nfcpy reader's polling and error translation, with nfcpy's real ContactlessFrontend and
Type 4 tags over a simulated field (an nfcpy device driver whose cards are the virtual card's
ISO-DEP code answering with the card emulator): Type A and B, collision, a reader that is
unplugged and plugged in again."""

import errno

import nfc
import nfc.clf
import pytest

from drivers.cardsim import CardApplet
from drivers.nfc import MultipleCards, NfcReader
from drivers.virtual.nfc import IsoDepCard, ats
from hal.device_url import split_url
from hal.errors import CardRemoved, DeviceUnavailable, Timeout
from hal.testcards import test_card

SELECT_PPSE = bytes.fromhex("00A404000E") + b"2PAY.SYS.DDF01" + b"\x00"
UID_A = bytes.fromhex("08A1B2C3")
PUPI_B = bytes.fromhex("5EB0B1B2")


class Card:
    """A contactless card in the simulated field: its answers to sensing, and its applet."""

    def __init__(self, brty: str, *, iso_dep: bool = True) -> None:
        self.brty = brty
        self.iso_dep = IsoDepCard(CardApplet(test_card("mc-tap"), contactless=True).transceive)
        if brty == "106A":
            self.target = nfc.clf.RemoteTarget(
                "106A", sens_res=bytearray.fromhex("0400"), sdd_res=bytearray(UID_A),
                sel_res=bytearray([0x20 if iso_dep else 0x00]))
        else:
            # SENSB_RES: 50, PUPI, application data, bit rates, FSCI 8 | ISO 14443-4, FWI 10.
            self.target = nfc.clf.RemoteTarget(
                "106B", sensb_res=bytearray(b"\x50" + PUPI_B + bytes(4) + b"\x00\x81\xa0"))

    def answer(self, frame: bytes) -> bytes | None:
        if frame[0] == 0xE0:  # RATS
            return ats()
        if frame[0] == 0x1D:  # ATTRIB
            return b"\x00"
        return self.iso_dep.handle(frame)


class Field:
    """An nfcpy device driver (nfc.clf.device.Device's methods) over a field of cards."""

    vendor_name, product_name, path = "Test", "simulated field", "usb:001:002"

    def __init__(self, *cards: Card, type_b: bool = True) -> None:
        self.cards = {card.brty: card for card in cards}
        self.type_b = type_b
        self.plugged = True

    def _check(self) -> None:
        if not self.plugged:
            raise OSError(errno.EIO, "Input/output error")

    def mute(self) -> None:
        self._check()

    def close(self) -> None:
        pass

    def sense_tta(self, target):
        self._check()
        card = self.cards.get("106A")
        return card.target if card else None

    def sense_ttb(self, target):
        self._check()
        if not self.type_b:
            raise nfc.clf.UnsupportedTargetError("no Type B here")
        card = self.cards.get("106B")
        return card.target if card else None

    def send_cmd_recv_rsp(self, target, data, timeout):
        self._check()
        card = self.cards.get(target.brty)
        answer = card.answer(bytes(data)) if card else None
        if answer is None:
            raise nfc.clf.TimeoutError("no answer")
        return bytearray(answer)

    def get_max_send_data_size(self, target):
        return 290

    def get_max_recv_data_size(self, target):
        return 290


def reader_on(field: Field, url: str = "nfc:usb") -> NfcReader:
    def open_frontend(path: str) -> nfc.ContactlessFrontend:
        if not field.plugged:
            raise OSError(errno.ENODEV, "No such device")
        clf = nfc.ContactlessFrontend()
        clf.device = field
        return clf

    return NfcReader(split_url(url), open_frontend)


def test_type_a_card_is_activated_and_answers_apdus():
    reader = reader_on(Field(Card("106A")))
    assert reader.poll(1.0) == UID_A
    assert reader.transceive(SELECT_PPSE)[-2:] == b"\x90\x00"
    assert reader.card_present()


def test_type_b_card_is_activated_with_attrib():
    reader = reader_on(Field(Card("106B")))
    assert reader.poll(1.0) == PUPI_B
    assert reader.transceive(SELECT_PPSE)[-2:] == b"\x90\x00"


def test_type_a_and_b_answering_together_asks_for_one_card():
    reader = reader_on(Field(Card("106A"), Card("106B")))
    with pytest.raises(MultipleCards) as caught:
        reader.poll(1.0)
    assert "one card" in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(CardRemoved):
        reader.transceive(SELECT_PPSE)


def test_type_a_card_without_iso_dep_is_not_polled_as_a_payment_card():
    reader = reader_on(Field(Card("106A", iso_dep=False)))
    with pytest.raises(Timeout):
        reader.poll(0.1)


def test_reader_that_cannot_sense_type_b_polls_type_a():
    reader = reader_on(Field(Card("106A"), type_b=False))
    assert reader.poll(1.0) == UID_A


def test_card_that_stops_answering_is_card_removed():
    card = Card("106A")
    field = Field(card)
    reader = reader_on(field)
    reader.poll(1.0)
    del field.cards["106A"]
    with pytest.raises(CardRemoved):
        reader.transceive(SELECT_PPSE)
    assert not reader.card_present()


def test_unplugged_reader_is_unavailable_and_the_same_object_works_when_it_is_back():
    field = Field(Card("106A"))
    reader = reader_on(field)
    reader.poll(1.0)
    field.plugged = False
    with pytest.raises(DeviceUnavailable) as caught:
        reader.transceive(SELECT_PPSE)
    assert "\n" not in str(caught.value)
    with pytest.raises(DeviceUnavailable, match="not found"):
        reader.poll(0.1)
    field.plugged = True
    assert reader.poll(1.0) == UID_A
    assert reader.transceive(SELECT_PPSE)[-2:] == b"\x90\x00"


def test_closed_reader_is_unavailable():
    reader = reader_on(Field(Card("106A")))
    reader.close()
    with pytest.raises(DeviceUnavailable):
        reader.poll(0.1)
