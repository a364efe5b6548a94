"""Online PIN capture on the PIN pad, for every transaction family that needs one."""

from __future__ import annotations

import logging

from app.amount import format_yuan
from app.errors import Refused
from app.terminal import Terminal
from hal.errors import InvalidKey
from sync.online import KEY_PIK, KEY_TMK, META_PIK_KCV

log = logging.getLogger(__name__)

PIN_KEY_INDEX = 1


def capture_pin(term: Terminal, pan: str, amount: int | None) -> bytes:
    """The customer's PIN block from the PIN pad, under this sign-on's PIN key (loaded into
    the pad first; a pad that refuses it gets fresh keys from one more sign-on)."""
    pad = term.devices.pinpad
    if pad is None:
        raise Refused("this card needs a PIN and no PIN pad is configured")
    journal = term.journal
    if not pad.has_master_key(PIN_KEY_INDEX):
        # A real pad holds its master key from provisioning; a mock one starts empty.
        tmk = journal.get_key(KEY_TMK)
        if tmk is None:
            raise Refused("no terminal master key: provision the terminal (posterm init)")
        pad.load_master_key(PIN_KEY_INDEX, tmk)
    for attempt in (1, 2):
        pik = journal.get_key(KEY_PIK)
        kcv = journal.get_meta(META_PIK_KCV)
        if pik is None or kcv is None:
            raise Refused("no PIN key: sign on first")
        try:
            pad.load_working_key(PIN_KEY_INDEX, pik, bytes.fromhex(kcv))
            break
        except InvalidKey:
            if attempt == 2:
                raise
            log.warning("the PIN pad refused the PIN key: signing on again for fresh keys")
            term.session.sign_on()
    prompt = "请输入密码 / ENTER PIN"
    pad.display(prompt if amount is None else f"¥{format_yuan(amount)}  {prompt}")
    return pad.get_pin_block(pan, PIN_KEY_INDEX)
