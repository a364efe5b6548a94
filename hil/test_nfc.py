"""The contactless reader through nfcpy: a tap read end to end, no card, a card that leaves,
a card (the udp peer) that goes away and comes back, no USB reader. Against the bench's
reader, or ``nfc:udp:...`` with the virtual NFC card.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyemv.tlv
import pytest

from drivers.cardsim import CardApplet
from hal.errors import CardRemoved, DeviceUnavailable, Timeout
from hal.interfaces import ContactlessReader
from hal.registry import DeviceContext, open_device
from hal.testcards import TestCard, test_card
from hil.bench import Bench
from hil.nfc_fixtures import VirtualNfcCard

PPSE = b"2PAY.SYS.DDF01"
# How long one nfcpy sense of one technology may wait on the udp driver (its fixed 1 s for
# a SENS_RES), which bounds how far past its timeout a poll can run.
SENSE_WAIT = 1.0

Transceive = Callable[[bytes], bytes]


def _open(url: str, tmp_path: Path) -> ContactlessReader:
    reader = open_device("contactless", url, context=DeviceContext(data_dir=tmp_path))
    assert isinstance(reader, ContactlessReader)
    return reader


@pytest.fixture
def open_reader(tmp_path: Path) -> Iterator[Callable[[str], ContactlessReader]]:
    opened: list[ContactlessReader] = []

    def _opener(url: str) -> ContactlessReader:
        reader = _open(url, tmp_path)
        opened.append(reader)
        return reader

    yield _opener
    for reader in opened:
        reader.close()


def _ok(response: bytes) -> bytes:
    assert response[-2:] == b"\x90\x00", f"SW {response[-2:].hex()}"
    return response[:-2]


def _select(transceive: Transceive, name: bytes) -> dict:
    return pyemv.tlv.decode(
        _ok(transceive(bytes([0x00, 0xA4, 0x04, 0x00, len(name)]) + name + b"\x00")),
        flatten=True,
    )


def read_pan_and_expiry(transceive: Transceive) -> tuple[str, str, str]:
    """SELECT PPSE, SELECT AID, GPO, READ RECORD (per the AFL): PAN, expiry YYMM, AID."""
    aid = _select(transceive, PPSE)["4F"]
    pdol = _select(transceive, aid).get("9F38", b"")
    length = 0
    i = 0
    while i < len(pdol):  # the terminal data the card asks for, all zeros here
        i += 2 if pdol[i] & 0x1F == 0x1F else 1
        length += pdol[i]
        i += 1
    gpo = _ok(transceive(
        bytes([0x80, 0xA8, 0x00, 0x00, length + 2, 0x83, length]) + bytes(length) + b"\x00"))
    afl = gpo[4:] if gpo[0] == 0x80 else pyemv.tlv.decode(gpo, flatten=True)["94"]
    records: dict = {}
    for j in range(0, len(afl), 4):
        sfi, first, last = afl[j] >> 3, afl[j + 1], afl[j + 2]
        for record in range(first, last + 1):
            body = _ok(transceive(bytes([0x00, 0xB2, record, sfi << 3 | 4, 0x00])))
            records.update(pyemv.tlv.decode(body, flatten=True))
    pan = records["5A"].hex().upper().rstrip("F")
    return pan, records["5F24"].hex()[:4], aid.hex().upper()


def _poll_timeout(bench: Bench) -> float:
    return 5.0 if bench.virtual else 30.0  # on a bench, a person taps the card


def test_tap_reads_the_profiles_pan_and_expiry(
    contactless_url: str, contactless_card: TestCard, bench: Bench,
    open_reader: Callable[[str], ContactlessReader],
) -> None:
    reader = open_reader(contactless_url)
    uid = reader.poll(_poll_timeout(bench))
    assert len(uid) in (4, 7, 10)
    assert reader.card_present()
    assert read_pan_and_expiry(reader.transceive) == (
        contactless_card.pan, contactless_card.expiry, contactless_card.aid)
    reader.release()
    assert not reader.card_present()


def test_poll_without_a_card_times_out_within_the_bound(
    virtual_nfc_card: VirtualNfcCard, open_reader: Callable[[str], ContactlessReader],
) -> None:
    url = virtual_nfc_card.start()
    virtual_nfc_card.stop()  # the port stays known, and nothing answers on it
    reader = open_reader(url)
    started = time.monotonic()
    with pytest.raises(Timeout) as caught:
        reader.poll(0.5)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 0.5 + SENSE_WAIT + 1.0
    assert "\n" not in str(caught.value)


def test_card_leaving_mid_exchange_is_card_removed(
    virtual_nfc_card: VirtualNfcCard, open_reader: Callable[[str], ContactlessReader],
) -> None:
    card = test_card("mc-tap")
    reader = open_reader(virtual_nfc_card.start("mc-tap", leave_after=2))
    reader.poll(5.0)
    _select(reader.transceive, PPSE)
    _select(reader.transceive, bytes.fromhex(card.aid))
    started = time.monotonic()
    with pytest.raises(CardRemoved) as caught:
        reader.transceive(bytes.fromhex("80A800000E830C") + bytes(12) + b"\x00")
    # nfcpy's ISO-DEP retries with R(NAK) until its frame waiting time runs out, 4 x 313 ms.
    assert time.monotonic() - started < 3.0
    assert "\n" not in str(caught.value)
    assert not reader.card_present()
    with pytest.raises(CardRemoved):
        reader.transceive(bytes.fromhex("00B2010C00"))


def test_reader_finds_the_card_again_after_the_emulator_restarts(
    virtual_nfc_card: VirtualNfcCard, open_reader: Callable[[str], ContactlessReader],
) -> None:
    reader = open_reader(virtual_nfc_card.start("mc-tap"))
    first = reader.poll(5.0)
    assert read_pan_and_expiry(reader.transceive)[0] == test_card("mc-tap").pan

    virtual_nfc_card.stop()
    with pytest.raises(CardRemoved):
        _select(reader.transceive, PPSE)
    with pytest.raises(Timeout):
        reader.poll(0.2)

    visa = test_card("visa-chip")
    virtual_nfc_card.restart("visa-chip")
    second = reader.poll(5.0)
    assert second != first
    assert read_pan_and_expiry(reader.transceive) == (visa.pan, visa.expiry, visa.aid)


def test_small_frames_chain_commands_and_responses(
    virtual_nfc_card: VirtualNfcCard, open_reader: Callable[[str], ContactlessReader],
) -> None:
    # FSC 16: nfcpy chains every command longer than 13 bytes, and the card chains its
    # answers (the READ RECORD answer is 55 bytes) in 13-byte blocks.
    card = test_card("mc-tap")
    reader = open_reader(virtual_nfc_card.start("mc-tap", frame_size=16))
    reader.poll(5.0)
    assert read_pan_and_expiry(reader.transceive) == (card.pan, card.expiry, card.aid)


def test_type_b_card_is_read_like_a_type_a_card(
    virtual_nfc_card: VirtualNfcCard, open_reader: Callable[[str], ContactlessReader],
) -> None:
    card = test_card("unionpay-debit-chip")  # a chip profile, served with the PPSE
    reader = open_reader(virtual_nfc_card.start(card.name, technology="B"))
    assert len(reader.poll(5.0)) == 4  # the PUPI
    assert read_pan_and_expiry(reader.transceive) == (card.pan, card.expiry, card.aid)


def test_card_is_activated_again_after_release(
    virtual_nfc_card: VirtualNfcCard, open_reader: Callable[[str], ContactlessReader],
) -> None:
    reader = open_reader(virtual_nfc_card.start("mc-tap"))
    uid = reader.poll(5.0)
    _select(reader.transceive, PPSE)
    reader.release()
    assert not reader.card_present()
    with pytest.raises(CardRemoved):
        reader.transceive(b"\x00\xa4\x04\x00\x0e" + PPSE + b"\x00")
    assert reader.poll(5.0) == uid
    assert read_pan_and_expiry(reader.transceive)[0] == test_card("mc-tap").pan


def test_recorded_trace_replays_over_the_air(
    virtual_nfc_card: VirtualNfcCard, open_reader: Callable[[str], ContactlessReader],
    tmp_path: Path,
) -> None:
    card = test_card("mc-tap")

    applet, pairs = CardApplet(card, contactless=True), []

    def recording(apdu: bytes) -> bytes:
        response = applet.transceive(apdu)
        pairs.append({"c": apdu.hex().upper(), "r": response.hex().upper()})
        return response

    read_pan_and_expiry(recording)
    trace = tmp_path / "mc-tap.json"
    trace.write_text(json.dumps({"interface": "contactless", "atr": "3B8880010000000000718100F9",
                                 "apdus": pairs}))
    reader = open_reader(virtual_nfc_card.start(trace=os.fspath(trace)))
    reader.poll(5.0)
    assert read_pan_and_expiry(reader.transceive) == (card.pan, card.expiry, card.aid)


def test_usb_without_a_reader_is_device_unavailable_in_one_line(
    bench: Bench, tmp_path: Path,
) -> None:
    try:
        reader = _open("nfc:usb", tmp_path)
    except DeviceUnavailable as exc:
        message = str(exc)
    else:
        reader.close()
        pytest.skip("a contactless reader is plugged in on USB here")
    assert "\n" not in message
    assert "nfc:usb" in message
