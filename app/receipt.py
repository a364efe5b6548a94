"""Sales slips (签购单): the merchant and cardholder copies as hal Documents.

Labels are bilingual, as UnionPay slips are; the printer driver turns the Document into
ESC/POS through python-escpos.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.amount import format_yuan
from hal.document import Document, Line, text_width
from storage.journal import TransactionRecord
from sync.txntypes import from_key

ORG_NAMES = {"CUP": "银联 CUP", "VIS": "VISA", "MCC": "MASTERCARD", "AMX": "AMEX", "JCB": "JCB"}
ENTRY_NAMES = {"05": "插卡 CHIP", "07": "挥卡 CONTACTLESS", "02": "刷卡 SWIPE",
               "01": "手输 MANUAL"}
COPIES = {"merchant": "商户存根 MERCHANT COPY", "cardholder": "持卡人存根 CARDHOLDER COPY"}


def _chip_lines(record: TransactionRecord, width: int) -> list[Line]:
    """AID, application label, TVR, TSI, ATC and the cryptogram of a chip or tap sale, as
    the card schemes ask slips to show (from the journal's extra; no other card data)."""
    extra = record.extra or {}
    if record.entry_mode[:2] not in ("05", "07") or not extra.get("aid"):
        return []
    lines = [*_pair("AID", extra["aid"], width)]
    if extra.get("label"):
        lines += _pair("应用标签 APP LABEL", extra["label"], width)
    for key, label in (("tvr", "TVR"), ("tsi", "TSI"), ("atc", "ATC")):
        if extra.get(key):
            lines += _pair(label, extra[key], width)
    if extra.get("cryptogram"):
        lines += _pair(extra.get("cryptogram_type") or "AC", extra["cryptogram"], width)
    return [*lines, Line(rule=True)]


@dataclass(frozen=True)
class MerchantInfo:
    name: str
    merchant_id: str
    terminal_id: str


def _pair(label: str, value: str, width: int) -> list[Line]:
    """Label left, value right on one line when both fit, else the value on its own line."""
    gap = width - text_width(label) - text_width(value)
    if gap >= 1:
        return [Line(label + " " * gap + value)]
    return [Line(label), Line(value, align="right")]


def sales_slip(record: TransactionRecord, merchant: MerchantInfo, *, copy: str,
               width: int = 32, duplicate: bool = False) -> Document:
    """One copy of the slip for a journaled transaction, laid out for ``width`` columns."""
    spec = from_key(record.txn_type).spec
    when = record.created_local[:19].replace("T", " ")
    lines = [
        Line("银联POS签购单", align="center", bold=True),
        Line("POS SALES SLIP", align="center"),
        Line(COPIES[copy], align="center"),
        Line(rule=True),
        *_pair("商户名称 MERCHANT NAME", merchant.name, width),
        *_pair("商户编号 MERCHANT NO", merchant.merchant_id, width),
        *_pair("终端编号 TERMINAL NO", merchant.terminal_id, width),
        *_pair("操作员号 OPERATOR NO", record.operator, width),
        Line(rule=True),
        *_pair("卡号 CARD NO", record.pan_masked, width),
        *_pair("卡组织 CARD ORG", ORG_NAMES.get(record.card_org, record.card_org), width),
        *_pair("输入方式 ENTRY", ENTRY_NAMES.get(record.entry_mode[:2], record.entry_mode), width),
        *_pair("交易类型 TRANS TYPE", f"{spec.label_zh} {spec.label_en.upper()}", width),
        *_pair("批次号 BATCH NO", f"{record.batch:06d}", width),
        *_pair("凭证号 VOUCHER NO", f"{record.stan:06d}", width),
        *_pair("授权码 AUTH NO", record.auth_code or "", width),
        *_pair("参考号 REFER NO", record.rrn or "", width),
        *_pair("日期时间 DATE/TIME", when, width),
        Line(rule=True),
        Line("金额 AMOUNT:"),
        Line(f"RMB ¥{format_yuan(record.amount)}", align="right", bold=True, double=True),
        Line(rule=True),
        *_chip_lines(record, width),
    ]
    if duplicate:
        lines.insert(3, Line("重打印 DUPLICATE", align="center", bold=True))
    if copy == "merchant":
        if record.pin_entered:
            lines.append(Line("密码验证 PIN VERIFIED", align="center"))
        elif (record.extra or {}).get("cvm") == "no_cvm":
            lines.append(Line("免签 NO SIGNATURE REQUIRED", align="center"))
        else:
            lines += [Line("持卡人签名 CARDHOLDER SIGNATURE:"), Line(""), Line(""),
                      Line("_" * 20, align="right")]
        lines += [Line("本人确认以上交易，"), Line("同意将其记入本卡账户"),
                  Line("I ACKNOWLEDGE SATISFACTORY"), Line("RECEIPT OF RELATIVE"),
                  Line("GOODS/SERVICES")]
    else:
        lines.append(Line("请妥善保管 PLEASE KEEP THIS SLIP", align="center"))
    title = f"{record.txn_type}-{record.stan:06d}-{copy}"
    return Document(title=title, lines=tuple(lines))


def reversal_failed_slip(record: TransactionRecord, merchant: MerchantInfo, problem: str, *,
                         width: int = 32) -> Document:
    """The slip that hands an uncertain transaction to people: the host may have approved it
    and the reversal could not be delivered."""
    spec = from_key(record.txn_type).spec
    lines = [
        Line("冲正失败 请人工处理", align="center", bold=True),
        Line("REVERSAL FAILED", align="center", bold=True),
        Line("HANDLE MANUALLY", align="center", bold=True),
        Line(rule=True),
        *_pair("商户编号 MERCHANT NO", merchant.merchant_id, width),
        *_pair("终端编号 TERMINAL NO", merchant.terminal_id, width),
        *_pair("卡号 CARD NO", record.pan_masked, width),
        *_pair("交易类型 TRANS TYPE", f"{spec.label_zh} {spec.label_en.upper()}", width),
        *_pair("批次号 BATCH NO", f"{record.batch:06d}", width),
        *_pair("凭证号 VOUCHER NO", f"{record.stan:06d}", width),
        *_pair("日期时间 DATE/TIME", record.created_local[:19].replace("T", " "), width),
        *_pair("金额 AMOUNT", f"¥{format_yuan(record.amount)}", width),
        *_pair("冲正原因 REASON", record.reversal_reason or "", width),
        Line(rule=True),
        Line("原因 CAUSE:"),
        Line(problem),
        Line("请与收单机构核对此交易"),
        Line("CHECK THIS TRANSACTION WITH THE ACQUIRER"),
    ]
    return Document(title=f"reversal-failed-{record.stan:06d}", lines=tuple(lines))
