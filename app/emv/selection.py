"""Application selection (EMV 4.3 Book 1 12; EMV Book B for the PPSE).

Contact: the PSE and its directory records (SFI in tag 88), then, when that yields no
candidate, the list-of-AIDs method with partial selection. Contactless: the PPSE's FCI.
Candidates are ordered by their priority indicator; the cardholder chooses when several
apply (through ``choose``), otherwise the highest priority is taken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.emv import responses
from app.emv.apdu import (
    SW_BLOCKED_APP,
    SW_CARD_BLOCKED,
    SW_NOT_FOUND,
    SW_OK,
    SW_RECORD_NOT_FOUND,
    Channel,
)

#: Answers to SELECT that a working chip gives; only other answers count as a chip failure.
_SANE_SELECT = frozenset({SW_OK, SW_BLOCKED_APP, SW_NOT_FOUND, SW_CARD_BLOCKED})
from app.emv.errors import CardError, ChipFailure, NoSupportedApplication, TlvError
from app.emv.params import TerminalParams
from app.emv.responses import DirectoryEntry, Fci

log = logging.getLogger(__name__)

PSE = b"1PAY.SYS.DDF01"
PPSE = b"2PAY.SYS.DDF01"
#: Directory records are read up to 6A83; more records than this is a broken card.
MAX_DIRECTORY_RECORDS = 32
MAX_DDF_DEPTH = 4


@dataclass(frozen=True)
class Candidate:
    """A mutually supported application: the card's AID and what shows to the cardholder."""

    aid: str
    label: str | None
    preferred_name: str | None
    priority: int | None          # tag 87, the whole byte
    order: int = 0                # position on the card, for equal priorities

    @property
    def needs_confirmation(self) -> bool:
        """Bit 8 of tag 87: not to be selected without the cardholder's confirmation."""
        return bool(self.priority and self.priority & 0x80)

    @property
    def rank(self) -> tuple[int, int]:
        """Sort key: priority 1 first, 15 last, none (0) after all (Book 1 12.4)."""
        level = (self.priority or 0) & 0x0F
        return (level if level else 16, self.order)

    @property
    def display(self) -> str:
        return self.preferred_name or self.label or self.aid


#: Given the candidates in priority order, returns the index the cardholder picked.
Chooser = Callable[[Sequence[Candidate]], int]


def _candidate(entry: DirectoryEntry, order: int) -> Candidate | None:
    if entry.aid is None:
        return None
    return Candidate(entry.aid, entry.label, entry.preferred_name, entry.priority, order)


def _from_directory(channel: Channel, params: TerminalParams, fci: Fci,
                    depth: int = 0) -> list[Candidate]:
    """The PSE's (or a DDF's) directory records: every ADF entry the terminal supports."""
    found: list[Candidate] = []
    if fci.sfi is None:
        return found
    for number in range(1, MAX_DIRECTORY_RECORDS + 1):
        answer = channel.read_record(fci.sfi, number)
        if answer.sw == SW_RECORD_NOT_FOUND:
            break
        if not answer.ok:
            break
        for entry in responses.parse_directory_record(answer.data):
            if entry.ddf_name and depth < MAX_DDF_DEPTH:
                # A DDF entry names a further directory: select it and read its records.
                sub = channel.select(bytes.fromhex(entry.ddf_name))
                if sub.ok:
                    found += _from_directory(channel, params, responses.parse_fci(sub.data),
                                             depth + 1)
                continue
            cand = _candidate(entry, len(found))
            if cand and params.aid_entry(cand.aid):
                found.append(cand)
    return found


def _from_aid_list(channel: Channel, params: TerminalParams) -> list[Candidate]:
    """Book 1 12.3.3: SELECT each terminal AID; with partial selection also the next
    occurrences, until the card says there is none."""
    found: list[Candidate] = []
    for entry in params.aids:
        name = bytes.fromhex(entry.aid)
        answer = channel.select(name)
        for _ in range(16):
            if answer.sw == SW_CARD_BLOCKED:
                raise CardError("the card is blocked")
            if not (answer.ok or answer.sw == SW_BLOCKED_APP):
                break
            try:
                fci = responses.parse_fci(answer.data)
            except TlvError:
                break
            exact = fci.df_name == entry.aid
            if any(c.aid == fci.df_name for c in found):
                break                    # the card repeats itself: no further occurrence
            if answer.ok and (exact or (entry.partial and fci.df_name.startswith(entry.aid))):
                found.append(Candidate(fci.df_name, fci.label, fci.preferred_name, fci.priority,
                                       len(found)))
            elif answer.sw == SW_BLOCKED_APP:
                log.info("application %s is blocked: skipped", fci.df_name)
            if exact or not entry.partial:
                break
            answer = channel.select(name, next_occurrence=True)
    return found


def candidate_list(channel: Channel, params: TerminalParams, *, contactless: bool) -> list[Candidate]:
    """The mutually supported applications, in priority order."""
    if contactless:
        answer = channel.select(PPSE)
        if not answer.ok:
            raise NoSupportedApplication("card has no contactless payment directory (PPSE): "
                                         "insert the card")
        fci = responses.parse_fci(answer.data)
        found = [c for i, e in enumerate(fci.entries)
                 if (c := _candidate(e, i)) and params.aid_entry(c.aid)]
    else:
        answer = channel.select(PSE)
        if answer.sw == SW_CARD_BLOCKED:
            raise CardError("the card is blocked")
        found = []
        if answer.ok:
            try:
                fci = responses.parse_fci(answer.data)
                found = _from_directory(channel, params, fci)
                if not found:       # a PSE that lists its entries in the FCI itself
                    found = [c for i, e in enumerate(fci.entries)
                             if (c := _candidate(e, i)) and params.aid_entry(c.aid)]
            except TlvError as exc:
                # Book 1 12.3.2: a PSE that cannot be used sends the terminal to the AID list.
                log.info("PSE unusable (%s): trying the terminal's AID list", exc)
                found = []
        if not found:
            found = _from_aid_list(channel, params)
        if not found and not channel.answered_any(_SANE_SELECT):
            raise ChipFailure("chip read failed (the chip answers no SELECT): swipe the card")
    unique = {c.aid: c for c in reversed(found)}
    return sorted(unique.values(), key=lambda c: c.rank)


def choose(candidates: Sequence[Candidate], chooser: Chooser | None) -> Candidate:
    """Book 1 12.4: the cardholder chooses when the terminal can offer a choice (``chooser``)
    and more than one application applies, or the only one asks for confirmation; without
    a chooser the highest priority application that needs no confirmation is taken (the
    highest priority at all if every one needs it: a terminal without a cardholder display
    still sells)."""
    if not candidates:
        raise NoSupportedApplication("card has no supported application")
    ordered = sorted(candidates, key=lambda c: c.rank)
    if chooser is not None and (len(ordered) > 1 or ordered[0].needs_confirmation):
        index = chooser(ordered)
        if not 0 <= index < len(ordered):
            raise CardError(f"no application {index + 1}: choose 1 to {len(ordered)}")
        return ordered[index]
    plain = [c for c in ordered if not c.needs_confirmation]
    return (plain or ordered)[0]


def final_select(channel: Channel, candidate: Candidate) -> Fci:
    """SELECT the chosen application; CardError (the caller drops it and chooses again)
    unless the card answers 9000 with a usable FCI."""
    answer = channel.select(bytes.fromhex(candidate.aid))
    if answer.sw == SW_BLOCKED_APP:
        raise CardError(f"application {candidate.aid} is blocked")
    if not answer.ok:
        raise CardError(f"card refused to select {candidate.aid} ({answer.sw_hex})")
    return responses.parse_fci(answer.data)
