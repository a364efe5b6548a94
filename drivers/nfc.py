"""Contactless readers through nfcpy: ``nfc:usb``, ``nfc:usb:VID:PID``, ``nfc:tty:DEV:DRIVER``,
``nfc:udp:HOST:PORT``.

The URL's path is nfcpy's own device path (``usb:054c:06c3``, ``tty:USB0:pn532``,
``udp:127.0.0.1:54321``). :meth:`NfcReader.poll` senses ISO 14443-4 cards of Type A and
Type B, activates ISO-DEP (RATS or ATTRIB, by nfcpy's Type 4 tag) and exchanges APDUs as
I-blocks. The frontend is opened when the reader is connected and opened again lazily
after the reader went away, so the same object works once the reader is back.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import nfc
import nfc.clf
import nfc.tag
import nfc.tag.tt4

from hal.device_url import DeviceURL
from hal.errors import CardRemoved, DeviceError, DeviceUnavailable, MultipleCards, Timeout
from hal.interfaces import ContactlessReader
from hal.registry import DeviceContext

__all__ = ["MultipleCards", "NfcReader", "connect"]

log = logging.getLogger(__name__)

# Between sensing rounds, as nfcpy's own connect() loop pauses (its default interval 0.1 s).
_POLL_INTERVAL = 0.05


class NfcReader(ContactlessReader):
    """A contactless reader opened by nfcpy from a device path; ``open_frontend`` opens
    nfcpy's frontend from that path (the unit tests give one over a simulated device)."""

    def __init__(self, url: DeviceURL,
                 open_frontend: Callable[[str], nfc.ContactlessFrontend] = nfc.ContactlessFrontend,
                 ) -> None:
        self._url = url
        self._open_frontend = open_frontend
        self._path = url.path
        self._clf: nfc.ContactlessFrontend | None = None
        self._tag: nfc.tag.tt4.Type4Tag | None = None
        self._type_b = True  # cleared for readers whose nfcpy driver cannot sense Type B
        self._closed = False
        self._model = ""

    # --- the frontend ------------------------------------------------------------------

    def _frontend(self) -> nfc.ContactlessFrontend:
        if self._closed:
            raise DeviceUnavailable(f"The contactless reader {self._url.text} is closed")
        if self._clf is None:
            try:
                clf = self._open_frontend(self._path)
            except OSError as exc:
                raise DeviceUnavailable(_unavailable(self._url.text, exc)) from None
            except (ValueError, ImportError) as exc:  # a path nfcpy cannot take, no libusb
                raise DeviceUnavailable(
                    f"Contactless reader {self._url.text} cannot be opened ({exc})"
                ) from None
            self._clf, self._model = clf, str(clf)
            log.info("contactless reader %s open: %s", self._url.text, self._model)
        return self._clf

    def _drop_frontend(self) -> None:
        clf, self._clf, self._tag = self._clf, None, None
        if clf is not None:
            try:
                clf.close()
            except Exception as exc:  # noqa: BLE001  (the device is gone; closing is best effort)
                log.debug("closing %s: %s", self._url.text, exc)

    @contextmanager
    def _library_errors(self, during_exchange: bool) -> Iterator[None]:
        """Translate nfcpy's exceptions: the reader gone -> DeviceUnavailable (and re-open
        next time); the card gone mid-exchange -> CardRemoved."""
        try:
            yield
        except DeviceError:
            raise
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
            self._tag = None
            if during_exchange:
                log.info("contactless card lost: %s", exc)
                raise CardRemoved("Card removed from the reader too soon: tap again and hold it") from None
            log.debug("contactless sense error: %s", exc)
        except OSError as exc:
            # nfcpy reports a reader unplugged or stopped (USB, tty) as an IOError.
            log.warning("contactless reader %s failed: %s", self._url.text, exc)
            self._drop_frontend()
            raise DeviceUnavailable(_unavailable(self._url.text, exc)) from None
        except Exception as exc:  # anything else nfcpy or libusb raises: the reader is unusable
            log.exception("contactless reader %s failed", self._url.text)
            self._drop_frontend()
            raise DeviceUnavailable(
                f"Contactless reader {self._url.text} stopped working ({type(exc).__name__})"
            ) from None

    # --- ContactlessReader ----------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        found: dict[str, Any] = {"driver": "nfc", "role": "contactless", "url": self._url.text}
        if self._model:
            found["model"] = self._model
        return found

    def close(self) -> None:
        self._drop_frontend()
        self._closed = True

    def poll(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        self._tag = None
        while True:
            clf = self._frontend()
            with self._library_errors(during_exchange=False):
                tag = self._sense_one(clf, deadline)
                if tag is not None:
                    self._tag = tag
                    log.info("contactless card activated (%s)", type(tag).__name__)
                    return tag.identifier
            if time.monotonic() >= deadline:
                raise Timeout("No card tapped")
            time.sleep(min(_POLL_INTERVAL, max(0.0, deadline - time.monotonic())))

    def _sense_one(self, clf: nfc.ContactlessFrontend,
                   deadline: float) -> nfc.tag.tt4.Type4Tag | None:
        """One EMV-style polling round: Type B, then Type A; both answering is a collision.

        A round always senses both, however short the wait: a caller that watches several
        interfaces in turn polls with short timeouts and must still see a Type A card.
        nfcpy's sense() mutes the field first, so the technology sensed last is the one
        still selected: Type A is activated at once, Type B after sensing it again.
        """
        found_b = self._sense(clf, "106B") if self._type_b else None
        found_a = self._sense(clf, "106A")
        if found_a is not None and not (found_a.sel_res and found_a.sel_res[0] & 0x20):
            # SEL_RES bit 6 is ISO 14443-4; a Type 1 tag has no SEL_RES at all.
            log.debug("ignoring a Type A card without ISO 14443-4 (%s)", found_a)
            found_a = None
        if found_a is not None and found_b is not None:
            clf.sense()  # field off: neither card stays selected
            raise MultipleCards("More than one card in the field: present one card only")
        if found_a is None and found_b is not None:
            found_b = self._sense(clf, "106B")
        target = found_a or found_b
        if target is None:
            return None
        try:
            tag = nfc.tag.activate(clf, target)
        except IndexError:  # nfcpy reads TA1/TB1 from the ATS unchecked: a short ATS
            log.info("card gave a short ATS; not activated")
            return None
        if not isinstance(tag, nfc.tag.tt4.Type4Tag):
            log.debug("activation failed for %s", target)
            return None
        return tag

    def _sense(self, clf: nfc.ContactlessFrontend, brty: str) -> nfc.clf.RemoteTarget | None:
        try:
            return clf.sense(nfc.clf.RemoteTarget(brty))
        except nfc.clf.UnsupportedTargetError:
            if brty.endswith("B"):
                log.info("%s cannot sense Type B cards; polling Type A only", self._model)
                self._type_b = False
                return None
            raise

    def transceive(self, apdu: bytes) -> bytes:
        tag = self._tag
        if tag is None:
            raise CardRemoved("No card on the reader: tap the card")
        self._frontend()
        with self._library_errors(during_exchange=True):
            response = bytes(tag.transceive(bytearray(apdu)))
            # APDUs carry the PAN and track data: log only the instruction and the status word.
            log.debug("APDU INS %02X -> SW %s", apdu[1] if len(apdu) > 1 else 0,
                      response[-2:].hex())
            if len(response) < 2:
                self._tag = None
                raise CardRemoved("Card answer incomplete: tap again and hold the card")
            return response
        raise CardRemoved("Card removed from the reader too soon: tap again and hold it")

    def card_present(self) -> bool:
        tag = self._tag
        if tag is None or self._clf is None:
            return False
        with self._library_errors(during_exchange=False):
            if tag.is_present:
                return True
        self._tag = None
        return False

    def release(self) -> None:
        tag, self._tag = self._tag, None
        clf = self._clf
        if clf is None:
            return
        with self._library_errors(during_exchange=False):
            if tag is not None:
                try:
                    tag.clf.exchange(bytearray([0xC2]), 0.1)  # S(DESELECT)
                except nfc.clf.CommunicationError:
                    pass  # the card may be gone already
            clf.sense()  # nfcpy: sense with no target just switches the field off


def _unavailable(url: str, exc: OSError) -> str:
    if exc.errno == errno.ENODEV:
        return f"Contactless reader {url} not found: check that it is plugged in"
    if exc.errno == errno.EACCES:
        return f"Contactless reader {url}: no permission to open it (udev rules or plugdev group)"
    if exc.errno == errno.EBUSY:
        return f"Contactless reader {url} is in use by another program"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"Contactless reader {url} stopped answering ({reason})"


def connect(role: str, url: DeviceURL, context: DeviceContext) -> NfcReader:
    """Open the nfcpy reader at ``url`` (``nfc:usb`` ...); DeviceUnavailable if it is not there."""
    if role != "contactless":
        raise DeviceUnavailable(f"nfc: readers are contactless readers, not a {role}")
    if url.path.startswith("udp:["):
        raise DeviceUnavailable(f"{url.text}: nfcpy's udp driver takes IPv4 addresses only")
    reader = NfcReader(url)
    reader._frontend()
    return reader
