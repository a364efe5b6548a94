"""The contact chip reader through pcscd: the same tests against a bench's PC/SC reader or
pcscd + vsmartcard's vpcd with our virtual card in it.

Tests that script the card (another profile, T=0 answers, pulling it out, a trace) need
the virtual card and skip on a real bench.
"""


from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.cardread import CardData, read_card
from app.cardrecord import record_session
from hal.errors import Cancelled, CardRemoved, DeviceUnavailable, Timeout
from hal.interfaces import CardReader, ContactlessReader
from hal.registry import DeviceContext, Devices, open_device
from hal.testcards import CATALOGUE, TestCard, test_card
from hal.trace import load_trace, mask_pan
from hil.pcsc_fixtures import PcscDaemon, VirtualCard, VirtualCards

pytest.importorskip("smartcard", reason="pyscard is not installed (extra 'devices')")

CHIP_PROFILES = [name for name, card in CATALOGUE.items()
                 if card.interface == "chip" and not card.chip_fault]
SELECT_PSE = bytes.fromhex("00A404000E315041592E5359532E444446303100")
READ_RECORD_1 = bytes.fromhex("00B2010C00")


def _open(role: str, url: str, tmp_path: Path) -> CardReader | ContactlessReader:
    device = open_device(role, url, context=DeviceContext(data_dir=tmp_path))
    assert isinstance(device, CardReader | ContactlessReader)
    return device


@pytest.fixture
def open_reader(tmp_path: Path) -> Iterator[Callable[..., CardReader]]:
    """Opens contact readers by URL and closes them after the test."""
    opened: list[CardReader] = []

    def open_one(url: str) -> CardReader:
        reader = _open("card_reader", url, tmp_path)
        assert isinstance(reader, CardReader)
        opened.append(reader)
        return reader

    yield open_one
    for reader in opened:
        reader.close()


def _read_chip(reader: CardReader, timeout: float = 5.0) -> CardData:
    return read_card(Devices(card_reader=reader), interface="chip", amount=100, timeout=timeout)


def _expect(card: TestCard, data: CardData) -> None:
    assert (data.pan, data.expiry, data.aid) == (card.pan, card.expiry, card.aid)


# --- reading cards ---------------------------------------------------------------------


def test_bench_reader_reads_atr_pan_and_expiry(card_reader_url: str, card_reader_card: TestCard,
                                               open_reader: Callable[..., CardReader]) -> None:
    reader = open_reader(card_reader_url)
    atr = reader.wait_for_card(10)
    assert atr[0] in (0x3B, 0x3F)  # direct or inverse convention
    reader.power_off()
    _expect(card_reader_card, _read_chip(reader))


@pytest.mark.parametrize("profile", CHIP_PROFILES)
def test_every_chip_profile_reads_its_pan_and_expiry_through_pcscd(
        profile: str, virtual_card: Callable[..., VirtualCard],
        open_reader: Callable[..., CardReader]) -> None:
    reader = open_reader(virtual_card(profile).url)
    assert reader.card_present()
    assert reader.wait_for_card(5).hex().upper() == "3B6E000080318066B08412016E0183009000"
    reader.power_off()
    _expect(test_card(profile), _read_chip(reader))


def test_contactless_pcsc_reader_polls_uid_and_reads_mc_tap(
        virtual_card: Callable[..., VirtualCard], tmp_path: Path) -> None:
    card = virtual_card("mc-tap", slot=1)
    assert card.reader.endswith("01")
    reader = _open("contactless", card.url, tmp_path)
    try:
        assert isinstance(reader, ContactlessReader)
        uid = reader.poll(5)
        assert len(uid) == 4 and uid[0] == 0x08  # the virtual card answers FF CA like a reader
        reader.release()
        data = read_card(Devices(contactless=reader), interface="tap", amount=100, timeout=5)
        _expect(test_card("mc-tap"), data)
        assert data.interface == "tap"
    finally:
        reader.close()


def test_first_reader_url_finds_a_reader(virtual_card: Callable[..., VirtualCard],
                                         open_reader: Callable[..., CardReader]) -> None:
    virtual_card("unionpay-debit-chip")
    reader = open_reader("pcsc:")
    assert reader.info()["model"].startswith("Virtual PCD")


def test_no_matching_reader_is_device_unavailable(
        pcscd: PcscDaemon, open_reader: Callable[..., CardReader]) -> None:
    reader = open_reader("pcsc:No Such Reader 9000")
    with pytest.raises(DeviceUnavailable, match="No card reader matching"):
        reader.wait_for_card(0.2)


def test_empty_slot_times_out_within_the_timeout(
        virtual_cards: VirtualCards, open_reader: Callable[..., CardReader]) -> None:
    virtual_cards.stop(0)
    reader = open_reader("pcsc:Virtual PCD 00 00")
    assert not reader.card_present()
    started = time.monotonic()
    with pytest.raises(Timeout):
        reader.wait_for_card(0.3)
    assert time.monotonic() - started < 1.5


def test_close_from_another_thread_ends_a_wait_for_card(
        virtual_cards: VirtualCards, open_reader: Callable[..., CardReader]) -> None:
    virtual_cards.stop(0)
    reader = open_reader("pcsc:Virtual PCD 00 00")
    reader.card_present()  # the context exists, as in a terminal that has been running
    closer = threading.Timer(0.2, reader.close)
    started = time.monotonic()
    closer.start()
    try:
        with pytest.raises(Cancelled):
            reader.wait_for_card(5)
    finally:
        closer.join()
    assert time.monotonic() - started < 2
    with pytest.raises(DeviceUnavailable, match="closed"):
        reader.card_present()


# --- T=0 -------------------------------------------------------------------------------


def test_t0_card_61xx_is_fetched_by_get_response_and_6cxx_resent_with_le(
        virtual_card: Callable[..., VirtualCard],
        open_reader: Callable[..., CardReader]) -> None:
    from smartcard.System import readers

    card = virtual_card("visa-chip", t0_chaining=True)
    # Straight through pyscard the card answers the T=0 way: 61xx and 6Cxx.
    raw = next(r for r in readers() if str(r) == card.reader).createConnection()
    raw.connect()
    _, sw1, _ = raw.transmit(list(SELECT_PSE))
    assert sw1 == 0x61
    _, sw1, sw2 = raw.transmit(list(READ_RECORD_1))
    assert sw1 == 0x6C and sw2 > 0
    raw.disconnect()

    reader = open_reader(card.url)
    reader.wait_for_card(5)
    fci = reader.transceive(SELECT_PSE)
    assert fci[-2:] == b"\x90\x00" and fci[0] == 0x6F and len(fci) == fci[1] + 4
    reader.power_off()
    _expect(test_card("visa-chip"), _read_chip(reader))


# --- the card leaves, the reader leaves ------------------------------------------------------


def test_card_pulled_mid_read_raises_card_removed(
        virtual_card: Callable[..., VirtualCard],
        open_reader: Callable[..., CardReader]) -> None:
    card = virtual_card("unionpay-debit-chip", remove_after=2)
    reader = open_reader(card.url)
    reader.wait_for_card(5)
    assert reader.transceive(SELECT_PSE)[-2:] == b"\x90\x00"
    assert reader.transceive(READ_RECORD_1)[-2:] == b"\x90\x00"
    started = time.monotonic()
    with pytest.raises(CardRemoved):
        reader.transceive(READ_RECORD_1)
    assert time.monotonic() - started < 3
    with pytest.raises(CardRemoved):  # no card powered any more
        reader.transceive(SELECT_PSE)


def test_card_removed_while_idle_and_inserted_again(
        virtual_card: Callable[..., VirtualCard],
        open_reader: Callable[..., CardReader]) -> None:
    card = virtual_card("unionpay-debit-chip")
    reader = open_reader(card.url)
    reader.wait_for_card(5)
    card.remove()
    assert not reader.card_present()
    with pytest.raises(CardRemoved):
        reader.transceive(SELECT_PSE)
    card.insert()
    assert reader.card_present()
    reader.wait_for_card(5)
    assert reader.transceive(SELECT_PSE)[-2:] == b"\x90\x00"


def test_wait_for_card_sees_a_card_inserted_while_waiting(
        virtual_card: Callable[..., VirtualCard],
        open_reader: Callable[..., CardReader]) -> None:
    card = virtual_card("unionpay-debit-chip")
    reader = open_reader(card.url)
    card.remove()
    insert = threading.Timer(0.3, os.kill, (card.pid, signal.SIGUSR2))
    started = time.monotonic()
    insert.start()  # the card goes in while the reader waits
    try:
        reader.wait_for_card(5)
    finally:
        insert.join()
    assert 0.3 <= time.monotonic() - started < 3
    _expect(test_card("unionpay-debit-chip"), _read_chip(reader))


def test_virtual_card_process_stopped_and_restarted_same_reader_object_reads_again(
        virtual_cards: VirtualCards, open_reader: Callable[..., CardReader]) -> None:
    card = virtual_cards.start("visa-chip")
    reader = open_reader(card.url)
    reader.wait_for_card(5)
    virtual_cards.stop(0)
    with pytest.raises(CardRemoved):
        reader.transceive(SELECT_PSE)
    with pytest.raises(Timeout):
        reader.wait_for_card(0.2)
    virtual_cards.start("visa-chip")
    _expect(test_card("visa-chip"), _read_chip(reader))


def test_pcscd_vanishes_and_comes_back_same_reader_object_works(
        pcscd: PcscDaemon, virtual_card: Callable[..., VirtualCard],
        open_reader: Callable[..., CardReader]) -> None:
    if not pcscd.owned:
        pytest.skip("pcscd was already running: this test only restarts a pcscd it started")
    card = virtual_card("unionpay-debit-chip")
    reader = open_reader(card.url)
    reader.wait_for_card(5)
    pcscd.stop()
    with pytest.raises(DeviceUnavailable):
        reader.transceive(SELECT_PSE)
    with pytest.raises(DeviceUnavailable):
        reader.card_present()
    with pytest.raises(DeviceUnavailable):
        reader.wait_for_card(0.2)
    pcscd.ensure()  # the virtual card process reconnects to vpcd by itself
    deadline = time.monotonic() + 5
    while not _present(reader):
        assert time.monotonic() < deadline, "the card did not come back after pcscd restarted"
        time.sleep(0.05)
    _expect(test_card("unionpay-debit-chip"), _read_chip(reader))


def _present(reader: CardReader) -> bool:
    try:
        return reader.card_present()
    except DeviceUnavailable:
        return False


# --- traces ----------------------------------------------------------------------------------


def test_recorded_trace_replays_through_pcscd_and_trace_url_like_the_live_card(
        virtual_card: Callable[..., VirtualCard], open_reader: Callable[..., CardReader],
        tmp_path: Path) -> None:
    card = test_card("visa-chip")
    live_reader = open_reader(virtual_card(card.name).url)
    live = _read_chip(live_reader)
    path = tmp_path / "visa.json"
    summary = record_session(live_reader, path, amount_fen=100, keep_sensitive=True)
    assert summary["aid"] == live.aid and summary["expiry"] == live.expiry
    assert summary["pan_masked"] == live.pan[:6] + "******" + live.pan[-4:]
    assert summary["apdus"] == len(load_trace(path)["apdus"]) >= 4
    assert "error" not in summary
    assert load_trace(path)["interface"] == "contact"

    # Through pcscd: the virtual card serves the trace (the GPO's UN differs: header match).
    replay = _read_chip(open_reader(virtual_card(trace=path).url))
    # As a reader of its own.
    direct = _read_chip(open_reader(f"trace:{path}"))
    for data in (replay, direct):
        assert (data.pan, data.expiry, data.aid) == (live.pan, live.expiry, live.aid)


def test_masked_trace_has_no_clear_pan_and_keep_sensitive_keeps_it(
        virtual_card: Callable[..., VirtualCard], open_reader: Callable[..., CardReader],
        tmp_path: Path) -> None:
    card = test_card("unionpay-debit-chip")
    reader = open_reader(virtual_card(card.name).url)
    masked_path, clear_path = tmp_path / "masked.json", tmp_path / "clear.json"
    record_session(reader, masked_path)
    record_session(reader, clear_path, keep_sensitive=True)
    masked, clear = masked_path.read_bytes().upper(), clear_path.read_bytes().upper()
    pan_hex_ascii = card.pan.encode().hex().upper().encode()  # the PAN as ASCII, in hex
    name_hex = card.cardholder.encode().hex().upper().encode()
    for secret in (card.pan.encode(), pan_hex_ascii, name_hex):
        assert secret not in masked
    assert card.pan.encode() in clear and name_hex in clear
    assert mask_pan(card.pan).encode() in masked
    # The masked trace still replays: same AID and expiry, PAN first 6 / last 4.
    data = _read_chip(open_reader(f"trace:{masked_path}"))
    assert (data.pan, data.expiry, data.aid) == (mask_pan(card.pan), card.expiry, card.aid)
    assert json.loads(masked_path.read_text())["atr"] == json.loads(clear_path.read_text())["atr"]
