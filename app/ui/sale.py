"""The sale screen (消费): the amount in yuan, formatted as it is typed; then "insert, tap
or swipe" with the readers, the PIN pad prompt, the host, the printer; the result with the
response code's message, the slip's preview and the printer's state (paper out: F4
reprints once paper is back). The sale itself is app.flows.sale.run_sale, as for
``posterm sale``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import ContentSwitcher, Input, Static

from app.ui.appchoice import thread_chooser
from app.ui.base import Notice, PostermScreen
from app.ui.outcome import TxnView, result_lines, view_of

if TYPE_CHECKING:
    from app.emv.selection import Chooser
    from app.terminal import Terminal

    Step = Callable[[str], None]
    #: a card flow for :meth:`TxnScreen.run_card_flow`: (terminal, on_step, chooser) -> view
    CardJob = Callable[[Terminal, Step, Chooser], Any]

#: Seconds the sale waits for a card (Esc gives up sooner).
CARD_TIMEOUT = 120.0

#: run_sale's steps -> words shown while the sale is under way
STEP_WORDS = {"card": "present_card", "card_read": "card_read", "pin": "enter_pin",
              "host": "asking_host", "print": "printing", "busy": "checking"}


def amount_preview(text: str) -> tuple[int | None, str]:
    """(fen, '¥1,234.50') for what is typed so far; (None, why) when it is not an amount."""
    from app.amount import format_yuan, parse_yuan
    from app.errors import InputError
    if not text.strip():
        return None, "¥ 0.00"
    try:
        fen = parse_yuan(text)
    except InputError as exc:
        return None, str(exc)
    return fen, f"¥ {format_yuan(fen, grouped=True)}"


class TxnScreen(PostermScreen):
    """What the sale and void screens share: the result area, the slip's preview, the mock
    devices panel beside it, and the keys for them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "返回/取消 Back"),
        Binding("f2", "show('mock')", "设备 Devices", show=False),
        Binding("f3", "show('receipt')", "签购单 Slip", show=False),
        Binding("f4", "reprint", "重打印 Reprint"),
        Binding("f5", "pull", "拔卡 Pull card", show=False),
        Binding("f6", "paper", "纸 Paper", show=False),
    ]

    DEFAULT_CSS = """
    TxnScreen #main { height: 1fr; }
    TxnScreen #left { width: 1fr; padding: 0 1; }
    TxnScreen #right { width: 36; }
    TxnScreen #receipt { border: round $primary; height: 1fr; }
    TxnScreen #step { height: auto; min-height: 1; color: $warning; }
    TxnScreen #head { height: auto; text-style: bold; }
    TxnScreen #head.approved { color: $success; }
    TxnScreen #head.declined { color: $error; }
    TxnScreen #details { height: auto; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.state = "input"
        self.view: TxnView | None = None
        self._cancel_timer: Timer | None = None

    @property
    def has_mock_panel(self) -> bool:
        from app.ui.app import mock_devices
        term = self.posterm.term
        return term is not None and mock_devices(term)

    def compose_body(self) -> ComposeResult:
        from app.ui.mockpanel import MockPanel
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield from self.compose_left()
                yield Static(id="step")
                yield Static(id="head")
                yield Static(id="details")
                yield Notice(id="notice")
            with ContentSwitcher(id="right", initial="mock" if self.has_mock_panel
                                 else "receipt"):
                if self.has_mock_panel:
                    yield MockPanel(id="mock")
                with VerticalScroll(id="receipt"):
                    yield Static(id="slip")

    def compose_left(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.query_one("#receipt").border_title = self.both("receipt")

    # -- shared pieces ----------------------------------------------------------------------

    def step(self, text: str) -> None:
        self.query_one("#step", Static).update(text)

    def clear_result(self) -> None:
        self.view = None
        self.query_one("#head", Static).update("")
        self.query_one("#details", Static).update("")
        self.query_one("#slip", Static).update("")
        self.step("")
        self.notice("")

    def show_result(self, view: TxnView) -> None:
        self.view = view
        self.state = "result"
        self._stop_cancelling()
        self.step("")
        head, details = result_lines(view, self.language)
        head_widget = self.query_one("#head", Static)
        head_widget.update(head)
        head_widget.set_classes("approved" if view.approved else "declined")
        self.query_one("#details", Static).update(details)
        if view.receipt:
            self.query_one("#slip", Static).update(view.receipt)
            self.action_show("receipt")

    def show_failure(self, line: str, exc: Exception | None = None) -> None:
        self.state = "result"
        self._stop_cancelling()
        self.step("")
        self.notice(line, "error")

    def action_show(self, name: str) -> None:
        switcher = self.query_one("#right", ContentSwitcher)
        if name == "mock" and not self.has_mock_panel:
            return
        switcher.current = name
        if name == "mock":
            from app.ui.mockpanel import MockPanel
            self.query_one(MockPanel).focus_cards()

    def _panel(self):
        from app.ui.mockpanel import MockPanel
        panels = self.query(MockPanel)
        return panels.first() if panels else None

    def action_pull(self) -> None:
        panel = self._panel()
        if panel is not None:
            panel.pull()

    def action_paper(self) -> None:
        panel = self._panel()
        if panel is not None:
            panel.paper()
            if self.view is not None:
                self.notice("")

    def action_reprint(self) -> None:
        if self.state != "result" or self.view is None or not self.view.receipt_errors:
            return
        from app.flows.slips import reprint
        if not self.posterm.run_flow(lambda term: reprint(term, pending=True),
                                     self._reprinted, self.show_failure):
            self.notice(self.say("busy"))

    def _reprinted(self, results: list[dict]) -> None:
        failed = [e for r in results for e in r["errors"]]
        if failed:
            self.notice(f"{self.both('not_printed')}: {failed[0]}", "error")
            return
        assert self.view is not None
        self.view = TxnView(self.view.data, self.view.receipt, "paper_ok", [])
        self.show_result(self.view)
        self.notice(self.both("reprinted"), "ok")

    # -- card flows: the steps, the application choice ------------------------------------

    def run_card_flow(self, job: CardJob, *, first_step: str = "card") -> bool:
        """Run ``job(term, on_step, chooser)`` (a flow taking run_sale's ``on_step`` and
        ``chooser``) in a thread: its steps shown as they come, the application choice
        asked in a box, then :meth:`card_flow_done` or :meth:`card_flow_failed`.
        ``first_step`` is shown until the flow tells its own ('busy': a check first)."""
        app = self.posterm

        def step(name: str) -> None:     # in the flow's thread
            app.post(self._on_step, name)

        chooser = thread_chooser(self)
        if not app.run_flow(lambda term: job(term, step, chooser), self.card_flow_done,
                            self.card_flow_failed):
            self.notice(self.say("busy"))
            return False
        self.state = "starting"
        self._on_step(first_step)
        if self.has_mock_panel:
            self.action_show("mock")
        return True

    def _on_step(self, name: str) -> None:
        if self.state == "result":
            return
        self.state = name
        text = self.both(STEP_WORDS.get(name, name))
        if name == "card":
            text += f"  ({self._readers()})"
        self.step(text)

    def _readers(self) -> str:
        term = self.posterm.term
        devices = term.__dict__.get("devices") if term is not None else None
        if devices is None:
            return ""
        words = [w for w, dev in (("chip", devices.card_reader), ("tap", devices.contactless),
                                  ("swipe", devices.pinpad)) if dev is not None]
        return " ".join(self.say(w) for w in words)

    def card_flow_done(self, view: TxnView) -> None:
        self.show_result(view)
        self.focus_input()

    def card_flow_failed(self, line: str, exc: Exception) -> None:
        from app.ui.appchoice import ChoiceCancelled
        if isinstance(exc, ChoiceCancelled):
            line = self.both("cancelled")
        self.show_failure(line, exc)
        self.focus_input()

    def focus_input(self) -> None:
        """Where the cursor goes after a result: the screen's first field."""

    # -- waiting, cancelling --------------------------------------------------------------------

    def start_cancelling(self) -> None:
        """Esc while waiting for the card or the PIN: the PIN pad's cancel, repeated until
        the flow has given up (a wait that starts just after one cancel still hears one)."""
        self.posterm.cancel_card_wait()
        if self._cancel_timer is None:
            self._cancel_timer = self.set_interval(0.1, self.posterm.cancel_card_wait)

    def _stop_cancelling(self) -> None:
        if self._cancel_timer is not None:
            self._cancel_timer.stop()
            self._cancel_timer = None

    def action_back(self) -> None:
        if self.state in ("card", "pin"):
            self.step(self.both("cancelled"))
            self.start_cancelling()
        elif self.state in ("card_read", "host", "print", "busy"):
            self.notice(self.say("busy"))
        else:
            self.app.pop_screen()


class SaleScreen(TxnScreen):
    TITLE_KEY = "sale"

    DEFAULT_CSS = """
    SaleScreen #amount { width: 30; }
    SaleScreen #preview { height: 1; text-style: bold; padding: 0 1; }
    SaleScreen #hint { height: 1; color: $text-muted; padding: 0 1; }
    """

    def compose_left(self) -> ComposeResult:
        yield Static(self.both("amount_hint"), id="hint")
        yield Input(placeholder="0.00", id="amount", restrict=r"[0-9.]*", max_length=13)
        yield Static("¥ 0.00", id="preview")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#amount", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "amount":
            self.query_one("#preview", Static).update(amount_preview(event.value)[1])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "amount":
            return
        if self.state not in ("input", "result"):
            self.notice(self.say("busy"))
            return
        fen, why = amount_preview(event.value)
        if fen is None:
            self.notice(why if event.value.strip() else self.both("amount_hint"), "error")
            return
        self.start_sale(fen)

    def start_sale(self, fen: int) -> None:
        self.clear_result()
        self.query_one("#amount", Input).value = ""
        self.query_one("#preview", Static).update(yuan(fen))
        self.run_card_flow(self.amount_job(fen))

    def amount_job(self, fen: int) -> CardJob:
        """The flow an amount starts here (a pre-authorisation screen starts its own)."""
        return sale_job(fen)

    def focus_input(self) -> None:
        self.query_one("#amount", Input).focus()


def yuan(fen: int) -> str:
    """'¥ 1,234.50'."""
    from app.amount import format_yuan
    return f"¥ {format_yuan(fen, grouped=True)}"


def sale_job(fen: int) -> CardJob:
    def job(term: Terminal, step: Step, chooser: Chooser) -> TxnView:
        from app.flows.sale import run_sale
        return view_of(term, run_sale(term, fen, timeout=CARD_TIMEOUT, on_step=step,
                                      chooser=chooser))
    return job
