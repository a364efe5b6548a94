"""Mock PIN pad: keys in memory, the PIN the customer "types" given by presenting a test card."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from drivers.mock.presented import Presented
from drivers.pin_block import check_value, iso0_pin_block, tdes_decrypt, tdes_encrypt
from hal.device_url import DeviceURL
from hal.errors import DeviceUnavailable, InvalidKey
from hal.interfaces import MagStripe, PinPad, TestCardSlot
from hal.registry import DeviceContext
from hal.testcards import TestCard

__all__ = ["MockPinPad"]

log = logging.getLogger(__name__)


class MockPinPad(PinPad, TestCardSlot):
    """A PIN pad in memory. ``mock:?msr=no`` makes it a pad without a card swipe.

    :meth:`present` sets the PIN the customer will type (kept for every PIN entry until
    the next presentation) and, for a 'swipe' card, queues one swipe.
    """

    def __init__(self, url: DeviceURL, context: DeviceContext) -> None:
        self._url = url
        self.has_reader = url.options.get("msr", "yes") == "yes"
        self._master_keys: dict[int, bytes] = {}
        self._working_keys: dict[int, bytes] = {}
        self._pin: Presented[str] = Presented()
        self._swipe: Presented[MagStripe] = Presented()
        self.displayed: list[str] = []
        self._closed = False

    def info(self) -> dict[str, Any]:
        return {
            "driver": "mock",
            "role": "pinpad",
            "url": self._url.text,
            "model": "mock PIN pad",
            "magstripe": self.has_reader,
        }

    def close(self) -> None:
        self._closed = True
        self.cancel()

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceUnavailable("The PIN pad is closed")

    # --- test-card slot ------------------------------------------------------------------

    def present(self, card: TestCard, *, pin: str | None = None) -> None:
        typed = card.pin if pin is None else pin
        if not (typed.isascii() and typed.isdigit() and 4 <= len(typed) <= 12):
            raise ValueError("the PIN a customer types is 4 to 12 digits")
        self._pin.put(typed)
        # A swipe card is swiped; a chip card whose chip fails is swiped as the fallback.
        if (card.interface == "swipe" or card.chip_fault) and self.has_reader:
            self._swipe.put(MagStripe(track2=card.track2()))
        log.info("test card %s presented to the mock PIN pad", card.name)

    # --- PinPad ----------------------------------------------------------------------------

    def display(self, text: str) -> None:
        self._check_open()
        self.displayed.append(text)
        log.debug("PIN pad display: %s", text)

    @property
    def last_display(self) -> str | None:
        """The text shown last, for tests."""
        return self.displayed[-1] if self.displayed else None

    def has_master_key(self, index: int) -> bool:
        return index in self._master_keys

    def load_master_key(self, index: int, key: bytes) -> None:
        self._check_open()
        if len(key) not in (16, 24):
            raise InvalidKey(f"A master key is 16 or 24 bytes, not {len(key)}")
        self._master_keys[index] = bytes(key)
        self._working_keys.pop(index, None)
        log.info("master key loaded into slot %d", index)

    def load_working_key(self, index: int, encrypted_key: bytes, kcv: bytes) -> None:
        self._check_open()
        master = self._master_keys.get(index)
        if master is None:
            raise InvalidKey(f"The PIN pad has no master key in slot {index}")
        if len(encrypted_key) != 16:
            raise InvalidKey(f"A PIN key is 16 bytes encrypted, not {len(encrypted_key)}")
        clear = tdes_decrypt(master, encrypted_key)
        if not 3 <= len(kcv) <= 8 or not hmac.compare_digest(check_value(clear, len(kcv)), kcv):
            raise InvalidKey("PIN key check value does not match: sign on again")
        self._working_keys[index] = clear
        log.info("PIN key loaded into slot %d", index)

    def get_pin_block(self, pan: str, index: int, timeout: float = 60.0) -> bytes:
        self._check_open()
        key = self._working_keys.get(index)
        if key is None:
            raise InvalidKey(f"No PIN key in slot {index}: sign on first")
        pin = self._pin.wait(timeout, timeout_message="No PIN entered")
        return tdes_encrypt(key, iso0_pin_block(pin, pan))

    def read_magstripe(self, timeout: float) -> MagStripe:
        self._check_open()
        if not self.has_reader:
            raise DeviceUnavailable("This PIN pad has no card swipe")
        return self._swipe.wait(timeout, timeout_message="No card swiped", take=True)

    def cancel(self) -> None:
        self._pin.cancel()
        self._swipe.cancel()
