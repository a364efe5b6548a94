"""Response codes (field 39): what the cashier reads and what the terminal does next."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResponseRule:
    en: str
    zh: str
    action: str   # 'approve' | 'decline' | 'retry' | 'signon'


RESPONSES: dict[str, ResponseRule] = {
    "00": ResponseRule("Approved", "交易成功", "approve"),
    "01": ResponseRule("Refer to card issuer", "请持卡人与发卡行联系", "decline"),
    "03": ResponseRule("Invalid merchant", "无效商户", "decline"),
    "05": ResponseRule("Do not honour", "不予承兑", "decline"),
    "12": ResponseRule("Invalid transaction", "无效交易", "decline"),
    "13": ResponseRule("Invalid amount", "无效金额", "decline"),
    "14": ResponseRule("Invalid card number", "无效卡号", "decline"),
    "25": ResponseRule("Original transaction not found", "找不到原始交易", "decline"),
    "30": ResponseRule("Format error", "报文格式错误", "retry"),
    "40": ResponseRule("Function not supported", "发卡行不支持的交易", "decline"),
    "51": ResponseRule("Insufficient funds", "余额不足", "decline"),
    "54": ResponseRule("Expired card", "过期的卡", "decline"),
    "55": ResponseRule("Incorrect PIN", "密码错误", "decline"),
    "58": ResponseRule("Transaction not permitted at this terminal", "终端无效", "decline"),
    "61": ResponseRule("Over the amount limit", "超出金额限制", "decline"),
    "75": ResponseRule("PIN tries exceeded", "密码错误次数超限", "decline"),
    "94": ResponseRule("Duplicate transmission", "重复交易", "retry"),
    "96": ResponseRule("System malfunction", "系统故障", "retry"),
    "97": ResponseRule("Terminal not registered", "终端未登记", "signon"),
    "98": ResponseRule("No reply from the issuer", "银联收不到发卡行应答", "retry"),
    "A0": ResponseRule("MAC check failed: sign on again", "MAC校验错，请重新签到", "signon"),
}


def rule(code: str) -> ResponseRule:
    """The rule for a code; an unknown code declines with its number shown."""
    return RESPONSES.get(code, ResponseRule(f"Declined ({code})", f"交易失败（{code}）", "decline"))
