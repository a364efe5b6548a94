"""``posterm-host``: run the acquirer host simulator, or provision a terminal into it.

    posterm-host --data HOSTDIR --listen 127.0.0.1:PORT [--mac ecb|x919]
                 [--fault SPEC]... [--seed N] [--control 127.0.0.1:PORT]
    posterm-host provision --data HOSTDIR < terminal.json
    posterm-host fault --control 127.0.0.1:PORT add SPEC | list | remove ID | clear | stats
    posterm-host statement --data HOSTDIR --date YYYY-MM-DD --format csv|xlsx|txt -o FILE
                 [--terminal ID]
    posterm-host differences --data HOSTDIR [--terminal ID] [--json]

Every error is one line on stderr and exit status 2 (bad input) or 1 (failure while
running); never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import signal
import sys
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import click

from host import control
from host.errors import HostError
from host.faults import SYNTAX, FaultSpecError, FaultTable, parse_rule
from host.ledger import DB_NAME, Ledger
from host.redaction import RedactPans
from host.server import Host
from host.statement import FORMATS, Statement
from sync import crypto
from sync.fees import FeeSchedule
from sync.mac import ALGORITHMS

PROG = "posterm-host"
logger = logging.getLogger(__name__)


class InputError(click.ClickException):
    """Bad input from the person or the pipe: exit 2."""

    exit_code = 2


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"{PROG}: {message}", err=True)
    sys.exit(code)


def parse_listen(text: str, option: str = "--listen") -> tuple[str, int]:
    """'127.0.0.1:8583', '[::1]:0' or 'localhost:0' -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise InputError(f"{option} {text!r} is not HOST:PORT "
                         "(e.g. 127.0.0.1:8583; port 0 picks a free one)")
    return host, int(port)


def parse_control(text: str) -> tuple[str, int]:
    """The control port's address: like --listen, and loopback only (it has no login)."""
    host, port = parse_listen(text, "--control")
    if not control.is_loopback(host):
        raise InputError(f"--control {text!r}: the control port listens on loopback only "
                         "(e.g. 127.0.0.1:0)")
    return host, port


def fault_table(specs: tuple[str, ...], seed: int | None) -> FaultTable:
    """The fault table from --fault and --seed; a bad rule is one InputError line."""
    table = FaultTable(seed=seed if seed is not None else secrets.randbelow(2**32))
    for spec in specs:
        try:
            table.add(parse_rule(spec))
        except FaultSpecError as exc:
            raise InputError(f"--fault: {exc}") from None
    return table


def _open_ledger(data: Path) -> Ledger:
    try:
        return Ledger.open(data)
    except HostError as exc:
        raise InputError(str(exc)) from None


def _existing_ledger(ctx: click.Context, data: Path | None) -> Ledger:
    """The ledger of a host that has run or been provisioned (never created by a report)."""
    data = data or ctx.obj["data"]
    if data is None:
        raise InputError("--data HOSTDIR is required")
    if not (data / DB_NAME).is_file():
        raise InputError(f"no host ledger in {data} (provision a terminal first)")
    return _open_ledger(data)


def _known_terminal(ledger: Ledger, terminal_id: str | None) -> None:
    if terminal_id is not None and ledger.terminal(terminal_id) is None:
        raise InputError(f"terminal {terminal_id} is not registered")


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", "data", type=click.Path(file_okay=False, path_type=Path),
              help="Host data directory (host.db, host.key); created if absent.")
@click.option("--listen", default="127.0.0.1:8583", show_default=True,
              help="Address to listen on, HOST:PORT; port 0 picks a free port.")
@click.option("--mac", "mac_algorithm", type=click.Choice(ALGORITHMS), default="ecb",
              show_default=True, help="MAC algorithm of field 64.")
@click.option("--fault", "faults", multiple=True, metavar="SPEC",
              help=f"Fault rule, repeatable: {SYNTAX}, FAULT one of drop, delay, corrupt-mac, "
                   "close, duplicate, wrong-stan, forget (see docs/host.md).")
@click.option("--seed", type=int, help="Seed of the random faults (default: a random seed, "
                                       "logged so a run can be repeated).")
@click.option("--control", "control_address", metavar="HOST:PORT",
              help="Also listen for control commands (fault add|list|clear, stats) on this "
                   "loopback address; port 0 picks a free one.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              help="Log level of the lines on stderr "
                   "[default: info when serving, warning otherwise].")
@click.pass_context
def cli(ctx: click.Context, data: Path | None, listen: str, mac_algorithm: str,
        faults: tuple[str, ...], seed: int | None, control_address: str | None,
        log_level: str | None) -> None:
    """The acquirer host simulator: with no command, run the server until SIGTERM/SIGINT."""
    if log_level is None:
        log_level = "info" if ctx.invoked_subcommand is None else "warning"
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactPans())
    ctx.obj = {"data": data}
    if ctx.invoked_subcommand is not None:
        return
    if data is None:
        raise InputError("--data HOSTDIR is required to run the host")
    host, port = parse_listen(listen)
    control_at = parse_control(control_address) if control_address else None
    table = fault_table(faults, seed)
    ledger = _open_ledger(data)
    try:
        asyncio.run(_serve(Host(ledger, mac_algorithm=mac_algorithm, faults=table), host, port,
                           control_at))
    finally:
        ledger.close()


def _shown(bound: tuple[Any, ...]) -> str:
    return f"[{bound[0]}]:{bound[1]}" if ":" in bound[0] else f"{bound[0]}:{bound[1]}"


async def _serve(host: Host, address: str, port: int,
                 control_at: tuple[str, int] | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        server = await host.start(address, port)
    except OSError as exc:
        _fail(f"cannot listen on {address}:{port}: {exc.strerror or exc}", 1)
    click.echo(f"{PROG} listening on {_shown(server.sockets[0].getsockname())}")
    controller = control.Control(host.faults)
    control_server = None
    if control_at is not None:
        try:
            control_server = await controller.start(*control_at)
        except OSError as exc:
            _fail(f"cannot listen on {control_at[0]}:{control_at[1]} for control: "
                  f"{exc.strerror or exc}", 1)
        click.echo(f"{PROG} control on {_shown(control_server.sockets[0].getsockname())}")
    sys.stdout.flush()
    logger.info("fault seed %d (--seed %d repeats the random faults)", host.faults.seed,
                host.faults.seed)
    for rule in host.faults.rules:
        logger.info("fault rule %d: %s", rule.id, rule.text())
    await stop.wait()
    for srv in (server, control_server):
        if srv is not None:
            srv.close()
    host.close_connections()
    controller.close_connections()
    await server.wait_closed()
    logger.info("stopped; %s", json.dumps(host.faults.stats()))


@cli.command()
@click.option("--data", "data", type=click.Path(file_okay=False, path_type=Path),
              help="Host data directory (defaults to the one given before the command).")
@click.pass_context
def provision(ctx: click.Context, data: Path | None) -> None:
    """Register a terminal and its master key, read as one JSON object from stdin.

    {"terminal_id": "12345678", "merchant_id": "898110048990001", "merchant_name": "...",
    "tmk": "<32 hex>", "replace": false}. The key comes over a pipe, never on the command line.
    """
    data = data or ctx.obj["data"]
    if data is None:
        raise InputError("--data HOSTDIR is required")
    request = _read_terminal_json(sys.stdin.read())
    ledger = _open_ledger(data)
    try:
        terminal = ledger.register(request["terminal_id"], request["merchant_id"],
                                   request["merchant_name"], request["tmk"],
                                   replace=request["replace"], fees=request["settlement"])
        fees = ledger.fee_schedule(terminal["terminal_id"])
    except HostError as exc:
        raise InputError(str(exc)) from None
    finally:
        ledger.close()
    kcv = crypto.check_value(request["tmk"]).hex().upper()[:6]
    click.echo(f"terminal {terminal['terminal_id']} registered for merchant "
               f"{terminal['merchant_id']} (TMK check value {kcv}, batch {terminal['batch']:06d},"
               f" {fees.mode} card {fees.card_rate}% QR {fees.qr_rate}%)")


@cli.command()
@click.option("--data", "data", type=click.Path(file_okay=False, path_type=Path),
              help="Host data directory (defaults to the one given before the command).")
@click.option("--date", "day", required=True, metavar="YYYY-MM-DD",
              help="The clearing date: transactions cleared (settled) that day.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="csv (UTF-8 with BOM), xlsx or txt (fixed width); see docs/statement.md.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write (replaced if it exists).")
@click.option("--terminal", "terminal_id", metavar="ID", help="Only this terminal.")
@click.pass_context
def statement(ctx: click.Context, data: Path | None, day: str, fmt: str, output: Path,
              terminal_id: str | None) -> None:
    """Export the acquirer statement of the transactions cleared on a date."""
    try:
        cleared = date.fromisoformat(day) if len(day) == 10 else None
    except ValueError:
        cleared = None
    if cleared is None:
        raise InputError(f"--date {day!r} is not a date YYYY-MM-DD")
    ledger = _existing_ledger(ctx, data)
    try:
        _known_terminal(ledger, terminal_id)
        sheet = Statement.from_rows(cleared.isoformat(), terminal_id,
                                    ledger.cleared(cleared.isoformat(), terminal_id))
    finally:
        ledger.close()
    try:
        sheet.write(output, fmt)
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}", 1)
    totals = sheet.totals()
    click.echo(f"statement of {cleared.isoformat()}: {totals['count']} transaction(s), "
               f"net {sheet.summary_texts()[3]} -> {output}")


@cli.command()
@click.option("--data", "data", type=click.Path(file_okay=False, path_type=Path),
              help="Host data directory (defaults to the one given before the command).")
@click.option("--terminal", "terminal_id", metavar="ID", help="Only this terminal.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of lines.")
@click.pass_context
def differences(ctx: click.Context, data: Path | None, terminal_id: str | None,
                as_json: bool) -> None:
    """List the differences settlement found between the terminals and the host."""
    ledger = _existing_ledger(ctx, data)
    try:
        _known_terminal(ledger, terminal_id)
        found = ledger.differences(terminal_id)
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False))
        return
    for diff in found:
        click.echo(f"{diff['created_utc']}  {diff['terminal_id']}  batch {diff['batch']:06d}"
                   f"  stan {diff['stan']:06d}  {diff['kind']}: {diff['detail']}"
                   f" ({diff['resolution']})")
    if not found:
        click.echo("no differences")


#: CLI action -> (control line, takes an argument).
_FAULT_ACTIONS = {"add": ("fault add", True), "list": ("fault list", False),
                  "remove": ("fault remove", True), "clear": ("fault clear", False),
                  "stats": ("stats", False)}


@cli.command("fault")
@click.option("--control", "control_address", required=True, metavar="HOST:PORT",
              help="The running host's control address (its second stdout line).")
@click.argument("action", type=click.Choice(list(_FAULT_ACTIONS)))
@click.argument("argument", required=False, metavar="[SPEC|ID]")
def fault_command(control_address: str, action: str, argument: str | None) -> None:
    """Change or read a running host's fault rules: add SPEC, list, remove ID, clear, stats."""
    address, port = parse_control(control_address)
    line, takes_argument = _FAULT_ACTIONS[action]
    if takes_argument and not argument:
        wanted = f"a rule: {SYNTAX}" if action == "add" else "a rule id (see fault list)"
        raise InputError(f"fault {action} needs {wanted}")
    if not takes_argument and argument:
        raise InputError(f"fault {action} takes no argument")
    try:
        payload = control.send(address, port, f"{line} {argument or ''}")
    except control.ControlRefused as exc:
        raise InputError(str(exc)) from None
    if action == "add":
        click.echo(f"rule {payload['id']}: {payload['rule']}")
    elif action == "list":
        for rule in payload:
            left = "" if rule["left"] is None else f"  ({rule['left']} left)"
            click.echo(f"{rule['id']:>3}  {rule['rule']}{left}")
        if not payload:
            click.echo("no fault rules")
    elif action == "remove":
        click.echo(f"rule {payload['removed']} removed")
    elif action == "clear":
        click.echo(f"{payload['cleared']} rule(s) cleared")
    else:
        click.echo(json.dumps(payload))


def _read_terminal_json(text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise InputError(f"stdin is not one JSON object: {exc}") from None
    if not isinstance(obj, dict):
        raise InputError("stdin must be one JSON object with terminal_id, merchant_id, tmk")
    unknown = set(obj) - {"terminal_id", "merchant_id", "merchant_name", "tmk", "replace",
                          "settlement"}
    if unknown:
        raise InputError(f"unknown key(s) in the terminal JSON: {', '.join(sorted(unknown))}")
    tid, mid = obj.get("terminal_id"), obj.get("merchant_id")
    name, tmk, replace = obj.get("merchant_name", ""), obj.get("tmk"), obj.get("replace", False)
    if not isinstance(tid, str) or len(tid) != 8 or not tid.isascii() or not tid.isalnum():
        raise InputError("terminal_id must be 8 letters or digits, e.g. \"12345678\"")
    if not isinstance(mid, str) or len(mid) != 15 or not mid.isascii() or not mid.isalnum():
        raise InputError("merchant_id must be 15 letters or digits, e.g. \"898110048990001\"")
    if not isinstance(name, str) or len(name) > 40:
        raise InputError("merchant_name must be text of at most 40 characters")
    if not isinstance(tmk, str) or len(tmk) != 32:
        raise InputError("tmk must be 32 hex characters (a double-length TDES key)")
    try:
        key = bytes.fromhex(tmk)
    except ValueError:
        raise InputError("tmk must be 32 hex characters (a double-length TDES key)") from None
    if not isinstance(replace, bool):
        raise InputError("replace must be true or false")
    fees = _fee_schedule(obj["settlement"]) if "settlement" in obj else None
    return {"terminal_id": tid, "merchant_id": mid, "merchant_name": name, "tmk": key,
            "replace": replace, "settlement": fees}


_SETTLEMENT_KEYS = ("mode", "card_rate", "qr_rate", "d0_rate", "d0_fixed")


def _fee_schedule(obj: object) -> FeeSchedule:
    """The terminal JSON's "settlement" object; one InputError line for any bad value."""
    if not isinstance(obj, dict):
        raise InputError('settlement must be an object like {"mode": "T1", "card_rate": '
                         '"0.60%", "qr_rate": "0.38%", "d0_rate": "0%", "d0_fixed": 0}')
    unknown = set(obj) - set(_SETTLEMENT_KEYS)
    if unknown:
        raise InputError(f"unknown key(s) in settlement: {', '.join(sorted(unknown))} "
                         f"(keys: {', '.join(_SETTLEMENT_KEYS)})")
    for key in ("card_rate", "qr_rate", "d0_rate"):
        if key in obj and not isinstance(obj[key], str):
            raise InputError(f'settlement {key} must be a rate text like "0.60%"')
    if "mode" in obj and not isinstance(obj["mode"], str):
        raise InputError("settlement mode must be T1 or D0")
    fixed = obj.get("d0_fixed", 0)
    if isinstance(fixed, bool) or not isinstance(fixed, int) or fixed < 0:
        raise InputError("settlement d0_fixed must be a whole number of fen, 0 or more")
    try:
        return FeeSchedule.from_json(obj)
    except ValueError as exc:
        raise InputError(f"settlement: {exc}") from None


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: click without its multi-line usage errors and tracebacks."""
    try:
        result = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 1)
    except KeyboardInterrupt:
        sys.exit(0)
    except HostError as exc:
        _fail(str(exc), 1)
    sys.exit(result if isinstance(result, int) else 0)
