"""The virtual card's T=0 behaviour (61xx + GET RESPONSE, 6Cxx) and its profile/trace choices."""

from __future__ import annotations

import json
from pathlib import Path

from drivers.cardsim import CardApplet
from drivers.virtual.card import CONTACT_ATR, CONTACTLESS_ATR, T0Card, build_card
from hal.testcards import test_card

SELECT_PSE = bytes.fromhex("00A404000E315041592E5359532E444446303100")
SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")


def _t0() -> tuple[T0Card, CardApplet]:
    applet = CardApplet(test_card("visa-chip"))
    return T0Card(applet.transceive), CardApplet(test_card("visa-chip"))


def test_case4_answer_comes_as_61xx_then_get_response() -> None:
    card, plain = _t0()
    full = plain.transceive(SELECT_PSE)
    first = card.transceive(SELECT_PSE)
    assert first == bytes([0x61, len(full) - 2])
    assert card.transceive(bytes([0, 0xC0, 0, 0, first[1]])) == full


def test_get_response_in_pieces_chains_61xx() -> None:
    card, plain = _t0()
    full = plain.transceive(SELECT_PSE)
    card.transceive(SELECT_PSE)
    part = card.transceive(bytes([0, 0xC0, 0, 0, 16]))
    assert part[:16] == full[:16] and part[16] == 0x61 and part[17] == len(full) - 2 - 16
    rest = card.transceive(bytes([0, 0xC0, 0, 0, part[17]]))
    assert part[:16] + rest == full


def test_case2_with_wrong_le_is_6cxx_then_answered_with_the_right_le() -> None:
    card, _ = _t0()
    assert card.transceive(bytes.fromhex("00A4040007A000000003101000"))[0] == 0x61
    record = bytes.fromhex("00B2010C00")
    answer = card.transceive(record)
    assert answer[0] == 0x6C
    full = card.transceive(record[:4] + answer[1:2])
    assert full[-2:] == b"\x90\x00" and len(full) - 2 == answer[1]


def test_status_only_answers_pass_through() -> None:
    card, _ = _t0()
    assert card.transceive(bytes.fromhex("80CA9F1700")) == b"\x6a\x88"


def test_profile_interface_decides_atr_pse_and_uid() -> None:
    contact = build_card(profile="unionpay-debit-chip", trace_path=None, interface=None,
                         t0_chaining=False)
    assert contact.atr == CONTACT_ATR and contact.uid is None
    assert contact.transceive(SELECT_PSE)[-2:] == b"\x90\x00"
    tap = build_card(profile="mc-tap", trace_path=None, interface=None, t0_chaining=False)
    assert tap.atr == CONTACTLESS_ATR and tap.uid is not None
    assert tap.transceive(SELECT_PPSE)[-2:] == b"\x90\x00"
    assert tap.transceive(bytes.fromhex("FFCA000000")) == tap.uid + b"\x90\x00"


def test_trace_card_answers_from_the_trace(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"interface": "contact", "atr": "3B00",
                                "apdus": [{"c": SELECT_PSE.hex(), "r": "6F009000"}]}))
    card = build_card(profile=None, trace_path=str(path), interface=None, t0_chaining=True)
    assert card.atr == b"\x3b\x00"
    assert card.transceive(SELECT_PSE) == b"\x61\x02"
    assert card.transceive(bytes.fromhex("00C0000002")) == bytes.fromhex("6F009000")
