"""The host's side of settlement: 0500 totals, 0320 batch and TC uploads, upload end, 0820
sign-off, and the clearing that closes a batch.

The terminal's totals (field 48) are compared with the host's own, per area. Balanced, the
batch is cleared at once: every approved counted row gets its fee, net and payout date
from the merchant's fee schedule, and the terminal's batch moves on. Unbalanced, the
settlement stays open for the terminal's batch upload: each record repairs the ledger
(a transaction the host lacks is added, a differing amount or state takes the terminal's
word) and each repair is kept as a *difference*; at the upload end the host's rows the
terminal did not upload are held for a person, the totals are compared again and the
batch is cleared whatever the result (the day is closed). Every step can be repeated by a
terminal resuming after a crash: records are kept once per (terminal, batch, STAN) and a
closed settlement answers what it answered before. docs/host.md tells the codes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyemv.tlv

from host import issuer
from host.ledger import COUNTED, Ledger, stamp
from host.request import Fields, FormatError, batch_of, original_of, stan_of
from host.sealing import mask_pan
from sync.errors import MessageError
from sync.settlement import (
    AREAS,
    UPLOAD_COUNT_MOD,
    Result,
    Totals,
    UploadRecord,
    area_of,
    decode_records,
)
from sync.txntypes import TxnType

logger = logging.getLogger(__name__)

#: The card organisation given to a foreign (外卡) row re-created from a batch upload: the
#: record carries the area, not the scheme.
FOREIGN_ORG = "FGN"
DOMESTIC_ORG = "CUP"
#: Difference kinds a batch-level check records under STAN 0 (no transaction of its own).
BATCH_STAN = 0


@dataclass(frozen=True)
class Answer:
    """The response code and the fields a settlement reply adds."""

    code: str
    fields: dict[str, str] = field(default_factory=dict)


def org_of(area: str) -> str:
    return DOMESTIC_ORG if area == "domestic" else FOREIGN_ORG


def compare(ours: Totals, theirs: Totals) -> Totals:
    """The host's figures with each area's result: 1 balanced, 2 unbalanced, 3 where the
    host cannot compare (the terminal's request already carries a result digit)."""
    reply = ours.with_results(theirs)
    for area in AREAS:
        if theirs.side(area).result is not Result.NONE:
            reply.side(area).result = Result.ERROR
    return reply


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


class SettlementDesk:
    """Answers the settlement messages of every terminal from one ledger."""

    def __init__(self, ledger: Ledger, clock: Callable[[], datetime]):
        self.ledger = ledger
        self._clock = clock

    # -- 0500 ----------------------------------------------------------------------------

    def settle(self, request: Fields) -> Answer:
        """0500: compare the totals; clear at once when balanced, else wait for the upload."""
        terminal_id, batch = request["41"], batch_of(request)
        try:
            theirs = Totals.from_field48(request.get("48", ""))
        except MessageError as exc:
            raise FormatError(str(exc)) from None
        found = self.ledger.settlement(terminal_id, batch)
        if found is not None and found["state"] != "open":
            # A resend after a crash: the answer it had, nothing changes.
            logger.info("%s: batch %06d settlement repeated (%s, %s)", terminal_id, batch,
                        found["state"], found["result"])
            return Answer("00", {"48": found["host_f48"]})
        now = self._clock()
        utc, _ = stamp(now)
        with self.ledger.transaction():
            reply = compare(self.ledger.batch_totals(terminal_id, batch), theirs)
            outcome = reply.outcome()
            settlement_id = self.ledger.open_settlement(
                terminal_id, batch, stan=stan_of(request),
                operator=request.get("63", "").strip() or None,
                terminal_f48=request["48"], host_f48=reply.to_field48(), result=outcome,
                state="open", opened_utc=utc)
            if outcome == "balanced":
                self._clear(terminal_id, batch, settlement_id, now)
        logger.info("%s: batch %06d settlement %s%s", terminal_id, batch, outcome,
                    "; cleared" if outcome == "balanced" else "; waiting for the upload")
        return Answer("00", {"48": reply.to_field48()})

    def _clear(self, terminal_id: str, batch: int, settlement_id: int, now: datetime) -> None:
        cleared = now.date()
        count = self.ledger.clear_batch(terminal_id, batch, settlement_id,
                                        self.ledger.fee_schedule(terminal_id), cleared)
        utc, _ = stamp(now)
        self.ledger.update_settlement(settlement_id, state="closed",
                                      cleared_date=cleared.isoformat(), closed_utc=utc)
        logger.info("%s: batch %06d cleared on %s: %d transaction(s)", terminal_id, batch,
                    cleared.isoformat(), count)

    # -- 0320 batch upload ---------------------------------------------------------------

    def upload(self, request: Fields) -> Answer:
        """0320/201: up to 8 records; each repairs the ledger once, in one transaction."""
        terminal_id, batch = request["41"], batch_of(request)
        try:
            records = decode_records(request.get("48", ""))
        except MessageError as exc:
            raise FormatError(str(exc)) from None
        found = self.ledger.settlement(terminal_id, batch)
        if found is None:
            logger.warning("%s: batch upload for batch %06d, which is not being settled",
                           terminal_id, batch)
            return Answer("25")
        if found["state"] == "closed":
            return Answer("00")          # a resend after the upload end: already counted
        now = self._clock()
        utc, _ = stamp(now)
        message_stan = stan_of(request)
        stans = [record.stan for record in records]
        with self.ledger.transaction():
            if found["state"] == "open":
                self.ledger.update_settlement(found["id"], state="uploading",
                                              upload_started_utc=utc)
            done = self.ledger.uploaded(terminal_id, batch, stans)
            rows = self.ledger.at_stans(terminal_id, batch, stans)
            kept = []
            for record in records:
                if record.stan in done:
                    continue                  # sent before (a resend after a crash)
                done.add(record.stan)
                txn_id = self._reconcile(request, batch, record, rows.get(record.stan, []),
                                         now)
                kept.append({
                    "settlement_id": found["id"], "terminal_id": terminal_id, "batch": batch,
                    "stan": record.stan, "area": record.area, "kind": record.kind.txn_type,
                    "amount": record.amount, "pan_masked": mask_pan(record.pan),
                    "transaction_id": txn_id, "message_stan": message_stan,
                    "received_utc": utc})
            self.ledger.keep_uploads(kept)
        return Answer("00")

    def _reconcile(self, request: Fields, batch: int, record: UploadRecord,
                   rows: list[dict[str, Any]], now: datetime) -> int | None:
        """Repair the ledger after one uploaded record, given the host's rows at its STAN;
        the id of the row it stands for."""
        terminal_id = request["41"]
        kind = record.kind.txn_type
        row = next((r for r in rows if r["txn_type"] == kind), None)

        def differ(what: str, detail: str, resolution: str, txn_id: int | None) -> None:
            self.ledger.note_difference(terminal_id=terminal_id, batch=batch,
                                        stan=record.stan, kind=what, detail=detail,
                                        resolution=resolution, transaction_id=txn_id,
                                        moment=now)

        if row is None and rows:
            other = rows[-1]
            differ("type_differs", f"the terminal uploads a {kind} of {_yuan(record.amount)};"
                   f" the host has a {other['txn_type']} at this STAN",
                   "none: a person decides", other["id"])
            return other["id"]
        if row is None:
            spec = TxnType[kind.upper()].spec
            added = self.ledger.record(
                terminal_id=terminal_id, merchant_id=request["42"], batch=batch,
                stan=record.stan, mti=spec.mti, txn_type=kind,
                processing_code=spec.processing_code, amount=record.amount, currency="156",
                pan=record.pan, entry_mode=None, response_code="00",
                rrn=self.ledger.next_rrn(), auth_code=None, state="approved",
                settlement_date=f"{now:%m%d}", moment=now, card_org=org_of(record.area),
                source="upload")
            differ("missing_on_host", f"{kind} of {_yuan(record.amount)} not on the host",
                   "added from the batch upload", added["id"])
            return int(added["id"])
        changes: dict[str, Any] = {}
        if row["amount"] != record.amount:
            differ("amount_differs", f"host {_yuan(row['amount'] or 0)}, terminal "
                   f"{_yuan(record.amount)}", "the terminal's amount adopted", row["id"])
            changes["amount"] = record.amount
        if row["state"] != "approved":
            differ("state_differs", f"host {row['state']}, the terminal counts it",
                   "set approved", row["id"])
            changes["state"] = "approved"
        if area_of(row["card_org"]) != record.area:
            differ("area_differs", f"host {row['card_org'] or 'no card organisation'} "
                   f"({area_of(row['card_org'])}), terminal {record.area}",
                   "the terminal's area adopted", row["id"])
            changes["card_org"] = org_of(record.area)
        if row["pan_hash"] is not None and row["pan_hash"] != self.ledger.pan_hash(record.pan):
            differ("card_differs", f"host {row['pan_masked']}, terminal "
                   f"{mask_pan(record.pan)}", "none: the host's card kept", row["id"])
        if changes:
            self.ledger.update(row["id"], **changes)
        return int(row["id"])

    # -- 0320 upload end -----------------------------------------------------------------

    def end_upload(self, request: Fields) -> Answer:
        """0320/202: hold what the terminal did not upload, compare again, clear, close."""
        terminal_id, batch = request["41"], batch_of(request)
        claimed = request.get("48", "")
        if len(claimed) != 4 or not claimed.isdigit():
            raise FormatError("upload-end field 48 must be the count, 4 digits")
        found = self.ledger.settlement(terminal_id, batch)
        if found is None:
            return Answer("25")
        if found["state"] == "closed":
            return Answer("00", {"48": found["host_f48_after_upload"] or found["host_f48"]})
        now = self._clock()
        utc, _ = stamp(now)
        with self.ledger.transaction():
            held = self.ledger.hold_not_uploaded(terminal_id, batch, now)
            received = self.ledger.uploads_received(terminal_id, batch)
            if int(claimed) != received % UPLOAD_COUNT_MOD:
                self.ledger.note_difference(
                    terminal_id=terminal_id, batch=batch, stan=BATCH_STAN,
                    kind="upload_count", detail=f"the terminal says it uploaded {int(claimed)}"
                    f" record(s), the host received {received}", resolution="none",
                    transaction_id=None, moment=now)
            after = compare(self.ledger.batch_totals(terminal_id, batch),
                            Totals.from_field48(found["terminal_f48"]))
            outcome = after.outcome()
            self.ledger.update_settlement(
                found["id"], host_f48_after_upload=after.to_field48(),
                result_after_upload=outcome, upload_count_claimed=int(claimed),
                upload_count_received=received, upload_started_utc=found[
                    "upload_started_utc"] or utc)
            self._clear(terminal_id, batch, found["id"], now)
        logger.info("%s: batch %06d after the upload of %d record(s): %s; %d held",
                    terminal_id, batch, received, outcome, held)
        return Answer("00", {"48": after.to_field48()})

    def end_tc_upload(self, request: Fields) -> Answer:
        """0320/207: the TC uploads after a balanced settlement are over; nothing to do."""
        logger.info("%s: TC upload end for batch %06d (%s TC(s))", request["41"],
                    batch_of(request), request.get("48", "?"))
        return Answer("00")

    # -- 0320 TC upload ------------------------------------------------------------------

    def upload_tc(self, request: Fields) -> Answer:
        """0320/203: keep a chip transaction's TC (9F26, 9F27, 9F36) on its ledger row."""
        terminal_id = request["41"]
        batch, stan = original_of(request)
        try:
            icc = pyemv.tlv.decode(bytes.fromhex(request.get("55", "")), flatten=True)
        except (ValueError, pyemv.tlv.DecodeError) as exc:
            raise FormatError(f"field 55 is not BER-TLV: {exc}") from None
        if "9F26" not in icc:
            raise FormatError("TC upload field 55 lacks 9F26")
        rows = self.ledger.at_stan(terminal_id, batch, stan)
        row = next((r for r in rows if r["txn_type"] in COUNTED), rows[0] if rows else None)
        if row is None:
            return Answer("25")
        card = issuer.card_from_fields(request)
        if card is not None and row["pan_hash"] not in (None, self.ledger.pan_hash(card.pan)):
            return Answer("25")          # another card than the one at that STAN
        tc = icc["9F26"].hex().upper()
        if row["tc"] is None:
            self.ledger.update(row["id"], tc=tc,
                               tc_cid=icc["9F27"].hex().upper() if "9F27" in icc else None,
                               tc_atc=icc["9F36"].hex().upper() if "9F36" in icc else None)
        elif row["tc"] != tc:
            logger.warning("%s: batch %06d STAN %06d: another TC uploaded; the first is kept",
                           terminal_id, batch, stan)
        return Answer("00")

    # -- 0820 sign-off -------------------------------------------------------------------

    def sign_off(self, request: Fields) -> Answer:
        """0820/002: refused (12) while approved transactions of the terminal wait for
        clearing; 00 once every batch is settled."""
        waiting = self.ledger.unsettled(request["41"])
        if waiting:
            logger.info("%s: sign-off refused: %d transaction(s) not settled", request["41"],
                        waiting)
            return Answer("12")
        return Answer("00")


#: Settlement rows of the transaction table -> the desk's method that answers them.
HANDLERS: dict[TxnType, Callable[[SettlementDesk, Fields], Answer]] = {
    TxnType.SETTLEMENT: SettlementDesk.settle,
    TxnType.BATCH_UPLOAD: SettlementDesk.upload,
    TxnType.TC_UPLOAD: SettlementDesk.upload_tc,
    TxnType.UPLOAD_END: SettlementDesk.end_upload,
    TxnType.TC_UPLOAD_END: SettlementDesk.end_tc_upload,
    TxnType.SIGN_OFF: SettlementDesk.sign_off,
}
