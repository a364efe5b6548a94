"""A transaction's result as the cashier sees it: the line with the response code's
message (in the configured language), the details, the slip's preview and the printer's
state. Built in the flow's thread (it reads the journal and the printer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.ui.words import both, say

if TYPE_CHECKING:
    from app.flows.sale import SaleOutcome
    from app.terminal import Terminal

SLIP_WIDTH = 32


@dataclass(frozen=True)
class TxnView:
    """What the result area shows; ``data`` is the outcome's JSON (as ``--json`` prints)."""

    data: dict[str, Any]
    receipt: str | None = None
    printer: str = ""
    receipt_errors: list[str] = field(default_factory=list)

    @property
    def approved(self) -> bool:
        return self.data["result"] == "approved"


def printer_state(term: Terminal) -> str:
    """'paper_ok', 'paper_out', 'cover_open', or '' without a printer."""
    printer = term.devices.printer
    if printer is None:
        return ""
    try:
        st = printer.status()
    except Exception:  # noqa: BLE001 - a printer that cannot tell is shown as unknown
        return ""
    return "paper_out" if st.paper_out else "cover_open" if st.cover_open else "paper_ok"


def view_of(term: Terminal, outcome: SaleOutcome) -> TxnView:
    """The view of a sale's (or void's) outcome, with the merchant copy's preview."""
    from app.receipt import sales_slip
    record = outcome.result.record
    receipt = None
    if outcome.result.approved:
        receipt = sales_slip(record, term.merchant, copy="merchant",
                             width=SLIP_WIDTH).plain_text(SLIP_WIDTH)
    return TxnView(outcome.as_json(term.language), receipt, printer_state(term),
                   list(outcome.receipt_errors))


def result_lines(view: TxnView, language: str) -> tuple[str, str]:
    """(the headline, the details) for the result area."""
    d = view.data
    head = (f"{both('approved' if view.approved else 'declined', language)}  "
            f"{d['response_code']} {d['message']}")
    zh = language == "zh"
    details = [f"{say('amount', language)} ¥{d['amount_yuan']}   {d['pan_masked'] or ''}",
               (f"{say('stan', language)} {d['stan']}  "
               f"{'参考号' if zh else 'RRN'} {d['rrn'] or '-'}"),
               f"{'授权码' if zh else 'Auth code'} {d['auth_code'] or '-'}"]
    if view.printer:
        details.append(f"{say('printer', language)} {say(view.printer, language)}")
    if view.receipt_errors:
        details.append(f"{say('not_printed', language)}: {view.receipt_errors[0]}")
        details.append(both("reprint_offer", language))
    return head, "\n".join(details)
