"""The card for a transaction other than a sale (refund, balance, pre-authorisation,
completion): presented, read, and turned into what the host message needs; the PIN when
the family asks for one. No cryptogram: these families go online with the card's data."""

from __future__ import annotations

from collections.abc import Callable

from app.amount import format_yuan
from app.cardread import open_card
from app.emv.carddata import CardData
from app.emv.params import params_from_config
from app.emv.selection import Chooser
from app.errors import InputError, Refused
from app.flows.pin import capture_pin
from app.terminal import Terminal
from hal.errors import DeviceUnavailable
from hal.testcards import TestCard
from sync.online import CardForHost


def needs_pin(card: CardData, pin_given: bool) -> bool:
    """For a swipe (and the families that read the card without a cryptogram): online PIN
    for UnionPay cards (the domestic rule) and whenever a PIN is offered. Chip and tap
    sales follow the card's CVM list instead (app/emv/kernel.py)."""
    return pin_given or card.card_org == "CUP"


def check_single_limit(term: Terminal, amount: int) -> None:
    """Refuse an amount over the configured single-transaction limit, before any card; and
    any transaction while the journal cannot take a write (a full or read-only disk)."""
    term.journal.check_writable()
    limit = term.config["terminal"]["single_txn_limit"]
    if amount > limit:
        raise Refused(f"amount ¥{format_yuan(amount)} is over the single-transaction limit "
                      f"¥{format_yuan(limit)}")


def present_test_card(term: Terminal, card_profile: TestCard | None, pin: str | None) -> None:
    """Hand a test card (and the PIN its holder will type) to the mock or virtual devices."""
    if card_profile is None:
        return
    try:
        term.devices.present(card_profile, pin=pin)
    except DeviceUnavailable:
        raise InputError("--card presents a test card to mock or virtual devices; with real "
                         "devices leave it out and present the card") from None


def _no_step(step: str) -> None:
    pass


def read_for_host(term: Terminal, *, amount: int | None, card_profile: TestCard | None,
                  pin: str | None, want_pin: bool | None, timeout: float = 30.0,
                  chooser: Chooser | None = None, on_step: Callable[[str], None] | None = None
                  ) -> tuple[CardData, CardForHost, bytes | None]:
    """Read the presented card and capture its PIN when ``want_pin`` (None: as for a
    swipe sale, for UnionPay cards and whenever a PIN is offered). ``chooser`` and
    ``on_step`` are run_sale's (steps 'card', 'card_read', 'pin', as app.flows.sale names
    them)."""
    step = on_step or _no_step
    devices = term.devices
    present_test_card(term, card_profile, pin)
    params = params_from_config(term.config["emv"], term.config["terminal"])
    step("card")
    with open_card(devices, interface=card_profile.interface if card_profile else None,
                   amount=amount or 0, timeout=timeout, params=params,
                   chooser=chooser) as session:
        card = session.card
    step("card_read")
    pin_block = None
    if want_pin or (want_pin is None and needs_pin(card, pin is not None)):
        term.session.ensure_signed_on()
        step("pin")
        pin_block = capture_pin(term, card.pan, amount)
    host_card = CardForHost(pan=card.pan, expiry=card.expiry,
                            entry_mode=card.entry_mode(pin_block is not None),
                            card_org=card.card_org, track2=card.track2, track3=card.track3,
                            card_seq=card.card_seq if card.interface != "swipe" else None)
    return card, host_card, pin_block
