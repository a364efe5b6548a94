"""Masking a trace: no clear PAN, track or name data left, TLV structure and expiry intact."""

from __future__ import annotations

import pyemv.tlv

from drivers.cardsim import CardApplet, tlv
from hal.testcards import test_card
from hal.trace import mask_pan, mask_sensitive

PAN = "6226090000000048"


def _trace(*responses: bytes, commands: list[bytes] | None = None) -> dict:
    commands = commands or [bytes.fromhex("00B2010C00")] * len(responses)
    return {"interface": "contact", "atr": "3B00",
            "apdus": [{"c": c.hex().upper(), "r": r.hex().upper()}
                      for c, r in zip(commands, responses, strict=True)]}


def _record() -> bytes:
    applet = CardApplet(test_card("unionpay-debit-chip"))
    applet.transceive(bytes.fromhex("00A4040008A00000033301010100"))
    applet.transceive(bytes.fromhex("80A800000E830C00000000010001560102030400"))
    return applet.transceive(bytes.fromhex("00B2010C00"))


def test_mask_pan_keeps_first_six_and_last_four_and_length() -> None:
    assert mask_pan(PAN) == "6226099999990048"
    assert mask_pan("4761739001010010123") == "4761739999999990123"


def test_record_is_masked_with_valid_tlv_and_expiry_kept() -> None:
    record = _record()
    masked = bytes.fromhex(mask_sensitive(_trace(record))["apdus"][0]["r"])
    assert len(masked) == len(record) and masked[-2:] == b"\x90\x00"
    values = pyemv.tlv.decode(masked[:-2], flatten=True)
    assert values["5A"].hex().upper().rstrip("F") == mask_pan(PAN)
    assert values["57"].hex().upper().startswith(mask_pan(PAN) + "D3012201")
    assert set(values["57"].hex().upper()[len(PAN) + 8:].rstrip("F")) <= {"0"}
    assert values["5F24"] == bytes.fromhex("301231")
    assert values["5F20"] == b"XXXX/XXXX"
    text = masked.hex().upper()
    assert PAN not in text and PAN.encode().hex().upper() not in text


def test_track1_and_discretionary_tags_inside_a_gpo_template_are_masked() -> None:
    track1 = b"B" + PAN.encode() + b"^ZHANG/SAN^30122011234567890"
    response = tlv("77", tlv("82", b"\x18\x00"), tlv("56", track1),
                   tlv("9F1F", b"1234567890"), tlv("9F20", bytes.fromhex("123456789F")),
                   tlv("9F6B", bytes.fromhex(PAN + "D30122011234567F"))) + b"\x90\x00"
    masked = bytes.fromhex(mask_sensitive(_trace(response))["apdus"][0]["r"])
    values = pyemv.tlv.decode(masked[:-2], flatten=True)
    assert values["56"] == b"B" + mask_pan(PAN).encode() + b"^XXXXX/XXX^30122010000000000"
    assert values["9F1F"] == b"0000000000"
    assert values["9F20"] == bytes.fromhex("000000000F")
    assert values["9F6B"].hex().upper() == mask_pan(PAN) + "D30122010000000F"
    assert values["82"] == b"\x18\x00"


def test_pan_outside_known_tags_is_scrubbed_by_byte_search() -> None:
    record = _record()
    stray = tlv("DF01", bytes.fromhex(PAN)) + b"\x90\x00"
    masked = mask_sensitive(_trace(record, stray))
    assert PAN not in masked["apdus"][1]["r"]


def test_verify_pin_data_is_blanked_and_non_tlv_answers_survive() -> None:
    verify = bytes.fromhex("0020008008241234FFFFFFFFFF")
    masked = mask_sensitive(_trace(b"\x90\x00", commands=[verify]))
    assert masked["apdus"][0]["c"] == "00200080082" + "4" + "FF" * 7
    odd = mask_sensitive(_trace(bytes.fromhex("DEADBEEF9000")))
    assert odd["apdus"][0]["r"] == "DEADBEEF9000"


def test_masking_returns_a_copy() -> None:
    trace = _trace(_record())
    before = trace["apdus"][0]["r"]
    mask_sensitive(trace)
    assert trace["apdus"][0]["r"] == before
