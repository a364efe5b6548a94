"""The transaction list (流水) for the CLI: rows as plain dicts, and a table for people."""

from __future__ import annotations

from collections.abc import Iterable

from app.amount import format_yuan
from storage.journal import TransactionRecord

STATE_ZH = {"PENDING": "处理中", "APPROVED": "成功", "DECLINED": "拒绝", "REVERSED": "已冲正",
            "FAILED": "未发送"}


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


def render_table(items: list[dict], language: str) -> None:
    from rich.console import Console
    from rich.table import Table
    zh = language == "zh"
    table = Table(title="交易流水" if zh else "Transactions")
    for head in (("时间", "Time"), ("类型", "Type"), ("状态", "State"), ("金额", "Amount"),
                 ("卡号", "Card"), ("凭证号", "STAN"), ("参考号", "RRN"), ("授权码", "Auth"),
                 ("应答", "RC")):
        table.add_column(head[0] if zh else head[1])
    for i in items:
        state = STATE_ZH.get(i["state"].upper(), i["state"]) if zh else i["state"]
        if i["voided_by"]:
            state = "已撤销" if zh else "voided"
        table.add_row(i["time_local"][:19].replace("T", " "), i["type"], state,
                      f"¥{i['amount_yuan']}", i["pan_masked"], i["stan"], i["rrn"] or "",
                      i["auth_code"] or "", i["response_code"] or "")
    Console().print(table)
