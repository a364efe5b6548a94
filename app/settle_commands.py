"""``posterm settle``, ``report last-settlement``, ``report day``, ``signoff`` and ``watch`` (auto-settlement).

Registered on the main group by ``app.cli``; same contract: one line per failure, exit 0
only when the day ends balanced (directly or after the batch upload).
"""

from __future__ import annotations

import sys
import time

import click

from app.cli import _json_option, _open_terminal, _print_json, cli, guarded
from app.errors import EXIT_DECLINED, EXIT_UNREACHABLE

RESULT_LABELS = {"balanced": ("平", "BALANCED"), "unbalanced": ("不平", "UNBALANCED"),
                 "error": ("错误", "ERROR")}


def _label(result: str | None, language: str) -> str:
    zh, en = RESULT_LABELS.get(result or "error", RESULT_LABELS["error"])
    return zh if language == "zh" else en


def _progress_bar(enabled: bool):
    """A rich progress bar on stderr while uploading (a TTY and no --json), else nothing."""
    if not enabled:
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   console=Console(stderr=True), transient=True)
    tasks: dict[str, int] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task("批上送 upload" if phase == "upload" else "TC 上送",
                                        total=total)
        bar.update(tasks[phase], completed=done)
    return bar, update


@cli.command()
@_json_option
@click.option("--progress/--no-progress", default=None,
              help="Show the upload's progress bar (default: on a terminal without --json).")
@click.pass_context
@guarded
def settle(ctx: click.Context, as_json: bool, progress: bool | None) -> None:
    """Settle the open batch (结算): flush, totals, 0500, batch upload when unbalanced,
    report, close. An interrupted settlement is finished first."""
    from app.flows.settle import settle as run
    term = _open_terminal(ctx)
    show = progress if progress is not None else (sys.stderr.isatty() and not as_json)
    bar, update = _progress_bar(show)
    if bar is not None:
        with bar:
            outcome = run(term, progress=update)
    else:
        outcome = run(term)
    data = outcome.as_json()
    if as_json:
        _print_json(data)
    else:
        _echo_outcome(outcome, term.language)
    if outcome.print_error:
        click.echo(f"posterm: warning: report not printed: {outcome.print_error}", err=True)
    if not outcome.balanced:
        row = outcome.row
        click.echo(f"posterm: batch {row.batch:06d} not settled: {row.error}; the batch stays "
                   "open, settle again" if row.step == "failed" else
                   f"posterm: batch {row.batch:06d} closed UNBALANCED (不平): the report lists "
                   "what to check with the acquirer", err=True)
        sys.exit(EXIT_DECLINED)


def _echo_outcome(outcome, language: str) -> None:
    row = outcome.row
    if row.step == "failed":
        return                      # said on stderr, one line
    line = f"结算 batch {row.batch:06d}: {_label(row.result, language)}"
    if row.result_after_upload is not None:
        line += (f"; uploaded {row.uploaded}/{row.upload_total}, after upload "
                 f"{_label(row.result_after_upload, language)}")
    if outcome.resumed:
        line += " (an interrupted settlement, finished)"
    click.echo(line)
    if outcome.report is not None:
        click.echo(outcome.report.text(32), nl=False)
    for path in outcome.files:
        click.echo(f"saved {path}")


@cli.group()
def report() -> None:
    """Reports: the last settlement's, again; the day's takings."""


@report.command("last-settlement")
@_json_option
@click.option("--no-print", "no_print", is_flag=True, help="Only show it; do not print.")
@click.pass_context
@guarded
def report_last_settlement(ctx: click.Context, as_json: bool, no_print: bool) -> None:
    """Reprint the last settlement's report (marked DUPLICATE / 重打印)."""
    from app.flows.settle import reprint_last
    term = _open_terminal(ctx)
    row, rep, printed, problem = reprint_last(term, to_printer=not no_print)
    if as_json:
        _print_json({"batch": row.batch, "result": row.result,
                     "host_result_after_upload": row.result_after_upload,
                     "report": rep.as_json(), "printed": printed, "print_error": problem})
    else:
        click.echo(rep.text(32), nl=False)
    if problem:
        click.echo(f"posterm: warning: not printed: {problem}", err=True)
        sys.exit(EXIT_UNREACHABLE)


@report.command("day")
@click.option("--date", "day", metavar="YYYY-MM-DD",
              help="The local date (default: today on the terminal's clock).")
@_json_option
@click.option("--print", "to_printer", is_flag=True, help="Also print it on the receipt printer.")
@click.pass_context
@guarded
def report_day(ctx: click.Context, day: str | None, as_json: bool, to_printer: bool) -> None:
    """The day's takings (当日营业额): approved sales less refunds, by hour and by card
    organisation, with bar charts."""
    from app.dayreport import day_report, parse_day, print_day_report
    wanted = parse_day(day) if day is not None else None
    term = _open_terminal(ctx)
    rep = day_report(term.journal, wanted, merchant=term.merchant)
    problem = print_day_report(term, rep) if to_printer else None
    if as_json:
        _print_json({**rep.as_json(), "printed": to_printer and problem is None,
                     "print_error": problem})
    else:
        click.echo(rep.text(80, term.language), nl=False)
    if problem:
        click.echo(f"posterm: warning: not printed: {problem}", err=True)
        sys.exit(EXIT_UNREACHABLE)


@cli.command()
@_json_option
@click.pass_context
@guarded
def signoff(ctx: click.Context, as_json: bool) -> None:
    """Sign off (签退): refused while the open batch has unsettled transactions."""
    term = _open_terminal(ctx)
    term.session.sign_off()
    if as_json:
        _print_json({"result": "ok", "batch": f"{term.journal.current_batch():06d}"})
    else:
        click.echo("签退成功" if term.language == "zh" else "Signed off")


@cli.command()
@click.option("--interval", type=click.FloatRange(0.05, 3600), default=30.0, show_default=True,
              help="Seconds between checks.")
@click.option("--once", is_flag=True, help="One check, then exit (for cron and tests).")
@click.pass_context
@guarded
def watch(ctx: click.Context, interval: float, once: bool) -> None:
    """Run beside the cashier: settle at settlement.auto_time, warn when the batch has been
    open longer than settlement.warn_open_hours, send what waits for the host."""
    from app.autosettle import AutoSettle
    term = _open_terminal(ctx)
    auto = AutoSettle(term, say=lambda text: click.echo(f"posterm: {text}", err=True))
    while True:
        auto.check()
        if once:
            return
        time.sleep(interval)
