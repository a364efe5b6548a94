"""Fault knobs: one rule table that says which replies the host damages, and how.

A rule is one line of text, ``FAULT[:KEY=VALUE]...``, e.g. ``drop:mti=0200:rate=0.05`` or
``corrupt-mac:card=unionpay-debit-chip:count=1``. Faults act on the reply: the request is
processed and recorded as usual (a dropped reply to a sale means the host did approve it),
except ``close``, which closes the connection after processing and before replying, and
``forget``, which sends the approval and then loses the ledger row (a lost write).

Rules are tried in the order they were added; the first one that matches and fires acts,
so one reply gets at most one fault. Random rules draw from one seeded ``random.Random``,
and only when they match, so the same seed and the same traffic give the same faults.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from host import issuer
from host.errors import HostError
from host.sealing import mask_pan

SYNTAX = "FAULT[:card=PAN|PROFILE][:mti=NNNN][:rate=0..1][:count=N][:ms=N]"


class FaultSpecError(HostError):
    """A fault rule's text cannot be understood; the message says what is wrong."""


@dataclass(frozen=True)
class Effect:
    """What a fault does to a reply: the server applies these, never a function per fault."""

    copies: int = 1              # how many times the reply is sent (0: not at all)
    close: bool = False          # close the connection instead of replying
    wait: bool = False           # sleep the rule's ms before sending
    flip_mac: bool = False       # invert the last byte of field 64
    shift_stan: bool = False     # F11 + 1 (mod 10^6), MAC recomputed: only the STAN is wrong
    forget: bool = False         # reply as usual, then delete the request's ledger row


class Fault(Enum):
    """The fault kinds, by the name used in rule text."""

    DROP = ("drop", Effect(copies=0))
    DELAY = ("delay", Effect(wait=True))
    CORRUPT_MAC = ("corrupt-mac", Effect(flip_mac=True))
    CLOSE = ("close", Effect(copies=0, close=True))
    DUPLICATE = ("duplicate", Effect(copies=2))
    WRONG_STAN = ("wrong-stan", Effect(shift_stan=True))
    FORGET = ("forget", Effect(forget=True))

    def __init__(self, label: str, effect: Effect):
        self.label = label
        self.effect = effect

    @classmethod
    def named(cls, label: str) -> Fault:
        for fault in cls:
            if fault.label == label:
                return fault
        raise FaultSpecError(f"unknown fault {label!r}; faults: "
                             f"{', '.join(f.label for f in cls)}")


@dataclass
class Rule:
    """One row of the table. ``left`` counts down from ``count``; at 0 the rule is gone."""

    fault: Fault
    card: str | None = None       # PAN
    card_label: str | None = None  # what to show for the card: a profile name or a masked PAN
    mti: str | None = None
    rate: float = 1.0
    count: int | None = None
    delay_ms: int = 0
    left: int | None = None
    id: int = 0

    def text(self) -> str:
        """The rule as rule text, with the card masked (for logs, lists and replies)."""
        parts = [self.fault.label]
        if self.card is not None:
            parts.append(f"card={self.card_label}")
        if self.mti is not None:
            parts.append(f"mti={self.mti}")
        if self.card is None and self.mti is None:
            parts.append("any")
        if self.rate < 1:
            parts.append(f"rate={self.rate:g}")
        if self.count is not None:
            parts.append(f"count={self.count}")
        if self.fault is Fault.DELAY:
            parts.append(f"ms={self.delay_ms}")
        return ":".join(parts)

    def matches(self, mti: str, pan: str | None, has_mac: bool, approval: bool = False) -> bool:
        if self.mti is not None and mti != self.mti:
            return False
        if self.card is not None and pan != self.card:
            return False
        # Only an approved financial request has a row worth losing.
        if self.fault.effect.forget and not approval:
            return False
        # Nothing to corrupt in a reply sent without a MAC (sign-on, 97): not a match.
        return has_mac or not self.fault.effect.flip_mac

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "rule": self.text(), "fault": self.fault.label,
                "card": self.card_label, "mti": self.mti, "rate": self.rate,
                "count": self.count, "left": self.left,
                "ms": self.delay_ms if self.fault is Fault.DELAY else None}


def parse_rule(text: str) -> Rule:
    """A rule from its text; FaultSpecError (one line) names the part that is wrong."""
    text = text.strip()
    if not text:
        raise FaultSpecError(f"empty fault rule; expected {SYNTAX}")
    head, *options = text.split(":")
    rule = Rule(Fault.named(head.strip().lower()))
    seen: set[str] = set()
    for option in options:
        key, sep, value = option.partition("=")
        key, value = _ALIASES.get(key.strip().lower(), key.strip().lower()), value.strip()
        if not sep and key == "any":
            key, value = "any", ""
        elif not sep or not value:
            raise FaultSpecError(f"fault rule {text!r}: {option!r} is not KEY=VALUE "
                                 f"(expected {SYNTAX})")
        if key in seen:
            raise FaultSpecError(f"fault rule {text!r}: {key} given twice")
        seen.add(key)
        _OPTIONS.get(key, _unknown_option)(rule, key, value, text)
    if "any" in seen and seen & {"card", "mti"}:
        raise FaultSpecError(f"fault rule {text!r}: 'any' cannot be combined with card or mti")
    if rule.fault is Fault.DELAY and "ms" not in seen:
        raise FaultSpecError(f"fault rule {text!r}: delay needs ms=MILLISECONDS")
    if rule.fault is not Fault.DELAY and "ms" in seen:
        raise FaultSpecError(f"fault rule {text!r}: ms= is only for delay")
    rule.left = rule.count
    return rule


def _card(rule: Rule, _key: str, value: str, text: str) -> None:
    if value in issuer.PROFILES:
        rule.card, rule.card_label = issuer.PROFILES[value], value
    elif value.isdigit() and 12 <= len(value) <= 19:
        rule.card, rule.card_label = value, mask_pan(value)
    else:
        raise FaultSpecError(f"fault rule {text!r}: card={value} is neither a PAN (12-19 digits) "
                             f"nor a test card ({', '.join(issuer.PROFILES)})")


def _mti(rule: Rule, _key: str, value: str, text: str) -> None:
    # A request MTI: the third digit (message function) is even (0200, 0400, 0500, 0800...).
    if len(value) != 4 or not value.isdigit() or int(value[2]) % 2:
        raise FaultSpecError(f"fault rule {text!r}: mti={value} is not a request MTI "
                             "(4 digits, e.g. 0200, 0400, 0500, 0800)")
    rule.mti = value


def _rate(rule: Rule, _key: str, value: str, text: str) -> None:
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not 0 <= rate <= 1:
        raise FaultSpecError(f"fault rule {text!r}: rate={value} is not a number from 0 to 1")
    rule.rate = rate


def _whole(value: str, key: str, text: str, *, least: int) -> int:
    if not value.isdigit() or int(value) < least:
        raise FaultSpecError(f"fault rule {text!r}: {key}={value} is not a whole number "
                             f"of at least {least}")
    return int(value)


def _count(rule: Rule, key: str, value: str, text: str) -> None:
    rule.count = _whole(value, key, text, least=1)


def _ms(rule: Rule, key: str, value: str, text: str) -> None:
    rule.delay_ms = _whole(value, key, text, least=0)


def _any(rule: Rule, key: str, value: str, text: str) -> None:
    """``any``: match every message (the same as giving neither card nor mti)."""


def _unknown_option(rule: Rule, key: str, value: str, text: str) -> None:
    raise FaultSpecError(f"fault rule {text!r}: unknown option {key!r} "
                         f"(options: card, mti, any, rate, count, ms)")


_OPTIONS = {"card": _card, "mti": _mti, "rate": _rate, "count": _count, "ms": _ms,
            "any": _any}
_ALIASES = {"delay_ms": "ms", "pan": "card"}


@dataclass
class FaultTable:
    """The live rule table of one host, its random source and its counters."""

    seed: int | None = None
    rules: list[Rule] = field(default_factory=list)
    messages: int = 0
    injected: dict[str, int] = field(default_factory=lambda: {f.label: 0 for f in Fault})

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        self._next_id = 1

    def add(self, rule: Rule) -> Rule:
        rule.id, self._next_id = self._next_id, self._next_id + 1
        rule.left = rule.count
        self.rules.append(rule)
        return rule

    def clear(self) -> int:
        cleared = len(self.rules)
        self.rules.clear()
        return cleared

    def pick(self, mti: str, pan: str | None, *, has_mac: bool,
             approval: bool = False) -> Rule | None:
        """The rule that acts on this reply, counted and used up; None for a clean reply.

        ``approval``: the reply approves a financial request (``forget`` acts on no other).
        """
        for rule in self.rules:
            if not rule.matches(mti, pan, has_mac, approval):
                continue
            if rule.rate < 1 and self.random.random() >= rule.rate:
                continue
            if rule.left is not None:
                rule.left -= 1
                if rule.left <= 0:
                    self.rules.remove(rule)
            self.injected[rule.fault.label] += 1
            return rule
        return None

    def stats(self) -> dict[str, Any]:
        return {"messages": self.messages, "faults": dict(self.injected),
                "rules": len(self.rules), "seed": self.seed}
