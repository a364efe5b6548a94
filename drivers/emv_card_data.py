"""What an emulated EMV card holds: its schemes' usual personalisation, FCIs, records, DOLs.

A test-card profile (:mod:`hal.testcards`) names the scheme and the few things that make
it special; :data:`SCHEMES` fills in what a real card of that scheme usually carries
(PDOL, CDOL1/CDOL2, response formats, IAD format, version, country, currency). The
builders here are pure: :mod:`drivers.cardsim` turns them into APDU answers.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass

from hal.testcards import CardApplication, TestCard
from hal.tlv import encode as tlv

__all__ = [
    "AFL",
    "CONTACTLESS_PDOL",
    "SCHEMES",
    "Scheme",
    "application_fci",
    "directory_entry",
    "dol_entries",
    "records",
    "split_dol",
    "tlv",
]

#: The contactless PDOL of qPBOC/qVSDC cards: TTQ, amounts, country, TVR, currency,
#: date, type, unpredictable number.
CONTACTLESS_PDOL = "9F6604" "9F0206" "9F0306" "9F1A02" "9505" "5F2A02" "9A03" "9C01" "9F3704"

# CDOL1 always starts with the 29 bytes of EMV Book 2 A1.2's recommended terminal data;
# what follows is scheme-specific and not in the cryptogram.
_CDOL1_HEAD = "9F0206" "9F0306" "9F1A02" "9505" "5F2A02" "9A03" "9C01" "9F3704"


@dataclass(frozen=True)
class Scheme:
    """A scheme's usual card personalisation."""

    contact_pdol: str  # hex; empty: no PDOL (GPO data is 83 00)
    gpo_format: int  # contact GPO answer: 1 (tag 80) or 2 (tag 77)
    gac_format: int  # GENERATE AC answer: 1 or 2
    iad_format: str  # 'ccd' | 'visa-cvn10'
    cdol1: str
    cdol2: str
    version: str  # 9F08
    country: str  # 5F28
    currency: str  # 9F42


SCHEMES: dict[str, Scheme] = {
    # PBOC/UICS: a short PDOL, format 1 answers, merchant name (9F4E) in CDOL1.
    "CUP": Scheme(
        contact_pdol="9F0206" "5F2A02" "9F3704", gpo_format=1, gac_format=1, iad_format="ccd",
        cdol1=_CDOL1_HEAD + "9F2103" "9F4E14", cdol2="8A02" "910A" "9505" "9F3704",
        version="0030", country="0156", currency="0156"),
    # VSDC: no PDOL, format 1 answers, CDOL2 repeats the transaction data.
    "VIS": Scheme(
        contact_pdol="", gpo_format=1, gac_format=1, iad_format="visa-cvn10",
        cdol1=_CDOL1_HEAD + "9F3403" "9F3501",
        cdol2="8A02" "910A" + _CDOL1_HEAD,
        version="0096", country="0840", currency="0840"),
    # M/Chip: format 2 answers, a long CDOL1 (terminal type, capabilities, ICC dynamic
    # number, CVM results, time, merchant custom data).
    "MCC": Scheme(
        contact_pdol="", gpo_format=2, gac_format=2, iad_format="ccd",
        cdol1=_CDOL1_HEAD + "9F3501" "9F4502" "9F4C08" "9F3403" "9F2103" "9F7C14",
        cdol2="910A" "8A02" "9505" "9F3704" "9F4C08",
        version="0002", country="0840", currency="0840"),
}


def dol_entries(dol: bytes) -> list[tuple[str, int]]:
    """A data object list as (tag in hex, length) pairs (EMV Book 3 5.4)."""
    out, i = [], 0
    while i < len(dol):
        start = i
        i += 1
        if dol[start] & 0x1F == 0x1F:  # multi-byte tag: more bytes while bit 8 is set
            while dol[i] & 0x80:
                i += 1
            i += 1
        out.append((dol[start:i].hex().upper(), dol[i]))
        i += 1
    return out


def split_dol(dol: bytes, data: bytes) -> dict[str, bytes] | None:
    """The terminal's DOL data cut into the card's DOL's tags; None if the length is wrong."""
    entries = dol_entries(dol)
    if sum(length for _, length in entries) != len(data):
        return None
    out, i = {}, 0
    for tag, length in entries:
        out[tag] = data[i:i + length]
        i += length
    return out


def _nibbles(digits: str) -> bytes:
    """Digits (and 'D' separators) as packed nibbles, padded with F to a whole byte."""
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits)


def _expiry_date(yymm: str) -> bytes:
    """YYMM as the YYMMDD of the month's last day (tag 5F24)."""
    year, month = 2000 + int(yymm[:2]), int(yymm[2:])
    last_day = calendar.monthrange(year, month)[1]
    return bytes.fromhex(f"{yymm}{last_day:02d}")


def directory_entry(app: CardApplication) -> bytes:
    """An application's directory entry (tag 61) in the PSE's records or the PPSE's FCI."""
    preferred = tlv("9F12", app.preferred_name.encode("ascii")) if app.preferred_name else b""
    return tlv("61", tlv("4F", bytes.fromhex(app.aid)), tlv("50", app.label.encode("ascii")),
               preferred, tlv("87", bytes([app.priority])))


def application_fci(app: CardApplication, pdol: str) -> bytes:
    """The FCI of an application's SELECT (EMV Book 1 11.3.4): DF name, label, priority,
    language, PDOL if any."""
    proprietary = [tlv("50", app.label.encode("ascii")), tlv("87", bytes([app.priority]))]
    if pdol:
        proprietary.append(tlv("9F38", bytes.fromhex(pdol)))
    proprietary.append(tlv("5F2D", b"zhen"))
    if app.preferred_name:
        proprietary += [tlv("9F11", b"\x01"), tlv("9F12", app.preferred_name.encode("ascii"))]
    return tlv("6F", tlv("84", bytes.fromhex(app.aid)), tlv("A5", *proprietary))


def records(card: TestCard, app: CardApplication, scheme: Scheme) -> dict[tuple[int, int], bytes]:
    """The application's records by (SFI, record number); see :data:`AFL` for the files."""
    track2 = card.track2().replace("=", "D")  # the chip's copy uses D as the separator
    sfi1 = tlv(
        "70",
        tlv("57", _nibbles(track2)),
        tlv("5A", _nibbles(card.pan)),
        tlv("5F24", _expiry_date(card.expiry)),
        tlv("5F34", bytes.fromhex(app.seq)),
        tlv("5F20", card.cardholder.encode("ascii")),
    )
    risk = tlv(
        "70",
        tlv("5F25", bytes.fromhex(card.effective)),
        tlv("5F28", bytes.fromhex(scheme.country)),
        tlv("5F30", bytes.fromhex(card.service_code.zfill(4))),
        tlv("9F07", bytes.fromhex("FF00")),  # usage control: valid everywhere, no cashback
        tlv("9F08", bytes.fromhex(scheme.version)),
        tlv("9F42", bytes.fromhex(scheme.currency)),
        tlv("8E", bytes.fromhex(card.cvm_list)),
        tlv("9F0D", bytes.fromhex(card.iac_default)),
        tlv("9F0E", bytes.fromhex(card.iac_denial)),
        tlv("9F0F", bytes.fromhex(card.iac_online)),
        tlv("9F4A", b"\x82"),  # the static data to authenticate includes the AIP
    )
    # An online-only card (no offline limit) carries no velocity limits, so the terminal
    # skips velocity checking (EMV Book 3 10.6.3).
    velocity = (tlv("9F14", bytes([card.offline_limit])),
                tlv("9F23", bytes([card.offline_upper_limit]))) if card.offline_limit else ()
    dols = tlv("70", tlv("8C", bytes.fromhex(scheme.cdol1)), tlv("8D", bytes.fromhex(scheme.cdol2)),
               *velocity)
    return {(1, 1): sfi1, (2, 1): risk, (2, 2): dols}


#: AFL (EMV Book 3 10.2): SFI 1 record 1 (signed for offline data authentication), SFI 2
#: records 1 to 2.
AFL = bytes([1 << 3, 1, 1, 1, 2 << 3, 1, 2, 0])
