"""Mock devices for a laptop without hardware, opened from ``mock:`` URLs.

They behave like the real thing where the app can tell: the readers answer real APDUs
(from :class:`drivers.cardsim.CardApplet`), the PIN pad returns real encrypted ISO 9564-0
PIN blocks, and the printer produces real ESC/POS bytes (python-escpos) plus a plain-text
preview file per document. A test card is "presented" through :class:`hal.interfaces.TestCardSlot`.
"""

from __future__ import annotations

from drivers.mock.card_readers import MockCardReader, MockContactlessReader
from drivers.mock.pinpad import MockPinPad
from drivers.mock.printer import MockPrinter
from hal.device_url import DeviceURL
from hal.interfaces import Device
from hal.registry import DeviceContext

__all__ = ["MockCardReader", "MockContactlessReader", "MockPinPad", "MockPrinter", "connect"]

_CLASSES: dict[str, type[MockCardReader | MockContactlessReader | MockPinPad | MockPrinter]] = {
    "card_reader": MockCardReader,
    "contactless": MockContactlessReader,
    "pinpad": MockPinPad,
    "printer": MockPrinter,
}


def connect(role: str, url: DeviceURL, context: DeviceContext) -> Device:
    """Open the mock device for ``role`` (the registry's driver entry point)."""
    return _CLASSES[role](url, context)
