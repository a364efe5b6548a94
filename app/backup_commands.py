"""``posterm backup create|list|verify|restore``: encrypted copies of the journal (备份).

Registered on the main group by ``app.cli``. Every message is one line in Chinese and
English. Exit codes: 0 done, 1 refused (a damaged or altered backup, another key file or
terminal, the journal open in another process), 2 usage or configuration (no such backup,
no config), 4 internal error. ``list`` and ``verify`` read only posterm.toml, the key file
and the backups, so they work while the journal itself is damaged; ``restore`` too.
"""

from __future__ import annotations

from pathlib import Path

import click

from app.cli import _json_option, _open_terminal, _print_json, cli, guarded


def _kib(size: int) -> str:
    return f"{size / 1024:,.1f} KiB"


def _batch(batch: int | None) -> str:
    return "-" if batch is None else f"{batch:06d}"


def _config(ctx: click.Context):
    """posterm.toml and the log file, without opening the journal."""
    from app import config as config_mod
    from app.redaction import setup_logging
    config = config_mod.load(ctx.obj["data"])
    setup_logging(config.log_path, verbose=ctx.obj["verbose"])
    return config


def _header_json(path: Path, size: int, header) -> dict:
    return {"file": str(path), "name": path.name, "bytes": size, "kind": header.kind,
            "terminal_id": header.terminal_id, "merchant_id": header.merchant_id,
            "schema_version": header.schema_version, "created_utc": header.created_utc,
            "created_local": header.created_local, "sha256": header.sha256,
            "transactions": header.transactions, "open_batch": header.open_batch,
            "posterm_version": header.posterm_version, "note": header.note}


def _contents_json(contents) -> dict:
    return {"integrity": contents.integrity, "schema_version": contents.schema_version,
            "transactions": contents.transactions, "open_batch": contents.open_batch,
            "last_transaction_local": contents.last_transaction_local,
            "last_settled_batch": contents.last_settled_batch,
            "audit_rows": contents.audit_rows, "audit_problems": list(contents.audit_problems)}


def _holds(contents) -> str:
    audit = ("audit chain intact 审计链完整" if not contents.audit_problems
             else f"audit chain BROKEN 审计链异常: {contents.audit_problems[0]}")
    return (f"{contents.transactions} transactions 笔交易, open batch 当前批次 "
            f"{_batch(contents.open_batch)}, last settled 已结算 "
            f"{_batch(contents.last_settled_batch)}, last transaction 最后交易 "
            f"{(contents.last_transaction_local or '-')[:19]}, {audit}")


@cli.group()
def backup() -> None:
    """Encrypted backups of the journal (备份): create, list, verify, restore."""


@backup.command("create")
@_json_option
@click.pass_context
@guarded
def backup_create(ctx: click.Context, as_json: bool) -> None:
    """Write an encrypted snapshot of the journal (safe while the cashier app runs), then
    keep the newest backup of each of the last [backup] keep_daily days."""
    from app import backup as service
    term = _open_terminal(ctx)
    made, removed = service.create(term)
    h = made.header
    assert h is not None
    if as_json:
        _print_json({"result": "ok", **_header_json(made.path, made.file_size, h),
                     "rotated_out": [p.name for p in removed]})
        return
    click.echo(f"备份已创建 backup written: {made.path} ({h.transactions} transactions 笔交易, "
               f"batch 批次 {_batch(h.open_batch)}, {_kib(made.file_size)}"
               + (f"; {len(removed)} old removed 旧备份已删除" if removed else "") + ")")


@backup.command("list")
@_json_option
@click.pass_context
@guarded
def backup_list(ctx: click.Context, as_json: bool) -> None:
    """The backups in the backup directory, newest first (read from their headers)."""
    from storage.backup import list_backups
    config = _config(ctx)
    items = list_backups(config.backup_dir)
    if as_json:
        _print_json({"directory": str(config.backup_dir), "backups": [
            _header_json(i.path, i.file_size, i.header) if i.header is not None
            else {"file": str(i.path), "name": i.path.name, "bytes": i.file_size,
                  "error": i.error} for i in items]})
        return
    if not items:
        click.echo(f"没有备份 no backups in {config.backup_dir}")
        return
    for i in items:
        h = i.header
        if h is None:
            click.echo(f"{i.path.name}  unreadable 无法读取: {i.error}")
            continue
        click.echo(f"{h.created_local[:19]}  {h.kind:<11} terminal {h.terminal_id}  "
                   f"schema {h.schema_version}  {h.transactions:>7} txns  "
                   f"{_kib(i.file_size):>12}  {i.path.name}")


@backup.command("verify")
@click.argument("name", required=False, metavar="[BACKUP]")
@_json_option
@click.pass_context
@guarded
def backup_verify(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """Decrypt and authenticate BACKUP (a path or a name in the backup directory; default
    this terminal's newest), run SQLite's integrity_check on it, and say what it holds."""
    from app import backup as service
    config = _config(ctx)
    path = service.resolve(config, name)
    header, contents = service.verify(config, path)
    if as_json:
        _print_json({"result": "ok", **_header_json(path, path.stat().st_size, header),
                     "contents": _contents_json(contents)})
        return
    click.echo(f"备份完好 backup OK: {path.name} — {_holds(contents)}")


@backup.command("restore")
@click.argument("name", metavar="BACKUP")
@click.option("--force", is_flag=True,
              help="Restore a backup made on another terminal id.")
@_json_option
@click.pass_context
@guarded
def backup_restore(ctx: click.Context, name: str, force: bool, as_json: bool) -> None:
    """Replace the journal with BACKUP (verified first). The current journal is saved first
    as a pre-restore backup; refused while another posterm process has the journal open."""
    from app import backup as service
    config = _config(ctx)
    path = service.resolve(config, name)
    result = service.restore(config, path, force=force)
    if as_json:
        _print_json({"result": "ok", **_header_json(path, path.stat().st_size, result.header),
                     "contents": _contents_json(result.contents), "forced": result.forced,
                     "previous": str(result.previous) if result.previous else None,
                     "previous_kind": result.previous_kind})
        return
    before = {"pre-restore": f"the journal before is saved in 原日志已备份至 {result.previous}",
              "damaged": f"the damaged journal is kept as 损坏的日志保存为 {result.previous}",
              "none": "there was no journal before 之前没有日志"}[result.previous_kind]
    click.echo(f"日志已恢复 journal restored from {path.name} "
               f"({result.contents.transactions} transactions 笔交易, made 备份于 "
               f"{result.header.created_local[:19]}"
               + (", forced from terminal 强制恢复自终端 " + result.header.terminal_id
                  if result.forced else "") + f"); {before}")
