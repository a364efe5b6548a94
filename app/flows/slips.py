"""Printing slips for journaled transactions: after a sale, again when one did not come out,
and as a marked duplicate on request. A printer fault never blocks or undoes a sale: the
journal records the slip as unprinted and ``posterm reprint --pending`` prints it later."""

from __future__ import annotations

import logging

from app.errors import Refused
from app.receipt import sales_slip
from app.terminal import Terminal
from hal.errors import DeviceError
from storage.journal import TransactionRecord

log = logging.getLogger(__name__)


def print_slips(term: Terminal, record: TransactionRecord, *,
                duplicate: bool = False) -> list[str]:
    """Print the merchant (and cardholder) copy; returns what failed, and journals the outcome."""
    printer = term.devices.printer
    errors: list[str] = []
    if printer is None:
        errors.append("no printer configured")
    else:
        width = int(printer.info().get("width", 32))
        copies = ["merchant"] + (["cardholder"] if term.config["receipts"]["cardholder_copy"]
                                 else [])
        for copy in copies:
            try:
                printer.print_document(sales_slip(record, term.merchant, copy=copy,
                                                  width=width, duplicate=duplicate))
            except DeviceError as exc:
                log.warning("slip %s copy of STAN %06d not printed: %s", copy, record.stan, exc)
                errors.append(f"{copy} copy not printed: {exc}")
                break    # the next copy would fail the same way; both come out on reprint
    if not duplicate:
        term.journal.set_receipt_state(record.id, not errors,
                                       error="; ".join(errors) or None)
    return errors


def last_approved_stan(term: Terminal) -> int:
    """The STAN of the newest approved transaction (voided or not): what 'last' reprints."""
    from storage.query import TxnFilter, search
    found = search(term.journal, TxnFilter(statuses=("approved", "voided"), limit=1))
    if not found:
        raise Refused("no approved transaction to reprint")
    return found[0].stan


def reprint(term: Terminal, *, stan: int | None = None, pending: bool = False) -> list[dict]:
    """Print unprinted slips (``pending``), or one transaction's slip again marked DUPLICATE
    (``stan``; default: the newest approved transaction)."""
    journal = term.journal
    if pending:
        targets, duplicate = journal.unprinted_receipts(), False
    else:
        if stan is not None:
            found = journal.find(stan=stan)
        else:
            found = next((r for r in journal.transactions(limit=50) if r.state == "APPROVED"),
                         None)
        if found is None or found.state != "APPROVED":
            raise Refused("no approved transaction " + (f"with STAN {stan:06d}" if stan
                                                        else "to reprint"))
        targets, duplicate = [found], True
    results = []
    for record in targets:
        errors = print_slips(term, record, duplicate=duplicate)
        results.append({"stan": f"{record.stan:06d}", "printed": not errors,
                        "duplicate": duplicate, "errors": errors})
    return results
