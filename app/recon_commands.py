"""``posterm reconcile`` (对账) and ``posterm recon list|show|resolve``.

Registered on the main group by ``app.cli``. Exit codes: 0 when every difference is handled
and the statement's totals agree, 1 when differences are left to handle (or the totals
disagree, or a resolve is refused: wrong supervisor password), 2 for a bad file, profile
or option (one line naming the file, line and column), 4 for an internal error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from app.cli import (
    _json_option,
    _open_terminal,
    _print_json,
    _supervisor_option,
    _supervisor_password,
    cli,
    guarded,
)
from app.errors import EXIT_DECLINED

_output_option = click.option("-o", "--output", "output",
                              type=click.Path(dir_okay=False, path_type=Path),
                              help="Also write the report: .xlsx, .csv, .txt or .json.")


def _finish(view, term, as_json: bool, output: Path | None) -> None:
    from app.recon.report import console_lines, write_report
    from app.recon.run import view_json
    if output is not None:
        write_report(view, output, term.language)
    if as_json:
        data = view_json(view)
        if output is not None:
            data["report"] = str(output)
        _print_json(data)
    else:
        for line in console_lines(view, term.language):
            click.echo(line)
        if output is not None:
            click.echo(("报告: " if term.language == "zh" else "report: ") + str(output))
    unresolved = any(i.resolved_utc is None for i in view.items)
    if unresolved or view.run.summary_check == "mismatch":
        sys.exit(EXIT_DECLINED)


@cli.command()
@click.argument("statement", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--profile", metavar="NAME|FILE",
              help="The statement's profile: a bundled name (see 'posterm recon profiles') or "
                   "a .toml file; default: posterm-host's, by the file's suffix.")
@click.option("--from", "date_from", metavar="YYYY-MM-DD",
              help="First day of the journal to check (default: the statement's first date).")
@click.option("--to", "date_to", metavar="YYYY-MM-DD",
              help="Last day of the journal to check (default: the statement's last date).")
@click.option("--window", "window_s", type=click.IntRange(0, 86400), default=600,
              show_default=True, help="Seconds apart a probable match may be.")
@click.option("--force", is_flag=True,
              help="Reconcile a file again as a new run (default: show its earlier run).")
@_output_option
@_json_option
@click.pass_context
@guarded
def reconcile(ctx: click.Context, statement: Path, profile: str | None, date_from: str | None,
              date_to: str | None, window_s: int, force: bool, output: Path | None,
              as_json: bool) -> None:
    """Reconcile (对账) the acquirer's STATEMENT file against the journal, line by line."""
    from app.export import format_for
    from app.recon.run import parse_period
    from app.recon.run import reconcile as run
    period = parse_period(date_from, date_to)
    if output is not None:
        format_for(output, None)          # a report name we cannot write: refused before the run
    term = _open_terminal(ctx)
    view = run(term, statement, profile=profile, period=period, force=force,
               window_s=window_s)
    _finish(view, term, as_json, output)


@cli.group()
def recon() -> None:
    """Stored reconciliation runs: list, show, resolve a difference, bundled profiles."""


@recon.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@_json_option
@click.pass_context
@guarded
def recon_list(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The newest reconciliation runs."""
    from storage.recon import ReconBook
    term = _open_terminal(ctx)
    book = ReconBook(term.journal)
    runs = book.runs(limit=limit)
    if as_json:
        _print_json({"runs": [{"run": r.id, "file": r.file_name, "profile": r.profile,
                               "created_local": r.created_local, "counts": r.counts,
                               "summary_check": r.summary_check,
                               "unresolved": r.unresolved}
                              for r in runs]})
        return
    if not runs:
        click.echo("no reconciliation runs yet")
    for r in runs:
        open_items = r.unresolved
        click.echo(f"run {r.id:<5} {r.created_local[:19]}  {r.file_name}  "
                   f"matched {r.counts.get('matched', 0):,}  "
                   f"differences open {open_items}  summary {r.summary_check}")


@recon.command("show")
@click.argument("run_id", type=int, required=False, metavar="[RUN]")
@_output_option
@_json_option
@click.pass_context
@guarded
def recon_show(ctx: click.Context, run_id: int | None, output: Path | None,
               as_json: bool) -> None:
    """One run (default: the newest) with its differences; -o writes its report."""
    from app.export import format_for
    from app.recon.run import show
    if output is not None:
        format_for(output, None)
    term = _open_terminal(ctx)
    _finish(show(term, run_id), term, as_json, output)


@recon.command("resolve")
@click.argument("item_id", type=int, metavar="ITEM")
@click.option("--note", required=True, help="How the difference was handled.")
@_supervisor_option
@_json_option
@click.pass_context
@guarded
def recon_resolve(ctx: click.Context, item_id: int, note: str, supervisor: str | None,
                  as_json: bool) -> None:
    """Mark difference ITEM as handled, with a note (supervisor)."""
    from app.recon.run import item_json, resolve
    password = _supervisor_password(supervisor)
    term = _open_terminal(ctx)
    item = resolve(term, item_id, note=note, supervisor_password=password)
    if as_json:
        _print_json({"item": item_json(item)})
    else:
        click.echo(f"item {item.id} resolved by {item.resolved_by}: {item.resolution_note}")


@recon.command("profiles")
@_json_option
@guarded
def recon_profiles(as_json: bool) -> None:
    """The bundled statement profiles (a bank's own is a .toml file: docs/reconcile.md)."""
    from app.recon.profile import bundled_profiles
    names = bundled_profiles()
    if as_json:
        _print_json({"profiles": names})
    else:
        for name in names:
            click.echo(name)
