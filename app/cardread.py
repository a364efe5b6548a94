"""Reading a card for a transaction: chip or tap (a first EMV read), or a swipe.

Issue 4 replaces the chip/tap part with the full EMV flow (app/emv/); for now the card is
selected, GET PROCESSING OPTIONS is sent and the AFL's records are read, which is enough
for PAN, expiry, sequence number and track-2 equivalent data.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyemv.tlv

from app.errors import EXIT_DECLINED, AppError
from hal.errors import DeviceError, DeviceUnavailable, MultipleCards, Timeout
from hal.interfaces import CardReader, ContactlessReader
from hal.registry import Devices

log = logging.getLogger(__name__)

PSE = b"1PAY.SYS.DDF01"
PPSE = b"2PAY.SYS.DDF01"
ORG_BY_RID = {"A000000333": "CUP", "A000000003": "VIS", "A000000004": "MCC",
              "A000000025": "AMX", "A000000065": "JCB"}
ENTRY_PREFIX = {"chip": "05", "tap": "07", "swipe": "02"}
#: Tried in turn when a contact card has no PSE (UnionPay debit/credit/quasi-credit, Visa,
#: Mastercard, Amex, JCB).
CANDIDATE_AIDS = ("A000000333010101", "A000000333010102", "A000000333010103",
                  "A0000000031010", "A0000000041010", "A00000002501", "A0000000651010")


class CardError(AppError):
    """The card could not be read or used; the cashier is told to try again."""

    exit_code = EXIT_DECLINED


@dataclass(frozen=True)
class CardData:
    """What the terminal learnt from the card; in memory only, never journaled in clear."""

    interface: str            # chip | tap | swipe
    pan: str
    expiry: str | None        # YYMM
    card_org: str
    track2: str | None = None
    track3: str | None = None
    card_seq: str | None = None
    aid: str | None = None
    label: str | None = None
    service_code: str | None = None

    def entry_mode(self, pin_entered: bool) -> str:
        """Field 22: 05x chip, 07x contactless, 02x swipe; x = 1 PIN entered, 2 no PIN."""
        return ENTRY_PREFIX[self.interface] + ("1" if pin_entered else "2")


def _check(response: bytes, what: str) -> bytes:
    if len(response) < 2:
        raise CardError(f"card gave no answer to {what}: try again")
    if response[-2:] != b"\x90\x00":
        raise CardError(f"card refused {what} ({response[-2:].hex().upper()}): try again")
    return response[:-2]


def _tlv(data: bytes, what: str) -> dict:
    try:
        return pyemv.tlv.decode(data, flatten=True)
    except pyemv.tlv.DecodeError:
        raise CardError(f"card's answer to {what} is malformed: try again") from None


def _select(transceive, name: bytes) -> bytes:
    return transceive(bytes([0x00, 0xA4, 0x04, 0x00, len(name)]) + name + b"\x00")


def _dol(dol: bytes, values: dict[str, bytes]) -> bytes:
    """Fill a data object list (tag, length pairs) from ``values``, zeros where unknown."""
    out = b""
    i = 0
    while i < len(dol):
        tag_len = 2 if dol[i] & 0x1F == 0x1F else 1
        tag = dol[i:i + tag_len].hex().upper()
        length = dol[i + tag_len]
        i += tag_len + 1
        value = values.get(tag, b"")
        out += value[:length].rjust(length, b"\x00")
    return out


def _directory_aids(transceive, interface: str) -> list[str]:
    """The AIDs the card lists: the PPSE's FCI, or the PSE's FCI and its directory records
    (READ RECORD on the SFI in tag 88 up to 6A83). A contact card without a PSE gets the
    terminal's candidate list, as EMV's list-of-AIDs method does."""
    answer = _select(transceive, PPSE if interface == "tap" else PSE)
    aids: list[str] = []
    if answer[-2:] == b"\x90\x00":
        fci = _tlv(answer[:-2], "directory selection")
        if "4F" in fci:
            aids.append(fci["4F"].hex().upper())
        sfi = fci.get("88")
        if sfi and not aids:
            for record in range(1, 17):
                body = transceive(bytes([0x00, 0xB2, record, (sfi[0] << 3) | 4, 0x00]))
                if body[-2:] != b"\x90\x00":
                    break
                aid = _tlv(body[:-2], "directory record").get("4F")
                if aid:
                    aids.append(aid.hex().upper())
    if not aids and interface != "tap":
        aids = list(CANDIDATE_AIDS)
    return aids


def _read_emv(transceive, interface: str, amount: int) -> CardData:
    fci = None
    for aid_hex in _directory_aids(transceive, interface):
        answer = _select(transceive, bytes.fromhex(aid_hex))
        if answer[-2:] == b"\x90\x00":
            fci = _tlv(answer[:-2], "SELECT")
            aid_hex = (fci.get("84") or bytes.fromhex(aid_hex)).hex().upper()
            break
    if fci is None:
        raise CardError("card has no supported application")
    label = fci.get("50", b"").decode("ascii", "replace") or None
    pdol = fci.get("9F38", b"")
    terminal_data = {"9F02": bytes.fromhex(f"{amount:012d}"),
                     "5F2A": bytes.fromhex("0156"), "9F1A": bytes.fromhex("0156"),
                     "9C": b"\x00", "9F37": os.urandom(4),
                     "9F66": bytes.fromhex("26000080")}
    data = _dol(pdol, terminal_data)
    gpo = _check(transceive(bytes([0x80, 0xA8, 0x00, 0x00, len(data) + 2, 0x83, len(data)])
                            + data + b"\x00"), "GET PROCESSING OPTIONS")
    if gpo[:1] == b"\x80" and len(gpo) >= 4:
        # Format 1: 80 L, then AIP (2 bytes) and the AFL.
        afl = gpo[4:2 + gpo[1]]
    else:
        afl = _tlv(gpo, "GET PROCESSING OPTIONS").get("94", b"")
    records: dict[str, bytes] = {}
    for i in range(0, len(afl) - 3, 4):
        sfi, first, last = afl[i] >> 3, afl[i + 1], afl[i + 2]
        for rec in range(first, last + 1):
            body = _check(transceive(bytes([0x00, 0xB2, rec, (sfi << 3) | 4, 0x00])),
                          "READ RECORD")
            records.update(_tlv(body, "READ RECORD"))
    return _card_from_records(records, interface, aid_hex, label)


def _card_from_records(records: dict[str, bytes], interface: str, aid: str,
                       label: str | None) -> CardData:
    track2 = records.get("57", b"").hex().upper().rstrip("F").replace("D", "=") or None
    pan = records.get("5A", b"").hex().upper().rstrip("F") or None
    if pan is None and track2:
        pan = track2.split("=")[0]
    if not pan or not pan.isdigit():
        raise CardError("card gave no card number: try again")
    expiry = records.get("5F24", b"").hex()[:4] or (track2.split("=")[1][:4] if track2 else None)
    service = track2.split("=")[1][4:7] if track2 and "=" in track2 else None
    seq = records.get("5F34")
    return CardData(interface=interface, pan=pan, expiry=expiry,
                    card_org=ORG_BY_RID.get(aid[:10], "CUP"), track2=track2,
                    card_seq=f"{int(seq.hex()):03d}" if seq else None, aid=aid, label=label,
                    service_code=service)


def _from_swipe(track2: str, track3: str | None) -> CardData:
    pan, sep, rest = track2.partition("=")
    if not sep or not pan.isdigit() or len(rest) < 7:
        raise CardError("bad swipe: swipe the card again")
    org = "CUP" if pan.startswith("62") else {"4": "VIS", "5": "MCC"}.get(pan[0], "CUP")
    return CardData(interface="swipe", pan=pan, expiry=rest[:4], card_org=org, track2=track2,
                    track3=track3, service_code=rest[4:7])


def _read_apdu_card(wait: Callable[[float], bytes], transceive: Callable[[bytes], bytes],
                    done: Callable[[], None], interface: str, amount: int,
                    timeout: float) -> CardData:
    """Wait for a card on a reader that speaks APDUs, read it, and let it go."""
    wait(timeout)
    try:
        return _read_emv(transceive, interface, amount)
    finally:
        done()


def read_card(devices: Devices, *, interface: str | None, amount: int,
              timeout: float = 30.0) -> CardData:
    """Wait for the card on ``interface`` (or the first that shows one) and read it.

    Two cards in the contactless field are asked to be one: the reader keeps polling until
    one card is left or the time is up.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _read_once(devices, interface=interface, amount=amount,
                              timeout=max(deadline - time.monotonic(), 0.1))
        except MultipleCards as exc:
            if devices.pinpad is not None:
                devices.pinpad.display("请只出示一张卡 / PRESENT ONE CARD")
            if time.monotonic() >= deadline:
                raise CardError(str(exc)) from None
            log.info("%s", exc)


#: How long each interface is watched in turn while waiting on all of them.
POLL_SLICE = 0.25


def _read_once(devices: Devices, *, interface: str | None, amount: int,
               timeout: float) -> CardData:
    """Watch the interfaces in turn (one, or chip, tap and swipe) until a card shows."""
    order = [interface] if interface else ["chip", "tap", "swipe"]
    deadline = time.monotonic() + timeout
    while order:
        for kind in list(order):
            left = deadline - time.monotonic()
            if left <= 0:
                raise CardError("no card presented: insert, tap or swipe the card")
            wait = left if interface else min(POLL_SLICE, left)
            try:
                card = _read_from(devices, kind, amount, wait)
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
            if card is not None:
                return card
            order.remove(kind)          # no device for this interface
    raise CardError("no card reader answers: check the readers (posterm devices)")


def _read_from(devices: Devices, kind: str, amount: int, wait: float) -> CardData | None:
    """One look at one interface; None when the terminal has no device for it."""
    if kind == "chip" and isinstance(devices.card_reader, CardReader):
        r = devices.card_reader
        return _read_apdu_card(r.wait_for_card, r.transceive, r.power_off, "chip", amount, wait)
    if kind == "tap" and isinstance(devices.contactless, ContactlessReader):
        c = devices.contactless
        return _read_apdu_card(c.poll, c.transceive, c.release, "tap", amount, wait)
    if kind == "swipe" and devices.pinpad is not None:
        stripe = devices.pinpad.read_magstripe(wait)
        return _from_swipe(stripe.track2, stripe.track3)
    return None
