"""One reconciliation run (对账): the statement file hashed, read through its profile line by
line, matched against the journal, and the run stored with every difference as an item.

The file's SHA-256 names the run: the same file reconciled again gives back the stored run
(its items keep their resolutions) unless the merchant forces a new one.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from app.errors import InputError, Refused
from app.recon.feed import StatementFeed, gc_paused
from app.recon.match import Matcher
from app.recon.model import CLASSES
from app.recon.profile import load_profile
from app.supervisor import approve
from app.terminal import Terminal
from storage.recon import ReconBook, ReconItem, ReconRun

log = logging.getLogger(__name__)

#: Journal rows this many days either side of --from/--to are read as well: a statement
#: line may carry another date than its transaction (an upload re-created the next day).
PERIOD_MARGIN_DAYS = 7
#: A probable match needs the amount and card last four equal and the times this close.
DEFAULT_WINDOW_S = 600
#: From this size on the statement is read by a second process (a million lines take
#: seconds to convert; the journal's rows load meanwhile on the other core).
PARALLEL_MIN_BYTES = 4 << 20


@dataclass(frozen=True)
class RunView:
    """A stored run with its items; ``reused`` when the file had been reconciled before."""

    run: ReconRun
    items: list[ReconItem]
    reused: bool


def file_digest(path: Path) -> tuple[str, int]:
    """(SHA-256 hex, size in bytes) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the statement: {exc.strerror or exc}") from None
    return digest.hexdigest(), size


def parse_period(date_from: str | None, date_to: str | None) -> tuple[str, str] | None:
    """--from/--to as a (from, to) pair of YYYY-MM-DD, or None when neither is given."""
    if date_from is None and date_to is None:
        return None
    days = []
    for name, text in (("--from", date_from), ("--to", date_to)):
        if text is None:
            days.append(None)
            continue
        try:
            days.append(date.fromisoformat(text))
        except ValueError:
            raise InputError(f"{name} {text!r} is not a date like 2026-11-20") from None
    first = days[0] or days[1]
    last = days[1] or days[0]
    if first > last:
        raise InputError(f"--from {first} is after --to {last}")
    return first.isoformat(), last.isoformat()


def reconcile(term: Terminal, statement: Path, *, profile: str | None = None,
              period: tuple[str, str] | None = None, force: bool = False,
              window_s: int = DEFAULT_WINDOW_S, parallel: bool | None = None) -> RunView:
    """Reconcile one statement file against the journal and store the run.

    ``parallel``: read the file in a process of its own while the journal loads here
    (default: for files of PARALLEL_MIN_BYTES and more)."""
    statement = Path(statement)
    if not statement.is_file():
        raise InputError(f"{statement}: no such statement file")
    chosen = load_profile(profile, statement)      # a bad profile is refused even for a rerun
    if parallel is None:
        parallel = statement.stat().st_size >= PARALLEL_MIN_BYTES
    since = until = None
    if period is not None:
        since = (date.fromisoformat(period[0]) - timedelta(days=PERIOD_MARGIN_DAYS)).isoformat()
        until = (date.fromisoformat(period[1]) + timedelta(days=PERIOD_MARGIN_DAYS)).isoformat()
    ids = term.config["terminal"]
    # The journal opens without its quick_check (3 s of a million-row journal's 15 s
    # budget): the load below reads every transaction row, and a damaged page stops it with
    # the journal's one-line CorruptDatabase error. ``posterm audit verify`` and the other
    # commands still check the file when they open it.
    term.journal_check = False
    # The reading process starts before the file is hashed and the journal opened (the
    # journal's rows load here meanwhile); a file seen before stops it unused.
    with StatementFeed(statement, chosen, parallel=parallel) as feed:
        file_hash, size = file_digest(statement)       # while the reading process reads
        book = ReconBook(term.journal)
        if not force:
            earlier = book.find_by_hash(file_hash)
            if earlier is not None:
                log.info("statement %s already reconciled as run %d", statement.name,
                         earlier.id)
                return RunView(earlier, book.items(earlier.id), reused=True)
        with gc_paused():
            matcher = Matcher(book.journal_rows(since=since, until=until),
                              terminal_id=ids["terminal_id"], merchant_id=ids["merchant_id"],
                              fees=term.config.fees, window_s=window_s, period=period)
            matcher.feed_many(feed.items())
            outcome = matcher.finish(feed.summary)
    run_id = book.save_run(
        file_name=statement.name, file_hash=file_hash, file_size=size, profile=chosen.name,
        period_from=period[0] if period else None, period_to=period[1] if period else None,
        statement_lines=outcome.statement_lines, journal_rows=outcome.journal_rows,
        counts=outcome.counts, summary_check=outcome.summary_check,
        summary=outcome.summary_json(), other_terminal_lines=outcome.other_terminal_lines,
        forced=force, operator=ids["operator"], items=outcome.items)
    log.info("statement %s reconciled as run %d: %s", statement.name, run_id,
             ", ".join(f"{k} {v}" for k, v in outcome.counts.items() if v))
    return RunView(book.get_run(run_id), book.items(run_id), reused=False)


def show(term: Terminal, run_id: int | None) -> RunView:
    """A stored run (default: the newest) with its items."""
    book = ReconBook(term.journal)
    if run_id is None:
        runs = book.runs(limit=1)
        if not runs:
            raise Refused("no reconciliation has been run yet: posterm reconcile STATEMENT")
        run = runs[0]
    else:
        run = book.get_run(run_id)
    return RunView(run, book.items(run.id), reused=False)


def resolve(term: Terminal, item_id: int, *, note: str, supervisor_password: str) -> ReconItem:
    """A supervisor closes one difference with a note (audited with who and why)."""
    if not note.strip():
        raise InputError("--note must say how the difference was handled")
    book = ReconBook(term.journal)
    item = book.get_item(item_id)
    code = approve(term, supervisor_password, action="recon.resolve",
                   detail={"item": item_id, "run": item.run_id, "class": item.cls})
    return book.resolve(item_id, note=note.strip(), actor=code)


def item_json(item: ReconItem) -> dict[str, Any]:
    return {"id": item.id, "class": item.cls, "line": item.line_no, "txn_id": item.txn_id,
            "terminal_id": item.terminal_id, "batch": item.batch, "stan": item.stan,
            "rrn": item.rrn, "date": item.txn_date, "time": item.txn_time,
            "card": item.card_masked, "type": item.txn_type,
            "journal_amount": item.journal_amount, "statement_amount": item.statement_amount,
            "journal_status": item.journal_status, "statement_status": item.statement_status,
            "fee_expected": item.fee_expected, "fee_statement": item.fee_statement,
            "net_expected": item.net_expected, "net_statement": item.net_statement,
            "detail": item.detail, "detail_zh": item.detail_zh,
            "resolved": item.resolved_utc is not None, "note": item.resolution_note,
            "resolved_by": item.resolved_by}


def view_json(view: RunView) -> dict[str, Any]:
    run = view.run
    return {"run": run.id, "reused": view.reused, "file": run.file_name,
            "sha256": run.file_hash, "profile": run.profile,
            "period": [run.period_from, run.period_to] if run.period_from else None,
            "counts": {c: int(run.counts.get(c, 0)) for c in CLASSES},
            "summary_check": run.summary_check, "summary": run.summary,
            "statement_lines": run.statement_lines, "journal_rows": run.journal_rows,
            "other_terminal_lines": run.other_terminal_lines,
            "created_local": run.created_local,
            "items": [item_json(i) for i in view.items]}
