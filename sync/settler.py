"""Settlement with the host (结算): flush, totals, 0500, batch upload when unbalanced.

DESIGN.md, "Settlement — sync before close". Each step is committed in the journal's
settlement row before the message it leads to goes out (``storage.settlements``), so a
process killed anywhere resumes here from the saved step: a message whose reply was not
recorded is sent again, and the host answers a repeat without counting anything twice
(records are keyed by batch and original STAN). The settler stops at ``host_done``; the app
then builds the report and closes the batch (report and close are the app's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storage.settlements import CountedRow, SettlementRow
from sync.errors import HostTimeout, MessageError, SyncError
from sync.faults import fault_point
from sync.online import HostSession
from sync.responses import rule
from sync.settlement import (
    Kind,
    Totals,
    UploadRecord,
    area_of,
    chunks,
    encode_records,
    upload_count,
)
from sync.txntypes import TxnType

log = logging.getLogger(__name__)

#: progress(phase, done, total): phase is 'upload' or 'tc_upload'.
Progress = Callable[[str, int, int], None]
TC_KIND = "TC"


@dataclass
class SettleOptions:
    """How this terminal's acquirer wants the batch closed."""

    tc_upload: bool = False       # upload chip TCs (0320/203) after a balanced settlement
    upload_tries: int = 3         # sends of one upload message before it is given up on
    #: Field 55 (hex) of a TC upload from a journal row's EMV extras; the app builds it with
    #: its TLV code (sync may not import the app). Needed when tc_upload is on.
    tc_data: Callable[[dict], str] | None = None

    def __post_init__(self) -> None:
        if self.tc_upload and self.tc_data is None:
            raise ValueError("tc_upload needs tc_data, the builder of field 55")


class Settler:
    """Drives the open batch's settlement from whatever step the journal saved."""

    def __init__(self, session: HostSession, options: SettleOptions | None = None,
                 progress: Progress | None = None) -> None:
        self.session = session
        self.journal = session.journal
        self.book = session.journal.settlements
        self.options = options or SettleOptions()
        self.progress = progress

    def run(self) -> SettlementRow:
        """Settle (or resume settling) until the host is done; returns the row at
        ``host_done`` or ``failed``. HostUnreachable / HostTimeout leave the step saved."""
        row = self.book.active() or self.book.start(self.session.config.operator)
        steps: dict[str, Callable[[SettlementRow], SettlementRow]] = {
            "started": self._flush, "flushed": self._count, "totals": self._settle,
            "uploading": self._upload, "tc_upload": self._upload_tcs,
            "upload_end": self._end_upload, "tc_end": self._end_tcs}
        while row.step in steps:
            fault_point(f"settle_{row.step}")
            row = steps[row.step](row)
        fault_point(f"settle_{row.step}")
        return row

    # -- the steps -----------------------------------------------------------------------
    def _flush(self, row: SettlementRow) -> SettlementRow:
        """Nothing the host may not know of: armed reversals and queued advices go first."""
        self.session.flush_reversals()
        self.session.ensure_signed_on()
        self.session.flush_advices()
        if self.journal.pending_reversals() or self.journal.pending_advices():
            raise SyncError("the reversal and advice queues could not be emptied: "
                            "settle again when the host answers")
        return self.book.advance(row.id, "flushed")

    def _count(self, row: SettlementRow) -> SettlementRow:
        counted = self.book.counted(row.batch)
        totals = Totals.count((r.txn_type, r.card_org, r.amount) for r in counted)
        return self.book.advance(row.id, "totals", totals=totals.to_field48(),
                                 stan=self.journal.next_stan(), upload_total=len(counted),
                                 tc_total=len(self._tc_rows(counted))
                                 if self.options.tc_upload else 0)

    def _settle(self, row: SettlementRow) -> SettlementRow:
        assert row.totals is not None and row.stan is not None
        reply = self.session.request(
            TxnType.SETTLEMENT, {"48": row.totals, "49": self.session.config.currency,
                                 "63": f"{row.operator:<3}"[:3]}, stan=row.stan, batch=row.batch)
        code = reply.get("39", "")
        if code != "00":
            return self.book.advance(row.id, "failed", result="error",
                                     error=f"host answered {code} {rule(code).en}")
        try:
            host = Totals.from_field48(reply.get("48", ""))
        except MessageError as exc:
            return self.book.advance(row.id, "failed", result="error", error=str(exc))
        result = host.outcome()
        values: dict[str, Any] = {"host_totals": reply["48"], "result": result,
                  "settlement_date": reply.get("15")}
        log.info("settlement of batch %06d: %s", row.batch, result)
        if result == "error":
            return self.book.advance(row.id, "failed", error="the host could not compare "
                                     "the totals (result 3)", **values)
        if result == "unbalanced":
            return self.book.advance(row.id, "uploading", **values)
        tc = self.options.tc_upload and row.tc_total > 0
        return self.book.advance(row.id, "tc_upload" if tc else "host_done", **values)

    def _upload(self, row: SettlementRow) -> SettlementRow:
        """Batch upload (0320/201): every counted transaction, eight to a message."""
        counted = self.book.counted(row.batch)
        problems, uploaded, cursor = list(row.problems), row.uploaded, row.upload_cursor
        for chunk in chunks(counted[cursor:]):
            records = [self._record(r) for r in chunk]
            code = self._send_upload(TxnType.BATCH_UPLOAD, {"48": encode_records(records)},
                                     row.batch)
            if code == "00":
                uploaded += len(chunk)
            else:
                problems += [_problem(r, code) for r in chunk]
            cursor += len(chunk)
            row = self.book.advance(row.id, "uploading", audit=False, upload_cursor=cursor,
                                    uploaded=uploaded, problems=problems)
            self._report("upload", cursor, len(counted))
        tc = self.options.tc_upload and row.tc_total > 0
        return self.book.advance(row.id, "tc_upload" if tc else "upload_end",
                                 uploaded=uploaded)

    def _upload_tcs(self, row: SettlementRow) -> SettlementRow:
        """TC upload (0320/203): one message per chip transaction the card approved."""
        tc_rows = self._tc_rows(self.book.counted(row.batch))
        problems, cursor = list(row.problems), row.tc_cursor
        for r in tc_rows[cursor:]:
            record = self.journal.get(r.id)
            pan, expiry = self.journal.card_for(r.id)
            # 14 as the card gave it: the host checks the TC against the same card data.
            code = self._send_upload(TxnType.TC_UPLOAD, {
                "2": pan, "4": f"{r.amount:012d}", "14": expiry, "22": r.entry_mode,
                "23": record.card_seq, "49": record.currency, "55": self._tc_data(record.extra),
                "61": f"{row.batch:06d}{r.stan:06d}"}, row.batch)
            if code != "00":
                problems.append(_problem(r, code, tc=True))
            cursor += 1
            row = self.book.advance(row.id, "tc_upload", audit=False, tc_cursor=cursor,
                                    problems=problems)
            self._report("tc_upload", cursor, len(tc_rows))
        return self.book.advance(row.id, "upload_end" if row.result == "unbalanced"
                                 else "tc_end")

    def _end_upload(self, row: SettlementRow) -> SettlementRow:
        """Upload end (0320/202): the host compares again after the upload."""
        reply = self.session.request(TxnType.UPLOAD_END, {"48": upload_count(row.uploaded)},
                                     batch=row.batch)
        code = reply.get("39", "")
        after = "error"
        if code == "00":
            try:
                after = Totals.from_field48(reply.get("48", "")).outcome()
            except MessageError as exc:
                log.warning("upload end: %s", exc)
        log.info("batch %06d after the upload: %s", row.batch, after)
        return self.book.advance(row.id, "host_done", result_after_upload=after)

    def _end_tcs(self, row: SettlementRow) -> SettlementRow:
        uploaded = row.tc_cursor - sum(1 for p in row.problems if p.get("tc"))
        reply = self.session.request(TxnType.TC_UPLOAD_END, {"48": upload_count(uploaded)},
                                     batch=row.batch)
        code = reply.get("39", "")
        problems = list(row.problems)
        if code != "00":
            problems.append({"stan": 0, "txn_type": "tc_upload_end", "amount": 0,
                             "problem": f"TC upload end answered {code} {rule(code).en}"})
        return self.book.advance(row.id, "host_done", problems=problems)

    # -- pieces --------------------------------------------------------------------------
    def _send_upload(self, txn: TxnType, fields: dict[str, object], batch: int) -> str:
        """One upload message, sent again on a timeout; its F39, or 'no reply'."""
        for attempt in range(1, max(1, self.options.upload_tries) + 1):
            try:
                return self.session.request(txn, fields, batch=batch).get("39", "")
            except HostTimeout as exc:
                log.warning("%s: no reply (try %d): %s", txn.key, attempt, exc)
        return "no reply"

    def _tc_data(self, extra: dict) -> str:
        assert self.options.tc_data is not None        # checked in SettleOptions
        return self.options.tc_data(extra)

    def _record(self, row: CountedRow) -> UploadRecord:
        pan, _ = self.journal.card_for(row.id)
        return UploadRecord(area_of(row.card_org), Kind.of(row.txn_type), row.stan, pan,
                            row.amount)

    def _tc_rows(self, counted: list[CountedRow]) -> list[CountedRow]:
        """Chip and contactless transactions whose card gave a TC (the batch's TCs)."""
        chip = [r for r in counted if r.entry_mode[:2] in ("05", "07")]
        return [r for r in chip if self.journal.get(r.id).extra.get("cryptogram_type") == TC_KIND]

    def _report(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(phase, done, total)


def _problem(row: CountedRow, code: str, *, tc: bool = False) -> dict[str, object]:
    what = "no reply" if code == "no reply" else f"rejected {code} {rule(code).en}"
    return {"txn_id": row.id, "stan": row.stan, "txn_type": row.txn_type, "amount": row.amount,
            "problem": ("TC upload " if tc else "") + what, "tc": tc}
