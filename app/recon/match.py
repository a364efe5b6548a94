"""The matching engine: a statement, line by line, against the journal's rows, every line
landing in one class (``model.CLASSES``).

Streaming: the journal rows (``storage.recon.ReconBook.journal_rows`` tuples) are loaded
once, in chunks, into compact columns (arrays and interned strings) indexed by RRN; lines
are fed in file order and are not kept once matched. A line is matched on (terminal id,
RRN), else on (terminal id, STAN, date — and batch when the line has one) through an index
built only if a line needs it. At the end, lines still loose are paired with the expected
journal rows still unmatched by amount, card last four and time (``probable``); what is
left is ``statement_only`` or ``journal_only``. The money checks use signed fen from the
merchant's side: a refund is negative.

Decisions the rules leave open, documented here:

- Summary check: the printed count is compared with every transaction line of the file,
  parsed or unparseable and of any terminal (the summary counts the file's lines); the
  printed amount, fee and net with the sums over the parsed lines (a line without a fee
  counts 0). A mismatch detail says when unparseable lines are missing from the sums.
- Journal rows of another terminal id are not considered at all; statement lines of
  another terminal are counted in ``other_terminal_lines`` only. A line of our terminal
  but another merchant id is ``statement_only`` (it should not be on our statement).
- The fee and net of a pair are checked only when the line says money moved (status
  settled or no status): a line marked voided has no fee to check.
- A duplicate (the key's row already taken by an earlier line) is final: it is not offered
  to the probable matching.
"""

from __future__ import annotations

import gc
import re
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date as Date
from itertools import islice, repeat
from operator import and_, itemgetter

from app.amount import format_yuan
from app.recon.model import CLASSES, LineBlock, StatementLine, SummaryFigures, Unparseable
from storage.pan import mask_pan
from storage.recon import KEY_CLOSED, KEY_SETTLED_MASK, unpack_key
from storage.settlements import COUNTED_TYPES
from sync.fees import FeeSchedule

_CODE = {cls: i + 1 for i, cls in enumerate(CLASSES)}   # 0 = not (yet) paired
_PAIRED = frozenset(("matched", "probable", "amount_mismatch", "status_mismatch",
                     "fee_mismatch"))
_NOT_MONEY = frozenset(("voided", "reversed", "declined"))
_CLEAR_NUMBER = re.compile(r"\d{12,}")
_CHUNK = 8192

STATUS_EN = {"settled": "settled", "voided": "voided", "reversed": "reversed",
             "declined": "declined", "pending": "pending", "failed": "failed (never sent)",
             None: "listed without a status"}
STATUS_ZH = {"settled": "已结算", "voided": "已撤销", "reversed": "已冲正", "declined": "被拒绝",
             "pending": "未完成", "failed": "未发出", None: "有记录(无状态)"}


@dataclass(slots=True)
class Item:
    """One line that is not plainly matched: the columns of a ``recon_items`` row."""

    cls: str
    line_no: int | None = None
    txn_id: int | None = None
    terminal_id: str | None = None
    batch: int | None = None
    stan: int | None = None
    rrn: str | None = None
    txn_date: str | None = None
    txn_time: str | None = None
    card_masked: str | None = None
    txn_type: str | None = None
    journal_amount: int | None = None      # signed fen
    statement_amount: int | None = None    # signed fen
    journal_status: str | None = None
    statement_status: str | None = None
    fee_expected: int | None = None        # from the fee schedule and the journal's amount
    fee_statement: int | None = None
    net_expected: int | None = None
    net_statement: int | None = None
    detail: str = ""                       # one line of English
    detail_zh: str = ""                    # one line of Chinese


@dataclass
class Outcome:
    """What a reconciliation found: counts of all 8 classes, the differences, the summary
    check and the figures of the run."""

    counts: dict[str, int]
    items: list[Item]
    summary_check: str                  # ok | mismatch | absent
    summary_detail: str                 # one line; which figure differs, printed vs computed
    summary_detail_zh: str
    printed: SummaryFigures | None
    computed: dict[str, int]            # count, amount, fee, net over the statement's lines
    statement_lines: int                # every line fed (parsed or not, any terminal)
    other_terminal_lines: int
    journal_rows: int                   # journal rows expected on the statement
    period: tuple[str, str] | None      # the dates rows were expected in

    def summary_json(self) -> dict[str, object]:
        """The printed and computed totals and the check, as stored in recon_runs.summary."""
        printed = None
        if self.printed is not None:
            printed = {k: getattr(self.printed, k) for k in ("count", "amount", "fee", "net")}
        return {"printed": printed, "computed": dict(self.computed),
                "check": self.summary_check, "detail": self.summary_detail,
                "detail_zh": self.summary_detail_zh,
                "period": list(self.period) if self.period else None}


class _Fees:
    """``FeeSchedule.line`` in exact integer arithmetic (the same half-up rounding to the
    fen), with each entry mode's rate looked up once: called for every matched line."""

    __slots__ = ("_fixed", "_rates", "_schedule")

    def __init__(self, schedule: FeeSchedule) -> None:
        self._schedule = schedule
        self._rates: dict[str | None, tuple[int, int, int]] = {}
        self._fixed = schedule.d0_fixed if schedule.mode == "D0" else 0

    def ratio(self, entry_mode: str | None) -> tuple[int, int, int]:
        """(2·num, 200·den, 100·den) of the entry mode's rate num/den (percent): the fee of
        ``gross`` is ``(gross * r[0] + r[2]) // r[1]``, i.e. gross·rate/100 rounded half up."""
        found = self._rates.get(entry_mode)
        if found is None:
            num, den = self._schedule.rate(entry_mode).as_integer_ratio()
            found = self._rates[entry_mode] = (2 * num, 200 * den, 100 * den)
        return found

    def fee_net(self, amount: int, entry_mode: str | None) -> tuple[int, int]:
        """(fee, net) signed like ``amount`` (signed fen: negative is a refund, a credit)."""
        ratio = self._rates.get(entry_mode) or self.ratio(entry_mode)
        gross = -amount if amount < 0 else amount
        fee = (gross * ratio[0] + ratio[2]) // ratio[1]
        if amount < 0:
            return -fee, -gross + fee
        fee += self._fixed
        return fee, gross - fee


_DAY_SECONDS: dict[str, int] = {}


def _seconds(date_text: str, time_text: str) -> int | None:
    """Seconds since 0001-01-01 of a local date and time, or None if either is malformed."""
    day = _DAY_SECONDS.get(date_text)
    if day is None:
        try:
            day = _DAY_SECONDS[date_text] = Date.fromisoformat(date_text).toordinal() * 86400
        except (TypeError, ValueError):
            return None
    try:
        h, m, s = time_text.split(":")
        return day + int(h) * 3600 + int(m) * 60 + int(s)
    except (AttributeError, ValueError):
        return None


def _day_number(date_text: str | None) -> int | None:
    if date_text is None or len(date_text) != 10:
        return None
    digits = date_text[:4] + date_text[5:7] + date_text[8:]
    return int(digits) if digits.isdigit() else None


def _masked(card: str | None) -> str | None:
    """The card as a statement printed it, masked if it shows a clear number."""
    if card and _CLEAR_NUMBER.search(card):
        return mask_pan(re.sub(r"\D", "", card))
    return card


def _yuan(fen: int | None) -> str:
    return "-" if fen is None else format_yuan(fen)


class Matcher:
    """Reconciles one statement against journal rows; ``feed`` every line, then ``finish``."""

    def __init__(self, rows: Iterable[tuple], *, terminal_id: str, merchant_id: str,
                 fees: FeeSchedule, window_s: int = 600,
                 period: tuple[str, str] | None = None) -> None:
        self._tid = terminal_id
        self._mid = merchant_id
        self._fees = _Fees(fees)
        self._window = int(window_s)
        self._period = period
        # The journal, in columns (row i of each is one transaction of our terminal).
        self._ids = array("q")
        self._key = array("q")              # batch, STAN, status, closed: storage.recon
        self._amount = array("q")           # signed: a refund negative
        self._local: list[str] = []         # created_local: date [:10], time [11:19]
        self._rrn: list[str | None] = []
        self._card: list[str] = []
        self._type: list[str] = []
        self._entry: list[str] = []
        self._by_rrn: dict[str, int] = {}
        self._rrn_more: dict[str, list[int]] = {}    # an RRN on several rows: all of them
        self._by_key: dict[int, int | list[int]] | None = None   # (STAN, date), when needed
        self._load(rows)
        n = len(self._ids)
        self._fate = bytearray(n)                    # class code of the row's pair, 0 = free
        self._taker = array("l", bytes(n * array("l").itemsize))   # line_no that took it
        self._expected = bytearray()
        # The statement.
        self._lines = 0
        self._other = 0
        self._unparseable = 0
        self._sum = [0, 0, 0, 0]                     # parsed lines, amount, fee, net
        self._first: str | None = None
        self._last: str | None = None
        self._loose: list[StatementLine] = []        # ours, not matched by a key
        self._keyed: list[StatementLine] = []        # ours, not found by RRN: by STAN later
        self._due: dict[tuple[int, str], tuple[int, int]] = {}   # (amount, entry) -> fee, net
        self._items: list[Item] = []
        self._counts = dict.fromkeys(CLASSES, 0)
        self._finished = False

    # ------------------------------------------------------------ the journal

    def _load(self, rows: Iterable[tuple]) -> None:
        """Load the rows in chunks, column by column (C loops), interning repeated text.

        The cyclic garbage collector is paused meanwhile: a million row tuples would set it
        off thousands of times for nothing (they hold no cycles); ~10% of the load's time."""
        paused = gc.isenabled()
        gc.disable()
        try:
            self._load_chunks(rows)
        finally:
            if paused:
                gc.enable()

    def _load_chunks(self, rows: Iterable[tuple]) -> None:
        strings: dict[str, str] = {}
        intern = strings.setdefault
        tid = self._tid
        it = iter(rows)
        while True:
            chunk = list(islice(it, _CHUNK))
            if not chunk:
                break
            columns = list(zip(*chunk))
            if columns[6].count(tid) != len(chunk):
                chunk = [row for row in chunk if row[6] == tid]
                if not chunk:
                    continue
                columns = list(zip(*chunk))
            ids, rrns, amounts, local, cards, keys, _terminal, types, entries = columns
            base = len(self._ids)
            self._ids.extend(ids)
            self._key.extend(keys)
            self._local.extend(local)
            self._card.extend(map(intern, cards, cards))
            self._type.extend(map(intern, types, types))
            self._entry.extend(map(intern, entries, entries))
            self._amount.extend([-a if t == "refund" else a for a, t in zip(amounts, types)])
            self._rrn.extend(rrns)
            self._index_rrns(rrns, base)

    def _index_rrns(self, rrns: tuple, base: int) -> None:
        by_rrn = self._by_rrn
        distinct = set(rrns)
        distinct.discard(None)
        distinct.discard("")
        if len(distinct) == len(rrns) and by_rrn.keys().isdisjoint(distinct):
            by_rrn.update(zip(rrns, range(base, base + len(rrns))))   # the common case
            return
        for i, rrn in enumerate(rrns, base):  # no RRN, or one seen before: every row kept
            if not rrn:
                continue
            if rrn in by_rrn:
                self._rrn_more.setdefault(rrn, [by_rrn[rrn]]).append(i)
            else:
                by_rrn[rrn] = i

    def _key_index(self, stans: set[int]) -> dict[int, int | list[int]]:
        """(STAN, date) -> row(s) of the rows with one of these STANs (those of the lines
        not found by their RRN). A key on several rows (a STAN reused the same day) maps
        to all of them, in row order."""
        local = self._local
        chosen = [i for i, key in enumerate(self._key) if (key >> 6) % 1_000_000 in stans]
        day_of: dict[str, int] = {}
        index: dict[int, int | list[int]] = {}
        for i in chosen:
            text = local[i][:10]
            day = day_of.get(text)
            if day is None:
                day = day_of[text] = _day_number(text) or 0
            code = (self._key[i] >> 6) % 1_000_000 * 100_000_000 + day
            found = index.get(code)
            if found is None:
                index[code] = i
            elif isinstance(found, list):
                found.append(i)
            else:
                index[code] = [found, i]
        return index

    def _match_by_key(self) -> None:
        """The lines not found by their RRN, in file order, by (STAN, date[, batch]): after
        every RRN, so that a line the acquirer printed twice, once with its RRN, is the
        duplicate whichever comes first; the index covers only the STANs asked for."""
        keyed, self._keyed = self._keyed, []
        if not keyed:
            return
        self._by_key = self._key_index({line.stan for line in keyed if line.stan is not None})
        for line in keyed:
            i = self._find(line)
            if i < 0:
                self._loose.append(line)
            elif self._fate[i]:
                self._duplicate(i, line)
            else:
                self._pair(i, line, "matched")

    # ------------------------------------------------------------ the statement

    def feed(self, item: StatementLine | Unparseable) -> None:
        """Take the statement's next line (in file order)."""
        self.feed_many((item,))

    def feed_many(self, items: Iterable[StatementLine | Unparseable | LineBlock]) -> None:
        """Take the statement's next lines (in file order): ``feed`` for each. A reader's
        LineBlock (lines as columns) goes through without an object per line; single lines
        are gathered into blocks, so there is one matching loop."""
        single: list[StatementLine] = []
        for item in items:
            if isinstance(item, StatementLine):
                single.append(item)
                continue
            if single:
                self._feed_block(LineBlock.of(single))
                single = []
            if isinstance(item, LineBlock):
                self._feed_block(item)
            else:
                self._lines += 1
                self._unparseable_line(item)
        if single:
            self._feed_block(LineBlock.of(single))

    def _feed_block(self, block: LineBlock) -> None:
        """The matching of a block: its sums and dates, then the common case for the whole
        block at once (``_plainly_matched``); a block holding any difference goes line by
        line, each line an object (``block.line``) classed by ``_pair``."""
        by_rrn, more, fate = self._by_rrn, self._rrn_more, self._fate
        tid, mid, loose, keyed = self._tid, self._mid, self._loose, self._keyed
        column = block.column
        n = len(block)
        self._lines += n
        amounts_in = column("amount")
        fees_in, nets_in = column("fee"), column("net")
        sums = self._sum
        sums[0] += n
        sums[1] += sum(amounts_in)
        sums[2] += sum(filter(None, fees_in))
        sums[3] += sum(filter(None, nets_in))
        terminals = column("terminal_id")
        if set(terminals) <= {tid, None}:
            days = [d for d in set(column("date")) if d is not None]
        else:                   # the period comes from our terminal's lines only
            days = [d for d, t in zip(column("date"), terminals)
                    if d is not None and (t is None or t == tid)]
        if days:
            first, last = min(days), max(days)
            self._first = first if self._first is None else min(self._first, first)
            self._last = last if self._last is None else max(self._last, last)
        if self._plainly_matched(block, list(map(by_rrn.get, column("rrn")))):
            return
        other = 0
        for k, (terminal, merchant, rrn) in enumerate(zip(terminals, column("merchant_id"),
                                                          column("rrn"))):
            if terminal is not None and terminal != tid:
                other += 1
                continue
            if merchant is not None and merchant != mid:
                self._wrong_merchant(block.line(k))
                continue
            i = by_rrn.get(rrn, -1) if rrn else -1
            if i < 0 or (more and rrn in more):
                line = block.line(k)
                if i < 0:               # by STAN and date, at the end (``_match_by_key``)
                    keyed.append(line)
                    continue
                i = self._find(line)
                if i < 0:
                    loose.append(line)
                    continue
            if fate[i]:
                self._duplicate(i, block.line(k))
                continue
            self._pair(i, block.line(k), "matched")
        self._other += other

    def _plainly_matched(self, block: LineBlock, rows: list[int | None]) -> bool:
        """The common case decided for a whole block with C loops (itemgetter, map, list
        equality) instead of a Python loop per line: every line found by its RRN on a free
        row of its own, ours, settled on both sides, the same amount, and the fee and net
        (where printed) what the rates give. Then all are matched; else False, and the
        block goes line by line."""
        column = block.column
        n = len(rows)
        if n < 2 or None in rows or len(set(rows)) != n:
            return False
        if self._rrn_more and not self._rrn_more.keys().isdisjoint(column("rrn")):
            return False
        if not (set(column("terminal_id")) <= {self._tid, None}
                and set(column("merchant_id")) <= {self._mid, None}
                and _NOT_MONEY.isdisjoint(column("status"))):
            return False
        pick = itemgetter(*rows)
        if any(pick(self._fate)) or any(map(and_, pick(self._key), repeat(KEY_SETTLED_MASK))):
            return False
        amounts = column("amount")
        if tuple(amounts) != pick(self._amount):
            return False
        fees, nets = column("fee"), column("net")
        if fees.count(None) != n or nets.count(None) != n:
            pairs = list(zip(amounts, pick(self._entry)))
            known = self._due
            if len(known) > 200_000:
                known.clear()
            due = list(map(known.get, pairs))
            if None in due:
                fee_net = self._fees.fee_net
                for k, (pair, found) in enumerate(zip(pairs, due)):
                    if found is None:
                        due[k] = known[pair] = fee_net(*pair)
            for printed, part in ((fees, 0), (nets, 1)):
                if printed.count(None) == n:
                    continue
                if None in printed or printed != list(map(itemgetter(part), due)):
                    return False
        fate, taker, code = self._fate, self._taker, _CODE["matched"]
        for i, number in zip(rows, block.numbers):
            fate[i] = code
            taker[i] = number
        self._counts["matched"] += n
        return True

    def _unparseable_line(self, item: Unparseable) -> None:
        self._unparseable += 1
        where = f"column {item.column}: " if item.column else ""
        where_zh = f"（{item.column}）" if item.column else ""
        text = f" [{item.text}]" if item.text else ""
        self._add(Item("unparseable", line_no=item.line_no,
                       detail=f"line {item.line_no}, {where}{item.reason}{text}",
                       detail_zh=f"第{item.line_no}行无法解析{where_zh}：{item.reason}{text}"))

    def _wrong_merchant(self, line: StatementLine) -> None:
        self._add(self._line_item(
            "statement_only", line,
            f"merchant {line.merchant_id} on the statement is not ours ({self._mid})",
            f"商户号不符：对账单 {line.merchant_id}，本机 {self._mid}"))

    def _duplicate(self, i: int, line: StatementLine) -> None:
        taker = self._taker[i]
        self._add(self._line_item("statement_only", line, f"duplicate of line {taker}",
                                  f"与第{taker}行重复"))

    def _find(self, line: StatementLine) -> int:
        """The row the line's keys point at (the first free one if several), or -1."""
        rrn = line.rrn
        if rrn:
            i = self._by_rrn.get(rrn, -1)
            if i >= 0:
                more = self._rrn_more.get(rrn)
                return i if more is None else self._first_free(more)
        if line.stan is None or line.date is None:
            return -1
        if self._by_key is None:
            return -1
        day = _day_number(line.date)
        found = None if day is None else self._by_key.get(line.stan * 100_000_000 + day)
        if found is None:
            return -1
        rows = found if isinstance(found, list) else [found]
        if line.batch is not None:
            rows = [i for i in rows if self._key[i] >> 6 == line.batch * 1_000_000 + line.stan]
        return self._first_free(rows) if rows else -1

    def _first_free(self, rows: list[int]) -> int:
        return next((i for i in rows if not self._fate[i]), rows[0])

    # ------------------------------------------------------------ classes

    def _pair(self, i: int, line: StatementLine, agreed: str, note: tuple[str, str] = ("", "")
              ) -> None:
        """Class of a row and a line taken together; an item unless plainly matched."""
        self._taker[i] = line.line_no
        theirs = line.status
        settled = not self._key[i] & KEY_SETTLED_MASK
        amount = self._amount[i]
        cls = agreed
        if settled == (theirs in _NOT_MONEY):
            cls = "status_mismatch"
        elif amount != line.amount:
            cls = "amount_mismatch"
        elif settled and (line.fee is not None or line.net is not None):
            fee, net = self._fees.fee_net(amount, self._entry[i])
            if (line.fee is not None and line.fee != fee) or \
                    (line.net is not None and line.net != net):
                cls = "fee_mismatch"
        self._fate[i] = _CODE[cls]
        if cls == "matched":
            self._counts["matched"] += 1
            return
        fee, net = self._fees.fee_net(amount, self._entry[i])
        if cls == "status_mismatch":
            ours = unpack_key(self._key[i])[2]
            en = (f"{STATUS_EN.get(ours, ours)} here, {STATUS_EN.get(theirs, theirs)}"
                  " on the statement")
            zh = f"状态不符：本机{STATUS_ZH.get(ours, ours)}，对账单{STATUS_ZH.get(theirs, theirs)}"
        elif cls == "amount_mismatch":
            en = f"amount {_yuan(amount)} here, {_yuan(line.amount)} on the statement"
            zh = f"金额不符：本机 {_yuan(amount)}，对账单 {_yuan(line.amount)}"
        elif cls == "fee_mismatch":
            parts, parts_zh = [], []
            if line.fee is not None and line.fee != fee:
                parts.append(f"fee {_yuan(fee)} expected, {_yuan(line.fee)} on the statement")
                parts_zh.append(f"手续费应为 {_yuan(fee)}，对账单 {_yuan(line.fee)}")
            if line.net is not None and line.net != net:
                parts.append(f"net {_yuan(net)} expected, {_yuan(line.net)} on the statement")
                parts_zh.append(f"净额应为 {_yuan(net)}，对账单 {_yuan(line.net)}")
            en, zh = "; ".join(parts), "手续费/净额不符：" + "；".join(parts_zh)
        else:
            en, zh = note
        if note[0] and cls != agreed:
            en, zh = f"{en} ({note[0]})", f"{zh}（{note[1]}）"
        self._add(self._row_item(cls, i, line, en, zh, fee, net))

    def _add(self, item: Item) -> None:
        self._counts[item.cls] += 1
        self._items.append(item)

    def _row_item(self, cls: str, i: int, line: StatementLine | None, en: str, zh: str,
                  fee: int, net: int) -> Item:
        """An item about journal row ``i`` (and the line it was paired with, if any)."""
        batch, stan, status, _closed = unpack_key(self._key[i])
        local = self._local[i]
        item = Item(cls, txn_id=self._ids[i], terminal_id=self._tid, batch=batch, stan=stan,
                    rrn=self._rrn[i], txn_date=local[:10], txn_time=local[11:19],
                    card_masked=self._card[i], txn_type=self._type[i],
                    journal_amount=self._amount[i], journal_status=status,
                    fee_expected=fee, net_expected=net, detail=en, detail_zh=zh)
        if line is not None:
            item.line_no = line.line_no
            item.rrn = item.rrn or line.rrn
            item.statement_amount = line.amount
            item.statement_status = line.status
            item.fee_statement = line.fee
            item.net_statement = line.net
        return item

    def _line_item(self, cls: str, line: StatementLine, en: str, zh: str) -> Item:
        """An item about a statement line alone."""
        return Item(cls, line_no=line.line_no, terminal_id=line.terminal_id or self._tid,
                    batch=line.batch, stan=line.stan, rrn=line.rrn, txn_date=line.date,
                    txn_time=line.time, card_masked=_masked(line.card_masked),
                    txn_type=line.txn_type, statement_amount=line.amount,
                    statement_status=line.status, fee_statement=line.fee,
                    net_statement=line.net, detail=en, detail_zh=zh)

    # ------------------------------------------------------------ the end

    def finish(self, summary: SummaryFigures | None) -> Outcome:
        """Pair what is left, then say what every row and line came to (call once)."""
        if self._finished:
            raise RuntimeError("Matcher.finish() was already called")
        self._finished = True
        period = self._period
        if period is None and self._first is not None and self._last is not None:
            period = (self._first, self._last)
        self._match_by_key()
        expected = self._expected_rows(period)
        self._probable(expected)
        for line in self._loose:
            self._add(self._line_item("statement_only", line, "not in the journal",
                                      "对账单有，本机无此笔"))
        self._loose = []
        fate = self._fate
        for i in expected:
            if not fate[i]:
                fee, net = self._fees.fee_net(self._amount[i], self._entry[i])
                self._add(self._row_item(
                    "journal_only", i, None,
                    f"settled here in closed batch {unpack_key(self._key[i])[0]:06d}, "
                    "not on the statement", "漏单：本机已结算，对账单无此笔", fee, net))
        order = {cls: n for n, cls in enumerate(CLASSES)}
        self._items.sort(key=lambda it: (order[it.cls], it.line_no or 0, it.txn_id or 0))
        computed = {"count": self._sum[0] + self._unparseable, "amount": self._sum[1],
                    "fee": self._sum[2], "net": self._sum[3]}
        check, en, zh = self._summary_check(summary, computed)
        if check == "mismatch" and self._unparseable:
            en += f" ({self._unparseable} unparseable line(s) are not in the computed sums)"
            zh += f"（{self._unparseable}行无法解析，未计入逐笔合计）"
        return Outcome(counts=dict(self._counts), items=self._items, summary_check=check,
                       summary_detail=en, summary_detail_zh=zh, printed=summary,
                       computed=computed, statement_lines=self._lines,
                       other_terminal_lines=self._other, journal_rows=len(expected),
                       period=period)

    def _expected_rows(self, period: tuple[str, str] | None) -> list[int]:
        """Rows the statement should show: money-moving types, settled, in a closed batch,
        dated inside the period (no period known: none)."""
        if period is None:
            self._expected = bytearray(len(self._ids))
            return []
        low, high = period
        above = high + "U"        # created_local 'YYYY-MM-DDT...' < 'YYYY-MM-DDU': that day or before
        counted = frozenset(COUNTED_TYPES)
        # (key & 31) == KEY_CLOSED: a closed batch, approved, not voided.
        rows = [i for i, (kind, key, local) in enumerate(zip(self._type, self._key, self._local))
                if key & 31 == KEY_CLOSED and kind in counted and low <= local < above]
        mask = bytearray(len(self._ids))
        for i in rows:
            mask[i] = 1
        self._expected = mask
        return rows

    def _probable(self, expected: list[int]) -> None:
        """Loose lines with an unmatched expected row of the same signed amount, the same card
        last four (when the line shows one) within the time window: nearest first."""
        lines = [(n, line, _seconds(line.date, line.time))
                 for n, line in enumerate(self._loose)
                 if line.date is not None and line.time is not None]
        lines = [entry for entry in lines if entry[2] is not None]
        if not lines:
            return
        groups: dict[int, list[tuple[int, int]]] = {}
        fate = self._fate
        for i in expected:
            if not fate[i]:
                local = self._local[i]
                moment = _seconds(local[:10], local[11:19])
                if moment is not None:
                    groups.setdefault(self._amount[i], []).append((moment, i))
        for group in groups.values():
            group.sort()
        window = self._window
        candidates = []
        for n, line, moment in lines:
            group = groups.get(line.amount)
            if not group:
                continue
            last4 = line.card_last4
            if last4 is None and line.card_masked and line.card_masked[-4:].isdigit():
                last4 = line.card_masked[-4:]
            lo = bisect_left(group, (moment - window, -1))
            hi = bisect_right(group, (moment + window, len(fate)))
            for row_moment, i in group[lo:hi]:
                if last4 is None or self._card[i].endswith(last4):
                    candidates.append((abs(row_moment - moment), line.line_no, self._ids[i],
                                       n, i))
        candidates.sort()
        used: set[int] = set()
        for gap, _line_no, _txn, n, i in candidates:
            if n in used or fate[i]:
                continue
            used.add(n)
            line = self._loose[n]
            self._pair(i, line, "probable", (
                (f"no reference match; same amount{' and card' if line.card_last4 else ''},"
                 f" {gap} s apart from journal transaction {self._ids[i]}"),
                (f"疑似相符：金额{'、卡号后四位' if line.card_last4 else ''}相同，时间相差{gap}秒"
                f"（本机流水 {self._ids[i]}）")))
        self._loose = [line for n, line in enumerate(self._loose) if n not in used]

    @staticmethod
    def _summary_check(summary: SummaryFigures | None,
                       computed: dict[str, int]) -> tuple[str, str, str]:
        if summary is None:
            return "absent", "the statement prints no summary", "对账单无汇总行"
        wrong, wrong_zh = [], []
        names_zh = {"count": "笔数", "amount": "金额", "fee": "手续费", "net": "净额"}
        for name in ("count", "amount", "fee", "net"):
            printed = getattr(summary, name)
            if printed is None or printed == computed[name]:
                continue
            show = str if name == "count" else _yuan
            wrong.append(f"{name} {show(printed)} printed, {show(computed[name])} computed")
            wrong_zh.append(f"{names_zh[name]}汇总 {show(printed)}，逐笔合计 "
                            f"{show(computed[name])}")
        if not wrong:
            return "ok", f"summary (line {summary.line_no}) agrees with the lines", "汇总与明细相符"
        return ("mismatch", f"summary line {summary.line_no}: " + "; ".join(wrong),
                f"汇总不符（第{summary.line_no}行）：" + "；".join(wrong_zh))

    # ------------------------------------------------------------ after the end

    def row_fates(self) -> Iterator[tuple[int, bool, str | None]]:
        """After ``finish``: (txn_id, expected on the statement?, class or None) of every
        journal row considered; None is a row neither expected nor on the statement."""
        if not self._finished:
            raise RuntimeError("row_fates() needs finish() first")
        expected = self._expected
        for i, (txn_id, code) in enumerate(zip(self._ids, self._fate)):
            cls = CLASSES[code - 1] if code else ("journal_only" if expected[i] else None)
            yield txn_id, bool(expected[i]), cls
