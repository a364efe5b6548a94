"""The kernel's exceptions: every one is a :class:`CardError`, one line for the cashier."""

from __future__ import annotations

from app.errors import EXIT_DECLINED, AppError


class CardError(AppError):
    """The card could not be read or used; the cashier is told what to do next."""

    exit_code = EXIT_DECLINED


class TlvError(CardError):
    """The card's answer is not well-formed BER-TLV, or lacks what its format requires.

    The only exception the TLV and response parsers raise, whatever the bytes.
    """


class NoSupportedApplication(CardError):
    """Application selection ended with an empty candidate list (EMV Book 1 12.4)."""


class CardDeclined(CardError):
    """The card answered AAC: it declines the transaction."""


class ChipFailure(CardError):
    """The chip does not work (no usable answer to any SELECT): a swipe may follow as a
    fallback in the same sale."""
