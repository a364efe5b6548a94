"""The settlement report (结算单): what a batch held, what it settled to and what the merchant
will be paid, as a printable slip, plain text, JSON and a PNG preview.

The report is built once from :class:`SettlementFacts` (the journal rows of the batch and
what the settlement exchange said) and laid out for any paper width. A row counts in the
money figures when it was approved and was neither voided nor reversed, the same rule as
field 48's totals (sync/settlement.py). Labels are bilingual, as on the sales slip.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from app.amount import format_yuan
from app.receipt import ORG_NAMES, MerchantInfo
from hal.document import Document, Line, char_width, text_width
from storage.journal import TransactionRecord
from storage.pan import mask_pan
from sync.fees import FeeSchedule
from sync.settlement import AREAS, COUNT_MOD, Result, Totals, direction_of
from sync.txntypes import TxnType

__all__ = ["SettlementFacts", "SettlementReport", "UploadProblem", "build_report",
           "format_money", "write_preview"]

log = logging.getLogger(__name__)

RESULTS = {"balanced": "平 BALANCED", "unbalanced": "不平 UNBALANCED", "error": "错误 ERROR"}
AREA_NAMES = {"domestic": "内卡 DOMESTIC", "foreign": "外卡 FOREIGN"}
AREA_RESULTS = {Result.BALANCED: "balanced", Result.UNBALANCED: "unbalanced",
                Result.ERROR: "error"}
MODE_NAMES = {"T1": "T+1", "D0": "D0 实时到账"}

#: The per-type lines: key, label, the journal types counted under it, money or not.
#: Voids move no money themselves (their original leaves the totals); pre-auths only hold it.
TYPE_ROWS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("sale", "消费 SALE", ("sale",)),
    ("void", "撤销 VOID", ("void", "completion_void")),
    ("refund", "退货 REFUND", ("refund",)),
    ("completion", "预授权完成 COMPLETION", ("completion",)),
    ("offline_sale", "离线消费 OFFLINE SALE", ("offline_sale",)),
)
INFO_ROWS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("preauth", "预授权 PRE-AUTH", ("preauth",)),
)

COUNT_COLS = 4
AMOUNT_COLS = 13          # ¥9,999,999.99
MIN_WIDTH = 24


def format_money(fen: int) -> str:
    """Integer fen as ``¥1,234.56`` (``-¥12.50`` when negative); never through a float."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"money must be an int of fen, not {type(fen).__name__}")
    return ("-" if fen < 0 else "") + "¥" + format_yuan(abs(fen), grouped=True)


@dataclass(frozen=True)
class UploadProblem:
    """A batch-upload record the host did not take (e.g. problem 'rejected 30', 'no reply')."""

    stan: int
    txn_type: str
    pan_masked: str
    amount: int
    problem: str


@dataclass(frozen=True)
class SettlementFacts:
    """Everything the report says, gathered by the settlement flow."""

    merchant: MerchantInfo
    batch: int
    records: Sequence[TransactionRecord]   # every journal row of the batch, any state
    result: str                            # 'balanced' | 'unbalanced' | 'error' (first 0510)
    result_after_upload: str | None        # after the batch upload; None when there was none
    terminal_totals: Totals
    host_totals: Totals | None             # the host's field 48 (None on error)
    uploaded: int                          # records uploaded
    upload_problems: Sequence[UploadProblem]
    fees: FeeSchedule
    settled_at: datetime                   # aware, the terminal's local time
    operator: str
    version: str                           # posterm's version


@dataclass(frozen=True)
class Figure:
    """A count and an amount in fen."""

    count: int = 0
    amount: int = 0

    def plus(self, amount: int) -> Figure:
        return Figure(self.count + 1, self.amount + amount)

    def as_json(self) -> dict[str, int]:
        return {"count": self.count, "amount": self.amount}


def counts(record: TransactionRecord) -> bool:
    """Whether a journal row counts in the report's figures: approved, not voided, not reversed."""
    return record.state == "APPROVED" and record.voided_by is None


def _type_label(txn_type: str) -> str:
    try:
        spec = TxnType[txn_type.upper()].spec
    except KeyError:
        return txn_type
    return f"{spec.label_zh} {spec.label_en.upper()}"


def _safe_pan(pan_masked: str) -> str:
    """The masked PAN as given; a value that is all digits (a clear PAN by mistake) is masked."""
    return mask_pan(pan_masked) if pan_masked.strip().isdigit() else pan_masked


def _local_time(stamp: str) -> str:
    return stamp[:19].replace("T", " ")


def _sort_key(record: TransactionRecord) -> datetime:
    return datetime.fromisoformat(record.created_local)


def _rate(value: object) -> str:
    return f"{value}%"


@dataclass(frozen=True)
class SettlementReport:
    """The figures of one settlement, ready to lay out; build it with :func:`build_report`."""

    facts: SettlementFacts
    types: dict[str, Figure]
    reversed: Figure
    orgs: dict[str, Figure]          # amount: debit minus credit
    gross: int
    fee: int
    net: int
    payout_date: date
    first: TransactionRecord | None
    last: TransactionRecord | None
    failed_reversals: tuple[TransactionRecord, ...] = field(default=())

    @property
    def final_result(self) -> str:
        """The settlement's outcome: after the upload when there was one."""
        return self.facts.result_after_upload or self.facts.result

    @property
    def had_upload(self) -> bool:
        facts = self.facts
        return (facts.result_after_upload is not None or facts.uploaded > 0
                or bool(facts.upload_problems))

    # ------------------------------------------------------------------ layout

    def document(self, width: int = 32) -> Document:
        """The printable slip for ``width`` columns (32 or 48 on the usual printers)."""
        if width < MIN_WIDTH:
            raise ValueError(f"the settlement report needs at least {MIN_WIDTH} columns, "
                             f"not {width}")
        facts = self.facts
        lines = [
            Line("结算单", align="center", bold=True, double=True),
            Line("SETTLEMENT REPORT", align="center", bold=True),
            Line(rule=True),
            *_row("商户名称 MERCHANT NAME", facts.merchant.name, width),
            *_row("商户编号 MERCHANT NO", facts.merchant.merchant_id, width),
            *_row("终端编号 TERMINAL NO", facts.merchant.terminal_id, width),
            *_row("操作员号 OPERATOR NO", facts.operator, width),
            *_row("批次号 BATCH NO", f"{facts.batch:06d}", width),
            Line("交易时段 PERIOD"),
            *_row("自 FROM", _local_time(self.first.created_local) if self.first else "-",
                  width),
            *_row("至 TO", _local_time(self.last.created_local) if self.last else "-", width),
            *_row("结算 SETTLED", facts.settled_at.strftime("%Y-%m-%d %H:%M:%S"), width),
            *_row("版本 VERSION", f"posterm {facts.version}", width),
            Line(rule=True),
            *_row("类型 TYPE", _figure_cells("笔数", "金额"), width),
        ]
        for key, label, _ in TYPE_ROWS:
            lines += _figure(label, self.types[key], width)
        lines.append(Line("不计入结算 NOT SETTLED:"))
        for key, label, _ in INFO_ROWS:
            lines += _figure(label, self.types[key], width)
        lines += _row("冲正 REVERSED", _figure_cells(str(self.reversed.count), ""), width)

        lines += [Line(rule=True), *_row("卡组织 ORG", _figure_cells("笔数", "净额"), width)]
        if not self.orgs:
            lines.append(Line("无 NONE"))
        for org, figure in self.orgs.items():
            lines += _figure(ORG_NAMES.get(org, org), figure, width)

        lines += [Line(rule=True), Line("结算总计 TOTALS")]
        for area in AREAS:
            lines += self._area_lines(area, width)

        lines += [Line(rule=True), *self._fee_lines(width)]

        lines += [Line(rule=True), *_row("结算结果 RESULT", RESULTS[facts.result], width,
                                         bold=True)]
        if self.had_upload:
            lines.append(Line(f"批上送 {facts.uploaded} 笔 / UPLOADED {facts.uploaded}"))
            if facts.result_after_upload is not None:
                lines += _row("上送后 AFTER UPLOAD", RESULTS[facts.result_after_upload], width,
                              bold=True)
        lines += self._problem_lines(width)
        return Document(title=f"settlement-{facts.batch:06d}", lines=tuple(lines))

    def _area_lines(self, area: str, width: int) -> list[Line]:
        mine = self.facts.terminal_totals.side(area)
        host = self.facts.host_totals.side(area) if self.facts.host_totals else None
        verdict = AREA_RESULTS.get(host.result) if host is not None else None
        lines = _row(AREA_NAMES[area], RESULTS[verdict] if verdict else "", width)
        for label, figure, theirs in (
                ("借记 DEBIT", Figure(mine.debit_count, mine.debit_amount),
                 Figure(host.debit_count, host.debit_amount) if host else None),
                ("贷记 CREDIT", Figure(mine.credit_count, mine.credit_amount),
                 Figure(host.credit_count, host.credit_amount) if host else None)):
            lines += _figure(label, figure, width)
            # Field 48 carries counts modulo 1000: a count equal modulo 1000 agrees.
            if theirs is not None and (theirs.amount != figure.amount
                                       or theirs.count % COUNT_MOD != figure.count % COUNT_MOD):
                lines += _figure("主机 HOST", theirs, width)
        return lines

    def _fee_lines(self, width: int) -> list[Line]:
        fees = self.facts.fees
        lines = [Line("手续费 FEES"),
                 *_row("结算方式 MODE", MODE_NAMES[fees.mode], width),
                 *_row("卡费率 CARD RATE", _rate(fees.card_rate), width),
                 *_row("扫码费率 QR RATE", _rate(fees.qr_rate), width)]
        if fees.mode == "D0":
            lines += _row("D0附加 SURCHARGE", _surcharge(fees), width)
        return [*lines,
                *_row("交易金额 GROSS", format_money(self.gross), width),
                *_row("手续费 FEE", format_money(self.fee), width),
                *_row("结算净额 NET", format_money(self.net), width, bold=True),
                *_row("到账日期 PAYOUT DATE", self.payout_date.isoformat(), width)]

    def _problem_lines(self, width: int) -> list[Line]:
        lines: list[Line] = []
        problems = self.facts.upload_problems
        if problems:
            lines += [Line(rule=True),
                      Line(f"上送问题 UPLOAD PROBLEMS: {len(problems)}", bold=True)]
            for p in problems:
                lines += [Line(f"{p.stan:06d} {_type_label(p.txn_type)}"),
                          *_row(_safe_pan(p.pan_masked), format_money(p.amount), width),
                          Line(f"  {p.problem}")]
        if self.failed_reversals:
            lines += [Line(rule=True),
                      Line("冲正失败 请人工处理", align="center", bold=True),
                      Line("REVERSAL FAILED", align="center", bold=True),
                      Line("HANDLE MANUALLY", align="center", bold=True)]
            for r in self.failed_reversals:
                lines += [Line(f"{r.stan:06d} {_type_label(r.txn_type)}"),
                          *_row(_safe_pan(r.pan_masked), format_money(r.amount), width),
                          *_row(_local_time(r.created_local), r.state, width)]
        return lines

    def text(self, width: int = 32) -> str:
        """How the printed report reads."""
        return self.document(width).plain_text(width)

    # -------------------------------------------------------------------- data

    def as_json(self) -> dict:
        """Every figure of the report, machine-readable; money in integer fen."""
        facts = self.facts
        return {
            "merchant": {"name": facts.merchant.name, "merchant_id": facts.merchant.merchant_id,
                         "terminal_id": facts.merchant.terminal_id},
            "operator": facts.operator,
            "batch": facts.batch,
            "period": {"first": self.first.created_local if self.first else None,
                       "last": self.last.created_local if self.last else None},
            "settled_at": facts.settled_at.isoformat(),
            "version": facts.version,
            "types": {key: figure.as_json() for key, figure in self.types.items()},
            "reversed": self.reversed.as_json(),
            "orgs": {org: {"count": f.count, "net": f.amount} for org, f in self.orgs.items()},
            "terminal_totals": facts.terminal_totals.as_json(),
            "host_totals": facts.host_totals.as_json() if facts.host_totals else None,
            "fees": {"schedule": facts.fees.as_json(), "gross": self.gross, "fee": self.fee,
                     "net": self.net, "payout_date": self.payout_date.isoformat()},
            "result": facts.result,
            "uploaded": facts.uploaded,
            "result_after_upload": facts.result_after_upload,
            "final_result": self.final_result,
            "upload_problems": [{"stan": p.stan, "txn_type": p.txn_type,
                                 "pan_masked": _safe_pan(p.pan_masked), "amount": p.amount,
                                 "problem": p.problem} for p in facts.upload_problems],
            "reversal_failed": [{"txn_id": r.id, "stan": r.stan, "txn_type": r.txn_type,
                                 "pan_masked": _safe_pan(r.pan_masked), "amount": r.amount,
                                 "state": r.state, "time_local": r.created_local}
                                for r in self.failed_reversals],
        }


def build_report(facts: SettlementFacts) -> SettlementReport:
    """Count the batch's rows and work out fees, net and payout; ValueError on bad facts."""
    for name in ("result", "result_after_upload"):
        value = getattr(facts, name)
        if value is not None and value not in RESULTS:
            raise ValueError(f"{name} must be one of {', '.join(RESULTS)}, not {value!r}")
    if facts.settled_at.tzinfo is None:
        raise ValueError("settled_at must be an aware datetime (the terminal's local time)")

    counted = [r for r in facts.records if counts(r)]
    types = {}
    for key, _, txn_types in TYPE_ROWS + INFO_ROWS:
        figure = Figure()
        for record in counted:
            if record.txn_type in txn_types:
                figure = figure.plus(record.amount)
        types[key] = figure
    reversed_ = Figure()
    for record in facts.records:
        if record.state == "REVERSED":
            reversed_ = reversed_.plus(record.amount)

    orgs: dict[str, Figure] = {}
    gross = fee = net = 0
    for record in counted:
        direction = direction_of(record.txn_type)
        if direction is None:
            continue
        line = facts.fees.line(direction, record.amount, record.entry_mode)
        gross, fee, net = gross + line.gross, fee + line.fee, net + line.net
        org = (record.card_org or "").strip().upper() or "?"
        orgs[org] = orgs.get(org, Figure()).plus(line.gross)
    known = list(ORG_NAMES)
    ordered = sorted(orgs, key=lambda o: (known.index(o) if o in known else len(known), o))

    by_time = sorted(facts.records, key=_sort_key)
    failed = tuple(sorted((r for r in facts.records if r.reversal_state == "FAILED"),
                          key=lambda r: r.stan))
    return SettlementReport(
        facts=facts, types=types, reversed=reversed_,
        orgs={org: orgs[org] for org in ordered}, gross=gross, fee=fee, net=net,
        payout_date=facts.fees.payout_date(facts.settled_at.date()),
        first=by_time[0] if by_time else None, last=by_time[-1] if by_time else None,
        failed_reversals=failed,
    )


# ------------------------------------------------------------------------ layout helpers

def _rjust(text: str, columns: int) -> str:
    return " " * max(0, columns - text_width(text)) + text


def _figure_cells(count: str, amount: str) -> str:
    """A count column and an amount column, so figures line up down the report."""
    return _rjust(count, COUNT_COLS) + " " + _rjust(amount, AMOUNT_COLS)


def _figure(label: str, figure: Figure, width: int) -> list[Line]:
    return _row(label, _figure_cells(str(figure.count), format_money(figure.amount)), width)


def _row(label: str, value: str, width: int, *, bold: bool = False) -> list[Line]:
    """Label left, value right on one line when both fit, else the value on a line of its own."""
    gap = width - text_width(label) - text_width(value)
    if gap >= 1:
        return [Line(label + " " * gap + value, bold=bold)]
    if not value.strip():
        return [Line(label, bold=bold)]
    return [Line(label, bold=bold), Line(value.strip(), align="right", bold=bold)]


def _surcharge(fees: FeeSchedule) -> str:
    parts = []
    if fees.d0_rate:
        parts.append(f"+{_rate(fees.d0_rate)}")
    if fees.d0_fixed:
        parts.append(f"+{format_money(fees.d0_fixed)}/笔")
    return " ".join(parts) or "0"


# ----------------------------------------------------------------------------- preview

#: CJK fonts first (Debian's fonts-wqy-microhei is the one the project installs).
CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
MONO_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", "DejaVuSansMono.ttf")
FONT_PX = 20
MARGIN_PX = 16
LINE_GAP_PX = 4


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The preview font: a CJK font if one is installed, else DejaVu Sans Mono, else Pillow's
    own; the fallbacks are logged once, since Chinese then shows as boxes."""
    for path in CJK_FONTS:
        if Path(path).exists():
            try:
                return _monospaced_face(path, size)
            except OSError as exc:
                log.warning("cannot load font %s: %s", path, exc)
    for name in MONO_FONTS:
        try:
            font = ImageFont.truetype(name, size)
        except OSError:
            continue
        log.warning("no CJK font found (install fonts-wqy-microhei): Chinese in slip "
                    "previews shows as boxes")
        return font
    log.warning("no CJK or DejaVu font found: slip previews use Pillow's default font")
    try:
        return ImageFont.load_default(size)
    except TypeError:      # Pillow before 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _monospaced_face(path: str, size: int) -> ImageFont.FreeTypeFont:
    """The collection's monospaced face (e.g. 'WenQuanYi Micro Hei Mono'), else its first."""
    first = ImageFont.truetype(path, size, index=0)
    for index in range(1, 16):
        try:
            face = ImageFont.truetype(path, size, index=index)
        except OSError:
            break
        family = face.getname()[0] or ""
        if "Mono" in family and ("CJK" not in family or family.endswith(" SC")):
            return face
    return first


def write_preview(document: Document, width: int, path: Path) -> Path:
    """Draw ``document`` as it reads at ``width`` columns on a white receipt-like PNG at ``path``.

    Every column is one cell and a CJK character two, so the columns line up as on paper.
    """
    font = _font(FONT_PX)
    cell = max(math.ceil(font.getlength("0")), math.ceil(FONT_PX / 2))
    pitch = FONT_PX + LINE_GAP_PX
    rows = document.plain_text(width).splitlines()
    image = Image.new("L", (width * cell + 2 * MARGIN_PX, len(rows) * pitch + 2 * MARGIN_PX),
                      color=255)
    draw = ImageDraw.Draw(image)
    for row, text in enumerate(rows):
        y = MARGIN_PX + row * pitch
        column = 0
        for ch in text:
            cells = char_width(ch)
            if cells == 0:
                continue
            if not ch.isspace():
                # Centre the glyph in its cells: proportional glyphs still keep the columns.
                x = MARGIN_PX + column * cell + (cells * cell - font.getlength(ch)) / 2
                draw.text((x, y), ch, font=font, fill=0)
            column += cells
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
