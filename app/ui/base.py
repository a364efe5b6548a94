"""What every screen of the cashier app has: the status line, a title, the key bar."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static

from app.ui.status import StatusLine
from app.ui.words import both, say

if TYPE_CHECKING:
    from app.ui.app import PostermApp


class Notice(Static):
    """One calm line: an error with what to do next, or what just happened."""

    DEFAULT_CSS = """
    Notice { height: auto; min-height: 1; padding: 0 1; }
    Notice.error { color: $error; text-style: bold; }
    Notice.ok { color: $success; text-style: bold; }
    """

    def __init__(self, *args, **kwargs) -> None:
        # plain text: an error naming "[terminal]" or a cashier "[A组]" shows as written
        kwargs.setdefault("markup", False)
        super().__init__(*args, **kwargs)

    def say_line(self, text: str, kind: str = "") -> None:
        self.set_classes(kind)
        self.update(text)


class PostermScreen(Screen):
    """A screen with the status line on top and the keys at the bottom."""

    #: key of :data:`app.ui.words.WORDS` for the title
    TITLE_KEY = "app"

    DEFAULT_CSS = """
    PostermScreen .title { height: 1; padding: 0 1; text-style: bold; background: $panel; }
    """

    @property
    def posterm(self) -> PostermApp:
        return cast("PostermApp", self.app)

    @property
    def language(self) -> str:
        return self.posterm.ui_language

    def say(self, key: str) -> str:
        return say(key, self.language)

    def both(self, key: str) -> str:
        return both(key, self.language)

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield Static(self.both(self.TITLE_KEY), classes="title", id="title")
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()
