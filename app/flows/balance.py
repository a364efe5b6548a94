"""Balance inquiry (余额查询): the card and its PIN, the balance from the issuer; nothing
moves, so nothing is journaled but the audit line."""

from __future__ import annotations

from app.emv.selection import Chooser
from app.flows.card_present import read_for_host
from app.flows.sale import STEP_HOST, Step
from app.terminal import Terminal
from hal.testcards import TestCard
from storage.pan import mask_pan
from sync.online import BalanceResult


def run_balance(term: Terminal, *, card_profile: TestCard | None = None, pin: str | None = None,
                timeout: float = 30.0, chooser: Chooser | None = None,
                on_step: Step | None = None) -> tuple[BalanceResult, str]:
    """(the host's answer, the card's masked PAN). ``chooser`` and ``on_step`` as for
    run_sale (the cashier UI's)."""
    card, host_card, pin_block = read_for_host(term, amount=None, card_profile=card_profile,
                                               pin=pin, want_pin=True, timeout=timeout,
                                               chooser=chooser, on_step=on_step)
    assert pin_block is not None
    if on_step is not None:
        on_step(STEP_HOST)
    result = term.session.inquire_balance(host_card, pin_block)
    return result, mask_pan(card.pan)
