"""The transaction table: one row per transaction type; messages are built from it.

Shared by the terminal and the host simulator (PROTOCOL.md, "Transaction table").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class TxnSpec:
    """One row: how a transaction type appears on the wire and in the totals."""

    label_en: str
    label_zh: str
    mti: str
    processing_code: str | None
    type_code: str          # 60.1
    network_code: str       # 60.3
    reversible: bool
    totals: str | None      # 'debit' (money to the merchant), 'credit' (back to the card), None
    condition_code: str | None = "00"
    macced: bool = True


class TxnType(Enum):
    SIGN_ON = TxnSpec("Sign-on", "签到", "0800", None, "00", "003", False, None, None, False)
    SIGN_OFF = TxnSpec("Sign-off", "签退", "0820", None, "00", "002", False, None, None)
    ECHO = TxnSpec("Echo test", "回响测试", "0820", None, "00", "301", False, None, None)
    SALE = TxnSpec("Sale", "消费", "0200", "000000", "22", "000", True, "debit")
    VOID = TxnSpec("Void", "消费撤销", "0200", "200000", "23", "000", True, None)
    REFUND = TxnSpec("Refund", "退货", "0220", "200000", "25", "000", False, "credit")
    BALANCE = TxnSpec("Balance inquiry", "余额查询", "0200", "310000", "01", "000", False, None)
    PREAUTH = TxnSpec("Pre-authorisation", "预授权", "0100", "030000", "10", "000", True, None,
                      "06")
    PREAUTH_VOID = TxnSpec("Pre-auth void", "预授权撤销", "0100", "200000", "11", "000", True,
                           None, "06")
    COMPLETION = TxnSpec("Completion", "预授权完成", "0200", "000000", "20", "000", True,
                         "debit", "06")
    COMPLETION_VOID = TxnSpec("Completion void", "预授权完成撤销", "0200", "200000", "21",
                              "000", True, None, "06")
    OFFLINE_SALE = TxnSpec("Offline sale", "离线消费", "0220", "000000", "30", "000", False,
                           "debit")
    SETTLEMENT = TxnSpec("Settlement", "结算", "0500", None, "00", "201", False, None, None)
    BATCH_UPLOAD = TxnSpec("Batch upload", "批上送", "0320", None, "00", "201", False, None,
                           None)
    TC_UPLOAD = TxnSpec("TC upload", "IC卡TC上送", "0320", None, "00", "203", False, None, None)
    UPLOAD_END = TxnSpec("Batch upload end", "批上送结束", "0320", None, "00", "202", False,
                         None, None)
    TC_UPLOAD_END = TxnSpec("TC upload end", "TC上送结束", "0320", None, "00", "207", False,
                            None, None)

    @property
    def spec(self) -> TxnSpec:
        return self.value

    @property
    def key(self) -> str:
        """The name stored in the journal ('sale', 'sign_on', ...)."""
        return self.name.lower()


REVERSAL_MTI = {"0200": "0400", "0100": "0400"}


def identify(fields: dict[str, str]) -> TxnType | None:
    """The table row a request matches by MTI, processing code, 60.1 and 60.3, if any."""
    f60 = fields.get("60", "")
    mti = fields.get("t", "")
    mti = mti[:3] + "0" if len(mti) == 4 else mti     # a repeat (xx21) is its original's type
    for txn in TxnType:
        s = txn.spec
        if (s.mti == mti and s.processing_code == fields.get("3")
                and f60[:2] == s.type_code and f60[8:11] == s.network_code):
            return txn
    return None


def from_key(key: str) -> TxnType:
    return TxnType[key.upper()]
