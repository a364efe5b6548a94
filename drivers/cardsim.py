"""An EMV card emulator built from a test-card profile.

:class:`CardApplet` answers command APDUs the way an EMV card does, so mock readers, the
pcscd virtual card and the NFC card emulator all talk real APDUs:

- SELECT by name (00 A4 04 00/02): the PSE ``1PAY.SYS.DDF01`` (contact; its FCI names the
  directory's SFI in tag 88 and READ RECORD reads one ``61`` entry per record) or the PPSE
  ``2PAY.SYS.DDF01`` (contactless; every entry in the FCI), and an application by its AID
  or a prefix of it, P2 = 02 giving the next match (EMV Book 1 12.3.3). A blocked
  application answers its FCI with 6283; a card with a failed chip answers 6F00;
- GET PROCESSING OPTIONS (80 A8) with the PDOL data: format 1 (80: AIP, AFL) or 2 (77);
  the ATC is incremented here, as VSDC, M/Chip and PBOC cards do. On the contactless
  quick path (qPBOC/qVSDC, when the TTQ says the reader supports it) the answer also
  holds the cryptogram: 9F26, 9F27, 9F36, 9F10, 57, 5F34;
- READ RECORD (00 B2) of the AFL's records, GET DATA (80 CA) of 9F36 (ATC), 9F13 (last
  online ATC) and 9F17 (PIN try counter);
- GENERATE AC (80 AE): the first with CDOL1 data (ARQC when online is asked for; a TC only
  if the terminal asks for one and the card's offline limit allows it; AAC when the
  profile declines), the second with CDOL2 data, whose tag 91 (ARPC + ARC) the card
  verifies itself (the AIP does not offer EXTERNAL AUTHENTICATE, which answers 6D00): TC when the ARPC verifies, the issuer
  approved (ARC "00") and the terminal asks for a TC, else AAC.

Cryptograms follow :mod:`drivers.emv_card_crypto` (the contract the host verifies).
Offline data authentication data (certificates) is absent and the AIP claims none.
The ATC lives in the applet object: it survives :meth:`CardApplet.reset` (a power cycle)
but not a new applet.
"""

from __future__ import annotations

import hmac
import logging

from drivers import emv_card_crypto as crypto
from drivers.emv_card_data import (
    AFL,
    CONTACTLESS_PDOL,
    SCHEMES,
    application_fci,
    directory_entry,
    records,
    split_dol,
    tlv,
)
from hal.testcards import CardApplication, TestCard

__all__ = ["PPSE", "PSE", "SW_OK", "CardApplet", "tlv"]

log = logging.getLogger(__name__)

PSE = b"1PAY.SYS.DDF01"
PPSE = b"2PAY.SYS.DDF01"

SW_OK = b"\x90\x00"
SW_BLOCKED = b"\x62\x83"  # selected file invalidated: the application is blocked
SW_WRONG_LENGTH = b"\x67\x00"
SW_CONDITIONS = b"\x69\x85"  # conditions of use not satisfied (e.g. GPO before SELECT)
SW_NO_PRECISE_DIAGNOSIS = b"\x6f\x00"  # what a failing chip answers
SW_NOT_FOUND = b"\x6a\x82"  # file or application not found
SW_RECORD_NOT_FOUND = b"\x6a\x83"
SW_WRONG_P1P2 = b"\x6a\x86"
SW_DATA_NOT_FOUND = b"\x6a\x88"  # GET DATA of an object the card does not hold
SW_INS_UNKNOWN = b"\x6d\x00"
SW_CLA_UNKNOWN = b"\x6e\x00"

# AIP byte 1: cardholder verification (0x10) and terminal risk management (0x08); no
# SDA/DDA/CDA, and bit 3 (issuer authentication by EXTERNAL AUTHENTICATE) clear: the card
# takes the issuer authentication data in CDOL2 instead (EMV Book 3 10.9, C1), as M/Chip
# cards do. Byte 2 bit 8: EMV mode (Mastercard contactless, EMV Book C-2).
_AIP = bytes.fromhex("1800")
_AIP_MC_CONTACTLESS = bytes.fromhex("1880")

_TTQ_QUICK_PATH = 0x20  # TTQ byte 1 bit 6: the reader supports qVSDC/qPBOC
_PIN_TRIES = 3
_APPROVED = b"00"  # the ARC of an approval


class CardApplet:
    """An EMV card built from a test-card profile; call :meth:`reset` at each power-up."""

    def __init__(self, card: TestCard, *, contactless: bool | None = None) -> None:
        if card.interface == "swipe":
            raise ValueError(f"test card {card.name!r} is magstripe only and has no chip")
        self.card = card
        self.contactless = card.interface == "tap" if contactless is None else contactless
        self.scheme = SCHEMES[card.org]
        self.apps = card.apps()
        self.aid = bytes.fromhex(card.aid)
        self.atc = card.atc  # non-volatile: survives reset()
        self.last_online_atc = 0
        self._offline_count = 0
        self._imk = bytes.fromhex(card.imk_ac)
        self.reset()

    def reset(self) -> None:
        """Power-up state: nothing selected, no transaction under way."""
        self._selected: str | None = None  # None | 'directory' | 'application'
        self._app: CardApplication | None = None
        self._next_match = 0  # for SELECT next occurrence of a partial name
        self._last_name = b""
        self._state = "idle"  # idle | selected | gpo | online (awaiting 2nd GEN AC) | done
        self._terminal: dict[str, bytes] = {}
        self._arqc = b""

    # --- what this card looks like -------------------------------------------------------

    @property
    def pdol(self) -> str:
        return CONTACTLESS_PDOL if self.contactless else self.scheme.contact_pdol

    @property
    def aip(self) -> bytes:
        if self.contactless and self.card.org == "MCC":
            return _AIP_MC_CONTACTLESS
        return _AIP

    def _gpo_format(self) -> int:
        if self.contactless:
            return 2
        return self.card.gpo_format or self.scheme.gpo_format

    def _directory_fci(self) -> bytes:
        if self.contactless:
            entries = b"".join(directory_entry(app) for app in self.apps)
            return tlv("6F", tlv("84", PPSE), tlv("A5", tlv("BF0C", entries)))
        # The PSE's FCI names its directory file (SFI 1); the entries are in its records.
        return tlv("6F", tlv("84", PSE), tlv("A5", tlv("88", b"\x01"), tlv("5F2D", b"zhen")))

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
            return self._get_data(p1, p2)
        if (cla, ins) == (0x80, 0xAE):
            return self._generate_ac(p1, p2, data)
        return SW_INS_UNKNOWN

    def _select(self, p1: int, p2: int, name: bytes) -> bytes:
        if p1 != 0x04 or p2 not in (0x00, 0x02):
            return SW_WRONG_P1P2
        if self.card.chip_fault:
            return SW_NO_PRECISE_DIAGNOSIS
        self._selected, self._app, self._state = None, None, "idle"
        directory = PPSE if self.contactless else PSE
        if name == directory:
            if p2 == 0x02:
                return SW_NOT_FOUND
            self._selected = "directory"
            return self._directory_fci() + SW_OK
        # Partial selection: the name may be a prefix of several AIDs; P2 = 02 asks for the
        # next one after the last answered for the same name (EMV Book 1 12.3.3).
        matches = [app for app in self.apps if len(name) >= 5
                   and bytes.fromhex(app.aid).startswith(name)]
        index = self._next_match if p2 == 0x02 and name == self._last_name else 0
        self._last_name = name
        if index >= len(matches):
            return SW_NOT_FOUND
        app = matches[index]
        self._next_match = index + 1
        fci = application_fci(app, self.pdol)
        if app.blocked:
            return fci + SW_BLOCKED
        self._selected, self._app, self._state = "application", app, "selected"
        return fci + SW_OK

    def _get_processing_options(self, p1: int, p2: int, data: bytes) -> bytes:
        if (p1, p2) != (0x00, 0x00):
            return SW_WRONG_P1P2
        if self._state != "selected":
            return SW_CONDITIONS
        if data[:1] != b"\x83" or len(data) < 2 or data[1] != len(data) - 2:
            return SW_WRONG_LENGTH
        terminal = split_dol(bytes.fromhex(self.pdol), data[2:])
        if terminal is None:
            return SW_WRONG_LENGTH
        self.atc = (self.atc + 1) & 0xFFFF
        self._terminal = terminal
        self._state = "gpo"
        ttq = terminal.get("9F66", b"\x00")
        if self.contactless and self.card.quick_path and ttq[0] & _TTQ_QUICK_PATH:
            return self._quick_path(terminal) + SW_OK
        if self._gpo_format() == 1:
            return tlv("80", self.aip, AFL) + SW_OK
        return tlv("77", tlv("82", self.aip), tlv("94", AFL)) + SW_OK

    def _quick_path(self, terminal: dict[str, bytes]) -> bytes:
        """qPBOC/qVSDC: the first cryptogram in the GPO answer (always online, or AAC)."""
        assert self._app is not None
        kind = "AAC" if self.card.card_decision == "decline" else "ARQC"
        cryptogram, iad = self._cryptogram(terminal, crypto.CvrFacts(first=kind))
        self._state = "done"
        if kind == "ARQC":
            self.last_online_atc = self.atc
        track2 = self.card.track2().replace("=", "D")
        return tlv(
            "77",
            tlv("82", self.aip),
            tlv("94", AFL),
            tlv("57", bytes.fromhex(track2 + "F" * (len(track2) % 2))),
            tlv("5F34", bytes.fromhex(self._app.seq)),
            tlv("9F10", iad),
            tlv("9F26", cryptogram),
            tlv("9F27", bytes([crypto.CID[kind]])),
            tlv("9F36", self.atc.to_bytes(2, "big")),
        )

    def _read_record(self, record: int, p2: int) -> bytes:
        if record == 0 or p2 & 0x07 != 0x04:  # only "record number P1 of the SFI in P2"
            return SW_WRONG_P1P2
        sfi = p2 >> 3
        if self._selected is None:
            return SW_CONDITIONS
        if self._selected == "directory":
            if self.contactless:  # the PPSE has no records
                return SW_NOT_FOUND
            # One directory entry per record; a missing record (6A83) ends the directory.
            if sfi != 1 or record > len(self.apps):
                return SW_RECORD_NOT_FOUND
            return tlv("70", directory_entry(self.apps[record - 1])) + SW_OK
        assert self._app is not None
        found = records(self.card, self._app, self.scheme).get((sfi, record))
        if found is None:
            return SW_RECORD_NOT_FOUND
        return found + SW_OK

    def _get_data(self, p1: int, p2: int) -> bytes:
        if self._selected != "application":
            return SW_DATA_NOT_FOUND
        tag = f"{p1:02X}{p2:02X}"
        values = {"9F36": self.atc.to_bytes(2, "big"),
                  "9F13": self.last_online_atc.to_bytes(2, "big"),
                  "9F17": bytes([_PIN_TRIES])}
        if tag not in values:
            return SW_DATA_NOT_FOUND
        return tlv(tag, values[tag]) + SW_OK

    # --- GENERATE AC -----------------------------------------------------------------------

    def _generate_ac(self, p1: int, p2: int, data: bytes) -> bytes:
        # P1 bits 8-7: 00 AAC, 01 TC, 10 ARQC; bit 5 asks for CDA, which this card does not
        # support (its AIP says so) and ignores (EMV Book 3 6.5.5).
        requested = {0x00: "AAC", 0x40: "TC", 0x80: "ARQC"}.get(p1 & 0xC0)
        if requested is None or p1 & 0x2F or p2 != 0x00:
            return SW_WRONG_P1P2
        if self._state == "gpo":
            return self._first_ac(requested, data)
        if self._state == "online":
            return self._second_ac(requested, data)
        return SW_CONDITIONS

    def _first_ac(self, requested: str, data: bytes) -> bytes:
        cdol1 = split_dol(bytes.fromhex(self.scheme.cdol1), data)
        if cdol1 is None:
            return SW_WRONG_LENGTH
        # Card action analysis, simply (EMV Book 3 9.3): the card never goes further than
        # asked (AAC < TC < ARQC); it declines if the profile says so, and turns a TC into
        # an ARQC once its consecutive offline limit is used up.
        limit_exceeded = requested == "TC" and self._offline_count >= self.card.offline_limit
        if self.card.card_decision == "decline" or requested == "AAC":
            kind = "AAC"
        elif requested == "TC" and not limit_exceeded:
            kind = "TC"
        else:
            kind = "ARQC"
        facts = crypto.CvrFacts(first=kind, offline_limit_exceeded=limit_exceeded)
        cryptogram, iad = self._cryptogram(cdol1, facts)
        self._terminal = cdol1
        if kind == "ARQC":
            self._state, self._arqc = "online", cryptogram
        else:
            self._state = "done"
            if kind == "TC":
                self._offline_count += 1
        log.debug("first GENERATE AC: %s asked, %s given (ATC %d)", requested, kind, self.atc)
        return self._ac_response(kind, cryptogram, iad)

    def _second_ac(self, requested: str, data: bytes) -> bytes:
        cdol2 = split_dol(bytes.fromhex(self.scheme.cdol2), data)
        if cdol2 is None:
            return SW_WRONG_LENGTH
        assert self._app is not None
        sk = crypto.session_key(self._imk, self.card.pan, self._app.seq, self.atc)
        # Issuer authentication from tag 91 = ARPC (8) + ARC (2), ARPC method 1 (EMV Book 2
        # 8.2.1); an absent or all-zero 91 means the issuer sent none.
        issuer_data = cdol2.get("91", b"")
        performed = len(issuer_data) == 10 and any(issuer_data)
        verified = performed and hmac.compare_digest(
            crypto.arpc(sk, self._arqc, issuer_data[8:]), issuer_data[:8])
        approved = verified and issuer_data[8:] == _APPROVED
        if requested == "TC" and approved and self.card.card_decision == "online":
            kind = "TC"
        else:
            kind = "AAC"
        if verified:
            self._offline_count = 0
            self.last_online_atc = self.atc
        facts = crypto.CvrFacts(first="ARQC", second=kind,
                                issuer_auth_failed=performed and not verified,
                                issuer_auth_not_performed=not performed)
        # The second cryptogram covers the same data, with what CDOL2 sends again (TVR,
        # unpredictable number...) taking the place of the first's values.
        cryptogram, iad = self._cryptogram({**self._terminal, **cdol2}, facts)
        self._state = "done"
        log.debug("second GENERATE AC: %s asked, issuer %s, %s given", requested,
                  "verified" if verified else "not verified", kind)
        return self._ac_response(kind, cryptogram, iad)

    def _cryptogram(self, terminal: dict[str, bytes],
                    facts: crypto.CvrFacts) -> tuple[bytes, bytes]:
        """The cryptogram and the IAD that goes with it, for this ATC."""
        assert self._app is not None
        iad = crypto.iad(self.scheme.iad_format, facts)
        sk = crypto.session_key(self._imk, self.card.pan, self._app.seq, self.atc)
        data = crypto.ac_data(terminal, self.aip, self.atc, crypto.iad_cvr(iad))
        return crypto.application_cryptogram(sk, data), iad

    def _ac_response(self, kind: str, cryptogram: bytes, iad: bytes) -> bytes:
        cid = bytes([crypto.CID[kind]])
        atc = self.atc.to_bytes(2, "big")
        if (self.card.gac_format or self.scheme.gac_format) == 1:
            return tlv("80", cid, atc, cryptogram, iad) + SW_OK
        return tlv("77", tlv("9F27", cid), tlv("9F36", atc), tlv("9F26", cryptogram),
                   tlv("9F10", iad)) + SW_OK


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
