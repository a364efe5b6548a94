"""Settlement (结算) from the app: the settler, then the report, the batch close, the print.

The protocol (flush, totals, 0500, batch upload) is ``sync.settler``'s and resumes from the
journal's saved step. Once the host is done, the report is built and saved (text and a PNG
preview under DATA/reports/), the settlement is closed together with the opening of the next
batch (one commit), and only then is the report printed: a printer out of paper never holds
up the close, and ``posterm report last-settlement`` prints it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import version as app_version
from app.emv import tlv
from app.settlement_report import (
    SettlementFacts,
    SettlementReport,
    UploadProblem,
    build_report,
    write_preview,
)
from hal.document import Document, Line
from hal.errors import DeviceError, DeviceUnavailable
from storage.settlements import SettlementRow
from sync.faults import fault_point
from sync.settlement import Totals
from sync.settler import Progress, SettleOptions, Settler

if TYPE_CHECKING:
    from app.terminal import Terminal

log = logging.getLogger(__name__)

REPORTS_DIR = "reports"
#: 9F27, cryptogram information data of a TC (EMV Book 3, Table 14).
CID_TC = "40"
DEFAULT_WIDTH = 32


@dataclass
class SettleOutcome:
    """How the settlement ended, for the console, --json and the UI."""

    row: SettlementRow
    report: SettlementReport | None = None
    files: list[Path] = field(default_factory=list)
    printed: bool = False
    print_error: str | None = None
    resumed: bool = False

    @property
    def balanced(self) -> bool:
        """The day ended balanced, directly or after the batch upload."""
        return self.row.step == "closed" and (
            self.row.result == "balanced" or self.row.result_after_upload == "balanced")

    def as_json(self) -> dict[str, Any]:
        row = self.row
        return {
            "result": row.result or "error", "batch": row.batch, "step": row.step,
            "uploaded": row.uploaded, "upload_total": row.upload_total,
            "totals": Totals.from_field48(row.totals).as_json() if row.totals else None,
            "host_totals": (Totals.from_field48(row.host_totals).as_json()
                            if row.host_totals else None),
            "host_result_after_upload": row.result_after_upload,
            "balanced": self.balanced, "settlement_date": row.settlement_date,
            "problems": [{k: v for k, v in p.items() if k != "txn_id"} for p in row.problems],
            "error": row.error, "resumed": self.resumed,
            "report": self.report.as_json() if self.report else None,
            "files": [str(f) for f in self.files], "printed": self.printed,
            "print_error": self.print_error,
        }


def settle(term: Terminal, *, progress: Progress | None = None) -> SettleOutcome:
    """Settle the open batch (or finish the settlement a power cut interrupted)."""
    resumed = term.journal.settlements.active() is not None
    s = term.config["settlement"]
    row = Settler(term.session, SettleOptions(tc_upload=s["tc_upload"],
                                              upload_tries=s["upload_tries"],
                                              tc_data=tc_field55),
                  progress).run()
    if row.step == "failed":
        return SettleOutcome(row, resumed=resumed)
    width = printer_width(term)
    report = build_report(facts_for(term, row))
    files = save_report(term, row.batch, report, width)
    row = term.journal.settlements.close(row.id, report.text(width))
    fault_point("settle_closed")
    printed, problem = print_report(term, report.document(width))
    if printed:
        term.journal.settlements.mark_printed(row.id)
    return SettleOutcome(term.journal.settlements.get(row.id), report, files, printed, problem,
                         resumed)


def tc_field55(extra: dict) -> str:
    """Field 55 of a TC upload (hex): the TC, its CID, the ATC, the TVR and the AID, from
    what the journal kept of the chip transaction."""
    items = [("9F26", extra.get("cryptogram", "")), ("9F27", CID_TC),
             ("9F36", extra.get("atc", "")), ("95", extra.get("tvr", "")),
             ("84", extra.get("aid", ""))]
    return tlv.encode_all((tag, bytes.fromhex(value)) for tag, value in items
                          if value).hex().upper()


def facts_for(term: Terminal, row: SettlementRow) -> SettlementFacts:
    """Everything the report says, from the journal (the same at settlement and reprint)."""
    journal = term.journal
    problems = []
    for p in row.problems:
        txn_id = p.get("txn_id")
        masked = journal.get(int(txn_id)).pan_masked if txn_id else ""
        problems.append(UploadProblem(int(p.get("stan") or 0), str(p.get("txn_type", "")),
                                      masked, int(p.get("amount") or 0), str(p["problem"])))
    assert row.totals is not None
    return SettlementFacts(
        merchant=term.merchant, batch=row.batch,
        records=journal.transactions(batch=row.batch), result=row.result or "error",
        result_after_upload=row.result_after_upload,
        terminal_totals=Totals.from_field48(row.totals),
        host_totals=Totals.from_field48(row.host_totals) if row.host_totals else None,
        uploaded=row.uploaded, upload_problems=problems, fees=term.config.fees,
        settled_at=datetime.fromisoformat(row.finished_local or row.updated_local),
        operator=row.operator, version=app_version())


def save_report(term: Terminal, batch: int, report: SettlementReport, width: int) -> list[Path]:
    """DATA/reports/settlement-BBBBBB.txt and .png; a disk problem is logged, not fatal
    (the report text is also kept in the journal)."""
    folder = term.data_dir / REPORTS_DIR
    text_path = folder / f"settlement-{batch:06d}.txt"
    png_path = text_path.with_suffix(".png")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        text_path.write_text(report.text(width), encoding="utf-8")
        write_preview(report.document(width), width, png_path)
    except OSError as exc:
        log.error("settlement report for batch %06d not saved: %s", batch, exc)
        return []
    return [text_path, png_path]


def print_report(term: Terminal, document: Document) -> tuple[bool, str | None]:
    """Print on the terminal's printer; (printed, the problem in one line)."""
    try:
        printer = term.devices.printer
        if printer is None:
            raise DeviceUnavailable("no printer configured")
        printer.print_document(document)
    except DeviceError as exc:
        log.warning("settlement report not printed: %s", exc)
        return False, f"{exc}; print it again with 'posterm report last-settlement'"
    return True, None


def reprint_last(term: Terminal, *, to_printer: bool = True) -> tuple[SettlementRow,
                                                                       SettlementReport,
                                                                       bool, str | None]:
    """The last closed settlement's report, rebuilt from the journal and marked as a copy."""
    from app.errors import Refused
    row = term.journal.settlements.last()
    if row is None:
        raise Refused("no settlement yet: nothing to reprint")
    report = build_report(facts_for(term, row))
    printed, problem = False, None
    if to_printer:
        document = report.document(printer_width(term))
        copy = Document(document.title, (Line("重打印 DUPLICATE", align="center", bold=True),
                                         *document.lines), document.cut)
        printed, problem = print_report(term, copy)
        if printed:
            term.journal.settlements.mark_printed(row.id)
    return row, report, printed, problem


def printer_width(term: Terminal) -> int:
    try:
        printer = term.devices.printer
        return int(printer.info().get("width", DEFAULT_WIDTH)) if printer else DEFAULT_WIDTH
    except DeviceError:
        return DEFAULT_WIDTH
