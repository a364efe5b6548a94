"""A reconciliation run for people: the console summary with the differences listed, and
the report file (XLSX, CSV or TXT) written with the one table writer every export uses."""

from __future__ import annotations

from pathlib import Path

from app.amount import format_yuan
from app.export import Column, write_table
from app.recon.match import STATUS_EN, STATUS_ZH
from app.recon.model import CLASS_ZH, CLASSES
from app.recon.run import RunView, item_json
from app.txnlist import type_label
from hal.document import text_width

CLASS_EN = {"matched": "matched", "probable": "probable match (confirm)",
            "amount_mismatch": "amount mismatch", "journal_only": "in journal, not in statement",
            "statement_only": "in statement, not in journal",
            "status_mismatch": "status mismatch", "fee_mismatch": "fee or net mismatch",
            "unparseable": "unparseable line"}
SUMMARY_CHECK = {"ok": ("对账单合计与明细相符", "statement totals agree with its lines"),
                 "mismatch": ("对账单合计与明细不符", "statement totals DISAGREE with its lines"),
                 "absent": ("对账单无合计行", "the statement has no totals")}

ITEM_COLUMNS = (
    Column("id", "Item", "差错号", "int"),
    Column("class_label", "Class", "类别", "text"),
    Column("line", "Line", "行号", "int"),
    Column("date", "Date", "日期", "text"),
    Column("time", "Time", "时间", "text"),
    Column("batch", "Batch", "批次号", "text"),
    Column("stan", "STAN", "凭证号", "text"),
    Column("rrn", "RRN", "参考号", "text"),
    Column("card", "Card", "卡号", "text"),
    Column("type", "Type", "类型", "text"),
    Column("journal_amount", "Journal amount", "本机金额", "money"),
    Column("statement_amount", "Statement amount", "对账单金额", "money"),
    Column("journal_status", "Journal status", "本机状态", "text"),
    Column("statement_status", "Statement status", "对账单状态", "text"),
    Column("fee_expected", "Fee expected", "应收手续费", "money"),
    Column("fee_statement", "Fee on statement", "对账单手续费", "money"),
    Column("net_expected", "Net expected", "应得净额", "money"),
    Column("net_statement", "Net on statement", "对账单净额", "money"),
    Column("detail_text", "Detail", "说明", "text"),
    Column("handled", "Resolution", "处理", "text"),
)


def class_label(cls: str, language: str) -> str:
    return CLASS_ZH[cls] if language == "zh" else CLASS_EN[cls]


def _money(fen: int | None) -> str:
    return "-" if fen is None else format_yuan(fen, grouped=True)


def _item_line(item: dict, language: str) -> str:
    zh = language == "zh"
    where = []
    if item["line"]:
        where.append(f"{'行' if zh else 'line'} {item['line']}")
    if item["stan"] is not None:
        where.append(f"STAN {item['stan']:06d}")
    if item["rrn"]:
        where.append(f"RRN {item['rrn']}")
    detail = item["detail_zh"] if zh else item["detail"]
    state = ""
    if item["resolved"]:
        state = f"  [{'已处理' if zh else 'resolved'}: {item['note']}]"
    return f"  #{item['id']:<6} {class_label(item['class'], language)}  {' '.join(where)}" \
           f"  {detail}{state}"


def console_lines(view: RunView, language: str) -> list[str]:
    """The run as text for a terminal: header, class counts, summary check, differences."""
    zh = language == "zh"
    run = view.run
    head = (f"对账 第{run.id}次: {run.file_name} (格式 {run.profile}), 对账单 {run.statement_lines} 行,"
            f" 本机 {run.journal_rows} 笔" if zh else
            f"reconciliation run {run.id}: {run.file_name} (profile {run.profile}), "
            f"{run.statement_lines} statement line(s), {run.journal_rows} journal row(s)")
    lines = [head]
    if view.reused:
        lines.append(f"  (此文件已于 {run.created_local[:19]} 对过账; --force 重新对账)" if zh else
                     f"  (this file was reconciled at {run.created_local[:19]}; "
                     "--force runs it again)")
    counted = [(class_label(c, language), int(run.counts.get(c, 0))) for c in CLASSES]
    if run.other_terminal_lines:
        counted.append(("其他终端的行(未核对)" if zh else "other terminals' lines (not checked)",
                        run.other_terminal_lines))
    for label, n in counted:
        lines.append(f"  {label}{' ' * max(1, 38 - text_width(label))}{n:>9,}")
    check_zh, check_en = SUMMARY_CHECK[run.summary_check]
    lines.append(("合计核对: " if zh else "summary check: ") + (check_zh if zh else check_en))
    if run.summary_check == "mismatch":
        lines.append("  " + (run.summary or {}).get("detail_zh" if zh else "detail", ""))
    items = [item_json(i) for i in view.items]
    if items:
        open_items = sum(1 for i in items if not i["resolved"])
        lines.append(f"差错 {len(items)} 条, 未处理 {open_items} 条:" if zh else
                     f"{len(items)} difference(s), {open_items} not yet resolved:")
        lines.extend(_item_line(i, language) for i in items)
        lines.append("处理: posterm recon resolve ITEM --note 说明" if zh else
                     "handle each: posterm recon resolve ITEM --note TEXT")
    elif run.statement_lines == 0:
        lines.append("对账单没有交易行: 未核对任何交易" if zh else
                     "the statement has no transaction lines: nothing was checked")
    else:
        lines.append("全部相符" if zh else "every line matched")
    return lines


def write_report(view: RunView, path: Path, language: str) -> Path:
    """The run's differences as a report file; the format follows the suffix."""
    zh = language == "zh"
    run = view.run
    rows = []
    for item in (item_json(i) for i in view.items):
        item["class_label"] = class_label(item["class"], language)
        item["stan"] = None if item["stan"] is None else f"{item['stan']:06d}"
        item["batch"] = None if item["batch"] is None else f"{item['batch']:06d}"
        item["detail_text"] = item["detail_zh"] if zh else item["detail"]
        if item["type"]:
            item["type"] = type_label(item["type"], language)
        for side in ("journal_status", "statement_status"):
            if item[side]:
                item[side] = (STATUS_ZH if zh else STATUS_EN).get(item[side], item[side])
        item["handled"] = item["note"] or ""
        rows.append(item)
    footer = [(class_label(c, language), f"{int(run.counts.get(c, 0)):,}") for c in CLASSES]
    check_zh, check_en = SUMMARY_CHECK[run.summary_check]
    footer.append(("合计核对" if zh else "summary check", check_zh if zh else check_en))
    title = (f"对账报告 第{run.id}次 {run.file_name} ({run.created_local[:19]})" if zh else
             f"Reconciliation run {run.id}: {run.file_name} ({run.created_local[:19]})")
    write_table(path, ITEM_COLUMNS, rows, language=language, title=title, footer=footer)
    return path
