"""PC/SC chip-card readers through pcscd (pyscard's ``scard`` layer).

URLs: ``pcsc:`` is the first reader, ``pcsc:<part of its name>`` the first reader whose name
holds that text (case-insensitive). The contact role is a :class:`CardReader`; a PC/SC
contactless reader (``pcsc:<name>`` as the contactless role) is a :class:`ContactlessReader`
whose UID comes from the PC/SC pseudo-APDU GET DATA (FF CA 00 00 00).

Nothing is held open between operations that cannot be re-opened: when pcscd stops or the
reader is unplugged the operation raises :class:`DeviceUnavailable` and drops its context,
and the next operation establishes a new one -- the same object works again once the
reader is back.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any

from smartcard import scard

from hal.device_url import DeviceURL
from hal.errors import Cancelled, CardRemoved, DeviceError, DeviceUnavailable, Timeout
from hal.interfaces import CardReader, ContactlessReader, Device
from hal.registry import DeviceContext

__all__ = ["PcscCardReader", "PcscContactlessReader", "connect"]

log = logging.getLogger(__name__)

# pcscd itself is gone or our context with it: re-establish the context next time.
_SERVICE_GONE = {
    scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED, scard.SCARD_E_INVALID_HANDLE,
    scard.SCARD_F_COMM_ERROR, scard.SCARD_E_NO_READERS_AVAILABLE,
}
# The reader went away (unplugged) while pcscd stayed.
_READER_GONE = {scard.SCARD_E_READER_UNAVAILABLE, scard.SCARD_E_UNKNOWN_READER}
# The card left, or is not powered any more.
_CARD_GONE = {
    scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_UNPOWERED_CARD,
    scard.SCARD_W_RESET_CARD,
}
# An exchange failed half-way: the card was pulled out, or stopped answering.
_EXCHANGE_FAILED = {
    scard.SCARD_E_NOT_TRANSACTED, scard.SCARD_W_UNRESPONSIVE_CARD, scard.SCARD_E_PROTO_MISMATCH,
    scard.SCARD_E_COMM_DATA_LOST, scard.SCARD_F_UNKNOWN_ERROR,
}

_MAX_GET_RESPONSE = 64  # 64 x 256 bytes is more than any EMV response
_PRESENCE_SETTLE = 1.5  # seconds pcscd may take to notice a pulled card (it polls)
_POWER_UP_SETTLE = 1.0  # seconds pcscd may take to power a card it just saw inserted


def _error_text(code: int) -> str:
    try:
        return str(scard.SCardGetErrorMessage(code)).strip().rstrip(".")
    except Exception:  # noqa: BLE001 - only used to word a message
        return f"error 0x{code & 0xFFFFFFFF:08X}"


class _PcscReader(Device):
    """One PC/SC reader slot, found by name each time a context is (re-)established."""

    role = ""
    kind = "card reader"

    def __init__(self, url: DeviceURL) -> None:
        self._url = url
        self._wanted = url.path.strip()
        self._context: int | None = None
        self._reader: str | None = None
        self._card: int | None = None
        self._protocol = 0
        self._atr = b""
        self._lock = threading.RLock()
        self._closed = False

    # --- context, reader, card --------------------------------------------------------

    def _describe(self) -> str:
        return f"pcsc:{self._wanted}" if self._wanted else "the PC/SC reader"

    def _drop(self) -> None:
        """Forget the card, the reader and the context (pcscd restarted or the reader left)."""
        if self._card is not None:
            scard.SCardDisconnect(self._card, scard.SCARD_LEAVE_CARD)
        if self._context is not None:
            scard.SCardReleaseContext(self._context)
        self._card = self._context = self._reader = None
        self._atr = b""

    def _unavailable(self, code: int | None = None) -> DeviceUnavailable:
        """The error for a failed PC/SC call; forgets the context when pcscd or the reader
        is gone, so that the next operation looks for them again."""
        if code in _READER_GONE or code == scard.SCARD_E_NO_READERS_AVAILABLE:
            self._drop()
            return DeviceUnavailable(f"The {self.kind} is not connected ({self._describe()})")
        if code is None or code in _SERVICE_GONE:
            self._drop()
            return DeviceUnavailable(
                f"The {self.kind} service (pcscd) is not running"
                + (f": {_error_text(code)}" if code is not None else "")
            )
        # Anything else (another program holds the card, ...) leaves the context usable.
        return DeviceUnavailable(f"The {self.kind} cannot be used now: {_error_text(code)}")

    def _ensure_context(self) -> int:
        if self._closed:
            raise DeviceUnavailable(f"The {self.kind} is closed")
        if self._context is not None:
            return self._context
        hr, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hr != scard.SCARD_S_SUCCESS:
            raise self._unavailable(hr)
        self._context = context
        return context

    def _ensure_reader(self) -> str:
        context = self._ensure_context()
        if self._reader is not None:
            return self._reader
        hr, readers = scard.SCardListReaders(context, [])
        if hr != scard.SCARD_S_SUCCESS:
            raise self._unavailable(hr)
        wanted = self._wanted.lower()
        for name in readers:
            if wanted in name.lower():
                self._reader = name
                log.debug("%s is reader %r", self._describe(), name)
                return name
        self._drop()
        raise DeviceUnavailable(f"No {self.kind} matching {self._describe()} is connected")

    def _state(self, timeout_ms: int, current: int = scard.SCARD_STATE_UNAWARE) -> int:
        """The reader's event state, waiting up to ``timeout_ms`` for it to differ from
        ``current``; Timeout if it did not change."""
        context, reader = self._ensure_context(), self._ensure_reader()
        hr, states = scard.SCardGetStatusChange(context, timeout_ms, [(reader, current)])
        if hr == scard.SCARD_E_TIMEOUT:
            raise Timeout(f"No card in the {self.kind}")
        if hr == scard.SCARD_E_CANCELLED:
            raise Cancelled("Cancelled")
        if hr != scard.SCARD_S_SUCCESS:
            raise self._unavailable(hr)
        state = states[0][1]
        if state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
            raise self._unavailable(scard.SCARD_E_READER_UNAVAILABLE)
        return int(state)

    @staticmethod
    def _has_card(state: int) -> bool:
        return bool(state & scard.SCARD_STATE_PRESENT) and not state & scard.SCARD_STATE_MUTE

    def _wait_and_connect(self, timeout: float, no_card: str) -> bytes:
        """Wait for a card, power it up (shared, T=0 or T=1) and return its ATR."""
        with self._lock:
            self._disconnect(scard.SCARD_LEAVE_CARD)
            deadline = time.monotonic() + max(0.0, timeout)
            state = self._state(0)
            while not self._has_card(state):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Timeout(no_card)
                try:
                    state = self._state(max(1, int(remaining * 1000)),
                                        state & ~scard.SCARD_STATE_CHANGED)
                except Timeout:
                    raise Timeout(no_card) from None
            reader = self._ensure_reader()
            assert self._context is not None
            settle = time.monotonic() + _POWER_UP_SETTLE
            while True:
                hr, card, protocol = scard.SCardConnect(
                    self._context, reader, scard.SCARD_SHARE_SHARED,
                    scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
                )
                # pcscd shows a card present before its own power-up has read the ATR; a
                # connect in between is refused as unpowered, so give it a moment.
                if hr not in _CARD_GONE or time.monotonic() > settle:
                    break
                time.sleep(0.02)
            if hr in _CARD_GONE or hr in _EXCHANGE_FAILED or hr == scard.SCARD_W_UNSUPPORTED_CARD:
                raise CardRemoved(f"The card could not be read: {_error_text(hr)}")
            if hr != scard.SCARD_S_SUCCESS:
                raise self._unavailable(hr)
            self._card, self._protocol = card, protocol
            hr, _, _, _, atr = scard.SCardStatus(card)
            if hr != scard.SCARD_S_SUCCESS:
                self._disconnect(scard.SCARD_LEAVE_CARD)
                raise CardRemoved(f"The card could not be read: {_error_text(hr)}")
            self._atr = bytes(atr)
            log.info("card powered in %s (T=%d)", reader,
                     0 if protocol == scard.SCARD_PROTOCOL_T0 else 1)
            return self._atr

    def _disconnect(self, disposition: int) -> None:
        if self._card is not None:
            scard.SCardDisconnect(self._card, disposition)
            self._card = None
            self._atr = b""

    # --- APDUs --------------------------------------------------------------------------

    def _transmit(self, apdu: bytes) -> bytes:
        if self._card is None:
            raise CardRemoved("No card powered in the reader: insert the card again")
        hr, response = scard.SCardTransmit(self._card, self._protocol, list(apdu))
        if hr == scard.SCARD_S_SUCCESS and len(response) >= 2:
            return bytes(response)
        if hr in _CARD_GONE:
            self._disconnect(scard.SCARD_LEAVE_CARD)
            raise CardRemoved("Card removed")
        # vpcd (and some reader drivers) report a card pulled mid-exchange as an empty answer.
        if hr in _EXCHANGE_FAILED or hr == scard.SCARD_S_SUCCESS:
            self._disconnect(scard.SCARD_LEAVE_CARD)
            if not self._card_left():
                raise CardRemoved("The card stopped answering: remove it and insert it again")
            raise CardRemoved("Card removed")
        raise self._unavailable(hr)

    def _card_left(self) -> bool:
        """After a failed exchange: whether pcscd sees the slot empty (it polls, so wait a bit)."""
        try:
            state = self._state(0)
            if not self._has_card(state):
                return True
            state = self._state(int(_PRESENCE_SETTLE * 1000),
                                state & ~scard.SCARD_STATE_CHANGED)
            return not self._has_card(state)
        except Timeout:
            return False

    def transceive(self, apdu: bytes) -> bytes:
        """Send ``apdu``; T=0 cases handled here: 61xx fetched by GET RESPONSE, 6Cxx resent with
        the card's Le (EMV book 1, 9.3.1)."""
        apdu = bytes(apdu)
        with self._lock:
            self._ensure_context()
            response = self._transmit(apdu)
            if response[0] == 0x6C and len(apdu) >= 4:
                # Wrong Le: resend with Le = SW2 (replacing the Le, or adding one to case 1/3).
                response = self._transmit(_with_le(apdu, response[1]))
            data = b""
            for _ in range(_MAX_GET_RESPONSE):
                if response[-2] != 0x61:
                    break
                data += response[:-2]
                response = self._transmit(bytes([0x00, 0xC0, 0x00, 0x00, response[-1]]))
            log.debug("APDU INS %02X -> SW %s", apdu[1] if len(apdu) > 1 else 0,
                      response[-2:].hex().upper())
            return data + response

    # --- Device ---------------------------------------------------------------------------

    def card_present(self) -> bool:
        with self._lock:
            return self._has_card(self._state(0))

    def info(self) -> dict[str, Any]:
        found: dict[str, Any] = {"driver": "pcsc", "role": self.role, "url": self._url.text}
        with self._lock:
            try:
                found["model"] = self._ensure_reader()
                found["card_present"] = self._has_card(self._state(0))
            except DeviceError as exc:
                found["error"] = str(exc)
            if self._atr:
                found["atr"] = self._atr.hex().upper()
        return found

    def close(self) -> None:
        context = self._context
        if context is not None:
            # Ends a wait for a card under way in another thread (it raises Cancelled).
            scard.SCardCancel(context)
        with self._lock:
            if self._context is not None:
                self._disconnect(scard.SCARD_UNPOWER_CARD)
            self._drop()
            self._closed = True


def _with_le(apdu: bytes, le: int) -> bytes:
    """``apdu`` with its Le set to ``le`` (replacing the one there, or appending one)."""
    body = apdu[4:]
    if len(body) == 1:  # case 2
        return apdu[:4] + bytes([le])
    if len(body) > 1 and len(body) == 2 + body[0]:  # case 4 with Le
        return apdu[:-1] + bytes([le])
    return apdu + bytes([le])  # case 1 or 3


class PcscCardReader(_PcscReader, CardReader):
    """A PC/SC contact reader."""

    role = "card_reader"
    kind = "card reader"

    def wait_for_card(self, timeout: float) -> bytes:
        return self._wait_and_connect(timeout, "No card inserted")

    def power_off(self) -> None:
        with self._lock:
            self._disconnect(scard.SCARD_UNPOWER_CARD)


class PcscContactlessReader(_PcscReader, ContactlessReader):
    """A PC/SC contactless reader (ACR122, ACR1252, OMNIKEY 5x22, ...)."""

    role = "contactless"
    kind = "contactless reader"

    def poll(self, timeout: float) -> bytes:
        atr = self._wait_and_connect(timeout, "No card tapped")
        with self._lock:
            # GET DATA of the UID, a PC/SC part 3 pseudo-APDU the reader answers itself;
            # readers that do not know it get a stable stand-in from the ATR.
            response = self._transmit(b"\xff\xca\x00\x00\x00")
        if response[-2:] == b"\x90\x00" and len(response) > 2:
            return response[:-2]
        return b"\x08" + hashlib.sha256(atr).digest()[:3]

    def release(self) -> None:
        with self._lock:
            self._disconnect(scard.SCARD_UNPOWER_CARD)


def connect(role: str, url: DeviceURL, context: DeviceContext) -> Device:
    """Open ``pcsc:[name]`` for ``card_reader`` or ``contactless``. The reader need not be
    there yet: it is looked for at the first operation (and again after it vanished)."""
    if role == "card_reader":
        return PcscCardReader(url)
    if role == "contactless":
        return PcscContactlessReader(url)
    raise DeviceUnavailable(f"pcsc: cannot be a {role}")
