"""What the terminal may tell about its keys (密钥): the root key file, the terminal master
key and the working keys the last sign-on (签到) loaded — their check values (KCV) and when
they were stored, never a key itself."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.terminal import Terminal


@dataclass(frozen=True)
class KeyLine:
    """One key: present or not, its check value and when it was stored (local ISO time)."""

    name: str                # 'tmk', 'pik', 'mak'
    present: bool
    kcv: str | None = None
    stored: str | None = None


@dataclass(frozen=True)
class KeyStatus:
    root_file: str           # the key file's path
    root_private: bool       # mode 0600 (no access for group or others)
    root_check: str          # identifies the root key without revealing it
    root_matches: bool       # the journal was made under this root key
    keys: tuple[KeyLine, ...]
    signed_on: str | None    # the host's date and time of the last sign-on (MMDDhhmmss)
    sign_on_needed: bool     # no MAC key, or the host asked for a new sign-on

    def key(self, name: str) -> KeyLine:
        return next(k for k in self.keys if k.name == name)


def key_status(term: Terminal) -> KeyStatus:
    """The key file and the keys of the journal; the master key's check value is computed
    from it (the host prints the same at key injection), the working keys' are the ones
    the host sent with them."""
    from sync import crypto
    from sync.online import KEY_MAK, KEY_PIK, KEY_TMK, META_SIGNED_ON
    journal = term.journal
    stored = {k.name: k for k in journal.key_checks()}
    lines = []
    for short, name in (("tmk", KEY_TMK), ("pik", KEY_PIK), ("mak", KEY_MAK)):
        row = stored.get(name)
        if row is None:
            lines.append(KeyLine(short, False))
            continue
        kcv = row.kcv
        if kcv is None and name == KEY_TMK:
            tmk = journal.get_key(KEY_TMK)
            kcv = crypto.check_value(tmk).hex().upper() if tmk is not None else None
        lines.append(KeyLine(short, True, kcv, row.updated_local))
    path = term.config.key_path
    try:
        private = not stat.S_IMODE(path.stat().st_mode) & 0o077
    except OSError:
        private = False
    signed_on = journal.get_meta(META_SIGNED_ON) or None
    return KeyStatus(root_file=str(path), root_private=private,
                     root_check=journal.protector.key_check(),
                     root_matches=journal.root_key_matches, keys=tuple(lines),
                     signed_on=signed_on, sign_on_needed=term.session.needs_sign_on())


def host_time(mmddhhmmss: str | None) -> str:
    """'12-04 15:49:06' from the host's fields 13 and 12 as stored at sign-on."""
    t = mmddhhmmss or ""
    if len(t) != 10 or not t.isdigit():
        return "-"
    return f"{t[0:2]}-{t[2:4]} {t[4:6]}:{t[6:8]}:{t[8:10]}"
