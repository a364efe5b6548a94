"""Refunds (退货): money back to the card that paid, against the original's RRN and date,
within the per-refund and per-day limits, with a supervisor's approval. Never reversed: a
refund whose answer does not come is queued and sent again until the host answers."""

from __future__ import annotations

from datetime import datetime

from app.amount import format_yuan
from app.emv.selection import Chooser
from app.errors import InputError, Refused
from app.flows.card_present import read_for_host
from app.flows.sale import STEP_HOST, STEP_PRINT, SaleOutcome, Step
from app.flows.slips import print_slips
from app.supervisor import approve
from app.terminal import Terminal
from hal.testcards import TestCard
from sync.online import OriginalRef
from sync.txntypes import TxnType


def check_original(rrn: str, date: str) -> None:
    """InputError unless ``rrn`` is 12 digits and ``date`` a month and day as MMDD."""
    if not (rrn.isdigit() and len(rrn) == 12):
        raise InputError("--rrn is the original's 12-digit reference number (参考号)")
    if not (date.isdigit() and len(date) == 4 and 1 <= int(date[:2]) <= 12
            and 1 <= int(date[2:]) <= 31):
        raise InputError("--date is the original's date as MMDD")


def run_refund(term: Terminal, amount: int, *, rrn: str, date: str, supervisor_password: str,
               card_profile: TestCard | None = None, pin: str | None = None,
               timeout: float = 30.0, chooser: Chooser | None = None,
               on_step: Step | None = None) -> SaleOutcome:
    """Refund ``amount`` fen of the transaction with this RRN (12 digits) made on MMDD.
    ``chooser`` and ``on_step`` as for run_sale (the cashier UI's)."""
    check_original(rrn, date)
    limits = term.config["limits"]
    if amount > limits["refund_max"]:
        raise Refused(f"¥{format_yuan(amount)} is over the refund limit "
                      f"¥{format_yuan(limits['refund_max'])}")
    today = datetime.now().astimezone().strftime("%Y-%m-%d")
    _, refunded = term.journal.approved_total(TxnType.REFUND.key, local_date=today)
    if refunded + amount > limits["refund_daily"]:
        raise Refused(f"today's refunds would reach ¥{format_yuan(refunded + amount)}, over "
                      f"the daily limit ¥{format_yuan(limits['refund_daily'])}")
    approve(term, supervisor_password, action="refund", detail={"rrn": rrn, "amount": amount})
    local = term.journal.find_by_rrn(rrn)
    original = OriginalRef.of(local) if local is not None else OriginalRef(rrn=rrn, date=date)
    card, host_card, pin_block = read_for_host(term, amount=amount, card_profile=card_profile,
                                               pin=pin, want_pin=False, timeout=timeout,
                                               chooser=chooser, on_step=on_step)
    step = on_step or (lambda _name: None)
    step(STEP_HOST)
    result = term.session.authorize(TxnType.REFUND, host_card, amount, pin_block=pin_block,
                                    original=original)
    if result.approved:
        step(STEP_PRINT)
    errors = print_slips(term, result.record) if result.approved else []
    return SaleOutcome(result, card, errors)
