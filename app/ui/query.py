"""The query screen (流水查询): the filters of ``posterm txns`` (time, amount, card's last
four digits, type, status, batch) in three compact rows, the journal newest first in a
table that fits 80 columns, read a page at a time off the event loop (the next page when
the cursor reaches the end; never the whole journal); Enter on a row shows the
transaction's detail and slip, F4 there reprints it marked 重打印 DUPLICATE; F9 exports
the filter to a file as ``posterm txns -o FILE`` does. The query, the filter's checks and
the files are app.txnlist and storage.query, as for the CLI."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Select, Static

from app.ui.base import Notice, PostermScreen, while_shown
from app.ui.words import both, say

if TYPE_CHECKING:
    from app.terminal import Terminal
    from storage.journal import TransactionRecord
    from storage.query import TxnFilter

#: Rows read from the journal at a time.
PAGE = 100
#: Rows the table holds at most; past them the cashier narrows the filter or exports.
MAX_ROWS = 2000
SLIP_WIDTH = 32

#: the txns option a FilterError names -> (the field's name in words, the field's id)
FIELDS = {"--from": ("q_from_n", "from"), "--to": ("q_to_n", "to"),
          "--min": ("q_min_n", "min"), "--max": ("q_max_n", "max"),
          "--card-last4": ("q_last4", "last4"), "--type": ("q_type", "q-type"),
          "--status": ("q_status", "q-status"), "--batch": ("q_batch", "batch")}

#: (column key, words key, width) of the table: 80 columns with the cells' padding
COLUMNS = (("stan", "stan", 6), ("time", "q_time", 11), ("type", "q_type", 8),
           ("amount", "amount", 10), ("card", "q_card", 6), ("status", "q_status", 8),
           ("rrn", "q_rrn", 12))


@dataclass(frozen=True)
class Page:
    """Rows of one read: the records, their rows() items, and (first page) the count."""

    records: list[TransactionRecord]
    items: list[dict]
    total: int | None


def page_job(flt: TxnFilter, before_id: int | None, with_total: bool):
    def job(term: Terminal) -> Page:
        from app.txnlist import rows
        from storage.query import count, search
        records = search(term.journal, replace(flt, limit=PAGE), before_id=before_id)
        total = count(term.journal, flt) if with_total else None
        return Page(records, rows(records), total)
    return job


def export_job(flt: TxnFilter, path: Path, title: str):
    """Every row the filter passes (no limit, as ``posterm txns -o`` writes) to ``path``."""
    def job(term: Terminal) -> tuple[int, Path]:
        from app.export import ExportError
        from app.txnlist import rows, write_txns
        from storage.query import search
        path_ = path if path.is_absolute() else term.data_dir / "exports" / path
        if not path.is_absolute():
            try:
                path_.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ExportError(f"cannot write {path_}: {exc.strerror or exc}") from None
        items = rows(search(term.journal, replace(flt, limit=None)))
        return write_txns(path_, items, term.language, title=title), path_
    return job


def _pair(zh: str, en: str, language: str) -> str:
    return f"{zh} {en}" if language == "zh" else f"{en} {zh}"


def cells(item: dict, language: str) -> tuple[Any, ...]:
    """One table row of a rows() item, in the configured language."""
    from app.txnlist import status_label, status_of
    card = item["pan_masked"] or ""
    return (item["stan"], item["time_local"][5:16].replace("T", " "),
            short_type(item["type"], language),
            Text(f"¥{_yuan(item['amount'])}", justify="right"),
            f"**{card[-4:]}" if card else "", status_label(status_of(item), language),
            item["rrn"] or "")


def _yuan(fen: int) -> str:
    from app.amount import format_yuan
    return format_yuan(fen, grouped=True)


def short_type(key: str, language: str, *, both_languages: bool = False) -> str:
    """A type's short word for the table ('消费', 'PA void'); an unknown key as it is."""
    from app.ui.words import WORDS
    word = f"tt_{key}"
    if word not in WORDS:
        return key
    return both(word, language) if both_languages else say(word, language)


class TxnTable(DataTable):
    """The list: Home and End go to the first and the last row (End reads the next page)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "scroll_top", "Top", show=False),
        Binding("end", "scroll_bottom", "Bottom", show=False),
    ]


class QueryScreen(PostermScreen):
    TITLE_KEY = "query"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "返回 Back"),
        Binding("f5", "search", "查询 Search"),
        Binding("f9", "export", "导出 Export"),
    ]

    DEFAULT_CSS = """
    QueryScreen .row { height: 1; padding: 0 1; }
    QueryScreen .row Static { width: auto; padding: 0 1 0 0; }
    QueryScreen .row Input { margin: 0 1 0 0; }
    QueryScreen #from, QueryScreen #to { width: 18; }
    QueryScreen #batch { width: 8; }
    QueryScreen #min, QueryScreen #max { width: 12; }
    QueryScreen #last4 { width: 6; }
    QueryScreen .row Select { width: 20; margin: 0 1 0 0; }
    QueryScreen #hint { height: 1; color: $text-muted; padding: 0 1; }
    QueryScreen #txns { height: 1fr; }
    QueryScreen #counts { height: 1; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.flt: TxnFilter | None = None
        self.generation = 0
        self.loading = False
        self.more = False
        self.total = 0
        self.records: dict[str, TransactionRecord] = {}
        self.items: dict[str, dict] = {}
        self.last_id: int | None = None

    def compose_body(self) -> ComposeResult:
        from app.txnlist import JOURNAL_TYPES, STATUS_LABELS
        from storage.query import STATUSES
        lang = self.language
        date_hint = self.say("q_date_hint")
        with Horizontal(classes="row"):
            yield Static(self.both("q_from"))
            yield Input(id="from", compact=True, placeholder=date_hint, max_length=16,
                        restrict=r"[0-9: T-]*")
            yield Static(self.both("q_to"))
            yield Input(id="to", compact=True, placeholder=date_hint, max_length=16,
                        restrict=r"[0-9: T-]*")
            yield Static(self.both("q_batch"))
            yield Input(id="batch", compact=True, max_length=6, restrict=r"[0-9]*")
        with Horizontal(classes="row"):
            yield Static(self.both("q_min"))
            yield Input(id="min", compact=True, placeholder="0.00", max_length=12,
                        restrict=r"[0-9.]*")
            yield Static(self.both("q_max"))
            yield Input(id="max", compact=True, placeholder="0.00", max_length=12,
                        restrict=r"[0-9.]*")
            yield Static(self.both("q_last4"))
            yield Input(id="last4", compact=True, max_length=4, restrict=r"[0-9]*")
        with Horizontal(classes="row"):
            yield Static(self.both("q_type"))
            yield Select([(short_type(t, lang, both_languages=True), t)
                          for t in JOURNAL_TYPES], id="q-type", compact=True,
                         prompt=self.both("q_all"))
            yield Static(self.both("q_status"))
            yield Select([(_pair(*STATUS_LABELS[s], lang), s) for s in STATUSES],
                         id="q-status", compact=True, prompt=self.both("q_all"))
        yield Static(self.both("q_hint"), id="hint")
        table = TxnTable(id="txns", cursor_type="row", zebra_stripes=True)
        for key, word, width in COLUMNS:
            table.add_column(self.say(word), key=key, width=width)
        yield table
        yield Static(id="counts")
        yield Notice(id="notice")

    def on_mount(self) -> None:
        self.query_one("#from", Input).focus()
        self.action_search()

    # -- the filter -----------------------------------------------------------------------------

    def _text(self, name: str) -> str | None:
        value = self.query_one(f"#{name}", Input).value.strip()
        return value or None

    def _choice(self, name: str) -> tuple[str, ...]:
        value = self.query_one(f"#{name}", Select).value
        return (value,) if isinstance(value, str) else ()     # not chosen: all

    def read_filter(self) -> TxnFilter | None:
        """The filter the fields describe; None (and one line naming the field) if a value
        is wrong."""
        from app.txnlist import FilterError, txn_filter
        batch = self._text("batch")
        try:
            return txn_filter(self._text("from"), self._text("to"), self._text("min"),
                              self._text("max"), self._text("last4"), self._choice("q-type"),
                              self._choice("q-status"), int(batch) if batch else None, None)
        except FilterError as exc:
            word, field = FIELDS.get(exc.option, ("query", ""))
            self.notice(f"{self.both(word)}: {exc.reason}", "error")
            if field:
                self.query_one(f"#{field}").focus()
            return None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_search()

    # -- the list -------------------------------------------------------------------------------

    def action_search(self) -> None:
        flt = self.read_filter()
        if flt is None:
            return
        self.generation += 1
        generation = self.generation
        if self._read(page_job(flt, None, True),
                      lambda page: self._first_page(generation, flt, page)):
            self.notice(self.both("q_searching"))
        elif self.flt is None:                  # the first list: wait for the flow under way
            self.set_timer(0.2, self.action_search)

    def _read(self, job, done) -> bool:
        started = self.posterm.run_flow(job, while_shown(self, done),
                                        while_shown(self, self._failed))
        if started:
            self.loading = True
        elif self.flt is not None:
            self.notice(self.say("busy"))
        return started

    def _failed(self, line: str, exc: Exception) -> None:
        self.loading = False
        self.notice(line, "error")

    def _first_page(self, generation: int, flt: TxnFilter, page: Page) -> None:
        self.loading = False
        if generation != self.generation:
            return
        self.flt = flt
        self.total = page.total or 0
        self.records.clear()
        self.items.clear()
        table = self.query_one("#txns", DataTable)
        table.clear()
        self._add(page)
        self.notice(self.both("q_none") if not page.records else "")

    def _add(self, page: Page) -> None:
        table = self.query_one("#txns", DataTable)
        for record, item in zip(page.records, page.items):
            key = str(record.id)
            self.records[key] = record
            self.items[key] = item
            table.add_row(*cells(item, self.language), key=key)
        if page.records:
            self.last_id = page.records[-1].id
        self.more = len(page.records) == PAGE and table.row_count < self.total
        self._show_counts()

    def _show_counts(self) -> None:
        shown = self.query_one("#txns", DataTable).row_count
        line = (f"{self.say('q_found')} {self.total:,} · {self.say('q_shown')} {shown:,}")
        if self.more:
            line += f" · {self.say('q_cap') if shown >= MAX_ROWS else self.say('q_more')}"
        self.query_one("#counts", Static).update(line)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if (self.more and not self.loading and self.flt is not None
                and event.cursor_row >= table.row_count - 3 and table.row_count < MAX_ROWS):
            generation = self.generation
            self._read(page_job(self.flt, self.last_id, False),
                       lambda page: self._next_page(generation, page))

    def _next_page(self, generation: int, page: Page) -> None:
        self.loading = False
        if generation == self.generation:
            self._add(page)

    # -- a row's detail -------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key is None or key not in self.records:
            return
        record = self.records[key]
        if not self.posterm.run_flow(detail_job(record, self.items[key]),
                                     while_shown(self, self._show_detail),
                                     while_shown(self, self._failed)):
            self.notice(self.say("busy"))

    def _show_detail(self, view: DetailView) -> None:
        self.app.push_screen(DetailScreen(self.language, view))

    # -- export ---------------------------------------------------------------------------------

    def action_export(self) -> None:
        flt = self.read_filter()
        if flt is None:
            return

        def given(path: str | None) -> None:
            if not path:
                self.notice(self.both("cancelled"))
                return
            from app.txnlist import txns_title
            title = txns_title(self.language, self._text("from"), self._text("to"))
            if not self.posterm.run_flow(export_job(flt, Path(path).expanduser(), title),
                                         while_shown(self, self._exported),
                                         while_shown(self, self._failed)):
                self.notice(self.say("busy"))

        self.app.push_screen(ExportPrompt(self.language), given)

    def _exported(self, result: tuple[int, Path]) -> None:
        written, path = result
        self.notice(f"{self.both('exported')} {written:,} → {path}", "ok")

    def action_back(self) -> None:
        self.app.pop_screen()


# -- the detail ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DetailView:
    record: TransactionRecord
    item: dict
    slip: str | None
    original_stan: str | None
    voided_by_stan: str | None


def detail_job(record: TransactionRecord, item: dict):
    def job(term: Terminal) -> DetailView:
        from app.receipt import sales_slip
        journal = term.journal
        original = journal.get(record.original_id) if record.original_id else None
        voider = journal.get(record.voided_by) if record.voided_by else None
        slip = None
        if record.state == "APPROVED":
            slip = sales_slip(record, term.merchant, copy="merchant",
                              width=SLIP_WIDTH).plain_text(SLIP_WIDTH)
        return DetailView(record, item, slip,
                          f"{original.stan:06d}" if original else None,
                          f"{voider.stan:06d}" if voider else None)
    return job


def reprint_job(record: TransactionRecord):
    """The slip again, marked DUPLICATE, as ``posterm reprint STAN`` prints it; refused when
    the STAN has been used again since (reprint by STAN would print the newer one)."""
    def job(term: Terminal) -> dict:
        from app.errors import Refused
        from app.flows.slips import reprint
        newest = term.journal.find(stan=record.stan)
        if newest is None or newest.id != record.id:
            raise Refused(f"STAN {record.stan:06d} was used again since: this slip cannot "
                          "be reprinted by its STAN")
        return reprint(term, stan=record.stan)[0]
    return job


def detail_lines(view: DetailView, language: str) -> str:
    from app.receipt import ENTRY_NAMES, ORG_NAMES
    from app.txnlist import status_label, status_of, type_label
    i = view.item
    r = view.record
    entry = i["entry_mode"] or ""
    slip = {"printed": ("已打印", "printed"), "unprinted": ("未打印", "not printed")}.get(
        i["receipt"] or "", ("-", "-"))
    rows = [("stan", f"{i['stan']}   {both('q_batch', language)} {i['batch']}"),
            ("q_time", i["time_local"][:19].replace("T", " ")),
            ("q_type", _pair(type_label(i["type"], "zh"), type_label(i["type"], "en"),
                             language)),
            ("q_status", status_label(status_of(i), language)),
            ("amount", f"¥{_yuan(i['amount'])}"),
            ("q_card", f"{i['pan_masked'] or '-'}  "
                       f"{ORG_NAMES.get(i['card_org'] or '', i['card_org'] or '')}".rstrip()),
            ("q_entry", ENTRY_NAMES.get(entry[:2], entry or "-")),
            ("q_rrn", i["rrn"] or "-"),
            ("q_auth", i["auth_code"] or "-"),
            ("q_rc", i["response_code"] or "-"),
            ("q_operator", r.operator or "-"),
            ("q_slip", _pair(*slip, language))]
    if view.original_stan:
        rows.append(("q_original", view.original_stan))
    if view.voided_by_stan:
        rows.append(("q_voided_by", view.voided_by_stan))
    if i["reversal"] and i["reversal"] != "cancelled":    # one still armed, sent or failed
        rows.append(("q_reversal", i["reversal"]))
    return "\n".join(f"{say(word, language)}: {value}" for word, value in rows)


class DetailScreen(ModalScreen[None]):
    """One transaction: its fields, the slip's preview; F4 reprints an approved one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "返回 Back"),
        Binding("f4", "reprint", "重打印 Reprint"),
    ]

    DEFAULT_CSS = """
    DetailScreen { align: center middle; }
    DetailScreen #box { width: 78; height: 22; border: thick $primary; background: $surface; }
    DetailScreen #fields { width: 1fr; padding: 0 1; }
    DetailScreen #detail-slip { width: 36; border: round $primary; }
    DetailScreen #detail-notice { height: auto; }
    """

    def __init__(self, language: str, view: DetailView) -> None:
        super().__init__()
        self.language = language
        self.view = view

    def compose(self) -> ComposeResult:
        with Horizontal(id="box"):
            with Vertical(id="fields"):
                yield Static(detail_lines(self.view, self.language), id="detail")
                yield Notice(id="detail-notice")
            with VerticalScroll(id="detail-slip"):
                yield Static(self.view.slip or both("none", self.language), id="detail-text")

    def on_mount(self) -> None:
        box = self.query_one("#box")
        box.border_title = f"{both('detail', self.language)} {self.view.item['stan']}"
        keys = "Esc " + both("back", self.language)
        if self.view.slip:
            keys = "F4 " + both("reprint", self.language) + "   " + keys
        box.border_subtitle = keys
        self.query_one("#detail-slip").border_title = both("receipt", self.language)

    def _say(self, text: str, kind: str = "") -> None:
        self.query_one("#detail-notice", Notice).say_line(text, kind)

    def action_reprint(self) -> None:
        if not self.view.slip:
            return
        app = self.app
        if not app.run_flow(reprint_job(self.view.record),  # type: ignore[attr-defined]
                            while_shown(self, self._reprinted),
                            while_shown(self, lambda line, exc: self._say(line, "error"))):
            self._say(both("busy", self.language))
            return
        self._say(both("printing", self.language))

    def _reprinted(self, result: dict) -> None:
        if result["printed"]:
            self._say(f"{both('reprinted', self.language)} {result['stan']}", "ok")
        else:
            self._say(f"{both('not_printed', self.language)}: {result['errors'][0]} — "
                      f"{say('rp_retry', self.language)}", "error")

    def action_close(self) -> None:
        self.dismiss(None)


class ExportPrompt(ModalScreen[str | None]):
    """The file to export to; Enter gives it, Esc gives None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "取消 Cancel")]

    DEFAULT_CSS = """
    ExportPrompt { align: center middle; }
    ExportPrompt #box { width: 70; height: auto; border: thick $primary;
                        background: $surface; padding: 0 1; }
    """

    def __init__(self, language: str) -> None:
        super().__init__()
        self.language = language

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(both("export_hint", self.language))
            yield Input(id="export-path", placeholder="txns.xlsx")
            yield Static(both("export_where", self.language))
            yield Notice(id="export-notice")

    def on_mount(self) -> None:
        self.query_one("#box").border_title = both("export", self.language)
        self.query_one("#export-path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = event.value.strip()
        if not path:
            self.query_one("#export-notice", Notice).say_line(
                both("no_file", self.language), "error")
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
