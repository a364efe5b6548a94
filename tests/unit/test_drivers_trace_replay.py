"""Trace replay: matching rules, the trace: reader, and record -> replay round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cardrecord import record_session
from drivers.mock.card_readers import MockCardReader, MockContactlessReader
from drivers.trace import SW_NOT_FOUND, TraceReplayer
from hal.device_url import split_url
from hal.errors import CardRemoved
from hal.interfaces import CardReader, ContactlessReader
from hal.registry import DeviceContext, open_device
from hal.testcards import test_card
from hal.trace import TraceError, TraceRecorder, load_trace

SELECT_PSE = "00A404000E315041592E5359532E444446303100"
TRACE = {
    "interface": "contact",
    "atr": "3B6E000080318066B08412016E0183009000",
    "apdus": [
        {"c": SELECT_PSE, "r": "6F009000"},
        {"c": "00A4040007A000000003101000", "r": "6F019000"},
        {"c": "80A8000008830600000000010000", "r": "80061800080101009000"},
        {"c": "00B2010C00", "r": "70019000"},
        {"c": "00B2010C00", "r": "70029000"},
        {"c": "80AE8000051122334455", "r": "77009000"},
    ],
}


def test_exact_bytes_answer_first() -> None:
    replayer = TraceReplayer(TRACE)
    assert replayer.transceive(bytes.fromhex(SELECT_PSE)) == bytes.fromhex("6F009000")


def test_same_command_twice_replays_both_answers_in_order() -> None:
    replayer = TraceReplayer(TRACE)
    read = bytes.fromhex("00B2010C00")
    assert replayer.transceive(read) == bytes.fromhex("70019000")
    assert replayer.transceive(read) == bytes.fromhex("70029000")
    replayer.reset()
    assert replayer.transceive(read) == bytes.fromhex("70019000")


def test_gpo_and_generate_ac_with_other_data_match_by_header() -> None:
    replayer = TraceReplayer(TRACE)
    other_un = bytes.fromhex("80A8000008830699999999999900")
    assert replayer.transceive(other_un)[:2] == b"\x80\x06"
    assert replayer.transceive(bytes.fromhex("80AE8000056666666666")) \
        == bytes.fromhex("77009000")


def test_different_le_matches_header_and_data() -> None:
    replayer = TraceReplayer(TRACE)
    assert replayer.transceive(bytes.fromhex("00A4040007A0000000031010")) \
        == bytes.fromhex("6F019000")


def test_select_of_another_name_is_not_found() -> None:
    replayer = TraceReplayer(TRACE)
    assert replayer.transceive(bytes.fromhex("00A4040007A000000004101000")) == SW_NOT_FOUND
    assert replayer.transceive(bytes.fromhex("00B2020C00")) == SW_NOT_FOUND


def test_malformed_trace_is_refused_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**TRACE, "interface": "swipe"}))
    with pytest.raises(TraceError, match="interface"):
        load_trace(bad)
    with pytest.raises(TraceError, match="cannot be read"):
        load_trace(tmp_path / "missing.json")


def _context(tmp_path: Path) -> DeviceContext:
    return DeviceContext(data_dir=tmp_path)


def test_trace_url_is_a_reader_with_the_card_always_present(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(TRACE))
    reader = open_device("card_reader", f"trace:{path}", context=_context(tmp_path))
    assert isinstance(reader, CardReader) and reader.card_present()
    with pytest.raises(CardRemoved):
        reader.transceive(bytes.fromhex(SELECT_PSE))  # not powered yet
    assert reader.wait_for_card(0).hex().upper() == TRACE["atr"]
    assert reader.transceive(bytes.fromhex(SELECT_PSE)) == bytes.fromhex("6F009000")
    tap = open_device("contactless", f"trace:{path}", context=_context(tmp_path))
    assert isinstance(tap, ContactlessReader) and len(tap.poll(0)) == 4


@pytest.mark.parametrize(("profile", "reader_class"), [
    ("visa-chip", MockCardReader), ("mc-tap", MockContactlessReader),
])
def test_recorded_session_replays_through_trace_url_with_the_same_summary(
        profile: str, reader_class: type, tmp_path: Path) -> None:
    card = test_card(profile)
    role = "card_reader" if reader_class is MockCardReader else "contactless"
    live = reader_class(split_url("mock:"), _context(tmp_path))
    live.present(card)
    path = tmp_path / "rec.json"
    summary = record_session(live, path, amount_fen=1234, keep_sensitive=True)
    assert summary["aid"] == card.aid and summary["expiry"] == card.expiry
    assert summary["pan_masked"] == card.pan[:6] + "******" + card.pan[-4:]
    assert summary["apdus"] == len(load_trace(path)["apdus"]) >= 4
    assert "error" not in summary
    assert load_trace(path)["interface"] == ("contact" if role == "card_reader" else "contactless")
    replay = open_device(role, f"trace:{path}", context=_context(tmp_path))
    again = record_session(replay, tmp_path / "again.json", keep_sensitive=True)
    assert {k: again[k] for k in ("aid", "label", "pan_masked", "expiry", "apdus")} == \
        {k: summary[k] for k in ("aid", "label", "pan_masked", "expiry", "apdus")}


def test_recorder_stands_in_for_the_reader_it_wraps(tmp_path: Path) -> None:
    reader = MockCardReader(split_url("mock:"), _context(tmp_path))
    recorder = TraceRecorder(reader)
    assert isinstance(recorder, CardReader) and not isinstance(recorder, ContactlessReader)
    reader.present(test_card("unionpay-debit-chip"))
    recorder.wait_for_card(1)
    recorder.transceive(bytes.fromhex(SELECT_PSE))
    assert recorder.trace["atr"] and len(recorder.trace["apdus"]) == 1
    assert isinstance(TraceRecorder(MockContactlessReader(split_url("mock:"), _context(tmp_path))),
                      ContactlessReader)


def test_session_stopped_half_way_is_still_written(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({**TRACE, "apdus": TRACE["apdus"][:1]}))
    reader = open_device("card_reader", f"trace:{path}", context=_context(tmp_path))
    summary = record_session(reader, tmp_path / "out.json")
    assert "no supported application" in summary["error"]
    assert load_trace(tmp_path / "out.json")["apdus"]
