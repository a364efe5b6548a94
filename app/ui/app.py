"""The cashier app: sign-on first, then the main menu and its screens.

Flows block (devices, TCP), so each runs in a thread worker and hands its result back to
the event loop with ``call_from_thread``; the screens only ever wait on messages. The
journal, devices and host session are one :class:`app.terminal.Terminal` for the app's
life, opened behind the sign-on screen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive

from app.ui.problems import one_line
from app.ui.status import Status, probe_host, read_status
from app.ui.words import both

if TYPE_CHECKING:
    from app.operators import Operator
    from app.terminal import Terminal
    from app.ui.embedded import Startup

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds between two looks at the host and the journal for the status line.
STATUS_EVERY = 15.0


class PostermApp(App[int]):
    """posterm's cashier app on one data directory."""

    TITLE = "posterm"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "退出 Quit", priority=True)]

    status: reactive[Status] = reactive(Status, always_update=True)

    def __init__(self, data_dir: Path, *, verbose: bool = False, embedded: bool = True,
                 language: str | None = None) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.verbose = verbose
        self.embedded = embedded
        self.open_devices = True
        self.ui_language = language or _configured_language(data_dir)
        self.term: Terminal | None = None
        self.startup: Startup | None = None
        self.operator: Operator | None = None
        self.host_online: bool | None = None
        self.boot_problem: str | None = None
        self.busy = False
        self._boot_listeners: list[Callable[[], None]] = []

    # -- start and stop -----------------------------------------------------------------------

    def on_mount(self) -> None:
        from app.ui.signon import SignOnScreen
        self.push_screen(SignOnScreen())
        self.boot()
        self.set_interval(STATUS_EVERY, self.refresh_status)

    @property
    def ready(self) -> bool:
        return self.term is not None

    def when_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the terminal is open (at once if it is)."""
        if self.ready or self.boot_problem:
            callback()
        else:
            self._boot_listeners.append(callback)

    @work(thread=True, group="boot", exit_on_error=False)
    def boot(self) -> None:
        """Behind the sign-on screen: the bundled host (first start: the terminal too), the
        journal, then the host sign-on (签到) for working keys."""
        from app.redaction import setup_logging
        from app.terminal import Terminal
        from app.ui import embedded
        try:
            startup = embedded.prepare(self.data_dir) if self.embedded else embedded.Startup()
            self.startup = startup
            term = Terminal(self.data_dir)
            setup_logging(term.config.log_path, verbose=False)
            term.journal  # noqa: B018 - open (and check) it here, not on the event loop
            if self.open_devices:
                _open_devices(term)
        except Exception as exc:  # noqa: BLE001 - every failure is one line on the sign-on screen
            self.post(self._booted, None, one_line(exc, self.ui_language))
            return
        self.ui_language = term.language
        self.post(self._booted, term, None)
        self._sign_on_to_host(term)

    def _sign_on_to_host(self, term: Terminal) -> None:
        """签到 when the terminal has no working keys; the status line tells the outcome."""
        try:
            if term.session.needs_sign_on():
                term.session.sign_on()
            online = True
        except Exception as exc:  # noqa: BLE001 - offline is a state to show, not a failure
            log.warning("host sign-on at start failed: %s", exc)
            online = probe_host(term)
            if online:
                self.post(self._boot_note, one_line(exc, self.ui_language))
        self.host_online = online
        self._post_status(term)

    def _booted(self, term: Terminal | None, problem: str | None) -> None:
        self.term = term
        self.boot_problem = problem
        listeners, self._boot_listeners = self._boot_listeners, []
        for callback in listeners:
            callback()

    def _boot_note(self, line: str) -> None:
        self.notify(line, severity="warning", timeout=8)

    async def action_quit(self) -> None:
        self.cancel_card_wait()
        self.exit(0)

    def on_unmount(self) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Close the terminal and stop the bundled host (also after a test's run)."""
        term, self.term = self.term, None
        if term is not None:
            try:
                term.close()
            except Exception as exc:  # noqa: BLE001 - closing must not hide the exit
                log.warning("closing the terminal: %s", exc)
        startup, self.startup = self.startup, None
        if startup is not None and startup.host is not None:
            startup.host.stop()

    # -- running flows in threads ----------------------------------------------------------------

    def run_flow(self, job: Callable[[Terminal], T], done: Callable[[T], None],
                 failed: Callable[[str, Exception], None]) -> bool:
        """Run ``job(term)`` in a thread; ``done(result)`` or ``failed(line, error)`` on the
        event loop after. False (and nothing run) while another flow is under way."""
        if self.busy or self.term is None:
            return False
        self.busy = True
        self._flow(self.term, job, done, failed)
        return True

    @work(thread=True, group="flow", exit_on_error=False)
    def _flow(self, term: Terminal, job: Callable[[Terminal], Any], done: Callable[[Any], None],
              failed: Callable[[str, Exception], None]) -> None:
        try:
            result = job(term)
        except Exception as exc:  # noqa: BLE001 - one line on the screen that asked
            self._note_host(exc)
            self.post(self._flow_over, failed, one_line(exc, self.ui_language), exc)
        else:
            self.post(self._flow_over, done, result)
        self._post_status(term)

    def _flow_over(self, callback: Callable[..., None], *values: Any) -> None:
        self.busy = False
        callback(*values)

    def _note_host(self, exc: BaseException) -> None:
        from sync.errors import HostUnreachable
        if isinstance(exc, HostUnreachable):
            self.host_online = False

    def post(self, callback: Callable[..., Any], *args: Any) -> None:
        """``callback(*args)`` on the event loop, unless the app has closed meanwhile."""
        try:
            self.call_from_thread(callback, *args)
        except RuntimeError:
            log.info("app closed before %s", getattr(callback, "__name__", callback))

    # -- the status line ----------------------------------------------------------------------

    def refresh_status(self, probe: bool = True) -> None:
        if self.term is not None:
            self._status_worker(self.term, probe)

    @work(thread=True, group="status", exclusive=True, exit_on_error=False)
    def _status_worker(self, term: Terminal, probe: bool) -> None:
        if probe:
            self.host_online = probe_host(term)
        self._post_status(term)

    def _post_status(self, term: Terminal) -> None:
        try:
            status = read_status(term, self.operator.code if self.operator else "",
                                 self.host_online)
        except Exception as exc:  # noqa: BLE001 - the status line never stops the app
            log.warning("status line: %s", exc)
            return
        self.post(self._set_status, status)

    def _set_status(self, status: Status) -> None:
        self.status = status

    # -- devices ------------------------------------------------------------------------------

    def cancel_card_wait(self) -> None:
        """Make a card or PIN wait under way give up (the PIN pad's cancel)."""
        term = self.term
        if term is None or "devices" not in term.__dict__:
            return
        pad = term.devices.pinpad
        if pad is not None:
            try:
                pad.cancel()
            except Exception as exc:  # noqa: BLE001 - a pad that is gone has nothing to cancel
                log.info("cancel on the PIN pad: %s", exc)

    # -- signing on and off --------------------------------------------------------------------

    def signed_on(self, operator: Operator) -> None:
        from app.ui.menu import MenuScreen
        self.operator = operator
        self.refresh_status(probe=False)
        self.push_screen(MenuScreen())

    def sign_off(self) -> None:
        self.operator = None
        self.refresh_status(probe=False)
        while len(self.screen_stack) > 2:      # the default screen, then sign-on
            self.pop_screen()
        reset = getattr(self.screen, "reset", None)
        if reset is not None:
            reset()

    def label(self, key: str) -> str:
        return both(key, self.ui_language)

    # -- never a traceback ---------------------------------------------------------------------

    def _handle_exception(self, error: Exception) -> None:
        """A bug in a screen: logged with its traceback, shown as one line, the app goes on."""
        log.error("internal error in the cashier app", exc_info=error)
        try:
            self.notify(one_line(error, self.ui_language), severity="error", timeout=10)
        except Exception:  # noqa: BLE001 - the app is going down: let Textual end it
            super()._handle_exception(error)


def _open_devices(term: Terminal) -> None:
    """Open the devices now, off the event loop; one that is missing is logged here and
    reported as one line by the first flow that needs it."""
    try:
        term.devices  # noqa: B018
    except Exception as exc:  # noqa: BLE001 - the flow that needs them says it to the cashier
        log.warning("devices not opened at start: %s", exc)


def mock_devices(term: Terminal) -> bool:
    """Whether every configured device is a mock one (the mock devices panel is shown)."""
    urls = term.config["devices"].values()
    return bool(urls) and all(str(url).startswith("mock:") for url in urls)


def _configured_language(data_dir: Path) -> str:
    """terminal.language from posterm.toml without validating it (zh when unreadable)."""
    import tomllib
    try:
        with open(data_dir / "posterm.toml", "rb") as fh:
            language = tomllib.load(fh).get("terminal", {}).get("language", "zh")
    except (OSError, tomllib.TOMLDecodeError):
        return "zh"
    return language if language in ("zh", "en") else "zh"
