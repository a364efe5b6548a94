"""Every recorded trace in tests/traces replays to the PAN, expiry, AID and label it was
recorded with (see tests/traces/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.emv.describe import read_on_reader

TRACES = sorted((Path(__file__).resolve().parents[1] / "traces").glob("*.json"))


def test_there_are_traces_to_replay():
    assert TRACES


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
def test_a_recorded_trace_replays_to_what_was_recorded(path, tmp_path):
    trace = json.loads(path.read_text(encoding="utf-8"))
    expect = trace["expect"]
    info = read_on_reader(f"trace:{path}", data_dir=tmp_path,
                          contactless=trace["interface"] == "contactless")
    got = {k: info[k] for k in ("pan_masked", "expiry", "aid", "label")}
    assert got == expect
