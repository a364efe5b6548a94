"""The device interfaces the app codes against; drivers implement them, one module per family.

Every method may raise a :mod:`hal.errors` exception and nothing else from a library.
Timeouts are in seconds. Nothing here or in a driver logs a PAN, track data, PIN, PIN
block or key.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from hal.document import Document

if TYPE_CHECKING:
    from hal.testcards import TestCard

__all__ = [
    "CardReader",
    "ContactlessReader",
    "Device",
    "MagStripe",
    "PinPad",
    "Printer",
    "PrinterStatus",
    "TestCardSlot",
]


class Device(ABC):
    """Anything opened from a device URL."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """What this device is: at least ``driver``, ``role`` and ``url``; model/firmware if known."""

    @abstractmethod
    def close(self) -> None:
        """Release the device; closing twice is harmless."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CardReader(Device):
    """A contact chip-card reader (ISO 7816, T=0/T=1)."""

    @abstractmethod
    def wait_for_card(self, timeout: float) -> bytes:
        """Wait for a card in the slot, power it up and return its ATR; :class:`Timeout` if none."""

    @abstractmethod
    def transceive(self, apdu: bytes) -> bytes:
        """Send a command APDU; return response data + SW1 SW2. :class:`CardRemoved` if the card left."""

    @abstractmethod
    def card_present(self) -> bool:
        """Whether a card is in the slot (powered or not)."""

    @abstractmethod
    def power_off(self) -> None:
        """Power the card down at the end of a transaction."""


class ContactlessReader(Device):
    """A contactless reader that speaks ISO 14443-4 (ISO-DEP) to a card in its field."""

    @abstractmethod
    def poll(self, timeout: float) -> bytes:
        """Wait for an ISO 14443-4 card in the field, activate it and return its UID; :class:`Timeout`."""

    @abstractmethod
    def transceive(self, apdu: bytes) -> bytes:
        """Send a command APDU; return response data + SW1 SW2. :class:`CardRemoved` if the card left."""

    @abstractmethod
    def card_present(self) -> bool:
        """Whether an activated card is still in the field."""

    @abstractmethod
    def release(self) -> None:
        """Deactivate the card and stop the field until the next :meth:`poll`."""


@dataclass(frozen=True)
class MagStripe:
    """What a swipe read; track 2 like ``'6226090000000048=3012201...'``. Never log it."""

    track2: str
    track3: str | None = None

    def __repr__(self) -> str:
        # Track data must never reach a log line, even through repr() in a traceback.
        return "MagStripe(<track data>)"


class PinPad(Device):
    """A PIN pad facing the customer: display, PIN entry under a working key, magstripe if fitted.

    The clear PIN never leaves the pad; the app only ever sees the encrypted PIN block.
    """

    @abstractmethod
    def display(self, text: str) -> None:
        """Show ``text`` on the pad's display (e.g. the amount, or 请输入密码)."""

    @abstractmethod
    def has_master_key(self, index: int) -> bool:
        """Whether the master key slot ``index`` holds a key."""

    @abstractmethod
    def load_master_key(self, index: int, key: bytes) -> None:
        """Inject a master key (provisioning time; real pads already hold theirs)."""

    @abstractmethod
    def load_working_key(self, index: int, encrypted_key: bytes, kcv: bytes) -> None:
        """Load the PIN key for slot ``index``, encrypted under that slot's master key.

        ``encrypted_key`` is a double-length TDES key encrypted in ECB mode (16 bytes).
        ``kcv`` is the first 4 bytes of 8 zero bytes encrypted under the clear key;
        :class:`InvalidKey` if it does not match or the slot has no master key.
        """

    @abstractmethod
    def get_pin_block(self, pan: str, index: int, timeout: float = 60.0) -> bytes:
        """Let the customer type the PIN; return the ISO 9564 format 0 PIN block for ``pan``,
        encrypted under the working key of slot ``index`` (8 bytes).

        :class:`Cancelled` if the customer or :meth:`cancel` cancels, :class:`Timeout` if
        nothing is entered in time, :class:`InvalidKey` if no working key is loaded.
        """

    @abstractmethod
    def read_magstripe(self, timeout: float) -> MagStripe:
        """Wait for a swipe; :class:`Timeout`, or :class:`DeviceUnavailable` if no reader is fitted."""

    @abstractmethod
    def cancel(self) -> None:
        """Abort a PIN entry or swipe wait under way (from another thread)."""


@dataclass(frozen=True)
class PrinterStatus:
    """The printer's state as far as it can tell."""

    online: bool
    paper_out: bool = False
    cover_open: bool = False


class Printer(Device):
    """A receipt printer."""

    @abstractmethod
    def print_document(self, doc: Document) -> None:
        """Print ``doc`` and cut if it asks; :class:`PrinterFault` on paper out, cover open or gone."""

    @abstractmethod
    def status(self) -> PrinterStatus:
        """The printer's current status."""


class TestCardSlot(ABC):
    """Implemented by mock (and virtual) devices: lets a laptop "present" a test card.

    A device ignores a card it cannot take (a contact reader ignores a tap-only card).
    """

    __test__ = False  # not a pytest test class, despite the name

    @abstractmethod
    def present(self, card: TestCard, *, pin: str | None = None) -> None:
        """Present ``card``; ``pin`` is what the customer will type (default ``card.pin``)."""
