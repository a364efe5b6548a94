"""Keys (密钥): the root key file, the master key and the working keys — present or not,
their check values (KCV) and when they were loaded, never a key (app.keystatus); F5 signs
on again (签到: fresh working keys from the host), as ``posterm signon`` does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from app.ui.base import Notice
from app.ui.manage import ManagePart

if TYPE_CHECKING:
    from app.keystatus import KeyStatus
    from app.terminal import Terminal


def status_job(term: Terminal) -> KeyStatus:
    from app.keystatus import key_status
    return key_status(term)


@dataclass(frozen=True)
class SignedOn:
    batch: int
    status: KeyStatus


def sign_on_job(term: Terminal) -> SignedOn:
    """``posterm signon``: the host's 0800/0810, fresh PIN and MAC keys."""
    from app.keystatus import key_status
    term.session.sign_on()
    return SignedOn(term.journal.current_batch(), key_status(term))


class KeysScreen(ManagePart):
    TITLE_KEY = "m_keys"
    BINDINGS: ClassVar[list[BindingType]] = [
        *ManagePart.BINDINGS,
        Binding("f5", "sign_on", "签到 Sign on"),
    ]

    DEFAULT_CSS = """
    KeysScreen #keys { height: auto; padding: 1 2; }
    KeysScreen #hint { height: auto; color: $text-muted; padding: 0 2; }
    """

    def compose_body(self) -> ComposeResult:
        yield Static(id="keys")
        yield Static(f"F5 {self.both('m_signon_again')}", id="hint")
        yield Notice(id="notice")

    def on_mount(self) -> None:
        self.load()

    def load(self) -> None:
        if not self.start(status_job, self.show_status):
            self.set_timer(0.2, self.load)

    def show_status(self, s: KeyStatus) -> None:
        """The lines of the keys view for ``s``."""
        from pathlib import Path

        def row(word: str, text: str) -> str:
            word, _, code = word.partition(":")
            label = self.both(word) + (f" {code}" if code else "")
            return label + " " * max(1, 28 - _cells(label)) + text

        term = self.posterm.term
        shown = s.root_file
        if term is not None:
            try:
                shown = str(Path(s.root_file).relative_to(term.data_dir))
            except ValueError:
                pass
        lines = [row("m_root_key", f"{shown}  "
                     + self.say("m_private" if s.root_private else "m_not_private")),
                 row("m_root_check", s.root_check
                     + ("" if s.root_matches else f"  {self.say('m_journal_other_key')}")),
                 ""]
        for word, name in (("m_master_key", "tmk"), ("m_pin_key", "pik"), ("m_mac_key", "mak")):
            k = s.key(name)
            label = f"{word}:{name.upper()}"
            if not k.present:
                lines.append(row(label, self.both("m_key_absent")))
                continue
            when = (k.stored or "-")[:19].replace("T", " ")
            lines.append(row(label, f"KCV {k.kcv or '-':<8}  {self.say('m_loaded_at')} {when}"))
        from app.keystatus import host_time
        lines += ["", row("m_host_signon", f"{host_time(s.signed_on)} "
                          f"({self.say('m_host_time')})"
                          + (f"  {self.both('m_signon_needed')}" if s.sign_on_needed else ""))]
        self.query_one("#keys", Static).update(Text("\n".join(lines)))

    def action_sign_on(self) -> None:
        if self.working:
            self.notice(self.say("busy"))
            return
        self.notice(self.both("m_signing_on"))
        self.start(sign_on_job, self._signed_on)

    def _signed_on(self, result: SignedOn) -> None:
        self.show_status(result.status)
        self.notice(f"{self.both('m_signed_on_ok')} — {self.say('batch')} {result.batch:06d}",
                    "ok")
        self.posterm.host_online = True
        self.posterm.refresh_status(probe=False)


def _cells(text: str) -> int:
    from rich.cells import cell_len
    return cell_len(text)
