"""What the cashier app says, in Chinese and English: the configured language first, the
other beside it (as the slips and the PIN pad do)."""

from __future__ import annotations

from app.bilingual import both_in, say_in

#: key -> (Chinese, English)
WORDS: dict[str, tuple[str, str]] = {
    "app": ("收银", "Cashier"),
    "signon": ("操作员签到", "Operator sign-on"),
    "operator_no": ("操作员号", "Operator no."),
    "password": ("密码", "Password"),
    "starting": ("正在启动…", "Starting…"),
    "ready": ("就绪", "Ready"),
    "menu": ("主菜单", "Main menu"),
    "sale": ("消费", "Sale"),
    "void": ("撤销", "Void"),
    "refund": ("退货", "Refund"),
    "balance": ("余额查询", "Balance"),
    "preauth": ("预授权", "Pre-auth"),
    "settle": ("结算", "Settlement"),
    "query": ("交易查询", "Query"),
    "reprint": ("重打印", "Reprint"),
    "reports": ("报表", "Reports"),
    "reconcile": ("对账", "Reconcile"),
    "manage": ("管理", "Manage"),
    "signoff": ("签退", "Sign off"),
    "merchant": ("商户", "Merchant"),
    "terminal": ("终端", "Term"),
    "operator": ("操作员", "Op"),
    "batch": ("批次", "Batch"),
    "online": ("主机联机", "host online"),
    "offline": ("主机脱机", "HOST OFFLINE"),
    "host": ("主机", "Host"),
    "reversal": ("冲正", "Rev"),
    "advices": ("通知", "Adv"),
    "amount": ("金额", "Amount"),
    "amount_hint": ("金额（元）回车确认", "Amount in yuan, Enter"),
    "present_card": ("请插卡、挥卡或刷卡", "Insert, tap or swipe the card"),
    "card_read": ("读卡完成", "Card read"),
    "enter_pin": ("请持卡人在密码键盘输入密码", "Customer: PIN on the PIN pad"),
    "asking_host": ("正在连接主机…", "Asking the host…"),
    "printing": ("正在打印…", "Printing…"),
    "approved": ("交易成功", "APPROVED"),
    "declined": ("交易失败", "DECLINED"),
    "receipt": ("签购单", "Receipt"),
    "report": ("结算单", "Report"),
    "printer": ("打印机", "Printer"),
    "paper_ok": ("正常", "ready"),
    "paper_out": ("缺纸", "paper out"),
    "cover_open": ("开盖", "cover open"),
    "not_printed": ("签购单未打印", "Receipt not printed"),
    "reprint_offer": ("装纸后按 F4 重打印", "load paper, then F4 to reprint"),
    "reprinted": ("已重打印", "Reprinted"),
    "mock": ("模拟设备", "Mock devices"),
    "mock_pin": ("密码（空=卡的密码）", "PIN (blank: the card's)"),
    "chip": ("芯片", "chip"),
    "tap": ("挥卡", "tap"),
    "swipe": ("刷卡", "swipe"),
    "empty": ("无卡", "empty"),
    "card_in": ("有卡", "card in"),
    "presented": ("已出示", "presented"),
    "pulled": ("已拔卡", "card pulled"),
    "stan": ("凭证号", "STAN"),
    "stan_hint": ("原凭证号 回车确认", "Original STAN, Enter"),
    "voidable": ("本批次可撤销的交易", "Voidable in this batch"),
    "none": ("无", "none"),
    "supervisor": ("主管密码", "Supervisor password"),
    "supervisor_hint": ("主管 99 的密码，回车确认，Esc 取消",
                        "Supervisor 99's password, Enter, Esc cancels"),
    "settle_hint": ("回车结算（需主管密码）", "Enter to settle (supervisor password)"),
    "open_batch": ("当前批次", "Open batch"),
    "count": ("笔数", "count"),
    "total": ("金额", "total"),
    "settling": ("正在结算…", "Settling…"),
    "upload": ("批上送", "Batch upload"),
    "balanced": ("平", "BALANCED"),
    "unbalanced": ("不平", "UNBALANCED"),
    "error": ("错误", "ERROR"),
    "cancelled": ("已取消", "Cancelled"),
    "busy": ("正在处理，请稍候", "Busy: wait for the host"),
    "not_yet": ("本版收银界面暂无此功能，请用命令行",
                "Not in the cashier app yet: use the command line"),
    "new": ("新交易", "New"),
    "back": ("返回", "Back"),
    "quit": ("退出", "Quit"),
    # -- refund, balance, pre-auth (their screens add below) --
    # -- query, reprint --
    # -- reports, reconcile --
    # -- manage: operators, keys, configuration, devices --
    "first_start": ("首次启动：已创建模拟设备终端并启动内置主机",
                    "First start: a terminal on mock devices, the bundled host started"),
}


def say(key: str, language: str) -> str:
    """One label of ``WORDS`` in the configured language ('zh' or 'en')."""
    return say_in(WORDS, key, language)


def both(key: str, language: str) -> str:
    """One label of ``WORDS``, the configured language first ('消费 Sale')."""
    return both_in(WORDS, key, language)
