"""Pre-authorisation (预授权) and its completion (预授权完成): a hold on the card, then the
final amount (up to 115% of the hold) against the hold's authorisation code."""

from __future__ import annotations

from app.errors import Refused
from app.flows.card_present import check_single_limit, read_for_host
from app.flows.sale import SaleOutcome
from app.flows.slips import print_slips
from app.terminal import Terminal
from hal.testcards import TestCard
from sync.online import OriginalRef
from sync.txntypes import TxnType


def run_preauth(term: Terminal, amount: int, *, card_profile: TestCard | None = None,
                pin: str | None = None, timeout: float = 30.0) -> SaleOutcome:
    check_single_limit(term, amount)
    card, host_card, pin_block = read_for_host(term, amount=amount, card_profile=card_profile,
                                               pin=pin, want_pin=None, timeout=timeout)
    result = term.session.authorize(TxnType.PREAUTH, host_card, amount, pin_block=pin_block)
    errors = print_slips(term, result.record) if result.approved else []
    return SaleOutcome(result, card, errors)


def run_completion(term: Terminal, amount: int, *, preauth_stan: int,
                   card_profile: TestCard | None = None, timeout: float = 30.0) -> SaleOutcome:
    """Complete the approved pre-authorisation with this STAN."""
    preauth = term.journal.find(stan=preauth_stan)
    if preauth is None or preauth.txn_type != "preauth" or preauth.state != "APPROVED" \
            or preauth.voided_by is not None:
        raise Refused(f"no open pre-authorisation with STAN {preauth_stan:06d}")
    card, host_card, _ = read_for_host(term, amount=amount, card_profile=card_profile,
                                       pin=None, want_pin=False, timeout=timeout)
    result = term.session.authorize(TxnType.COMPLETION, host_card, amount,
                                    original=OriginalRef.of(preauth))
    errors = print_slips(term, result.record) if result.approved else []
    return SaleOutcome(result, card, errors)
