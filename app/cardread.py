"""Reading a card for a transaction: chip or tap through the EMV kernel (app/emv/), or a
swipe on the PIN pad, watching the interfaces in turn until a card shows.

:func:`open_card` keeps a chip card powered for the rest of the transaction (the sale needs
it for GENERATE AC) and hands back a :class:`CardSession`; :func:`read_card` reads and lets
the card go. A chip that does not work allows a swipe in the same read (fallback); a swipe
of a card with a chip is otherwise refused ("insert the card").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from app.emv.carddata import ENTRY_PREFIX, ORG_BY_RID, CardData, from_swipe
from app.emv.errors import CardError, ChipFailure, TlvError
from app.emv.kernel import EmvKernel
from app.emv.params import TerminalParams
from app.emv.selection import Chooser
from app.errors import InputError
from hal.errors import DeviceError, DeviceUnavailable, MultipleCards, Timeout
from hal.interfaces import CardReader, ContactlessReader, TestCardSlot
from hal.registry import DeviceContext, Devices, open_device
from hal.testcards import TestCard

__all__ = ["ENTRY_PREFIX", "ORG_BY_RID", "CardData", "CardError", "CardSession", "open_card",
           "read_card"]

log = logging.getLogger(__name__)

#: How long each interface is watched in turn while waiting on all of them.
POLL_SLICE = 0.25
FALLBACK_PROMPT = "芯片读取失败 请刷卡 / CHIP FAILED: SWIPE"


@dataclass
class CardSession:
    """A card being used: what it holds, its EMV kernel (None for a swipe) and how to let
    it go (power off / release); :meth:`release` may be called any number of times."""

    card: CardData
    kernel: EmvKernel | None = None
    _release: Callable[[], None] | None = field(default=None, repr=False)

    def release(self) -> None:
        done, self._release = self._release, None
        if done is not None:
            try:
                done()
            except DeviceError as exc:
                log.info("releasing the card: %s", exc)   # it is gone already

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_emv(transceive: Callable[[bytes], bytes], interface: str, amount: int,
              params: TerminalParams | None = None, chooser: Chooser | None = None) -> CardData:
    """Selection, GPO and records on ``transceive`` (``posterm card record`` uses this)."""
    kernel = EmvKernel(transceive, params or TerminalParams(), contactless=interface == "tap",
                       amount=amount, chooser=chooser)
    kernel.read()
    return kernel.card_data()


def _open_apdu_card(wait: Callable[[float], bytes], transceive: Callable[[bytes], bytes],
                    done: Callable[[], None], interface: str, amount: int, timeout: float,
                    params: TerminalParams, chooser: Chooser | None,
                    sequence: int | None) -> CardSession:
    """Wait for a card on a reader that speaks APDUs and read it; it stays powered."""
    wait(timeout)
    kernel = EmvKernel(transceive, params, contactless=interface == "tap", amount=amount,
                       chooser=chooser, sequence=sequence)
    try:
        kernel.read()
        return CardSession(kernel.card_data(), kernel, done)
    except BaseException:
        try:
            done()
        except DeviceError:
            pass
        raise


def open_reader(reader_url: str, *, data_dir: Path, contactless: bool = False,
                test_card: TestCard | None = None) -> CardReader | ContactlessReader:
    """Open one reader by its URL for a tool (``card read``, ``card record``), with a test
    card presented when it is a mock one; the caller closes it."""
    role = "contactless" if contactless or reader_url.startswith("nfc:") else "card_reader"
    device = open_device(role, reader_url, context=DeviceContext(data_dir=data_dir))
    if test_card is not None:
        if not isinstance(device, TestCardSlot):
            device.close()
            raise InputError("--card presents a test card to mock readers only")
        device.present(test_card)
    assert isinstance(device, CardReader | ContactlessReader)
    return device


def open_card(devices: Devices, *, interface: str | None, amount: int, timeout: float = 30.0,
              params: TerminalParams | None = None, chooser: Chooser | None = None,
              sequence: int | None = None) -> CardSession:
    """Wait for the card on ``interface`` (or the first that shows one) and read it.

    Two cards in the contactless field are asked to be one: the reader keeps polling until
    one card is left or the time is up. A chip failure turns to the PIN pad's swipe for
    the rest of the time (fallback).
    """
    params = params or TerminalParams()
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _read_once(devices, interface=interface, amount=amount,
                              deadline=deadline, params=params, chooser=chooser,
                              sequence=sequence)
        except MultipleCards as exc:
            if devices.pinpad is not None:
                devices.pinpad.display("请只出示一张卡 / PRESENT ONE CARD")
            if time.monotonic() >= deadline:
                raise CardError(str(exc)) from None
            log.info("%s", exc)
        except (ChipFailure, TlvError) as exc:
            if devices.pinpad is None or interface == "swipe":
                raise
            log.warning("chip read failed (%s): asking for a swipe (fallback)", exc)
            devices.pinpad.display(FALLBACK_PROMPT)
            return _fallback_swipe(devices, deadline, exc)


def _fallback_swipe(devices: Devices, deadline: float, failure: CardError) -> CardSession:
    assert devices.pinpad is not None
    try:
        stripe = devices.pinpad.read_magstripe(max(deadline - time.monotonic(), 0.1))
    except Timeout:
        raise CardError("chip read failed and no swipe followed: try again") from None
    except DeviceUnavailable:
        raise failure from None
    return CardSession(from_swipe(stripe.track2, stripe.track3, fallback=True))


def read_card(devices: Devices, *, interface: str | None, amount: int,
              timeout: float = 30.0, params: TerminalParams | None = None,
              chooser: Chooser | None = None) -> CardData:
    """Read the card (as :func:`open_card`) and let it go at once."""
    with open_card(devices, interface=interface, amount=amount, timeout=timeout,
                   params=params, chooser=chooser) as session:
        return session.card


def _read_once(devices: Devices, *, interface: str | None, amount: int, deadline: float,
               params: TerminalParams, chooser: Chooser | None,
               sequence: int | None) -> CardSession:
    """Watch the interfaces in turn (one, or chip, tap and swipe) until a card shows."""
    order = [interface] if interface else ["chip", "tap", "swipe"]
    while order:
        for kind in list(order):
            left = deadline - time.monotonic()
            if left <= 0:
                raise CardError("no card presented: insert, tap or swipe the card")
            wait = left if interface else min(POLL_SLICE, left)
            try:
                session = _read_from(devices, kind, amount, wait, params, chooser, sequence)
            except Timeout:
                continue
            except MultipleCards:
                raise
            except DeviceUnavailable:
                if interface:
                    raise
                order.remove(kind)      # that reader is gone: keep watching the others
                continue
            except DeviceError as exc:
                raise CardError(f"card read failed: {exc}") from None
            if session is not None:
                return session
            order.remove(kind)          # no device for this interface
    raise CardError("no card reader answers: check the readers (posterm devices)")


def _read_from(devices: Devices, kind: str, amount: int, wait: float, params: TerminalParams,
               chooser: Chooser | None, sequence: int | None) -> CardSession | None:
    """One look at one interface; None when the terminal has no device for it."""
    if kind == "chip" and isinstance(devices.card_reader, CardReader):
        r = devices.card_reader
        return _open_apdu_card(r.wait_for_card, r.transceive, r.power_off, "chip", amount,
                               wait, params, chooser, sequence)
    if kind == "tap" and isinstance(devices.contactless, ContactlessReader):
        c = devices.contactless
        return _open_apdu_card(c.poll, c.transceive, c.release, "tap", amount, wait, params,
                               chooser, sequence)
    if kind == "swipe" and devices.pinpad is not None:
        stripe = devices.pinpad.read_magstripe(wait)
        return CardSession(from_swipe(stripe.track2, stripe.track3))
    return None
