"""The virtual NFC card's ISO 14443-4 side: ATS layout, block numbers, R-blocks, chaining,
DESELECT; and the same card driven by nfcpy's own ISO-DEP initiator."""

import nfc.clf
import nfc.tag.tt4
import pytest

from drivers.virtual.nfc import FRAME_SIZES, IsoDepCard, activation, ats, fsd_of_rats, listen_target


def echo_with_ok(command: bytes) -> bytes:
    return command[::-1] + b"\x90\x00"


class LossyLink:
    """nfcpy's ContactlessFrontend.exchange as the initiator sees it, over a wire to the card;
    ``drop`` lists the indexes of card answers lost on the way (nfcpy then times out)."""

    def __init__(self, card: IsoDepCard, drop: tuple[int, ...] = ()) -> None:
        self.card, self.drop, self.sent = card, set(drop), []

    def exchange(self, data: bytearray, timeout: float) -> bytearray:
        self.sent.append(bytes(data))
        answer = self.card.handle(bytes(data))
        if answer is None or len(self.sent) - 1 in self.drop:
            raise nfc.clf.TimeoutError("no answer")
        return bytearray(answer)


# --- ATS and RATS -----------------------------------------------------------------------------


def test_ats_is_read_by_nfcpy_as_frame_size_and_waiting_time():
    answer = ats(256, 10, b"\x80\x73")
    assert answer[0] == len(answer)
    # nfcpy's Type4ATag: FSCI = ats[1] & 0x0F, FWI = ats[3] >> 4 (it assumes TA1 and TB1).
    assert answer[1] & 0x70 == 0x70
    assert FRAME_SIZES[answer[1] & 0x0F] == 256
    assert answer[3] >> 4 == 10
    assert answer[4] == 0x00  # TC1: neither CID nor NAD
    assert answer[5:] == b"\x80\x73"


def test_ats_rounds_a_frame_size_down_to_one_iso_allows():
    assert FRAME_SIZES[ats(100)[1] & 0x0F] == 96
    assert FRAME_SIZES[ats(16)[1] & 0x0F] == 16


@pytest.mark.parametrize(("rats", "fsd"), [(b"\xe0\x80", 256), (b"\xe0\x70", 128),
                                           (b"\xe0\x00", 16), (b"\xe0\xf0", 256)])
def test_reader_frame_size_comes_from_the_rats_fsdi(rats, fsd):
    assert fsd_of_rats(rats) == fsd


def test_type_a_activation_is_the_rats_answered_with_the_ats():
    assert activation("A", b"\xe0\x80", b"\x08\x01\x02\x03", b"ATS") == (256, b"ATS")
    assert activation("A", b"\x02\x00\xa4", b"\x08\x01\x02\x03", b"ATS") is None


def test_type_b_activation_is_an_attrib_for_this_pupi():
    pupi = b"\x08\x01\x02\x03"
    # nfcpy's Type4BTag sends 1D, PUPI, param 1 00, param 2 08 (FSDI 256), 01, 00.
    assert activation("B", b"\x1d" + pupi + b"\x00\x08\x01\x00", pupi, b"ATS") == (256, b"\x00")
    assert activation("B", b"\x1d" + b"\xff" * 4 + b"\x00\x08\x01\x00", pupi, b"ATS") is None


def test_type_b_sensb_res_is_read_by_nfcpy_as_frame_size_and_waiting_time():
    sensb_res = listen_target("B", b"\x08\x01\x02\x03", 64).sensb_res
    assert len(sensb_res) == 12 and sensb_res[0] == 0x50
    assert sensb_res[1:5] == b"\x08\x01\x02\x03"
    # nfcpy's Type4BTag: FSCI = sensb_res[10] >> 4, FWI = sensb_res[11] >> 4.
    assert FRAME_SIZES[sensb_res[10] >> 4] == 64 and sensb_res[10] & 0x0F == 0x01
    assert sensb_res[11] >> 4 == 10


# --- block rules -------------------------------------------------------------------------------


def test_i_blocks_are_answered_with_the_readers_block_number():
    card = IsoDepCard(echo_with_ok)
    assert card.handle(b"\x02\x01\x02") == b"\x02\x02\x01\x90\x00"
    assert card.handle(b"\x03\x03") == b"\x03\x03\x90\x00"
    assert card.apdus == 2


def test_presence_check_r_nak_of_the_next_number_gets_r_ack_of_the_current():
    card = IsoDepCard(echo_with_ok)
    # Straight after activation the card's number is 1 and nfcpy checks with R(NAK) 0.
    assert card.handle(b"\xb2") == b"\xa3"
    card.handle(b"\x02\xaa")
    assert card.handle(b"\xb3") == b"\xa2"


def test_r_block_with_the_current_number_repeats_the_last_block():
    card = IsoDepCard(echo_with_ok)
    answer = card.handle(b"\x02\x01\x02")
    assert card.handle(b"\xb2") == answer  # R(NAK): the reader lost the answer
    assert card.handle(b"\xa2") == answer  # R(ACK) with the same number: the same
    assert card.apdus == 1


def test_chained_command_is_acknowledged_and_answered_whole():
    seen = []
    card = IsoDepCard(lambda c: seen.append(c) or b"\x90\x00")
    assert card.handle(b"\x12\x00\xa4") == b"\xa2"
    assert card.handle(b"\x13\x04\x00") == b"\xa3"
    assert card.handle(b"\x02\x07") == b"\x02\x90\x00"
    assert seen == [b"\x00\xa4\x04\x00\x07"]


def test_long_response_is_chained_in_blocks_the_reader_acknowledges():
    card = IsoDepCard(lambda c: bytes(range(30)) + b"\x90\x00", fsd=16)
    first = card.handle(b"\x02\x00")
    assert first == b"\x12" + bytes(range(13))  # FSD 16 - PCB - 2 CRC bytes
    second = card.handle(b"\xa3")
    assert second == b"\x13" + bytes(range(13, 26))
    assert card.handle(b"\xb3") == second  # lost: the reader asks again with R(NAK)
    assert card.handle(b"\xa2") == b"\x02" + bytes(range(26, 30)) + b"\x90\x00"
    assert not card.chaining


def test_card_stays_silent_on_cid_nad_and_unknown_blocks():
    card = IsoDepCard(echo_with_ok)
    assert card.handle(b"\x0a\x00\x01") is None  # I-block with a CID byte
    assert card.handle(b"\x06\x00\x01") is None  # I-block with a NAD byte
    assert card.handle(b"\xf2\x01") is None  # S(WTX) the card never asked for
    assert card.handle(b"") is None
    assert card.apdus == 0


def test_deselect_is_answered_and_then_the_card_is_silent():
    card = IsoDepCard(echo_with_ok)
    assert card.handle(b"\xc2") == b"\xc2"
    assert card.deselected
    assert card.handle(b"\x02\x00") is None


# --- against nfcpy's initiator ------------------------------------------------------------------


@pytest.mark.parametrize("fsc", [16, 256])
def test_nfcpy_initiator_exchanges_long_apdus_with_the_card(fsc):
    command = bytes([0x80, 0xCA, 0x00, 0x00, 60]) + bytes(range(60))
    card = IsoDepCard(echo_with_ok, fsd=fsc)
    link = LossyLink(card)
    initiator = nfc.tag.tt4.IsoDepInitiator(link, fsc, 0.3)
    assert bytes(initiator.exchange(bytearray(command))) == echo_with_ok(command)
    assert bytes(initiator.exchange(bytearray(b"\x00\xb2\x01\x0c\x00"))) == b"\x00\x0c\x01\xb2\x00\x90\x00"
    if fsc == 16:
        assert len(link.sent) > 10  # chained both ways
        assert all(len(block) <= fsc - 2 for block in link.sent)
    assert card.apdus == 2


def test_nfcpy_initiator_recovers_a_lost_answer_with_r_nak():
    card = IsoDepCard(echo_with_ok)
    link = LossyLink(card, drop=(0,))
    initiator = nfc.tag.tt4.IsoDepInitiator(link, 256, 0.3)
    assert bytes(initiator.exchange(bytearray(b"\x00\xa4\x04\x00"))) == b"\x00\x04\xa4\x00\x90\x00"
    assert link.sent[1] == b"\xb2"  # R(NAK), answered by repeating the I-block
    assert bytes(initiator.exchange(bytearray(b"\x01\x02\x03\x04"))) == b"\x04\x03\x02\x01\x90\x00"
    assert card.apdus == 2


def test_nfcpy_presence_check_is_answered():
    card = IsoDepCard(echo_with_ok)
    link = LossyLink(card)
    initiator = nfc.tag.tt4.IsoDepInitiator(link, 256, 0.3)
    initiator.exchange(None)  # raises TimeoutError if the card stayed silent
    initiator.exchange(bytearray(b"\x00\xa4\x04\x00"))
    initiator.exchange(None)
    assert link.sent == [b"\xb2", b"\x02\x00\xa4\x04\x00", b"\xb3"]
