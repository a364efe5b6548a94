"""The hal's exceptions: what any device can go wrong with, in words a cashier can act on.

Drivers translate every library exception (pyscard, nfcpy, pyserial, python-escpos,
cryptography) into one of these, so the app never sees a library's exception type.
``str(error)`` is one clear line for a cashier; it never holds a PAN, track data, PIN,
PIN block or key.
"""

from __future__ import annotations

__all__ = [
    "Cancelled",
    "CardRemoved",
    "DeviceError",
    "DeviceURLError",
    "DeviceUnavailable",
    "InvalidKey",
    "MultipleCards",
    "PrinterFault",
    "Timeout",
]


class DeviceError(Exception):
    """Base of every device failure; ``str()`` is one line to show the cashier."""


class DeviceUnavailable(DeviceError):
    """The device is not there, not supported by this build, or stopped answering."""


class CardRemoved(DeviceError):
    """The card left the slot or the field during an exchange."""


class Timeout(DeviceError):
    """Nothing happened (no card, no PIN, no swipe) before the time ran out."""


class Cancelled(DeviceError):
    """The customer or the cashier cancelled (e.g. the CANCEL key on the PIN pad)."""


class PrinterFault(DeviceError):
    """The printer cannot print: paper out, cover open, or it is gone."""


class MultipleCards(DeviceError):
    """More than one card answered in the contactless field; the customer presents one."""


class InvalidKey(DeviceError):
    """A key was refused: wrong check value, missing master key, or unusable length."""


class DeviceURLError(ValueError):
    """A device URL is malformed or unknown; the message names the URL and the allowed forms."""
