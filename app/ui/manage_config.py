"""Configuration (参数查看): posterm.toml's effective values — the file's over the schema's
defaults — read-only, secrets masked (app.config.shown_settings), in a table that scrolls
with the arrows and PgUp/PgDn."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from app.ui.base import Notice
from app.ui.manage import ManagePart

if TYPE_CHECKING:
    from app.config import ShownSetting
    from app.terminal import Terminal

VALUE_WIDTH = 38


def settings_job(term: Terminal) -> list[ShownSetting]:
    """The settings as loaded from the file now (not as the app read it at start)."""
    from app.config import load, shown_settings
    return shown_settings(load(term.data_dir))


class ConfigScreen(ManagePart):
    TITLE_KEY = "m_config_view"

    DEFAULT_CSS = """
    ConfigScreen #settings { height: 1fr; margin: 0 1; }
    ConfigScreen #hint { height: auto; color: $text-muted; padding: 0 1; }
    """

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="settings", cursor_type="row", zebra_stripes=True)
        yield Static(self.both("m_config_hint"), id="hint")
        yield Notice(id="notice")

    def on_mount(self) -> None:
        table = self.query_one("#settings", DataTable)
        table.add_column(self.say("m_setting"), width=26, key="setting")
        table.add_column(self.say("m_value"), width=VALUE_WIDTH, key="value")
        table.add_column("", width=6, key="source")
        table.focus()
        self.load()

    def load(self) -> None:
        if not self.start(settings_job, self.show_settings):
            self.set_timer(0.2, self.load)

    def show_settings(self, settings: list[ShownSetting]) -> None:
        table = self.query_one("#settings", DataTable)
        table.clear()
        for s in settings:
            text = s.text if len(s.text) <= VALUE_WIDTH else s.text[:VALUE_WIDTH - 1] + "…"
            table.add_row(f"{s.section}.{s.key}", Text(text),
                          self.say("m_from_default" if s.default else "m_from_file"),
                          key=f"{s.section}.{s.key}")
