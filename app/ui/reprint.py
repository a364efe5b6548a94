"""The reprint screen (重打印): the last approved transaction with one key (F8, or Enter
on a blank STAN), a STAN typed, or one picked from the recent approved list; the slip is
printed again marked 重打印 DUPLICATE by app.flows.slips.reprint, as ``posterm reprint``
prints it, and its preview shown. Paper out: one line, F4 tries again once paper is
back. (The last settlement report is reprinted from the reports screen.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, OptionList, Static

from app.ui.base import while_shown
from app.ui.sale import TxnScreen

if TYPE_CHECKING:
    from app.terminal import Terminal

SLIP_WIDTH = 32
#: approved transactions offered in the list
RECENT = 30


@dataclass(frozen=True)
class ReprintView:
    """One reprint: the STAN, whether it printed (and why not), the amount and card, and
    the merchant copy's preview as printed (marked DUPLICATE)."""

    stan: int
    printed: bool
    errors: list[str]
    amount: int
    pan_masked: str
    slip: str


def recent(term: Terminal, language: str) -> list[tuple[int, str]]:
    """(STAN, one line) of the newest approved transactions (voided or not), newest first:
    the ones ``posterm reprint`` reprints."""
    from app.amount import format_yuan
    from app.ui.query import short_type
    from storage.query import TxnFilter, search
    found = search(term.journal, TxnFilter(statuses=("approved", "voided"), limit=RECENT))
    return [(r.stan, (f"{r.stan:06d} {r.created_local[11:16]} "
                      f"{'¥' + format_yuan(r.amount, grouped=True):>11} "
                      f"**{r.pan_masked[-4:]} {short_type(r.txn_type, language)}"))
            for r in found]


def reprint_job(stan: int | None):
    """``posterm reprint [STAN]``: the slip of ``stan`` (None: the last approved one)."""
    def job(term: Terminal) -> ReprintView:
        from app.flows.slips import last_approved_stan, reprint
        from app.receipt import sales_slip
        target = last_approved_stan(term) if stan is None else stan
        result = reprint(term, stan=target)[0]
        record = term.journal.find(stan=target)
        assert record is not None        # reprint() refused it otherwise
        slip = sales_slip(record, term.merchant, copy="merchant", width=SLIP_WIDTH,
                          duplicate=True).plain_text(SLIP_WIDTH)
        return ReprintView(target, result["printed"], result["errors"], record.amount,
                           record.pan_masked, slip)
    return job


class ReprintScreen(TxnScreen):
    TITLE_KEY = "reprint"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f8", "last", "最后一笔 Last"),
    ]

    DEFAULT_CSS = """
    ReprintScreen #stan { width: 30; }
    ReprintScreen #hint, ReprintScreen #list-title { height: auto; color: $text-muted;
                                                     padding: 0 1; }
    ReprintScreen #recent { height: 8; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.reprinted: ReprintView | None = None
        self.failed_stan: int | None = None

    def compose_left(self) -> ComposeResult:
        yield Static(self.both("rp_hint"), id="hint")
        yield Input(placeholder="000001", id="stan", restrict=r"[0-9]*", max_length=6)
        yield Static(self.both("rp_recent"), id="list-title")
        yield OptionList(id="recent")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#stan", Input).focus()
        self.load_recent()

    def load_recent(self) -> None:
        language = self.language
        if not self.posterm.run_flow(lambda term: recent(term, language),
                                     while_shown(self, self._listed),
                                     while_shown(self, self.show_failure)):
            self.set_timer(0.2, self.load_recent)

    def _listed(self, items: list[tuple[int, str]]) -> None:
        self.list_stans("#recent", items)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "recent" and event.option.id:
            self.query_one("#stan", Input).value = event.option.id
            self.start(int(event.option.id))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "stan":
            return
        text = event.value.strip()
        if not text:
            self.start(None)
        elif not 1 <= int(text) <= 999999:
            self.notice(self.both("rp_bad_stan"), "error")
        else:
            self.start(int(text))

    def action_last(self) -> None:
        self.start(None)

    def start(self, stan: int | None) -> None:
        if self.state not in ("input", "result"):
            self.notice(self.say("busy"))
            return
        self.clear_result()
        self.failed_stan = None
        if not self.posterm.run_flow(reprint_job(stan), while_shown(self, self._done),
                                     while_shown(self, self._failed)):
            self.notice(self.say("busy"))
            return
        self.state = "busy"
        self.step(self.both("printing"))

    def _done(self, view: ReprintView) -> None:
        from app.amount import format_yuan
        self.state = "result"
        self.step("")
        self.reprinted = view
        head = self.query_one("#head", Static)
        head.update(f"{self.both('duplicate')} {view.stan:06d}")
        head.set_classes("approved" if view.printed else "declined")
        self.query_one("#details", Static).update(
            f"{self.say('amount')} ¥{format_yuan(view.amount, grouped=True)}   "
            f"{view.pan_masked}")
        self.query_one("#slip", Static).update(view.slip)
        self.action_show("receipt")
        if view.printed:
            self.notice(self.both("reprinted"), "ok")
        else:
            self.failed_stan = view.stan
            self.notice(f"{self.both('not_printed')}: {view.errors[0]} — "
                        f"{self.say('rp_retry')}", "error")
        self.query_one("#stan", Input).value = ""
        self.query_one("#stan", Input).focus()

    def _failed(self, line: str, exc: Exception) -> None:
        self.show_failure(line, exc)
        self.query_one("#stan", Input).value = ""
        self.query_one("#stan", Input).focus()

    def action_reprint(self) -> None:
        """F4: the slip that did not come out, again (paper back)."""
        if self.state == "result" and self.failed_stan is not None:
            self.start(self.failed_stan)
