"""The sale (消费): card, PIN, journal, host, receipt — in that order, nothing skipped."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from app.amount import format_yuan
from app.cardread import CardData, read_card
from app.errors import InputError, Refused
from app.flows.slips import print_slips
from app.terminal import Terminal
from hal.errors import DeviceUnavailable, InvalidKey
from hal.testcards import TestCard
from sync.online import KEY_PIK, KEY_TMK, META_PIK_KCV, CardForHost, OnlineResult
from sync.responses import rule
from sync.txntypes import TxnType

log = logging.getLogger(__name__)

PIN_KEY_INDEX = 1


@dataclass
class SaleOutcome:
    result: OnlineResult
    card: CardData
    receipt_errors: list[str] = field(default_factory=list)

    def as_json(self, language: str) -> dict:
        r = self.result.record
        code = r.response_code or ""
        return {
            "result": "approved" if self.result.approved else "declined",
            "response_code": code,
            "message": rule(code).zh if language == "zh" else rule(code).en,
            "txn_id": r.id, "stan": f"{r.stan:06d}", "batch": f"{r.batch:06d}",
            "rrn": r.rrn, "auth_code": r.auth_code, "amount": r.amount,
            "amount_yuan": format_yuan(r.amount), "currency": r.currency,
            "pan_masked": r.pan_masked, "card_org": r.card_org, "entry_mode": r.entry_mode,
            "pin_entered": r.pin_entered, "receipt_printed": not self.receipt_errors,
            "receipt_errors": self.receipt_errors,
        }


def needs_pin(card: CardData, pin_given: bool) -> bool:
    """Online PIN for UnionPay cards (the domestic rule) and whenever a PIN is offered.

    Issue 4 replaces this with the card's CVM list.
    """
    return pin_given or card.card_org == "CUP"


def _pin_block(term: Terminal, card: CardData, amount: int) -> bytes:
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
    pad.display(f"¥{format_yuan(amount)}  请输入密码 / ENTER PIN")
    return pad.get_pin_block(card.pan, PIN_KEY_INDEX)


def run_sale(term: Terminal, amount: int, *, card_profile: TestCard | None = None,
             pin: str | None = None, timeout: float = 30.0) -> SaleOutcome:
    """One sale from card to receipt; the journal holds every step before the next."""
    limit = term.config["terminal"]["single_txn_limit"]
    if amount > limit:
        raise Refused(f"amount ¥{format_yuan(amount)} is over the single-transaction limit "
                      f"¥{format_yuan(limit)}")
    devices = term.devices
    if card_profile is not None:
        try:
            devices.present(card_profile, pin=pin)
        except DeviceUnavailable:
            raise InputError("--card presents a test card to mock or virtual devices; with "
                             "real devices leave it out and present the card") from None
    card = read_card(devices, interface=card_profile.interface if card_profile else None,
                     amount=amount, timeout=timeout)
    session = term.session
    session.ensure_signed_on()          # the PIN pad needs this sign-on's PIN key
    pin_block = _pin_block(term, card, amount) if needs_pin(card, pin is not None) else None
    result = session.authorize(
        TxnType.SALE,
        CardForHost(pan=card.pan, expiry=card.expiry, entry_mode=card.entry_mode(
            pin_block is not None), card_org=card.card_org, track2=card.track2,
            track3=card.track3, card_seq=card.card_seq if card.interface != "swipe" else None),
        amount, pin_block=pin_block,
        extra={k: v for k, v in (("aid", card.aid), ("label", card.label)) if v})
    errors = print_slips(term, result.record) if result.approved else []
    return SaleOutcome(result, card, errors)
