"""``posterm card record``: one card session on any reader, saved as a replayable trace.

The reader is wrapped in :class:`hal.trace.TraceRecorder` and read with the app's own card
read (selection, GPO, records); the trace is masked (:func:`hal.trace.mask_sensitive`)
unless ``keep_sensitive``. A read that stops half-way still writes its trace: that is the
field problem worth replaying.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.cardread import CardError, _read_emv, open_reader
from hal.errors import CardRemoved, DeviceError
from hal.interfaces import CardReader, ContactlessReader
from hal.testcards import TestCard
from hal.trace import TraceRecorder, mask_sensitive, save_trace
from storage.pan import mask_pan


def record_session(reader: CardReader | ContactlessReader, out: str | Path, *,
                   amount_fen: int = 0, keep_sensitive: bool = False,
                   timeout: float = 30.0) -> dict[str, Any]:
    """Read the card on ``reader`` once, recording, and write the trace to ``out``.

    Returns ``interface``, ``aid``, ``label``, ``pan_masked``, ``expiry``, ``apdus``,
    ``masked``, ``path`` and, when the read stopped half-way, ``error``. Waiting for the
    card raises the reader's own hal errors.
    """
    recorder = TraceRecorder(reader)
    contactless = isinstance(recorder, ContactlessReader)
    if isinstance(recorder, ContactlessReader):
        recorder.poll(timeout)
    else:
        assert isinstance(recorder, CardReader)
        recorder.wait_for_card(timeout)
    summary: dict[str, Any] = {"interface": recorder.trace["interface"], "aid": None,
                               "label": None, "pan_masked": None, "expiry": None}
    try:
        card = _read_emv(recorder.transceive, "tap" if contactless else "chip", amount_fen)
        summary.update(aid=card.aid, label=card.label, pan_masked=mask_pan(card.pan),
                       expiry=card.expiry)
    except (CardError, CardRemoved) as exc:
        summary["error"] = str(exc)
    finally:
        try:
            if isinstance(recorder, ContactlessReader):
                recorder.release()
            else:
                assert isinstance(recorder, CardReader)
                recorder.power_off()
        except DeviceError:
            pass      # the card is gone already: nothing to release
    trace = recorder.trace if keep_sensitive else mask_sensitive(recorder.trace)
    save_trace(trace, out)
    summary.update(apdus=len(trace["apdus"]), masked=not keep_sensitive, path=str(out))
    return summary


def record(reader_url: str, out: Path, *, data_dir: Path, keep_sensitive: bool = False,
           contactless: bool = False, test_card: TestCard | None = None, amount: int = 0,
           timeout: float = 30.0) -> dict[str, Any]:
    """Open ``reader_url`` and :func:`record_session` on it; ``test_card`` is presented first
    when the reader is a mock one."""
    device = open_reader(reader_url, data_dir=data_dir, contactless=contactless,
                         test_card=test_card)
    try:
        return record_session(device, out, amount_fen=amount, keep_sensitive=keep_sensitive,
                              timeout=timeout)
    finally:
        device.close()
