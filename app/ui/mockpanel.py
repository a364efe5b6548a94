"""The mock devices panel (模拟设备), shown only when every device is ``mock:``: present a
test card from the catalogue (inserted, tapped or swiped as its profile says) with the PIN
the customer types, pull the card, put the printer out of paper and back."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from app.ui.words import both, say

if TYPE_CHECKING:
    from app.terminal import Terminal
    from app.ui.app import PostermApp

INTERFACE_WORD = {"chip": "chip", "tap": "tap", "swipe": "swipe"}


def present(term: Terminal, card_name: str, pin: str | None) -> None:
    """Hand the test card (and the PIN its holder will type) to the mock devices."""
    from app.errors import InputError
    from hal.testcards import CATALOGUE
    if pin is not None and not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise InputError("PIN: 4 to 12 digits / 密码为 4 至 12 位数字")
    term.devices.present(CATALOGUE[card_name], pin=pin)


def pull_card(term: Terminal) -> None:
    """The customer takes the card out of the slot (or away from the field)."""
    for reader in (term.devices.card_reader, term.devices.contactless):
        remove = getattr(reader, "remove", None)
        if remove is not None:
            remove()


def toggle_paper(term: Terminal) -> bool:
    """Paper out <-> paper in on the mock printer; True when it is now out of paper."""
    printer = term.devices.printer
    if printer is None or not hasattr(printer, "paper_out"):
        return False
    printer.paper_out = not printer.paper_out
    return bool(printer.paper_out)


def device_states(term: Terminal, language: str) -> str:
    """'芯片 有卡 │ 挥卡 无卡 │ 打印机 缺纸' from the open mock devices."""
    devices = term.__dict__.get("devices")
    if devices is None:
        return ""
    parts = []
    for word, reader in (("chip", devices.card_reader), ("tap", devices.contactless)):
        if reader is not None:
            parts.append(f"{say(word, language)} "
                         f"{say('card_in' if reader.card_present() else 'empty', language)}")
    printer = devices.printer
    if printer is not None:
        st = printer.status()
        state = ("paper_out" if st.paper_out else "cover_open" if st.cover_open
                 else "paper_ok")
        parts.append(f"{say('printer', language)} {say(state, language)}")
    return "  ".join(parts)


class MockPanel(Vertical):
    """The panel; Enter on a card presents it. F5 pulls the card, F6 toggles the paper
    (bound on the screens that show the panel)."""

    DEFAULT_CSS = """
    MockPanel { border: round $accent; padding: 0 0; height: 1fr; }
    MockPanel #mock-pin { height: 3; }
    MockPanel #cards { height: 1fr; }
    MockPanel #mock-state { height: auto; color: $text-muted; }
    MockPanel #mock-line { height: auto; }
    """

    @property
    def posterm(self) -> PostermApp:
        return cast("PostermApp", self.app)

    def compose(self) -> ComposeResult:
        from hal.testcards import CATALOGUE
        language = self.posterm.ui_language
        self.border_title = both("mock", language)
        yield Input(placeholder=say("mock_pin", language), id="mock-pin", password=True,
                    restrict=r"[0-9]*", max_length=12)
        yield OptionList(*(Option(f"{card.name} [{say(INTERFACE_WORD[card.interface], language)}]",
                                  id=card.name) for card in CATALOGUE.values()), id="cards")
        yield Static(id="mock-state")
        yield Static(id="mock-line")

    def on_mount(self) -> None:
        self.set_interval(0.5, self.show_states)

    def show_states(self) -> None:
        term = self.posterm.term
        if term is not None:
            self.query_one("#mock-state", Static).update(
                device_states(term, self.posterm.ui_language))

    def say_line(self, text: str) -> None:
        self.query_one("#mock-line", Static).update(text)

    def focus_cards(self) -> None:
        self.query_one("#cards", OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.present_card(str(event.option.id))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus_cards()

    def present_card(self, name: str) -> None:
        from app.ui.problems import one_line
        term = self.posterm.term
        language = self.posterm.ui_language
        if term is None:
            return
        pin = self.query_one("#mock-pin", Input).value or None
        try:
            present(term, name, pin)
        except Exception as exc:  # noqa: BLE001 - one line in the panel, whatever went wrong
            self.say_line(one_line(exc, language))
            return
        self.say_line(f"{say('presented', language)}: {name}")
        self.show_states()

    def pull(self) -> None:
        term = self.posterm.term
        if term is not None and "devices" in term.__dict__:
            pull_card(term)
            self.say_line(say("pulled", self.posterm.ui_language))
            self.show_states()

    def paper(self) -> None:
        term = self.posterm.term
        if term is not None and "devices" in term.__dict__:
            out = toggle_paper(term)
            language = self.posterm.ui_language
            self.say_line(f"{say('printer', language)} "
                          f"{say('paper_out' if out else 'paper_ok', language)}")
            self.show_states()
