"""The ``posterm`` command line: the contract benches and scripts rely on.

Exit codes: 0 ok/approved, 1 declined or refused, 2 usage or configuration error,
3 device or host unreachable, 4 internal error (details in the log file). Every failure is
one line on stderr, never a traceback. Heavy modules are imported inside the commands so
``posterm --help`` starts fast.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from app.errors import (
    EXIT_DECLINED,
    EXIT_INTERNAL,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    exit_code_for,
)

log = logging.getLogger("app.cli")


def _default_data_dir() -> Path:
    import platformdirs
    return Path(platformdirs.user_data_dir("posterm"))


def _fail(message: str, code: int, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"result": "error", "error": message, "exit_code": code},
                              ensure_ascii=False))
    click.echo(f"posterm: {message}", err=True)
    sys.exit(code)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; turn any error into one line and the right exit code."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            _fail("interrupted", EXIT_USAGE, as_json)
        except Exception as exc:  # the one place every error becomes a line for a person
            code = exit_code_for(exc)
            if code is None:
                log.exception("internal error")
                _fail(f"internal error: {type(exc).__name__}: {exc} (details in the log file)",
                      EXIT_INTERNAL, as_json)
            _fail(str(exc), code, as_json)
    return wrapper


def _open_terminal(ctx: click.Context):
    from app.redaction import setup_logging
    from app.terminal import Terminal
    data_dir: Path = ctx.obj["data"]
    term = Terminal(data_dir)
    setup_logging(term.config.log_path, verbose=ctx.obj["verbose"])
    ctx.call_on_close(term.close)
    return term


def _print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             invoke_without_command=True)
@click.option("--data", "data", type=click.Path(file_okay=False, path_type=Path),
              envvar="POSTERM_DATA", help="Data directory (default: the user's data directory; "
              "or POSTERM_DATA).")
@click.option("-v", "--verbose", is_flag=True, help="Also log to stderr.")
@click.version_option(package_name="posterm", prog_name="posterm")
@click.pass_context
def cli(ctx: click.Context, data: Path | None, verbose: bool) -> None:
    """posterm: a card-payment terminal (UnionPay POS dialect) for Linux POS boxes.

    Without a command it opens the cashier app (as 'posterm ui')."""
    ctx.ensure_object(dict)
    ctx.obj["data"] = data or _default_data_dir()
    ctx.obj["verbose"] = verbose
    if ctx.invoked_subcommand is None:
        ctx.invoke(ui)


@cli.command()
@click.pass_context
@guarded
def ui(ctx: click.Context) -> None:
    """The cashier app (Textual): sign-on, sale, void, settlement with the keyboard; on a
    fresh machine it sets up mock devices and starts the bundled host simulator itself."""
    from app.ui import run_app
    sys.exit(run_app(ctx.obj["data"], verbose=ctx.obj["verbose"]))


@cli.command()
@click.option("--data", "init_data", type=click.Path(file_okay=False, path_type=Path),
              help="Data directory to create (same as the global --data).")
@click.option("--host", "host", metavar="HOST:PORT", help="The acquirer host's address.")
@click.option("--host-data", type=click.Path(file_okay=False, path_type=Path),
              help="Provision this terminal on the local host simulator with this data dir.")
@click.option("--terminal-id", help="Terminal id (8 characters).")
@click.option("--merchant-id", help="Merchant id (15 characters).")
@click.option("--merchant-name", help="Merchant name printed on receipts.")
@click.option("--language", type=click.Choice(["zh", "en"]), help="Cashier language.")
@click.option("--supervisor-password", "supervisor",
              help="The supervisor's password for voids and refunds (default: asked on a "
                   "terminal, else generated and printed once).")
@click.option("--force", is_flag=True, help="Overwrite an existing configuration and journal.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@guarded
def init(ctx: click.Context, init_data: Path | None, host: str | None, host_data: Path | None,
         terminal_id: str | None, merchant_id: str | None, merchant_name: str | None,
         language: str | None, supervisor: str | None, force: bool, as_json: bool) -> None:
    """Create posterm.toml, the journal and the key file (mode 0600)."""
    import secrets

    from app.provision import init as do_init
    data_dir = init_data or ctx.obj["data"]
    generated = None
    if supervisor is None:
        if sys.stdin.isatty():
            supervisor = click.prompt("supervisor password (主管密码)", hide_input=True,
                                      confirmation_prompt=True)
        else:
            supervisor = generated = secrets.token_urlsafe(9)
    result = do_init(data_dir, host=host, host_data=host_data, force=force,
                     supervisor_password=supervisor,
                     supervisor_must_change=generated is not None, overrides={
        "terminal": {"terminal_id": terminal_id, "merchant_id": merchant_id,
                     "merchant_name": merchant_name, "language": language}})
    if generated is not None:
        result["supervisor_password"] = generated      # shown this once, never stored
    if as_json:
        _print_json(result)
    else:
        click.echo(f"initialised {result['data']} (terminal {result['terminal_id']}, "
                   f"host {result['host']}"
                   + (", provisioned on the host simulator)" if result["host_provisioned"]
                      else ")"))
        if generated is not None:
            click.echo(f"supervisor password (shown once, write it down): {generated}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@guarded
def signon(ctx: click.Context, as_json: bool) -> None:
    """Sign on (签到): download fresh PIN and MAC keys from the host."""
    term = _open_terminal(ctx)
    reply = term.session.sign_on()
    batch = term.journal.current_batch()
    if as_json:
        _print_json({"result": "ok", "response_code": reply.get("39"), "batch": f"{batch:06d}",
                     "terminal_id": term.config["terminal"]["terminal_id"]})
    else:
        click.echo(("签到成功" if term.language == "zh" else "Signed on")
                   + f" — batch {batch:06d}")


def _profile(card_name: str | None):
    """The test card named by --card (None without one); InputError for an unknown name."""
    from app.errors import InputError
    from hal.testcards import CATALOGUE
    if card_name is None:
        return None
    profile = CATALOGUE.get(card_name)
    if profile is None:
        raise InputError(f"unknown card profile {card_name!r}: see 'posterm cards' "
                         f"({', '.join(CATALOGUE)})")
    return profile


def _check_pin(pin: str | None) -> None:
    from app.errors import InputError
    if pin is not None and not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise InputError("--pin must be 4 to 12 digits")


def _report(outcome, term, as_json: bool) -> None:
    """Print a transaction's outcome (one line, or JSON) and exit 1 unless approved; warn
    when the batch has been open too long."""
    from app.autosettle import batch_age_warning
    data = outcome.as_json(term.language)
    warning = batch_age_warning(term)
    if warning:
        click.echo(f"posterm: warning: {warning}", err=True)
    if as_json:
        _print_json(data)
    else:
        status = "APPROVED" if data["result"] == "approved" else "DECLINED"
        click.echo(f"{status} {data['response_code']} {data['message']} — ¥{data['amount_yuan']}"
                   f" {data['pan_masked']} STAN {data['stan']} RRN {data['rrn'] or '-'}"
                   f" AUTH {data['auth_code'] or '-'}")
    for err in data["receipt_errors"]:
        click.echo(f"posterm: warning: {err}; 'posterm reprint --pending' prints it later",
                   err=True)
    if data["result"] != "approved":
        sys.exit(EXIT_DECLINED)


def _supervisor_password(given: str | None) -> str:
    """--supervisor-password, else POSTERM_SUPERVISOR_PASSWORD, else a prompt on a terminal,
    else a usage error (exit 2)."""
    import os

    from app.errors import InputError
    password = given or os.environ.get("POSTERM_SUPERVISOR_PASSWORD")
    if password:
        return password
    if sys.stdin.isatty():
        return click.prompt("supervisor password (主管密码)", hide_input=True)
    raise InputError("this needs the supervisor password: --supervisor-password or "
                     "POSTERM_SUPERVISOR_PASSWORD")


_card_option = click.option("--card", "card_name", metavar="PROFILE",
                            help="Present this test card to the mock devices "
                                 "(see 'posterm cards').")
_pin_option = click.option("--pin", help="The PIN the customer types on the mock PIN pad.")
_timeout_option = click.option("--timeout", type=float, default=30.0, show_default=True,
                               help="Seconds to wait for the card.")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
_supervisor_option = click.option("--supervisor-password", "supervisor",
                                  help="The supervisor's password (or "
                                       "POSTERM_SUPERVISOR_PASSWORD, or a prompt).")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("amount")
@_card_option
@_pin_option
@_timeout_option
@_json_option
@click.pass_context
@guarded
def sale(ctx: click.Context, amount: str, card_name: str | None, pin: str | None,
         timeout: float, as_json: bool) -> None:
    """Sale (消费) of AMOUNT yuan, e.g. 12.50."""
    from app.flows.sale import run_sale
    _card_flow(ctx, run_sale, amount, card_name, pin, timeout, as_json)


def _card_flow(ctx: click.Context, run: Callable[..., Any], amount: str,
               card_name: str | None, pin: str | None, timeout: float, as_json: bool) -> None:
    """A card-present flow (sale, pre-auth) from the command line: checked input, then the
    flow, then its outcome."""
    from app.amount import parse_yuan
    fen = parse_yuan(amount)
    profile = _profile(card_name)
    _check_pin(pin)
    term = _open_terminal(ctx)
    _report(run(term, fen, card_profile=profile, pin=pin, timeout=timeout), term, as_json)


@cli.command()
@click.argument("stan", type=int)
@_supervisor_option
@_json_option
@click.pass_context
@guarded
def void(ctx: click.Context, stan: int, supervisor: str | None, as_json: bool) -> None:
    """Void (撤销) the sale, pre-authorisation or completion with this STAN (open batch)."""
    from app.flows.void import run_void
    password = _supervisor_password(supervisor)
    term = _open_terminal(ctx)
    _report(run_void(term, stan, supervisor_password=password), term, as_json)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("amount")
@click.option("--rrn", required=True, help="The original's reference number (参考号).")
@click.option("--date", "date", required=True, metavar="MMDD", help="The original's date.")
@_card_option
@_pin_option
@_supervisor_option
@_timeout_option
@_json_option
@click.pass_context
@guarded
def refund(ctx: click.Context, amount: str, rrn: str, date: str, card_name: str | None,
           pin: str | None, supervisor: str | None, timeout: float, as_json: bool) -> None:
    """Refund (退货) AMOUNT yuan of an earlier sale to the card that paid."""
    from app.amount import parse_yuan
    from app.flows.refund import run_refund
    fen = parse_yuan(amount)
    profile = _profile(card_name)
    _check_pin(pin)
    password = _supervisor_password(supervisor)
    term = _open_terminal(ctx)
    _report(run_refund(term, fen, rrn=rrn, date=date, supervisor_password=password,
                       card_profile=profile, pin=pin, timeout=timeout), term, as_json)


@cli.command()
@_card_option
@_pin_option
@_timeout_option
@_json_option
@click.pass_context
@guarded
def balance(ctx: click.Context, card_name: str | None, pin: str | None, timeout: float,
            as_json: bool) -> None:
    """Balance inquiry (余额查询): the card and its PIN."""
    from app.amount import format_yuan
    from sync.responses import rule
    profile = _profile(card_name)
    _check_pin(pin)
    from app.flows.balance import run_balance
    term = _open_terminal(ctx)
    result, masked = run_balance(term, card_profile=profile, pin=pin, timeout=timeout)
    r = rule(result.response_code)
    data = {"result": "ok" if result.balance is not None else "declined",
            "response_code": result.response_code,
            "message": r.zh if term.language == "zh" else r.en, "pan_masked": masked,
            "balance": result.balance,
            "balance_yuan": None if result.balance is None else format_yuan(result.balance)}
    if as_json:
        _print_json(data)
    elif result.balance is not None:
        click.echo(f"{masked} 余额 BALANCE ¥{data['balance_yuan']}")
    else:
        click.echo(f"DECLINED {result.response_code} {data['message']} {masked}")
    if result.balance is None:
        sys.exit(EXIT_DECLINED)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("amount")
@_card_option
@_pin_option
@_timeout_option
@_json_option
@click.pass_context
@guarded
def preauth(ctx: click.Context, amount: str, card_name: str | None, pin: str | None,
            timeout: float, as_json: bool) -> None:
    """Pre-authorisation (预授权) of AMOUNT yuan: a hold on the card."""
    from app.flows.preauth import run_preauth
    _card_flow(ctx, run_preauth, amount, card_name, pin, timeout, as_json)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("amount")
@click.option("--preauth", "preauth_stan", type=int, required=True, metavar="STAN",
              help="The pre-authorisation's STAN.")
@_card_option
@_timeout_option
@_json_option
@click.pass_context
@guarded
def complete(ctx: click.Context, amount: str, preauth_stan: int, card_name: str | None,
             timeout: float, as_json: bool) -> None:
    """Completion (预授权完成) of a pre-authorisation for AMOUNT yuan (up to 115%)."""
    from app.amount import parse_yuan
    from app.flows.preauth import run_completion
    fen = parse_yuan(amount)
    profile = _profile(card_name)
    term = _open_terminal(ctx)
    _report(run_completion(term, fen, preauth_stan=preauth_stan, card_profile=profile,
                           timeout=timeout), term, as_json)


@cli.group(invoke_without_command=True)
@_json_option
@click.pass_context
@guarded
def queue(ctx: click.Context, as_json: bool) -> None:
    """What waits for the host: armed reversals and store-and-forward advices."""
    if ctx.invoked_subcommand is not None:
        return
    term = _open_terminal(ctx)
    items = _queue_items(term)
    if as_json:
        _print_json({"queue": items})
    elif not items:
        click.echo("nothing waits for the host")
    for i in items if not as_json else []:
        click.echo(f"{i['kind']:<9} STAN {i['stan']} {i['type']:<12} ¥{i['amount_yuan']:>10} "
                   f"{i['pan_masked']} tries {i['attempts']}")


def _queue_items(term) -> list[dict]:
    from app.amount import format_yuan
    items = []
    for kind, entries in (("reversal", term.journal.pending_reversals()),
                          ("advice", term.journal.pending_advices())):
        for entry in entries:
            r = term.journal.get(entry.txn_id)
            items.append({"kind": kind, "txn_id": r.id, "stan": f"{r.stan:06d}",
                          "type": r.txn_type, "amount": r.amount,
                          "amount_yuan": format_yuan(r.amount), "pan_masked": r.pan_masked,
                          "attempts": entry.attempts, "since_utc": entry.created_utc})
    return items


@queue.command("flush")
@_json_option
@click.pass_context
@guarded
def queue_flush(ctx: click.Context, as_json: bool) -> None:
    """Send everything that waits for the host now."""
    term = _open_terminal(ctx)
    reversals = term.session.flush_reversals()
    term.session.ensure_signed_on()
    advices = term.session.flush_advices()
    left = _queue_items(term)
    if as_json:
        _print_json({"reversals_sent": reversals, "advices_sent": advices, "left": left})
    else:
        click.echo(f"sent {reversals} reversal(s) and {advices} advice(s); "
                   f"{len(left)} left waiting")
    if left:
        sys.exit(EXIT_UNREACHABLE)


@cli.command()
@click.argument("target", required=False, metavar="[last|STAN]")
@click.option("--stan", type=int, help="The transaction's STAN (凭证号); default: the last one.")
@click.option("--pending", is_flag=True, help="Print every slip that did not come out.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@guarded
def reprint(ctx: click.Context, target: str | None, stan: int | None, pending: bool,
            as_json: bool) -> None:
    """Reprint a slip marked 重打印 DUPLICATE: 'last' (the newest approved transaction, the
    default) or the one with this STAN; --pending prints the ones a printer fault held back."""
    from app.flows.slips import last_approved_stan
    from app.flows.slips import reprint as do_reprint
    stan = _reprint_stan(target, stan, pending)
    term = _open_terminal(ctx)
    if stan is None and not pending:
        stan = last_approved_stan(term)
    results = do_reprint(term, stan=stan, pending=pending)
    if as_json:
        _print_json({"reprinted": results})
    else:
        if not results:
            click.echo("no slips waiting" if pending else "nothing to reprint")
        for r in results:
            click.echo(f"STAN {r['stan']}: " + ("printed" if r["printed"] else
                                                "not printed: " + "; ".join(r["errors"])))
    if any(not r["printed"] for r in results):
        sys.exit(EXIT_UNREACHABLE)


def _reprint_stan(target: str | None, stan: int | None, pending: bool) -> int | None:
    """The STAN that ``reprint``'s argument and options name (None: the last one)."""
    from app.errors import InputError
    given = [name for name, value in (("an argument", target), ("--stan", stan),
                                      ("--pending", pending or None)) if value is not None]
    if len(given) > 1:
        raise InputError(f"reprint takes one of last, a STAN, --stan or --pending, "
                         f"not {' and '.join(given)}")
    if target is None or target.lower() == "last":
        return stan
    if not (target.isdigit() and 1 <= int(target) <= 999999):
        raise InputError(f"reprint {target!r}: give 'last' or a STAN (1 to 999999)")
    return int(target)


TXN_FORMATS = ("table", "json", "csv", "xlsx", "txt")


@cli.command()
@click.option("--from", "date_from", metavar="DATE",
              help='From this local date or time, inclusive: YYYY-MM-DD or "YYYY-MM-DD HH:MM".')
@click.option("--to", "date_to", metavar="DATE",
              help='Up to this local date (the whole day) or minute, inclusive.')
@click.option("--min", "min_yuan", metavar="YUAN", help="Amount at least this, e.g. 10.00.")
@click.option("--max", "max_yuan", metavar="YUAN", help="Amount at most this.")
@click.option("--card-last4", metavar="NNNN", help="The card number's last four digits.")
@click.option("--type", "types", multiple=True, metavar="TYPE",
              help="Only this type (repeatable): sale, void, refund, preauth, preauth_void, "
                   "completion, completion_void, offline_sale.")
@click.option("--status", "statuses", multiple=True, metavar="STATUS",
              help="Only this status (repeatable): approved, declined, reversed, voided, "
                   "pending, failed.")
@click.option("--batch", type=int, help="Only this batch.")
@click.option("--limit", type=int,
              help="At most N, the newest (default 50 for the table; all for files and JSON).")
@click.option("--format", "fmt", metavar="FORMAT",
              help="table (default on screen), json, csv, xlsx or txt; default for -o: the "
                   "file's suffix.")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (needed for csv and xlsx).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (= --format json).")
@click.pass_context
@guarded
def txns(ctx: click.Context, date_from: str | None, date_to: str | None,
         min_yuan: str | None, max_yuan: str | None, card_last4: str | None,
         types: tuple[str, ...], statuses: tuple[str, ...], batch: int | None,
         limit: int | None, fmt: str | None, out: Path | None, as_json: bool) -> None:
    """Transaction query (流水查询): the journal newest first, filtered by time, amount,
    card, type, status and batch; on the screen or exported to CSV, XLSX, TXT or JSON."""
    from app import txnlist
    from storage.query import count, search
    fmt = _txns_format(fmt, out, as_json)
    flt = txnlist.txn_filter(date_from, date_to, min_yuan, max_yuan, card_last4, types,
                             statuses, batch, limit if limit is not None or fmt != "table" else 50)
    term = _open_terminal(ctx)
    items = txnlist.rows(search(term.journal, flt))
    if fmt == "table":
        note = None
        if limit is None and len(items) == flt.limit:
            total = count(term.journal, flt)
            if total > len(items):
                note = (f"只显示最新 {len(items)} 笔（共 {total} 笔），用 --limit 查看更多"
                        if term.language == "zh" else
                        f"showing the newest {len(items)} of {total}: --limit N for more")
        txnlist.render_table(items, term.language, note=note)
        return
    if out is None and fmt == "json":
        _print_json({"transactions": items})
        return
    title = txnlist.txns_title(term.language, date_from, date_to)
    if out is None:                                      # txt on stdout
        from app.export import render_txt
        click.echo(render_txt(txnlist.EXPORT_COLUMNS, txnlist.export_rows(items, term.language),
                              language=term.language, title=title,
                              footer=txnlist.totals_footer(items, term.language)), nl=False)
        return
    txnlist.write_txns(out, items, term.language, title=title, fmt=fmt)
    click.echo(f"wrote {len(items)} transaction(s) to {out}")


def _txns_format(fmt: str | None, out: Path | None, as_json: bool) -> str:
    """What ``txns`` writes: --json, --format, else the -o file's suffix, else the table."""
    from app.errors import InputError
    from app.export import format_for
    if fmt is not None and fmt not in TXN_FORMATS:
        raise InputError(f"unknown --format {fmt!r}: use {', '.join(TXN_FORMATS)}")
    if as_json:
        if fmt not in (None, "json"):
            raise InputError(f"--json and --format {fmt} disagree: give one of them")
        fmt = "json"
    if fmt is None:
        fmt = "table" if out is None else format_for(out, None)
    if fmt == "table" and out is not None:
        raise InputError("the table is for the screen: use --format txt (or csv, xlsx, json) "
                         "with -o")
    if fmt in ("csv", "xlsx") and out is None:
        raise InputError(f"--format {fmt} writes a file: give -o FILE")
    return fmt


@cli.command()
@click.option("--test", "run_test", is_flag=True,
              help="Also test each device: read an ATR, print a test page, show a message.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@guarded
def devices(ctx: click.Context, run_test: bool, as_json: bool) -> None:
    """Every configured device with its state (and a test of each with --test)."""
    from app.devicecheck import check_devices, device_line, failed
    term = _open_terminal(ctx)
    report = check_devices(term, test=run_test)
    if as_json:
        _print_json({"devices": report})
    else:
        for entry in report.values():
            click.echo(device_line(entry))
    if any(failed(e) for e in report.values()):
        sys.exit(EXIT_UNREACHABLE)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@guarded
def cards(as_json: bool) -> None:
    """The test-card catalogue (public test data) and what the host does with each card."""
    from hal.testcards import CATALOGUE
    items = [{"name": c.name, "pan": c.pan, "expiry": c.expiry, "org": c.org,
              "interface": c.interface, "aid": c.aid, "label": c.label, "pin": c.pin,
              "host_behaviour": c.host_behaviour, "description": c.description}
             for c in CATALOGUE.values()]
    if as_json:
        _print_json({"cards": items})
        return
    for c in items:
        click.echo(f"{c['name']:<22} {c['pan']:<19} {c['expiry']} {c['org']:<3} "
                   f"{c['interface']:<5} {c['host_behaviour']}")


@cli.group()
def audit() -> None:
    """The hash-chained audit log of every money-moving action."""


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@guarded
def audit_verify(ctx: click.Context, as_json: bool) -> None:
    """Check the audit chain: an edited, inserted or deleted row is reported (exit 1)."""
    term = _open_terminal(ctx)
    problems = term.journal.verify_audit()
    if as_json:
        _print_json({"intact": not problems, "problems": problems})
    else:
        click.echo("audit log intact" if not problems else "\n".join(problems))
    if problems:
        sys.exit(EXIT_DECLINED)


@cli.group()
def card() -> None:
    """Card tools: read a card's application, record a card session as a replayable trace."""


def _tty_chooser(candidates) -> int:
    """Ask the cardholder (at a terminal) which application to use."""
    for i, c in enumerate(candidates, 1):
        click.echo(f"  {i}. {c.display} ({c.aid})", err=True)
    return click.prompt("application", type=click.IntRange(1, len(candidates)), default=1,
                        err=True) - 1


@card.command("read")
@click.option("--reader", "reader_url", required=True, metavar="URL",
              help="The reader: pcsc:, pcsc:<name>, nfc:..., mock:, trace:PATH.")
@click.option("--card", "card_name", metavar="PROFILE", help="Test card for a mock reader.")
@click.option("--contactless", is_flag=True, help="Read a pcsc:/mock:/trace: reader as contactless.")
@click.option("--app", "app_number", type=click.IntRange(min=1), metavar="N",
              help="Use the card's N-th application (priority order) when it has several; "
                   "default: ask on a terminal, else the highest priority.")
@click.option("--timeout", type=float, default=30.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@guarded
def card_read(ctx: click.Context, reader_url: str, card_name: str | None, contactless: bool,
              app_number: int | None, timeout: float, as_json: bool) -> None:
    """Select and read the card's application; the PAN is shown masked, never in clear."""
    from app.emv.describe import read_on_reader, render
    from app.errors import InputError
    from app.redaction import setup_logging
    profile = _profile(card_name)
    setup_logging(None, verbose=ctx.obj["verbose"])
    chooser = None
    if app_number is not None:
        def chooser(candidates) -> int:
            if app_number > len(candidates):
                raise InputError(f"--app {app_number}: the card has {len(candidates)} "
                                 "application(s)")
            return app_number - 1
    elif sys.stdin.isatty() and not as_json:
        chooser = _tty_chooser
    from app import config as config_mod
    from app.emv.params import params_from_config
    # The terminal's AID list and EMV parameters when this data directory has a config.
    values = (config_mod.load(ctx.obj["data"]).values
              if (ctx.obj["data"] / config_mod.CONFIG_NAME).exists() else config_mod.defaults())
    info = read_on_reader(reader_url, data_dir=ctx.obj["data"], contactless=contactless,
                          test_card=profile, chooser=chooser, timeout=timeout,
                          params=params_from_config(values["emv"], values["terminal"]))
    if as_json:
        _print_json(info)
    else:
        click.echo(render(info))


@card.command("record")
@click.option("--reader", "reader_url", required=True, metavar="URL",
              help="The reader: pcsc:, pcsc:<name>, nfc:..., mock:, trace:PATH.")
@click.option("-o", "--output", "out", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The trace file to write.")
@click.option("--contactless", is_flag=True, help="Read a pcsc:/mock: reader as contactless.")
@click.option("--card", "card_name", metavar="PROFILE", help="Test card for a mock reader.")
@click.option("--keep-sensitive", is_flag=True,
              help="Keep the clear PAN and track data in the file (warns).")
@click.option("--timeout", type=float, default=30.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@guarded
def card_record(ctx: click.Context, reader_url: str, out: Path, contactless: bool,
                card_name: str | None, keep_sensitive: bool, timeout: float,
                as_json: bool) -> None:
    """Record one card session (selection, GPO, records) to a trace file."""
    from app.cardrecord import record
    from app.redaction import setup_logging
    profile = _profile(card_name)
    setup_logging(None, verbose=ctx.obj["verbose"])
    if keep_sensitive:
        click.echo("posterm: warning: the trace keeps the clear PAN and track data: treat the "
                   "file as cardholder data", err=True)
    summary = record(reader_url, out, data_dir=ctx.obj["data"], keep_sensitive=keep_sensitive,
                     contactless=contactless, test_card=profile, timeout=timeout)
    if as_json:
        _print_json(summary)
    else:
        click.echo(f"recorded {summary['apdus']} APDUs to {out}: {summary['aid'] or '-'} "
                   f"{summary['label'] or ''} {summary['pan_masked'] or '-'} "
                   f"exp {summary['expiry'] or '-'}"
                   + ("" if keep_sensitive else " (card data masked)"))
    if "error" in summary:
        click.echo(f"posterm: the read stopped half-way: {summary['error']} (the trace "
                   "holds what happened)", err=True)
        sys.exit(EXIT_DECLINED)


@cli.group()
def iso() -> None:
    """ISO 8583 tools for the dialect: decode a message, compute its MAC."""


@iso.command("decode")
@click.argument("hexdata", metavar="HEX")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@guarded
def iso_decode(hexdata: str, as_json: bool) -> None:
    """Decode a message, with or without length prefix, TPDU and header (detected)."""
    from app.isotool import decode_any, describe
    frame, fields = decode_any(hexdata)
    doc = {"tpdu": frame.tpdu.hex().upper() if frame.tpdu else None,
           "header": frame.header.hex().upper() if frame.header else None,
           "mti": fields["t"], "fields": {k: v for k, v in fields.items() if k != "t"}}
    if as_json:
        _print_json(doc)
    else:
        click.echo(describe(doc))


@iso.command("mac")
@click.argument("hexdata", metavar="HEX")
@click.option("--key", "key_hex", required=True, help="MAC key, 8 or 16 bytes in hex.")
@click.option("--algorithm", type=click.Choice(["ecb", "x919"]), default="ecb",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@guarded
def iso_mac(hexdata: str, key_hex: str, algorithm: str, as_json: bool) -> None:
    """Compute the MAC over a message's MAC block and compare it with its field 64."""
    from app.isotool import mac_of
    result = mac_of(hexdata, key_hex, algorithm)
    if as_json:
        _print_json(result)
    else:
        verdict = {True: "matches field 64", False: "does NOT match field 64",
                   None: "(message has no field 64)"}[result["matches"]]
        click.echo(f"MAC {result['mac']} ({result['mac_text']}) {verdict}")
    if result["matches"] is False:
        sys.exit(EXIT_DECLINED)


@cli.command()
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the day's terminal and host data here (default: a temporary dir).")
@guarded
def demo(keep: Path | None) -> None:
    """A scripted day on mock devices against the bundled host simulator."""
    from app.demo import run_day
    sys.exit(run_day(keep))


from app import (
    backup_commands,  # noqa: F401 - registers backup
    doctor,  # noqa: F401 - registers doctor
    operator_commands,  # noqa: F401 - registers signin, operator
    recon_commands,  # noqa: F401 - registers reconcile, recon
    settle_commands,  # noqa: F401 - registers settle, report, signoff, watch
)


def main() -> None:
    """Entry point: click's usage errors become one line too (exit 2)."""
    try:
        cli.main(prog_name="posterm", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("posterm: aborted", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        click.echo(f"posterm: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
