"""A small EMV card emulator built from a test-card profile.

:class:`CardApplet` answers command APDUs the way a simple EMV card does, so mock
readers, the pcscd virtual card and the NFC card emulator all talk real APDUs:

- SELECT by name (00 A4 04 00) of the PSE ``1PAY.SYS.DDF01`` (contact) or the PPSE
  ``2PAY.SYS.DDF01`` (contactless), answering an FCI that lists the card's AID, and of the
  card's AID (a partial name is a prefix, as EMV allows), answering its FCI with a PDOL;
- GET PROCESSING OPTIONS (80 A8), format 1: AIP and one AFL entry (SFI 1, record 1);
- READ RECORD (00 B2) of SFI 1 record 1: track 2 equivalent, PAN, expiry, PAN sequence,
  cardholder name (and, with the PSE selected, its directory record).

No GENERATE AC yet: it answers 6D00 like any instruction the card does not know.
"""

from __future__ import annotations

import calendar
import logging

from hal.testcards import TestCard

__all__ = ["PPSE", "PSE", "SW_OK", "CardApplet", "tlv"]

log = logging.getLogger(__name__)

PSE = b"1PAY.SYS.DDF01"
PPSE = b"2PAY.SYS.DDF01"

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_CONDITIONS = b"\x69\x85"  # conditions of use not satisfied (e.g. GPO before SELECT)
SW_NOT_FOUND = b"\x6a\x82"  # file or application not found
SW_RECORD_NOT_FOUND = b"\x6a\x83"
SW_WRONG_P1P2 = b"\x6a\x86"
SW_DATA_NOT_FOUND = b"\x6a\x88"  # GET DATA of an object the card does not hold
SW_INS_UNKNOWN = b"\x6d\x00"
SW_CLA_UNKNOWN = b"\x6e\x00"

# Terminal data the card asks for in GPO: amount (9F02, 6), currency (5F2A, 2), UN (9F37, 4).
PDOL = bytes.fromhex("9F0206" "5F2A02" "9F3704")
_PDOL_DATA_LENGTH = 6 + 2 + 4

# AIP: cardholder verification supported, terminal risk management to be performed; no ODA.
AIP = bytes.fromhex("1800")
# AFL: SFI 1 (in the top five bits), records 1 to 1, none of them for offline data authentication.
AFL = bytes([1 << 3, 1, 1, 0])


def tlv(tag: str, *values: bytes) -> bytes:
    """One BER-TLV object: ``tag`` in hex, the values concatenated, length in short or long form."""
    value = b"".join(values)
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n <= 0xFF:
        length = b"\x81" + bytes([n])
    elif n <= 0xFFFF:
        length = b"\x82" + n.to_bytes(2, "big")
    else:
        raise ValueError(f"TLV value of {n} bytes is too long")
    return bytes.fromhex(tag) + length + value


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


class CardApplet:
    """An EMV payment application on a test card; call :meth:`reset` at each power-up."""

    def __init__(self, card: TestCard, *, contactless: bool | None = None) -> None:
        if card.interface == "swipe":
            raise ValueError(f"test card {card.name!r} is magstripe only and has no chip")
        self.card = card
        self.contactless = card.interface == "tap" if contactless is None else contactless
        self.aid = bytes.fromhex(card.aid)
        self._selected: str | None = None  # None | 'directory' | 'application'
        self._gpo_done = False

    def reset(self) -> None:
        """Power-up state: nothing selected."""
        self._selected = None
        self._gpo_done = False

    # --- the card's data ---------------------------------------------------------------

    def _entry(self) -> bytes:
        """A directory entry (tag 61) for the card's one application."""
        return tlv(
            "61",
            tlv("4F", self.aid),
            tlv("50", self.card.label.encode("ascii")),
            tlv("87", b"\x01"),
        )

    def _directory_fci(self) -> bytes:
        name = PPSE if self.contactless else PSE
        if self.contactless:
            proprietary = tlv("A5", tlv("BF0C", self._entry()))
        else:
            # The PSE names SFI 1 as its directory file (tag 88) and lists the entry as well.
            proprietary = tlv("A5", tlv("88", b"\x01"), tlv("BF0C", self._entry()))
        return tlv("6F", tlv("84", name), proprietary)

    def _application_fci(self) -> bytes:
        return tlv(
            "6F",
            tlv("84", self.aid),
            tlv(
                "A5",
                tlv("50", self.card.label.encode("ascii")),
                tlv("87", b"\x01"),
                tlv("9F38", PDOL),
            ),
        )

    def _record(self) -> bytes:
        card = self.card
        track2 = card.track2().replace("=", "D")  # the chip's copy uses D as the separator
        return tlv(
            "70",
            tlv("57", _nibbles(track2)),
            tlv("5A", _nibbles(card.pan)),
            tlv("5F24", _expiry_date(card.expiry)),
            tlv("5F34", bytes.fromhex(card.seq)),
            tlv("5F20", card.cardholder.encode("ascii")),
        )

    # --- commands ------------------------------------------------------------------------

    def transceive(self, apdu: bytes) -> bytes:
        """Answer one command APDU with response data + SW1 SW2."""
        parsed = _parse_apdu(bytes(apdu))
        if parsed is None:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2, data = parsed
        if cla not in (0x00, 0x80):
            return SW_CLA_UNKNOWN
        if (cla, ins) == (0x00, 0xA4):
            return self._select(p1, p2, data)
        if (cla, ins) == (0x80, 0xA8):
            return self._get_processing_options(p1, p2, data)
        if (cla, ins) == (0x00, 0xB2):
            return self._read_record(p1, p2)
        if (cla, ins) == (0x80, 0xCA):
            return SW_DATA_NOT_FOUND
        return SW_INS_UNKNOWN

    def _select(self, p1: int, p2: int, name: bytes) -> bytes:
        if p1 != 0x04 or p2 not in (0x00, 0x02):
            return SW_WRONG_P1P2
        if p2 == 0x02:  # "next occurrence": the card has one application only
            return SW_NOT_FOUND
        directory = PPSE if self.contactless else PSE
        if name == directory:
            self._selected, self._gpo_done = "directory", False
            return self._directory_fci() + SW_OK
        if len(name) >= 5 and self.aid.startswith(name):
            self._selected, self._gpo_done = "application", False
            return self._application_fci() + SW_OK
        self._selected = None
        return SW_NOT_FOUND

    def _get_processing_options(self, p1: int, p2: int, data: bytes) -> bytes:
        if (p1, p2) != (0x00, 0x00):
            return SW_WRONG_P1P2
        if self._selected != "application" or self._gpo_done:
            return SW_CONDITIONS
        if data[:1] != b"\x83" or len(data) < 2 or data[1] != len(data) - 2:
            return SW_WRONG_LENGTH
        if data[1] != _PDOL_DATA_LENGTH:
            return SW_WRONG_LENGTH
        self._gpo_done = True
        return tlv("80", AIP, AFL) + SW_OK

    def _read_record(self, record: int, p2: int) -> bytes:
        if record == 0 or p2 & 0x07 != 0x04:  # only "record number P1 of the SFI in P2"
            return SW_WRONG_P1P2
        sfi = p2 >> 3
        if self._selected is None:
            return SW_CONDITIONS
        # A missing record is 6A83, which is how a terminal finds the end of a file.
        if sfi != 1 or record != 1:
            return SW_RECORD_NOT_FOUND
        if self._selected == "directory":
            if self.contactless:  # the PPSE has no records
                return SW_NOT_FOUND
            return tlv("70", self._entry()) + SW_OK
        return self._record() + SW_OK


def _parse_apdu(apdu: bytes) -> tuple[int, int, int, int, bytes] | None:
    """Split a short command APDU (cases 1-4) into CLA, INS, P1, P2, data; None if malformed."""
    if len(apdu) < 4:
        return None
    header, body = apdu[:4], apdu[4:]
    if len(body) <= 1:  # case 1 (no body) or case 2 (Le only)
        data = b""
    else:
        lc = body[0]
        if lc == 0 or len(body) not in (1 + lc, 2 + lc):  # case 3, or case 4 with Le
            return None
        data = body[1 : 1 + lc]
    return header[0], header[1], header[2], header[3], data
