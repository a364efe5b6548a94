"""Voids (撤销): a sale, a pre-authorisation or a completion of the open batch, undone
with a supervisor's approval. The card data comes from the journal (sealed); the host
finds the original by its batch and STAN (field 61) and its RRN and authorisation code."""

from __future__ import annotations

from app.errors import Refused
from app.flows.sale import SaleOutcome
from app.flows.slips import print_slips
from app.supervisor import approve
from app.terminal import Terminal
from sync.online import CardForHost, OriginalRef
from sync.txntypes import TxnType

#: What voids what.
VOID_OF = {"sale": TxnType.VOID, "preauth": TxnType.PREAUTH_VOID,
           "completion": TxnType.COMPLETION_VOID}


def run_void(term: Terminal, stan: int, *, supervisor_password: str) -> SaleOutcome:
    """Void the approved transaction with this STAN in the open batch."""
    journal = term.journal
    batch = journal.current_batch()
    original = journal.find(stan=stan)
    if original is None or original.txn_type not in VOID_OF:
        raise Refused(f"no sale, pre-authorisation or completion with STAN {stan:06d}")
    if original.batch != batch:
        raise Refused(f"STAN {stan:06d} is in closed batch {original.batch:06d}: "
                      "refund it instead")
    if original.state != "APPROVED" or original.voided_by is not None:
        raise Refused(f"STAN {stan:06d} is {original.state.lower()}"
                      + (", already voided" if original.voided_by else "") + ": nothing to void")
    approve(term, supervisor_password, action="void", detail={"stan": stan})
    pan, expiry = journal.card_for(original.id)
    card = CardForHost(pan=pan, expiry=expiry, entry_mode=original.entry_mode[:2] + "2",
                       card_org=original.card_org, card_seq=original.card_seq)
    result = term.session.authorize(VOID_OF[original.txn_type], card, original.amount,
                                    original=OriginalRef.of(original))
    errors = print_slips(term, result.record) if result.approved else []
    return SaleOutcome(result, None, errors)
