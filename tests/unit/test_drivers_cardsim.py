"""CardApplet answers SELECT / GPO / READ RECORD with well-formed BER-TLV and the profile's data."""

import pytest

from drivers.cardsim import PPSE, PSE, CardApplet, tlv
from hal.testcards import test_card


def parse_tlv(data: bytes) -> list[tuple[str, bytes]]:
    """A strict BER-TLV parser written independently of the emulator's builder."""
    out, i = [], 0
    while i < len(data):
        tag_start = i
        first = data[i]
        i += 1
        if first & 0x1F == 0x1F:  # multi-byte tag
            while data[i] & 0x80:
                i += 1
            i += 1
        tag = data[tag_start:i].hex().upper()
        length = data[i]
        i += 1
        if length & 0x80:
            count = length & 0x7F
            assert count in (1, 2)
            length = int.from_bytes(data[i : i + count], "big")
            assert length >= 0x80 if count == 1 else length > 0xFF  # shortest form
            i += count
        value = data[i : i + length]
        assert len(value) == length, f"tag {tag} is truncated"
        out.append((tag, value))
        i += length
    return out


def tree(data: bytes) -> dict:
    """Constructed tags (bit 6 of the first byte) become nested dicts."""
    result = {}
    for tag, value in parse_tlv(data):
        result[tag] = tree(value) if bytes.fromhex(tag)[0] & 0x20 else value
    return result


def command(header: str, data: bytes = b"", le: bool = True) -> bytes:
    apdu = bytes.fromhex(header)
    if data:
        apdu += bytes([len(data)]) + data
    return apdu + (b"\x00" if le else b"")


def ok(response: bytes) -> bytes:
    assert response[-2:] == b"\x90\x00", response[-2:].hex()
    return response[:-2]


@pytest.fixture
def cup():
    return CardApplet(test_card("unionpay-debit-chip"))


def test_tlv_builder_uses_long_form_lengths():
    assert tlv("5A", b"\x01") == b"\x5a\x01\x01"
    assert tlv("70", bytes(0x7F))[:2] == b"\x70\x7f"
    assert tlv("70", bytes(0x80))[:3] == b"\x70\x81\x80"
    assert tlv("70", bytes(0x100))[:4] == b"\x70\x82\x01\x00"
    assert parse_tlv(tlv("9F38", bytes(300))) == [("9F38", bytes(300))]


def test_select_pse_names_the_directory_file_whose_record_lists_the_cards_aid(cup):
    fci = tree(ok(cup.transceive(command("00A40400", PSE))))
    assert fci["6F"]["84"] == PSE
    assert fci["6F"]["A5"]["88"] == b"\x01"          # the directory's SFI
    assert "BF0C" not in fci["6F"]["A5"]             # the entries are in the records
    entry = tree(ok(cup.transceive(bytes.fromhex("00B2010C00"))))["70"]["61"]
    assert entry["4F"] == bytes.fromhex("A000000333010101")
    assert entry["50"] == b"UnionPay Debit"
    assert entry["87"] == b"\x01"
    assert cup.transceive(bytes.fromhex("00B2020C00")) == b"\x6a\x83"  # end of the directory


def test_contactless_card_answers_ppse_and_not_pse():
    mc = CardApplet(test_card("mc-tap"))
    fci = tree(ok(mc.transceive(command("00A40400", PPSE))))
    assert fci["6F"]["A5"]["BF0C"]["61"]["4F"] == bytes.fromhex("A0000000041010")
    assert mc.transceive(command("00A40400", PSE)) == b"\x6a\x82"


def test_select_aid_returns_fci_with_label_priority_and_pdol(cup):
    fci = tree(ok(cup.transceive(command("00A40400", bytes.fromhex("A000000333010101")))))
    assert fci["6F"]["84"] == bytes.fromhex("A000000333010101")
    a5 = fci["6F"]["A5"]
    assert a5["50"] == b"UnionPay Debit"
    assert a5["87"] == b"\x01"
    assert a5["9F38"] == bytes.fromhex("9F02065F2A029F3704")


def test_select_by_partial_aid_finds_the_application(cup):
    fci = tree(ok(cup.transceive(command("00A40400", bytes.fromhex("A000000333")))))
    assert fci["6F"]["84"] == bytes.fromhex("A000000333010101")


def test_select_unknown_aid_is_not_found(cup):
    assert cup.transceive(command("00A40400", bytes.fromhex("A0000000031010"))) == b"\x6a\x82"


def test_select_with_wrong_p1p2_is_6a86(cup):
    assert cup.transceive(command("00A40100", PSE)) == b"\x6a\x86"


def pdol_length(pdol: bytes) -> int:
    """The length of the data a PDOL asks for (tags of one or two bytes, one length byte)."""
    total, i = 0, 0
    while i < len(pdol):
        i += 2 if pdol[i] & 0x1F == 0x1F else 1
        total += pdol[i]
        i += 1
    return total


def select_and_gpo(applet: CardApplet) -> bytes:
    fci = tree(ok(applet.transceive(command("00A40400", bytes.fromhex(applet.card.aid)))))
    length = pdol_length(fci["6F"]["A5"].get("9F38", b""))
    return ok(applet.transceive(command("80A80000", tlv("83", bytes(length)))))


def test_gpo_answers_format_1_with_aip_and_afl(cup):
    response = parse_tlv(select_and_gpo(cup))
    assert [tag for tag, _ in response] == ["80"]
    value = response[0][1]
    aip, afl = value[:2], value[2:]
    assert len(aip) == 2
    # SFI 1 record 1 (signed for ODA), SFI 2 records 1..2
    assert afl == bytes([0x08, 0x01, 0x01, 0x01, 0x10, 0x01, 0x02, 0x00])


def test_gpo_before_select_is_refused(cup):
    assert cup.transceive(command("80A80000", tlv("83", bytes(12)))) == b"\x69\x85"


@pytest.mark.parametrize("name", ["unionpay-debit-chip", "visa-chip", "expired", "mc-tap"])
def test_read_record_holds_the_profiles_pan_expiry_and_track2(name):
    card = test_card(name)
    applet = CardApplet(card)
    select_and_gpo(applet)
    record = tree(ok(applet.transceive(bytes.fromhex("00B2010C00"))))["70"]
    assert record["5A"].hex().upper().rstrip("F") == card.pan
    expiry = record["5F24"].hex()
    assert expiry[:4] == card.expiry and len(record["5F24"]) == 3
    track2 = record["57"].hex().upper().rstrip("F")
    pan, rest = track2.split("D")
    assert pan == card.pan and rest[:4] == card.expiry and rest[4:7] == card.service_code
    assert record["5F34"] == bytes.fromhex(card.seq)
    assert record["5F20"] == card.cardholder.encode()


def test_expiry_is_the_last_day_of_the_month():
    applet = CardApplet(test_card("expired"))  # 2101 -> 2021-01-31
    select_and_gpo(applet)
    record = tree(ok(applet.transceive(bytes.fromhex("00B2010C00"))))["70"]
    assert record["5F24"] == bytes.fromhex("210131")


def test_missing_record_and_wrong_reference_mode(cup):
    select_and_gpo(cup)
    assert cup.transceive(bytes.fromhex("00B2020C00")) == b"\x6a\x83"
    assert cup.transceive(bytes.fromhex("00B2010800")) == b"\x6a\x86"


def test_unknown_instructions_answer_as_a_card_would(cup):
    assert cup.transceive(command("80AE8000", bytes(52))) == b"\x69\x85"  # GEN AC before GPO
    assert cup.transceive(bytes.fromhex("80CA9F3600")) == b"\x6a\x88"      # nothing selected
    select_and_gpo(cup)
    assert cup.transceive(command("80AE8000", bytes(29))) == b"\x67\x00"  # not CDOL1's length
    assert cup.transceive(bytes.fromhex("80CA9F4F00")) == b"\x6a\x88"
    assert cup.transceive(bytes.fromhex("0084000008")) == b"\x6d\x00"
    assert cup.transceive(bytes.fromhex("00A404")) == b"\x67\x00"


def test_a_swipe_only_card_has_no_chip():
    with pytest.raises(ValueError):
        CardApplet(test_card("unionpay-credit-swipe"))
