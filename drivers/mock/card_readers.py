"""Mock contact and contactless readers: a presented test card answers APDUs via CardApplet."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from drivers.cardsim import CardApplet
from drivers.mock.presented import Presented
from hal.device_url import DeviceURL
from hal.errors import CardRemoved, DeviceUnavailable
from hal.interfaces import CardReader, ContactlessReader, TestCardSlot
from hal.registry import DeviceContext
from hal.testcards import TestCard

__all__ = ["MOCK_ATR", "MockCardReader", "MockContactlessReader"]

log = logging.getLogger(__name__)

#: ATR of the mock contact card: T=0, 14 historical bytes, as a typical PBOC card.
MOCK_ATR = bytes.fromhex("3B6E000080318066B08412016E0183009000")


class _MockReader(TestCardSlot):
    """What both mock readers share: a slot for a test card and its applet while powered."""

    interface = ""  # the TestCard.interface this reader takes
    role = ""
    model = ""

    def __init__(self, url: DeviceURL, context: DeviceContext) -> None:
        self._url = url
        self._card: Presented[TestCard] = Presented()
        self._applet: CardApplet | None = None
        self._closed = False

    def info(self) -> dict[str, Any]:
        return {"driver": "mock", "role": self.role, "url": self._url.text, "model": self.model}

    def close(self) -> None:
        self._closed = True
        self._applet = None

    def present(self, card: TestCard, *, pin: str | None = None) -> None:
        """Put ``card`` in the slot/field if this reader takes its interface; else ignore it."""
        if card.interface != self.interface:
            log.debug("%s ignores %s card %s", self.role, card.interface, card.name)
            return
        log.info("test card %s presented to the mock %s", card.name, self.role)
        self._applet = None
        self._card.put(card)

    def remove(self) -> None:
        """The card leaves (pulled out mid-transaction, or taken away from the field)."""
        self._applet = None
        self._card.clear()

    def card_present(self) -> bool:
        return self._card.peek() is not None

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceUnavailable(f"The {self.model} is closed")

    def _activate(self, timeout: float, message: str) -> TestCard:
        self._check_open()
        card = self._card.wait(timeout, timeout_message=message)
        applet = CardApplet(card)
        applet.reset()
        self._applet = applet
        return card

    def transceive(self, apdu: bytes) -> bytes:
        self._check_open()
        card, applet = self._card.peek(), self._applet
        if card is None or applet is None or applet.card is not card:
            raise CardRemoved("Card removed")
        response = applet.transceive(apdu)
        # APDUs carry the PAN and track data: log only the instruction and the status word.
        log.debug("APDU INS %02X -> SW %s", apdu[1] if len(apdu) > 1 else 0, response[-2:].hex())
        return response

    def _deactivate(self) -> None:
        # The customer takes the card away at the end of a transaction, so the next one
        # needs a new presentation (and a "remove card" loop ends on a laptop).
        self._applet = None
        self._card.clear()


class MockCardReader(_MockReader, CardReader):
    """Mock contact reader: takes 'chip' test cards; power_off also ejects the card."""

    interface = "chip"
    role = "card_reader"
    model = "mock contact reader"

    def wait_for_card(self, timeout: float) -> bytes:
        self._activate(timeout, "No card inserted")
        return MOCK_ATR

    def power_off(self) -> None:
        self._deactivate()


class MockContactlessReader(_MockReader, ContactlessReader):
    """Mock contactless reader: takes 'tap' test cards; release() means the card left the field."""

    interface = "tap"
    role = "contactless"
    model = "mock contactless reader"

    def poll(self, timeout: float) -> bytes:
        card = self._activate(timeout, "No card tapped")
        # A 4-byte random-style UID (first byte 08) derived from the profile's name.
        return b"\x08" + hashlib.sha256(card.name.encode()).digest()[:3]

    def release(self) -> None:
        self._deactivate()
