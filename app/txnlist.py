"""The transaction list (流水) for the CLI and the cashier app: the filter people give,
rows as plain dicts, a table for people, the columns every export of it uses, the totals
line under it, and the export file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from app.amount import format_yuan, parse_yuan
from app.errors import InputError
from app.export import Column
from storage.journal import TransactionRecord
from storage.query import InvalidFilter, TxnFilter
from sync.txntypes import TxnType, from_key

#: What a person filters and reads: the journal's states, with 'voided' told apart from
#: 'approved' (an approved row a void has undone).
STATUS_LABELS = {"approved": ("成功", "approved"), "declined": ("拒绝", "declined"),
                 "reversed": ("已冲正", "reversed"), "voided": ("已撤销", "voided"),
                 "pending": ("处理中", "pending"), "failed": ("未发送", "failed")}
#: The transaction types that have journal rows (balance inquiries and network messages
#: move no money and are not journaled).
JOURNAL_TYPES = tuple(t.key for t in TxnType
                      if t.spec.processing_code is not None and t is not TxnType.BALANCE)

#: The columns of ``posterm txns`` exports (CSV, XLSX, TXT), read from export_rows().
EXPORT_COLUMNS = (
    Column("time", "Time", "交易时间", "date"),
    Column("type", "Type", "交易类型"),
    Column("status", "Status", "状态"),
    Column("amount", "Amount (CNY)", "金额(元)", "money"),
    Column("card", "Card", "卡号"),
    Column("card_org", "Card org", "卡组织"),
    Column("stan", "STAN", "凭证号"),
    Column("batch", "Batch", "批次号"),
    Column("rrn", "RRN", "参考号"),
    Column("auth_code", "Auth code", "授权码"),
    Column("response_code", "RC", "应答码"),
    Column("receipt", "Slip", "签购单"),
)


def rows(records: Iterable[TransactionRecord]) -> list[dict]:
    """What a person or a script may see of each journal row (nothing card-sensitive)."""
    return [{"txn_id": r.id, "type": r.txn_type, "state": r.state.lower(), "amount": r.amount,
             "amount_yuan": format_yuan(r.amount), "currency": r.currency,
             "stan": f"{r.stan:06d}", "batch": f"{r.batch:06d}", "pan_masked": r.pan_masked,
             "card_org": r.card_org, "entry_mode": r.entry_mode,
             "response_code": r.response_code, "rrn": r.rrn, "auth_code": r.auth_code,
             "reversal": (r.reversal_state or "").lower() or None,
             "receipt": r.receipt_state, "voided_by": r.voided_by,
             "original_id": r.original_id,
             "advice": (r.advice_state or "").lower() or None,
             "time_utc": r.created_utc, "time_local": r.created_local}
            for r in records]


def status_of(item: dict) -> str:
    """A row's status as people filter by it: its state, or 'voided' for an approved row
    that a void has undone."""
    return "voided" if item["state"] == "approved" and item["voided_by"] else item["state"]


def type_label(key: str, language: str) -> str:
    """'sale' -> '消费' or 'Sale'; an unknown key is shown as it is."""
    try:
        spec = from_key(key).spec
    except KeyError:
        return key
    return spec.label_zh if language == "zh" else spec.label_en


def status_label(status: str, language: str) -> str:
    zh, en = STATUS_LABELS.get(status, (status, status))
    return zh if language == "zh" else en


def export_rows(items: Iterable[dict], language: str) -> list[dict]:
    """rows() items as EXPORT_COLUMNS read them, labels in ``language``."""
    return [{"time": i["time_local"], "type": type_label(i["type"], language),
             "status": status_label(status_of(i), language), "amount": i["amount"],
             "card": i["pan_masked"], "card_org": i["card_org"], "stan": i["stan"],
             "batch": i["batch"], "rrn": i["rrn"], "auth_code": i["auth_code"],
             "response_code": i["response_code"], "receipt": i["receipt"]}
            for i in items]


def net_total(items: Iterable[dict]) -> tuple[int, int]:
    """(count, signed fen) of the rows that moved money: approved and not voided; sales,
    completions and offline sales count in, refunds out (the transaction table's totals)."""
    counted = net = 0
    for i in items:
        if status_of(i) != "approved" or i["type"] not in JOURNAL_TYPES:
            continue
        direction = from_key(i["type"]).spec.totals
        if direction is None:
            continue
        counted += 1
        net += i["amount"] if direction == "debit" else -i["amount"]
    return counted, net


def totals_footer(items: list[dict], language: str) -> list[tuple[str, str]]:
    """The totals under a list: how many rows, how many moved money, and the net yuan."""
    counted, net = net_total(items)
    if language == "zh":
        return [("笔数", str(len(items))), ("成功笔数", str(counted)),
                ("净额(元)", format_yuan(net, grouped=True))]
    return [("Transactions", str(len(items))), ("Counted (approved)", str(counted)),
            ("Net (CNY)", format_yuan(net, grouped=True))]


def totals_line(items: list[dict], language: str) -> str:
    """One line for the screen: '合计 3 笔, 成功 2 笔, 净额 ¥1,234.50'."""
    counted, net = net_total(items)
    if language == "zh":
        return (f"合计 {len(items)} 笔，成功 {counted} 笔，净额 "
                f"¥{format_yuan(net, grouped=True)}")
    return (f"Total {len(items)} transaction(s), {counted} approved counted, net "
            f"¥{format_yuan(net, grouped=True)}")


def render_table(items: list[dict], language: str, *, note: str | None = None) -> None:
    """The list on the screen (rich), then its totals line and ``note`` when given."""
    from rich.console import Console
    from rich.table import Table
    zh = language == "zh"
    table = Table(title="交易流水" if zh else "Transactions")
    for head in (("时间", "Time"), ("类型", "Type"), ("状态", "State"), ("金额", "Amount"),
                 ("卡号", "Card"), ("凭证号", "STAN"), ("参考号", "RRN"), ("授权码", "Auth"),
                 ("应答", "RC")):
        table.add_column(head[0] if zh else head[1],
                         justify="right" if head[1] == "Amount" else "left")
    for i in items:
        table.add_row(i["time_local"][:19].replace("T", " "), type_label(i["type"], language),
                      status_label(status_of(i), language),
                      f"¥{i['amount_yuan']}", i["pan_masked"], i["stan"], i["rrn"] or "",
                      i["auth_code"] or "", i["response_code"] or "")
    console = Console()
    console.print(table)
    console.print(totals_line(items, language), highlight=False)
    if note:
        console.print(note, highlight=False)


#: TxnFilter's fields -> the ``posterm txns`` option that sets each (what errors name)
FILTER_OPTIONS = {"date_from": "--from", "date_to": "--to", "min_amount": "--min",
                  "max_amount": "--max", "card_last4": "--card-last4", "types": "--type",
                  "statuses": "--status", "batch": "--batch", "limit": "--limit"}


class FilterError(InputError):
    """A filter value that cannot mean anything; ``option`` is the ``posterm txns`` option
    that gave it (``--min``...), ``reason`` what is wrong with it."""

    def __init__(self, option: str, reason: str, line: str | None = None) -> None:
        super().__init__(line or f"{option}: {reason}")
        self.option = option
        self.reason = reason


def txn_filter(date_from: str | None, date_to: str | None, min_yuan: str | None,
               max_yuan: str | None, card_last4: str | None, types: tuple[str, ...],
               statuses: tuple[str, ...], batch: int | None, limit: int | None) -> TxnFilter:
    """The query that ``posterm txns``'s options (or the query screen's fields) describe;
    a bad value is a FilterError naming its option."""
    amounts: dict[str, int | None] = {}
    for option, text in (("--min", min_yuan), ("--max", max_yuan)):
        try:
            amounts[option] = None if text is None else parse_yuan(text)
        except InputError as exc:
            raise FilterError(option, str(exc)) from None
    low, high = amounts["--min"], amounts["--max"]
    if low is not None and high is not None and low > high:
        raise FilterError("--max", f"{max_yuan} is below {min_yuan}",
                          f"--max {max_yuan} is below --min {min_yuan}")
    unknown = [t for t in types if t not in JOURNAL_TYPES]
    if unknown:
        raise FilterError("--type", f"unknown type {unknown[0]!r}",
                          f"unknown --type {unknown[0]!r}: use {', '.join(JOURNAL_TYPES)}")
    try:
        return TxnFilter(date_from=date_from, date_to=date_to, min_amount=low,
                         max_amount=high, card_last4=card_last4, types=tuple(types),
                         statuses=tuple(statuses), batch=batch, limit=limit)
    except InvalidFilter as exc:
        raise FilterError(FILTER_OPTIONS[exc.field], exc.reason) from None


def txns_title(language: str, date_from: str | None, date_to: str | None) -> str:
    """'交易流水 2026-11-20 — 2026-11-22' (the sheet name and the TXT title)."""
    span = " — ".join(d for d in (date_from, date_to) if d)
    return (("交易流水" if language == "zh" else "Transactions") + (f" {span}" if span else ""))


def write_txns(out: Path, items: list[dict], language: str, *, title: str,
               fmt: str | None = None) -> int:
    """rows() items to the file ``out`` as ``fmt`` (default: its suffix): JSON as
    ``--json`` prints them, else CSV, XLSX or TXT with EXPORT_COLUMNS and the totals;
    returns the rows written."""
    from app.export import format_for, write_json, write_table
    fmt = format_for(out, fmt)
    if fmt == "json":
        write_json(out, {"transactions": items})
        return len(items)
    return write_table(out, EXPORT_COLUMNS, export_rows(items, language), language=language,
                       title=title, footer=totals_footer(items, language), fmt=fmt)
