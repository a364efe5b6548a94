"""What every screen of the cashier app has: the status line, a title, the key bar."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

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


def while_shown(screen: Screen, callback: Callable[..., None]) -> Callable[..., None]:
    """``callback`` for a flow's end, called only while ``screen`` is still on the stack (the
    cashier may have left it with Esc while the flow ran; the flow's work stands)."""
    def call(*args: Any) -> None:
        if screen in screen.app.screen_stack:
            callback(*args)
    return call


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

    def notice(self, text: str, kind: str = "") -> None:
        """One line in the screen's ``#notice`` (a :class:`Notice`)."""
        self.query_one("#notice", Notice).say_line(text, kind)

    def failed(self, line: str, _exc: Exception | None = None) -> None:
        """A flow's error line (run_flow's ``failed``), shown in the notice."""
        self.notice(line, "error")

    def ends(self, done: Callable[[Any], None]) -> tuple[Callable[..., None], ...]:
        """(done, failed) for run_flow that do nothing once the cashier has left the screen
        (Esc while the flow ran)."""
        return while_shown(self, done), while_shown(self, self.failed)

    def list_stans(self, selector: str, items: list[tuple[int, str]]) -> None:
        """Fill the OptionList ``selector`` with (STAN, line) choices, the first highlighted
        (an option's id is its STAN), or one disabled "none"."""
        from textual.widgets import OptionList
        from textual.widgets.option_list import Option
        options = self.query_one(selector, OptionList)
        options.clear_options()
        if not items:
            options.add_option(Option(self.both("none"), disabled=True))
        options.add_options([Option(text, id=str(stan)) for stan, text in items])
        if items:
            options.highlighted = 0

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield Static(self.both(self.TITLE_KEY), classes="title", id="title")
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()
