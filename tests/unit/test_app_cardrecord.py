"""Recording a card session: the trace keeps structure and lengths and loses card data."""

from __future__ import annotations

import json

import pytest

from app.cardrecord import _tlv_items, mask_sensitive, record
from hal.testcards import CATALOGUE


@pytest.mark.parametrize("name,contactless", [("visa-chip", False),
                                               ("unionpay-debit-chip", False),
                                               ("mc-tap", True)])
def test_a_recorded_trace_holds_no_clear_pan_but_the_same_masked_pan(tmp_path, name, contactless):
    card = CATALOGUE[name]
    out = tmp_path / "trace.json"
    data, trace = record("mock:", out, data_dir=tmp_path, contactless=contactless,
                         test_card=card, timeout=1)
    assert (data.pan, data.expiry, data.aid) == (card.pan, card.expiry, card.aid)
    raw = out.read_bytes()
    assert card.pan.encode() not in raw and card.pan.encode().hex().encode() not in raw
    assert card.pan.upper().encode() not in raw   # BCD nibbles as hex text = the digits
    saved = json.loads(raw)
    assert saved["interface"] == ("contactless" if contactless else "contact")
    assert [a["c"] for a in saved["apdus"]] == [a["c"] for a in trace["apdus"]]
    pans = [bytes.fromhex(a["r"])[lo:hi].hex().upper()
            for a in saved["apdus"]
            for tag, lo, hi in _tlv_items(bytes.fromhex(a["r"])[:-2]) if tag == "5A"]
    assert pans
    for masked in (p.rstrip("F") for p in pans):
        assert masked != card.pan and len(masked) == len(card.pan)
        assert masked[:6] == card.pan[:6] and masked[-4:] == card.pan[-4:]
        assert len(set(masked[6:-4])) == 1          # one fill digit


def test_keep_sensitive_keeps_the_card_data(tmp_path):
    card = CATALOGUE["visa-chip"]
    out = tmp_path / "t.json"
    record("mock:", out, data_dir=tmp_path, keep_sensitive=True, test_card=card, timeout=1)
    assert card.pan.encode() in out.read_bytes()


def test_masking_keeps_lengths_and_blanks_pin_and_track_data():
    trace = {"interface": "contact", "atr": "3B00", "apdus": [
        {"c": "0020008008241234FFFFFFFFFF", "r": "9000"},
        {"c": "00B2010C00", "r": "701F" + "5710" + "4761739001010010D30122011234567F"
                                  + "5F200A" + "4A4F484E2F534D495448" + "9000"}]}
    masked = mask_sensitive(trace)
    assert masked["apdus"][0]["c"] == "00200080" + "08" + "FF" * 8
    r = masked["apdus"][1]["r"]
    assert len(r) == len(trace["apdus"][1]["r"])
    assert "476173000000" + "0010D3012201" + "0000000F" in r   # 7th digit 9: fill with 0
    assert "58" * 10 in r and "4A4F484E" not in r
