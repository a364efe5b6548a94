"""Devices (设备自检): every configured device with its state, and a self-test of one
(Enter) or of each (F5) — app.devicecheck.check_devices, as ``posterm devices [--test]``,
on the devices the app holds open; the result of each device on one line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from app.ui.base import Notice
from app.ui.manage import ManagePart
from app.ui.words import say

if TYPE_CHECKING:
    from app.terminal import Terminal

#: role -> words key
ROLE_WORDS = {"card_reader": "m_card_reader", "contactless": "m_contactless",
              "pinpad": "m_pinpad", "printer": "m_printer_dev"}

#: what a device told, in the words of ``posterm devices``' line
FACTS = ("card_present", "atr", "uid", "test_page", "display")


def check_job(test: bool, roles: list[str] | None = None):
    def job(term: Terminal) -> dict[str, dict[str, Any]]:
        from app.devicecheck import check_devices
        return check_devices(term, test=test, roles=roles,
                             opened=term.__dict__.get("devices"))
    return job


def offline(entry: dict[str, Any]) -> bool:
    """A printer that opened but does not answer (not plugged in, switched off)."""
    status = entry.get("status") or {}
    return not status.get("online", True)


def trouble(entry: dict[str, Any]) -> bool:
    from app.devicecheck import failed
    return failed(entry) or offline(entry)


def state_of(entry: dict[str, Any], tested: bool, language: str) -> str:
    if "error" in entry:
        return say("m_dev_missing", language)
    if "test_error" in entry:
        return say("m_dev_test_failed" if tested else "m_dev_fault", language)
    if offline(entry):
        return say("m_dev_offline", language)
    return say("m_dev_test_ok" if tested else "m_dev_ok", language)


def details_of(entry: dict[str, Any], language: str) -> str:
    """The error, else the model and what the device told (as ``posterm devices``)."""
    if "error" in entry or "test_error" in entry:
        return " ".join(str(entry.get("error") or entry.get("test_error")).split())
    info = entry.get("info", {})
    facts = [f"{k}={v}" for k, v in entry.items() if k in FACTS and k != "card_present"]
    if "card_present" in entry:
        facts.insert(0, say("card_in" if entry["card_present"] else "empty", language))
    status = entry.get("status") or {}
    facts += [k for k, v in status.items() if v and k != "online"]
    return " ".join([info.get("model") or info.get("driver") or "", *facts]).strip()


class DevicesScreen(ManagePart):
    TITLE_KEY = "m_devices"
    BINDINGS: ClassVar[list[BindingType]] = [
        *ManagePart.BINDINGS,
        Binding("f5", "test_all", "全部自检 Test all"),
    ]

    DEFAULT_CSS = """
    DevicesScreen #devices { height: auto; max-height: 8; margin: 1 1 0 1; }
    DevicesScreen #hint { height: auto; color: $text-muted; padding: 1 1 0 1; }
    DevicesScreen #step { height: auto; color: $warning; padding: 0 1; }
    DevicesScreen #detail { height: auto; padding: 1 1 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.report: dict[str, dict[str, Any]] = {}
        self.tested: set[str] = set()

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="devices", cursor_type="row")
        yield Static(id="detail")
        yield Static(self.both("m_devices_hint"), id="hint")
        yield Static(id="step")
        yield Notice(id="notice")

    def on_mount(self) -> None:
        table = self.query_one("#devices", DataTable)
        for word, width in (("m_device", 12), ("url", 18), ("m_state", 11), ("m_details", 29)):
            table.add_column("URL" if word == "url" else self.say(word), width=width, key=word)
        table.focus()
        self.check(False)

    def check(self, test: bool, roles: list[str] | None = None) -> None:
        if self.working:
            self.notice(self.say("busy"))
            return
        self.notice("")
        self.query_one("#step", Static).update(self.both("m_testing" if test else "m_checking"))

        def done(report: dict[str, dict[str, Any]]) -> None:
            if test:
                self.tested.update(report)
            else:
                self.tested.difference_update(report)
            self.show_report({**self.report, **report})
        if not self.start(check_job(test, roles), done, self._failed) and not test:
            self.set_timer(0.2, lambda: self.check(False))

    def _failed(self, line: str, exc: Exception) -> None:
        self.query_one("#step", Static).update("")
        self.notice(line, "error")

    def show_report(self, report: dict[str, dict[str, Any]]) -> None:
        self.report = report
        self.query_one("#step", Static).update("")
        table = self.query_one("#devices", DataTable)
        at = table.cursor_row
        table.clear()
        for role, entry in report.items():
            table.add_row(self.say(ROLE_WORDS.get(role, role)), Text(entry["url"]),
                          state_of(entry, role in self.tested, self.language),
                          Text(details_of(entry, self.language)), key=role)
        if report:
            table.move_cursor(row=max(0, min(at, len(report) - 1)))
        if any(trouble(e) for e in report.values()):
            self.notice(self.both("m_devices_failed"), "error")
        elif self.tested:
            self.notice(self.both("m_devices_all_ok"), "ok")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The highlighted device's whole line, as ``posterm devices`` prints it."""
        from app.devicecheck import device_line
        entry = self.report.get(str(event.row_key.value))
        self.query_one("#detail", Static).update(Text(device_line(entry)) if entry else "")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.check(True, [event.row_key.value])

    def action_test_all(self) -> None:
        self.check(True)
