"""Pre-authorisation (预授权) and its completion (预授权完成): a hold on the card, then the
final amount (up to 115% of the hold) against the hold's authorisation code."""

from __future__ import annotations

from app.emv.selection import Chooser
from app.errors import Refused
from app.flows.card_present import check_single_limit, read_for_host
from app.flows.sale import STEP_HOST, STEP_PRINT, SaleOutcome, Step
from app.flows.slips import print_slips
from app.terminal import Terminal
from hal.testcards import TestCard
from storage.journal import TransactionRecord
from sync.online import OnlineResult, OriginalRef
from sync.txntypes import TxnType


def run_preauth(term: Terminal, amount: int, *, card_profile: TestCard | None = None,
                pin: str | None = None, timeout: float = 30.0, chooser: Chooser | None = None,
                on_step: Step | None = None) -> SaleOutcome:
    """A hold of ``amount`` fen on the card. ``chooser`` and ``on_step`` as for run_sale."""
    check_single_limit(term, amount)
    card, host_card, pin_block = read_for_host(term, amount=amount, card_profile=card_profile,
                                               pin=pin, want_pin=None, timeout=timeout,
                                               chooser=chooser, on_step=on_step)
    if on_step is not None:
        on_step(STEP_HOST)
    result = term.session.authorize(TxnType.PREAUTH, host_card, amount, pin_block=pin_block)
    return SaleOutcome(result, card, _print(term, result, on_step))


def open_preauth(term: Terminal, preauth_stan: int) -> TransactionRecord:
    """The approved, not voided pre-authorisation with this STAN; Refused when there is none."""
    preauth = term.journal.find(stan=preauth_stan)
    if preauth is None or preauth.txn_type != "preauth" or preauth.state != "APPROVED" \
            or preauth.voided_by is not None:
        raise Refused(f"no open pre-authorisation with STAN {preauth_stan:06d}")
    return preauth


def run_completion(term: Terminal, amount: int, *, preauth_stan: int,
                   card_profile: TestCard | None = None, timeout: float = 30.0,
                   chooser: Chooser | None = None,
                   on_step: Step | None = None) -> SaleOutcome:
    """Complete the approved pre-authorisation with this STAN. ``chooser`` and ``on_step``
    as for run_sale."""
    preauth = open_preauth(term, preauth_stan)
    card, host_card, _ = read_for_host(term, amount=amount, card_profile=card_profile,
                                       pin=None, want_pin=False, timeout=timeout,
                                       chooser=chooser, on_step=on_step)
    if on_step is not None:
        on_step(STEP_HOST)
    result = term.session.authorize(TxnType.COMPLETION, host_card, amount,
                                    original=OriginalRef.of(preauth))
    return SaleOutcome(result, card, _print(term, result, on_step))


def _print(term: Terminal, result: OnlineResult, on_step: Step | None) -> list[str]:
    """The slips of an approved hold or completion (what failed to print)."""
    if not result.approved:
        return []
    if on_step is not None:
        on_step(STEP_PRINT)
    return print_slips(term, result.record)
