"""The terminal's EMV parameters, from the ``[emv]`` section of posterm.toml."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AidEntry:
    """One application the terminal supports (Book 1 12.3.1: the terminal's AID list)."""

    aid: str                   # hex, 5 to 16 bytes
    partial: bool = True       # ASI: a card AID that starts with this one matches too
    app_version: str = "0030"  # 9F09 for this application
    label: str = ""


#: UnionPay debit/credit/quasi-credit (and its electronic cash), Visa, Mastercard, Amex, JCB.
DEFAULT_AIDS: tuple[AidEntry, ...] = (
    AidEntry("A000000333010101", True, "0030", "UnionPay Debit"),
    AidEntry("A000000333010102", True, "0030", "UnionPay Credit"),
    AidEntry("A000000333010103", True, "0030", "UnionPay Quasi Credit"),
    AidEntry("A0000000031010", True, "0096", "Visa"),
    AidEntry("A0000000041010", True, "0002", "Mastercard"),
    AidEntry("A00000002501", True, "0001", "American Express"),
    AidEntry("A0000000651010", True, "0200", "JCB"),
)


@dataclass(frozen=True)
class TerminalParams:
    """What the terminal brings to an EMV transaction; defaults are a laptop's."""

    floor_limit: int = 0                      # fen; 9F1B
    tac_default: bytes = bytes.fromhex("DC4000A800")
    tac_denial: bytes = bytes.fromhex("0010000000")
    tac_online: bytes = bytes.fromhex("DC4004F800")
    capabilities: bytes = bytes.fromhex("606800")             # 9F33
    additional_capabilities: bytes = bytes.fromhex("6800F0F001")   # 9F40
    terminal_type: str = "22"                 # 9F35
    country: str = "0156"                     # 9F1A
    currency: str = "0156"                    # 5F2A
    contactless_cvm_limit: int = 30_000       # fen
    contactless_txn_limit: int = 500_000      # fen
    random_threshold: int = 0                 # fen
    random_target_percent: int = 0
    random_max_percent: int = 0
    aids: tuple[AidEntry, ...] = field(default=DEFAULT_AIDS)
    terminal_id: str = "00000000"             # 9F1C, and 9F1E (IFD serial) for now
    merchant_id: str = ""                     # 9F16

    @property
    def online_capable(self) -> bool:
        """Whether 9F35 says the terminal can go online: its second digit is 1 or 4 (online
        only) or 2 or 5 (offline with online capability), EMV 4.3 Book 4 Annex A1."""
        return self.terminal_type[1] in "1245"

    def aid_entry(self, card_aid: str) -> AidEntry | None:
        """The terminal's entry that ``card_aid`` matches: exact, or as a prefix when the
        entry allows partial selection (Book 1 12.3.1)."""
        card_aid = card_aid.upper()
        for entry in self.aids:
            if card_aid == entry.aid or (entry.partial and card_aid.startswith(entry.aid)):
                return entry
        return None


def params_from_config(emv: Mapping[str, Any], terminal: Mapping[str, Any]) -> TerminalParams:
    """TerminalParams from posterm.toml's validated ``[emv]`` and ``[terminal]`` tables."""
    currency = str(terminal.get("currency", "156")).rjust(4, "0")
    return TerminalParams(
        floor_limit=emv["floor_limit"], tac_default=bytes.fromhex(emv["tac_default"]),
        tac_denial=bytes.fromhex(emv["tac_denial"]), tac_online=bytes.fromhex(emv["tac_online"]),
        capabilities=bytes.fromhex(emv["terminal_capabilities"]),
        additional_capabilities=bytes.fromhex(emv["additional_capabilities"]),
        terminal_type=emv["terminal_type"], country=str(emv["country_code"]).rjust(4, "0"),
        currency=currency, contactless_cvm_limit=emv["contactless_cvm_limit"],
        contactless_txn_limit=emv["contactless_txn_limit"],
        random_threshold=emv["random_threshold"],
        random_target_percent=emv["random_target_percent"],
        random_max_percent=emv["random_max_percent"],
        aids=tuple(AidEntry(a["aid"].upper(), bool(a.get("partial", True)),
                            a.get("app_version", "0030"), a.get("label", ""))
                   for a in emv["aids"]),
        terminal_id=terminal.get("terminal_id", "00000000"),
        merchant_id=terminal.get("merchant_id", ""))
