"""The sale (消费): card, PIN, journal, host, receipt — in that order, nothing skipped."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from app.amount import format_yuan
from app.cardread import CardSession, open_card
from app.emv.carddata import CardData
from app.emv.errors import CardError
from app.emv.kernel import EmvKernel
from app.emv.params import params_from_config
from app.emv.responses import TC
from app.emv.selection import Chooser
from app.errors import Refused
from app.flows.card_present import check_single_limit, needs_pin, present_test_card
from app.flows.pin import capture_pin
from app.flows.slips import print_slips
from app.terminal import Terminal
from hal.errors import DeviceError
from hal.testcards import TestCard
from storage.journal import REVERSAL_CARD_DECLINED, TransactionRecord
from sync.errors import HostTimeout, HostUnreachable, SyncError
from sync.faults import fault_point
from sync.online import CardForHost, OnlineResult
from sync.responses import rule
from sync.txntypes import TxnType

log = logging.getLogger(__name__)

#: What a sale is doing, for a screen that shows it (``on_step``): waiting for the card, the
#: card read, the PIN on the PIN pad, the host asked, the slips printing.
STEP_CARD, STEP_CARD_READ, STEP_PIN, STEP_HOST, STEP_PRINT = ("card", "card_read", "pin",
                                                             "host", "print")
Step = Callable[[str], None]


def _no_step(step: str) -> None:
    pass


#: Journal extras the sale's JSON shows (chip and tap; fallback for a swipe after the chip).
EMV_JSON = ("aid", "label", "tvr", "tsi", "atc", "cryptogram", "cryptogram_type", "cvm",
            "fallback")


@dataclass
class SaleOutcome:
    result: OnlineResult
    card: CardData | None
    receipt_errors: list[str] = field(default_factory=list)

    def as_json(self, language: str) -> dict:
        r = self.result.record
        code = r.response_code or ""
        return {
            "result": "approved" if self.result.approved else "declined",
            "response_code": code,
            "message": rule(code).zh if language == "zh" else rule(code).en,
            "txn_id": r.id, "stan": f"{r.stan:06d}", "batch": f"{r.batch:06d}",
            "rrn": r.rrn, "auth_code": r.auth_code, "amount": r.amount,
            "amount_yuan": format_yuan(r.amount), "currency": r.currency,
            "pan_masked": r.pan_masked, "card_org": r.card_org, "entry_mode": r.entry_mode,
            "pin_entered": r.pin_entered, "receipt_printed": not self.receipt_errors,
            "receipt_errors": self.receipt_errors,
            **{k: r.extra[k] for k in EMV_JSON if k in r.extra},
        }


def _offline_room(term: Terminal, amount: int) -> bool:
    """Whether one more offline sale fits the caps on what waits for the host."""
    limits = term.config["limits"]
    waiting = [term.journal.get(a.txn_id).amount for a in term.journal.pending_advices()]
    return (len(waiting) < limits["offline_count"]
            and sum(waiting) + amount <= limits["offline_amount"])


def _next_sequence(term: Terminal) -> int:
    """The Transaction Sequence Counter (9F41): follows the STAN counter, which every
    transaction advances and the journal already commits, so it costs no write of its own."""
    return term.journal.last_stan() % 99_999_999 + 1


def run_sale(term: Terminal, amount: int, *, card_profile: TestCard | None = None,
             pin: str | None = None, timeout: float = 30.0,
             chooser: Chooser | None = None, on_step: Step | None = None) -> SaleOutcome:
    """One sale from card to receipt; the journal holds every step before the next.

    ``chooser`` lets the cashier UI ask the cardholder which application to use when the
    card has several; without it the highest priority one is taken. ``on_step`` hears
    each STEP_* as the sale reaches it (the cashier UI shows them).
    """
    step = on_step or _no_step
    check_single_limit(term, amount)
    devices = term.devices
    present_test_card(term, card_profile, pin)
    params = params_from_config(term.config["emv"], term.config["terminal"])
    if not _offline_room(term, amount):
        params = dataclasses.replace(params, floor_limit=0)    # the caps are reached: online
    step(STEP_CARD)
    with open_card(devices, interface=card_profile.interface if card_profile else None,
                   amount=amount, timeout=timeout, params=params, chooser=chooser,
                   sequence=_next_sequence(term)) as card_session:
        step(STEP_CARD_READ)
        if card_session.kernel is None:
            return _swipe_sale(term, card_session.card, amount, pin, step)
        return _emv_sale(term, card_session, amount, step)


#: 60.4 terminal reading capability 5 (chip and stripe) + 60.5 IC condition code 2 (the
#: previous chip read failed): how UnionPay hosts see a fallback swipe.
FALLBACK_F60 = "52"


def _swipe_sale(term: Terminal, card: CardData, amount: int, pin: str | None,
                step: Step = _no_step) -> SaleOutcome:
    session = term.session
    session.ensure_signed_on()          # the PIN pad needs this sign-on's PIN key
    pin_block = None
    if needs_pin(card, pin is not None):
        step(STEP_PIN)
        pin_block = capture_pin(term, card.pan, amount)
    extra = {"fallback": True} if card.fallback else None
    step(STEP_HOST)
    result = session.authorize(
        TxnType.SALE,
        CardForHost(pan=card.pan, expiry=card.expiry, entry_mode=card.entry_mode(
            pin_block is not None), card_org=card.card_org, track2=card.track2,
            track3=card.track3, f60_extension=FALLBACK_F60 if card.fallback else None),
        amount, pin_block=pin_block, extra=extra)
    fault_point("after_commit")
    errors = _print(term, result, step)
    return SaleOutcome(result, card, errors)


def _print(term: Terminal, result: OnlineResult, step: Step) -> list[str]:
    """The slips of an approved sale (what failed to print); nothing for a decline."""
    if not result.approved:
        return []
    step(STEP_PRINT)
    return print_slips(term, result.record)


def _emv_sale(term: Terminal, card_session: CardSession, amount: int,
              step: Step = _no_step) -> SaleOutcome:
    """Chip or tap: the kernel's checks, the PIN when the CVM asks for it, the cryptogram,
    the host, and (chip) the second GENERATE AC; a card that declines after the host
    approved gets the sale reversed (reason 06)."""
    kernel = card_session.kernel
    assert kernel is not None
    card = card_session.card
    session = term.session
    kernel.processing_restrictions()
    cvm = kernel.verify_cardholder(pin_pad=term.devices.pinpad is not None)
    pin_block = None
    if cvm.online_pin and not kernel.contactless:
        session.ensure_signed_on()
        step(STEP_PIN)
        pin_block = capture_pin(term, card.pan, amount)
    ac = kernel.cryptogram()            # CardDeclined when the card answers AAC
    if kernel.contactless:
        card_session.release()          # the card may leave the field now
        if cvm.online_pin:
            session.ensure_signed_on()
            step(STEP_PIN)
            pin_block = capture_pin(term, card.pan, amount)
    host_card = CardForHost(
        pan=card.pan, expiry=card.expiry, entry_mode=card.entry_mode(pin_block is not None),
        card_org=card.card_org, track2=card.track2, card_seq=card.card_seq,
        icc_data=kernel.field55().hex().upper())
    if ac.kind == TC:
        # The card agreed to an offline approval (below the floor limit): store and forward.
        record = session.approve_offline(host_card, amount, extra=kernel.receipt_data())
        step(STEP_PRINT)
        return SaleOutcome(OnlineResult(record, {}), card, print_slips(term, record))
    step(STEP_HOST)
    try:
        result = session.authorize(TxnType.SALE, host_card, amount, pin_block=pin_block,
                                   extra=kernel.receipt_data())
    except (HostUnreachable, HostTimeout):
        if not kernel.contactless:
            _tell_card_unable_online(kernel)
        raise
    if kernel.contactless:
        record = result.record
    else:
        record = _complete_on_card(term, kernel, result)
    fault_point("after_commit")
    if result.approved:
        step(STEP_PRINT)
    errors = print_slips(term, record) if result.approved else []
    return SaleOutcome(result, card, errors)


def _tell_card_unable_online(kernel: EmvKernel) -> None:
    try:
        kernel.unable_to_go_online()
    except (CardError, DeviceError) as exc:
        log.info("second GENERATE AC after no host answer: %s", exc)


def _complete_on_card(term: Terminal, kernel: EmvKernel, result: OnlineResult) -> TransactionRecord:
    """The second GENERATE AC with the host's answer; the record to print (with the TC)."""
    record = result.record
    reply55 = result.reply.get("55")
    code = record.response_code or ""
    try:
        final = kernel.complete(approved=result.approved, response_code=code,
                                issuer_data=bytes.fromhex(reply55) if reply55 else None)
        card_approves = final.kind == TC
        problem = "card declined after approval"
    except (CardError, DeviceError) as exc:
        log.warning("completing on the card failed: %s", exc)
        card_approves, problem = False, f"card did not complete ({exc})"
    if not result.approved:
        return record
    if not card_approves:
        term.journal.arm_reversal(record.id, REVERSAL_CARD_DECLINED)
        try:
            term.session.flush_reversals()
        except SyncError as exc:
            log.warning("reversal left armed for the next message: %s", exc)
        state = term.journal.get(record.id)
        if state.state == "REVERSED":
            raise Refused(f"{problem}: reversed")
        raise Refused(f"{problem}: the reversal will be sent before the next transaction")
    # The journal and the slip keep the final cryptogram (the TC) beside the online one.
    return term.journal.annotate(record.id, kernel.receipt_data())
