"""``posterm card record`` on mock readers: the trace keeps its shape and loses card data."""

from __future__ import annotations

import json

import pytest

from app.cardrecord import record
from hal.testcards import CATALOGUE
from hal.trace import load_trace


@pytest.mark.parametrize("name,contactless", [("visa-chip", False),
                                               ("unionpay-debit-chip", False),
                                               ("mc-tap", True)])
def test_a_recorded_trace_holds_no_clear_pan_but_the_same_masked_pan(tmp_path, name, contactless):
    card = CATALOGUE[name]
    out = tmp_path / "trace.json"
    summary = record("mock:", out, data_dir=tmp_path, contactless=contactless, test_card=card,
                     timeout=1)
    assert (summary["aid"], summary["expiry"]) == (card.aid, card.expiry)
    assert summary["pan_masked"] == card.pan[:6] + "******" + card.pan[-4:]
    assert summary["masked"] is True and "error" not in summary
    raw = out.read_bytes().upper()
    assert card.pan.encode() not in raw and card.pan.encode().hex().upper().encode() not in raw
    saved = load_trace(out)
    assert saved["interface"] == ("contactless" if contactless else "contact")
    assert len(saved["apdus"]) == summary["apdus"] >= 4


def test_keep_sensitive_keeps_the_card_data(tmp_path):
    card = CATALOGUE["visa-chip"]
    out = tmp_path / "t.json"
    summary = record("mock:", out, data_dir=tmp_path, keep_sensitive=True, test_card=card,
                     timeout=1)
    assert summary["masked"] is False
    assert card.pan.encode() in out.read_bytes()
    assert json.loads(out.read_text())["apdus"]
