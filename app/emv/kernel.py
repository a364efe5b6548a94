"""One EMV transaction with one card, step by step as EMV 4.3 Book 3 10 orders them.

    kernel = EmvKernel(reader.transceive, params, contactless=False, amount=1250)
    kernel.read()                       # selection, GET PROCESSING OPTIONS, READ RECORD
    kernel.processing_restrictions()    # Book 3 10.4
    cvm = kernel.verify_cardholder(pin_pad=True)      # Book 3 10.5 (contactless: CVM limit)
    ac = kernel.cryptogram()            # risk management, action analysis, 1st GENERATE AC
    icc = kernel.field55()              # for the host
    kernel.complete(approved=True, response_code="00", issuer_data=reply_55)  # 2nd GENERATE AC

Offline data authentication (SDA/DDA/CDA) is not performed yet: the static data it would
sign is collected (:attr:`EmvKernel.static_data`) and TVR byte 1 bit 8 says "not performed".
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime

from app.emv import dol, responses, selection, tlv, tvr
from app.emv.apdu import SW_CONDITIONS, Channel
from app.emv.carddata import CardData, org_for_aid
from app.emv.errors import CardDeclined, CardError, NoSupportedApplication, TlvError
from app.emv.params import TerminalParams
from app.emv.responses import AAC, ARQC, TC, AcResponse, Fci, GpoResponse
from app.emv.selection import Candidate, Chooser

log = logging.getLogger(__name__)

#: GENERATE AC reference control parameter (P1) per requested cryptogram (Book 3 Table 12).
_P1 = {AAC: 0x00, TC: 0x40, ARQC: 0x80}
_RANK = {AAC: 0, TC: 1, ARQC: 2}

#: Field 55 for the host, in this order (issue 4 item 5; UnionPay's field 55 table).
FIELD55_TAGS = ("9F26", "9F27", "9F10", "9F37", "9F36", "95", "9A", "9C", "9F02", "5F2A",
                "82", "9F1A", "9F03", "9F33", "9F34", "9F35", "9F1E", "84", "9F09", "9F41")
#: Terminal data that goes into a cryptogram: field 55 carries it as the card saw it.
_CRYPTOGRAM_INPUTS = ("9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37")

# CVM codes (Book 3 Annex C3), low six bits of a CV Rule's first byte.
CVM_FAIL, CVM_PLAIN_PIN, CVM_ONLINE_PIN, CVM_PLAIN_PIN_SIG = 0x00, 0x01, 0x02, 0x03
CVM_ENC_PIN, CVM_ENC_PIN_SIG, CVM_SIGNATURE, CVM_NONE = 0x04, 0x05, 0x1E, 0x1F
_KNOWN_CVMS = {CVM_FAIL, CVM_PLAIN_PIN, CVM_ONLINE_PIN, CVM_PLAIN_PIN_SIG, CVM_ENC_PIN,
               CVM_ENC_PIN_SIG, CVM_SIGNATURE, CVM_NONE}
# CVM Results' third byte (Book 4 A4).
RESULT_UNKNOWN, RESULT_FAILED, RESULT_SUCCESSFUL = 0x00, 0x01, 0x02


@dataclass(frozen=True)
class CvmOutcome:
    """What cardholder verification decided: ``online_pin``, ``signature``, ``no_cvm`` or
    ``failed``; ``results`` is 9F34."""

    method: str
    results: bytes

    @property
    def online_pin(self) -> bool:
        return self.method == "online_pin"


def _bcd(number: int, size: int) -> bytes:
    return bytes.fromhex(f"{number:0{size * 2}d}")


def _date(yymmdd: bytes) -> str | None:
    """A YYMMDD date element as YYYYMMDD for comparisons (Book 4 6.7.3: YY < 50 is 20YY)."""
    text = yymmdd.hex()
    if len(text) != 6 or not text.isdigit():
        return None
    return ("20" if int(text[:2]) < 50 else "19") + text


class EmvKernel:
    """The terminal's side of one EMV transaction on ``transceive``."""

    def __init__(self, transceive, params: TerminalParams, *, contactless: bool, amount: int,
                 other_amount: int = 0, txn_type: int = 0x00, when: datetime | None = None,
                 unpredictable: bytes | None = None, sequence: int | None = None,
                 chooser: Chooser | None = None) -> None:
        self.channel = Channel(transceive)
        self.params = params
        self.contactless = contactless
        self.amount = amount
        self.chooser = chooser
        self.when = when or datetime.now()
        self.tvr = tvr.new_tvr()
        self.tsi = tvr.new_tsi()
        self.candidates: list[Candidate] = []
        self.fci: Fci | None = None
        self.gpo: GpoResponse | None = None
        self.card: dict[str, bytes] = {}             # the card's primitive data objects
        self.static_data = b""                       # for offline data authentication
        self.cvm: CvmOutcome | None = None
        self.first_ac: AcResponse | None = None
        self.second_ac: AcResponse | None = None
        self.action: str | None = None               # what terminal action analysis decided
        self._label: str | None = None
        self._preferred: str | None = None
        self._ac_inputs: dict[str, bytes] = {}
        self.terminal: dict[str, bytes] = {
            "9F02": _bcd(amount, 6), "9F03": _bcd(other_amount, 6),
            "9F1A": bytes.fromhex(params.country), "5F2A": bytes.fromhex(params.currency),
            "9A": bytes.fromhex(self.when.strftime("%y%m%d")),
            "9F21": bytes.fromhex(self.when.strftime("%H%M%S")), "9C": bytes([txn_type]),
            "9F37": unpredictable or os.urandom(4), "9F35": bytes.fromhex(params.terminal_type),
            "9F33": params.capabilities, "9F40": params.additional_capabilities,
            "9F1B": params.floor_limit.to_bytes(4, "big") if params.floor_limit < 2**32
            else b"\xff" * 4,
            "9F1C": params.terminal_id.encode("ascii"), "9F1E": params.terminal_id.encode("ascii"),
            "9F16": params.merchant_id.encode("ascii"),
            "9F39": b"\x07" if contactless else b"\x05",
            "9F34": bytes.fromhex("3F0000"),
        }
        if sequence is not None:
            self.terminal["9F41"] = _bcd(sequence % 100_000_000, 4)
        if contactless:
            self.terminal["9F66"] = self._ttq()

    # -- data -------------------------------------------------------------------------------
    def _ttq(self) -> bytes:
        """Terminal Transaction Qualifiers (EMV Book C-3 A.2, PBOC qPBOC): qVSDC and contact
        chip supported, online PIN and signature supported; online cryptogram required
        (offline contactless approvals are not taken); CVM required over the CVM limit."""
        byte1 = 0x20 | 0x10 | 0x04 | 0x02
        byte2 = 0x80 | (0x40 if self.amount > self.params.contactless_cvm_limit else 0)
        return bytes([byte1, byte2, 0x00, 0x00])

    def values(self) -> dict[str, bytes]:
        """What a data object list can ask for: the terminal's data (TVR and TSI as they are
        now) over the card's."""
        return {**self.card, **self.terminal, "95": self.tvr.value, "9B": self.tsi.value}

    @property
    def aip(self) -> bytes:
        return self.gpo.aip if self.gpo else b"\x00\x00"

    @property
    def aid(self) -> str | None:
        return self.fci.df_name if self.fci else None

    # -- reading ----------------------------------------------------------------------------
    def read(self) -> None:
        """Application selection, GET PROCESSING OPTIONS and READ RECORD for the AFL."""
        if self.contactless and self.amount > self.params.contactless_txn_limit:
            raise CardError("amount over the contactless limit: insert or swipe the card")
        self.candidates = selection.candidate_list(self.channel, self.params,
                                                   contactless=self.contactless)
        remaining = list(self.candidates)
        while True:
            if not remaining:
                raise NoSupportedApplication("card has no supported application")
            candidate = selection.choose(remaining, self.chooser)
            try:
                self.fci = selection.final_select(self.channel, candidate)
            except CardError as exc:
                # Book 1 12.4: a candidate that cannot be selected leaves the list.
                log.info("%s: choosing again", exc)
                remaining.remove(candidate)
                continue
            entry = self.params.aid_entry(self.fci.df_name) or self.params.aid_entry(candidate.aid)
            self.terminal["84"] = bytes.fromhex(self.fci.df_name)
            self.terminal["9F06"] = bytes.fromhex(entry.aid if entry else candidate.aid)
            self.terminal["9F09"] = bytes.fromhex(entry.app_version if entry else "0000")
            self._label = self.fci.label or candidate.label
            self._preferred = self.fci.preferred_name or candidate.preferred_name
            pdol = dol.fill(self.fci.pdol, self.values()) if self.fci.pdol else b""
            if self.contactless:
                self._ac_inputs = self._cryptogram_inputs()     # the quick path's AC
            answer = self.channel.get_processing_options(pdol)
            if answer.sw == SW_CONDITIONS:
                # Book 3 10.1: conditions of use not satisfied: back to the candidate list.
                log.info("card refused GPO for %s (6985): choosing again", candidate.aid)
                remaining.remove(candidate)
                continue
            if not answer.ok:
                raise CardError(f"card refused GET PROCESSING OPTIONS ({answer.sw_hex}): "
                                "try again")
            self.gpo = responses.parse_gpo(answer.data)
            break
        for tag, val in tlv.primitives(list(self.gpo.objects)):
            self.card.setdefault(tag, val)
        self.card["82"] = self.gpo.aip
        self._read_records()
        if "5A" not in self.card and "57" not in self.card:
            raise CardError("card gave no card number: try again")
        # Book 3 10.3: offline data authentication is not implemented (docs/emv.md).
        self.tvr.set(tvr.ODA_NOT_PERFORMED)

    def _read_records(self) -> None:
        assert self.gpo is not None
        seen: set[str] = set()
        static = bytearray()
        for entry in self.gpo.afl:
            for number in range(entry.first, entry.last + 1):
                answer = self.channel.read_record(entry.sfi, number)
                if not answer.ok:
                    raise CardError(f"card refused READ RECORD ({answer.sw_hex}): try again")
                objects = responses.parse_record(answer.data, entry.sfi)
                if number - entry.first < entry.oda_records:
                    # Book 3 10.3: SFI 1-10 sign the record's content, 11-30 the whole record.
                    static += objects[0].value if entry.sfi <= 10 else answer.data
                for tag, val in tlv.primitives(objects):
                    if tag in seen:
                        raise TlvError(f"card repeats data object {tag} in its records")
                    seen.add(tag)
                    self.card[tag] = val
        tag_list = self.card.get("9F4A")
        if tag_list == b"\x82":
            static += self.aip       # Book 3 10.3: the SDA tag list may only name the AIP
        self.static_data = bytes(static)

    def card_data(self) -> CardData:
        """The card as the rest of the terminal sees it."""
        track2 = self.card.get("57", b"").hex().upper().rstrip("F").replace("D", "=") or None
        pan = self.card.get("5A", b"").hex().upper().rstrip("F") or None
        if pan is None and track2:
            pan = track2.split("=")[0]
        if not pan or not pan.isdigit():
            raise CardError("card gave no card number: try again")
        expiry = self.card.get("5F24", b"").hex()[:4] or None
        if expiry is None and track2 and "=" in track2:
            expiry = track2.split("=")[1][:4] or None
        service = self.card.get("5F30", b"").hex()[1:4] or None
        if service is None and track2 and "=" in track2:
            service = track2.split("=")[1][4:7] or None
        seq = self.card.get("5F34")
        aid = self.aid or ""
        return CardData(
            interface="tap" if self.contactless else "chip", pan=pan, expiry=expiry,
            card_org=org_for_aid(aid), track2=track2,
            card_seq=f"{int(seq.hex()):03d}" if seq and seq.hex().isdigit() else None,
            aid=aid, label=self._label, service_code=service,
            preferred_name=self._preferred)

    # -- Book 3 10.4 ------------------------------------------------------------------------
    def processing_restrictions(self) -> None:
        """Application version, usage control, effective and expiry dates: TVR byte 2.

        An expired card is marked, not refused: the action codes decide (usually online,
        where the issuer answers 54)."""
        card_version = self.card.get("9F08")
        if card_version is not None and card_version != self.terminal.get("9F09"):
            self.tvr.set(tvr.DIFFERENT_APP_VERSIONS)
        auc = self.card.get("9F07")
        if auc is not None and len(auc) >= 2 and not self._usage_allowed(auc):
            self.tvr.set(tvr.SERVICE_NOT_ALLOWED)
        today = "20" + self.when.strftime("%y%m%d")
        effective = _date(self.card.get("5F25", b""))
        if effective is not None and effective > today:
            self.tvr.set(tvr.NOT_YET_EFFECTIVE)
        expiry = _date(self.card.get("5F24", b""))
        if expiry is not None and expiry < today:
            self.tvr.set(tvr.EXPIRED_APPLICATION)

    def _usage_allowed(self, auc: bytes) -> bool:
        """Book 3 10.4.2 for a sale at a terminal that is not an ATM: 'valid at terminals
        other than ATMs', then goods or services, domestic or international by the issuer
        country code (a sale here counts as goods and services: either bit allows it)."""
        if not auc[0] & 0x01:
            return False
        country = self.card.get("5F28")
        if country is None:
            return True
        if country == self.terminal["9F1A"]:
            return bool(auc[0] & (0x20 | 0x08))      # domestic goods / domestic services
        return bool(auc[0] & (0x10 | 0x04))          # international goods / services

    # -- Book 3 10.5 ------------------------------------------------------------------------
    def verify_cardholder(self, *, pin_pad: bool) -> CvmOutcome:
        """Choose the CVM: the card's CVM list (contact, or contactless over the CVM limit
        with a list), or the contactless rules (CTQ) otherwise. Sets 9F34, TVR byte 3, TSI."""
        if self.contactless:
            outcome = self._contactless_cvm(pin_pad)
        elif not self.aip[0] & 0x10:
            # AIP byte 1 bit 5: the card does not support cardholder verification.
            outcome = CvmOutcome("no_cvm", bytes.fromhex("3F0000"))
        else:
            outcome = self._cvm_list(pin_pad)
            self.tsi.set(tvr.TSI_CVM_PERFORMED)
        self.cvm = outcome
        self.terminal["9F34"] = outcome.results
        return outcome

    def _contactless_cvm(self, pin_pad: bool) -> CvmOutcome:
        """qPBOC/qVSDC: no CVM up to the contactless CVM limit; above it online PIN unless
        the card's CTQ (9F6C) asks for a signature; a card with a CVM list (M/Chip style)
        runs the list above the limit."""
        if self.amount <= self.params.contactless_cvm_limit:
            return CvmOutcome("no_cvm", bytes.fromhex("1F0002"))
        if "8E" in self.card:
            self.tsi.set(tvr.TSI_CVM_PERFORMED)
            return self._cvm_list(pin_pad)
        ctq = self.card.get("9F6C", b"\x00\x00")
        if ctq[0] & 0x80 or not ctq[0] & 0x40:
            if pin_pad and self.params.capabilities[1] & 0x40:
                self.tvr.set(tvr.ONLINE_PIN_ENTERED)
                return CvmOutcome("online_pin", bytes.fromhex("020000"))
            if not pin_pad:
                self.tvr.set(tvr.PIN_PAD_MISSING)
        if self.params.capabilities[1] & 0x20:
            return CvmOutcome("signature", bytes.fromhex("1E0000"))
        self.tvr.set(tvr.CVM_NOT_SUCCESSFUL)
        return CvmOutcome("failed", bytes.fromhex("3F0001"))

    def _condition_met(self, condition: int, method: int, x: int, y: int, pin_pad: bool) -> bool:
        """CVM condition codes (Book 3 Annex C3); amounts only in the application currency."""
        if condition == 0x00:
            return True
        if condition == 0x01 or condition == 0x04:        # unattended cash / manual cash
            return False
        if condition == 0x02:     # not unattended cash, not manual cash, not cashback
            return self.terminal["9C"] == b"\x00" and self.terminal["9F03"] == b"\x00" * 6
        if condition == 0x03:
            return self._supported(method, pin_pad)
        if condition == 0x05:                             # purchase with cashback
            return self.terminal["9C"] == b"\x09"
        if 0x06 <= condition <= 0x09:
            # Book 3 10.5: without the application currency (9F42), or in another currency,
            # the rule is skipped.
            if self.card.get("9F42") != self.terminal["5F2A"]:
                return False
            limit = x if condition in (0x06, 0x07) else y
            return self.amount < limit if condition in (0x06, 0x08) else self.amount > limit
        return False                                      # a condition not understood

    def _supported(self, method: int, pin_pad: bool) -> bool:
        caps = self.params.capabilities[1]
        if method == CVM_ONLINE_PIN:
            return bool(caps & 0x40)
        if method == CVM_SIGNATURE:
            return bool(caps & 0x20)
        if method == CVM_NONE:
            return bool(caps & 0x08)
        return False              # offline PIN: our PIN pads give online PIN blocks only

    def _cvm_list(self, pin_pad: bool) -> CvmOutcome:
        raw = self.card.get("8E")
        if raw is None or len(raw) < 10:
            # Book 3 10.5: no (or an empty) CVM list: ICC data missing, no CVM performed.
            self.tvr.set(tvr.ICC_DATA_MISSING)
            return CvmOutcome("no_cvm", bytes.fromhex("3F0000"))
        x, y = int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:8], "big")
        rules = [raw[i:i + 2] for i in range(8, len(raw) - 1, 2)]
        last: bytes | None = None
        for rule in rules:
            code, condition = rule[0], rule[1]
            method = code & 0x3F
            if not self._condition_met(condition, method, x, y, pin_pad):
                continue
            last = rule
            if method not in _KNOWN_CVMS:
                self.tvr.set(tvr.UNRECOGNISED_CVM)
            elif method == CVM_ONLINE_PIN and self._supported(method, pin_pad):
                if pin_pad:
                    self.tvr.set(tvr.ONLINE_PIN_ENTERED)
                    return CvmOutcome("online_pin", rule + bytes([RESULT_UNKNOWN]))
                self.tvr.set(tvr.PIN_PAD_MISSING)
            elif method == CVM_SIGNATURE and self._supported(method, pin_pad):
                return CvmOutcome("signature", rule + bytes([RESULT_UNKNOWN]))
            elif method == CVM_NONE and self._supported(method, pin_pad):
                return CvmOutcome("no_cvm", rule + bytes([RESULT_SUCCESSFUL]))
            if not code & 0x40:       # bit 7: apply the succeeding rule if this one fails
                break
        self.tvr.set(tvr.CVM_NOT_SUCCESSFUL)
        return CvmOutcome("failed", (last or b"\x3F\x00") + bytes([RESULT_FAILED]))

    # -- Book 3 10.6 ------------------------------------------------------------------------
    def risk_management(self) -> None:
        """Floor limit, random transaction selection and velocity checking (TVR byte 4).

        Done whatever the AIP's 'terminal risk management to be performed' bit says, as
        the payment systems ask of terminals."""
        p = self.params
        if self.amount >= p.floor_limit:
            self.tvr.set(tvr.FLOOR_LIMIT_EXCEEDED)
        elif p.random_target_percent or p.random_max_percent:
            # Book 3 10.6.2: a fixed chance below the threshold, rising towards the floor limit.
            if self.amount < p.random_threshold or p.floor_limit <= p.random_threshold:
                percent = float(p.random_target_percent)
            else:
                percent = p.random_target_percent + (
                    (p.random_max_percent - p.random_target_percent)
                    * (self.amount - p.random_threshold) / (p.floor_limit - p.random_threshold))
            if secrets.randbelow(99) + 1 <= percent:
                self.tvr.set(tvr.RANDOMLY_SELECTED)
        if "9F14" in self.card and "9F23" in self.card:
            self._velocity(int.from_bytes(self.card["9F14"], "big"),
                           int.from_bytes(self.card["9F23"], "big"))
        self.tsi.set(tvr.TSI_TERMINAL_RISK_MANAGEMENT)

    def _get_data(self, tag: str) -> int | None:
        answer = self.channel.get_data(tag)
        if not answer.ok:
            return None
        found = tlv.value(tlv.parse(answer.data), tag)
        return int.from_bytes(found, "big") if found and len(found) == 2 else None

    def _velocity(self, lower: int, upper: int) -> None:
        """Book 3 10.6.3: consecutive offline transactions = ATC - last online ATC."""
        atc, last_online = self._get_data("9F36"), self._get_data("9F13")
        if atc is None or last_online is None or atc <= last_online:
            self.tvr.set(tvr.LOWER_OFFLINE_LIMIT_EXCEEDED)
            self.tvr.set(tvr.UPPER_OFFLINE_LIMIT_EXCEEDED)
        else:
            if atc - last_online > lower:
                self.tvr.set(tvr.LOWER_OFFLINE_LIMIT_EXCEEDED)
            if atc - last_online > upper:
                self.tvr.set(tvr.UPPER_OFFLINE_LIMIT_EXCEEDED)
        if last_online == 0:
            self.tvr.set(tvr.NEW_CARD)

    # -- Book 3 10.7 ------------------------------------------------------------------------
    def action_analysis(self) -> str:
        """AAC, TC or ARQC from the TVR against the issuer's (card) and terminal's action
        codes: denial first, then online (an online-capable terminal), else default.
        A missing IAC counts as all zeros for denial and all ones otherwise."""
        card, p = self.card, self.params
        iac_denial = card.get("9F0E", b"\x00" * 5)
        iac_online = card.get("9F0F", b"\xff" * 5)
        iac_default = card.get("9F0D", b"\xff" * 5)
        if self.tvr.any_of(iac_denial) or self.tvr.any_of(p.tac_denial):
            self.action = AAC
        elif p.online_capable:
            online = self.tvr.any_of(iac_online) or self.tvr.any_of(p.tac_online)
            self.action = ARQC if online else TC
        else:
            default = self.tvr.any_of(iac_default) or self.tvr.any_of(p.tac_default)
            self.action = AAC if default else TC
        log.info("terminal action analysis: TVR %s -> %s", self.tvr.hex(), self.action)
        return self.action

    # -- Book 3 10.8: the first cryptogram ---------------------------------------------------
    def _cryptogram_inputs(self) -> dict[str, bytes]:
        values = self.values()
        return {tag: values[tag] for tag in _CRYPTOGRAM_INPUTS if tag in values}

    @property
    def quick_path(self) -> bool:
        """A contactless card that gave its cryptogram in the GPO answer."""
        return bool(self.gpo and tlv.value(list(self.gpo.objects), "9F26"))

    def cryptogram(self) -> AcResponse:
        """Terminal risk management and action analysis, then the first GENERATE AC; on
        the contactless quick path, the cryptogram the GPO answer carried."""
        self.risk_management()
        wanted = self.action_analysis()
        if self.quick_path:
            assert self.gpo is not None
            # qVSDC may leave 9F27 out of the GPO answer: the card's answer is then an ARQC.
            ac = responses.ac_from_objects(list(self.gpo.objects), 2, default_cid=0x80)
        else:
            ac = self.generate_ac(wanted)
        self.first_ac = ac
        self.tsi.set(tvr.TSI_CARD_RISK_MANAGEMENT)
        self.card.update({"9F26": ac.ac, "9F36": ac.atc, "9F27": bytes([ac.cid])})
        if ac.iad is not None:
            self.card["9F10"] = ac.iad
        log.info("card answered %s (ATC %s)", ac.kind, ac.atc.hex().upper())
        if ac.kind == AAC:
            raise CardDeclined("card declined the transaction")
        return ac

    def generate_ac(self, kind: str) -> AcResponse:
        """The first GENERATE AC with CDOL1 filled from the data the terminal holds."""
        cdol1 = self.card.get("8C")
        if cdol1 is None:
            raise CardError("card data missing (CDOL1): the card cannot make a cryptogram")
        self._ac_inputs = self._cryptogram_inputs()
        answer = self.channel.generate_ac(_P1[kind], dol.fill(cdol1, self.values()))
        if not answer.ok:
            raise CardError(f"card refused GENERATE AC ({answer.sw_hex}): try again")
        ac = responses.parse_generate_ac(answer.data)
        if _RANK[ac.kind] > _RANK[kind]:
            # Book 3 6.5.5.4: a card never answers with a higher cryptogram than asked.
            raise CardError(f"card answered {ac.kind} to a {kind} request")
        return ac

    # -- online -----------------------------------------------------------------------------
    def field55(self) -> bytes:
        """The ICC data for the host: the cryptogram and the data it was computed over, as
        the card saw them, then the terminal's and the application's identification."""
        values = {**self.values(), **self._ac_inputs}
        return tlv.encode_all((tag, values[tag]) for tag in FIELD55_TAGS if tag in values)

    def complete(self, *, approved: bool, response_code: str,
                 issuer_data: bytes | None) -> AcResponse:
        """After the host's answer: issuer authentication (91 by EXTERNAL AUTHENTICATE when
        the AIP says so, Book 3 10.9) and the second GENERATE AC with CDOL2 (Book 3 10.11),
        asking TC when the host approved and AAC when it declined."""
        scripts: list[tlv.Tlv] = []
        if issuer_data:
            objects = tlv.parse(issuer_data)
            auth = tlv.value(objects, "91")
            scripts = [o for o in objects if o.tag in ("71", "72")]
            if auth:
                self.terminal["91"] = auth
                cdol2_tags = {t for t, _ in tlv.parse_dol(self.card.get("8D", b""))}
                if "91" in cdol2_tags:
                    # The card authenticates the issuer inside the second GENERATE AC
                    # (91 in CDOL2): no EXTERNAL AUTHENTICATE then (Book 3 10.9).
                    self.tsi.set(tvr.TSI_ISSUER_AUTH_PERFORMED)
                elif self.aip[0] & 0x04:
                    answer = self.channel.external_authenticate(auth)
                    self.tsi.set(tvr.TSI_ISSUER_AUTH_PERFORMED)
                    if not answer.ok:
                        self.tvr.set(tvr.ISSUER_AUTH_FAILED)
        if scripts:
            # Issuer script processing (Book 3 10.10) is not implemented: logged only.
            log.warning("host sent %d issuer script(s): not processed", len(scripts))
        self.terminal["8A"] = response_code.encode("ascii", "replace")[:2].ljust(2, b" ")
        return self._second_generate_ac(TC if approved else AAC)

    def unable_to_go_online(self) -> AcResponse:
        """The host could not be asked: the second GENERATE AC asks AAC with the
        authorisation response code Z3 (Book 4 A6: unable to go online, offline declined)."""
        self.terminal["8A"] = b"Z3"
        return self._second_generate_ac(AAC)

    def _second_generate_ac(self, kind: str) -> AcResponse:
        cdol2 = self.card.get("8D")
        if cdol2 is None:
            raise CardError("card data missing (CDOL2): the card cannot complete")
        answer = self.channel.generate_ac(_P1[kind], dol.fill(cdol2, self.values()))
        if not answer.ok:
            raise CardError(f"card refused the second GENERATE AC ({answer.sw_hex})")
        ac = responses.parse_generate_ac(answer.data)
        if _RANK[ac.kind] > _RANK[kind] or ac.kind == ARQC:
            raise CardError(f"card answered {ac.kind} to the second GENERATE AC")
        self.second_ac = ac
        log.info("second GENERATE AC: card answered %s", ac.kind)
        return ac

    # -- for receipts and the journal -------------------------------------------------------
    def receipt_data(self) -> dict[str, str]:
        """AID, label, TVR, TSI, ATC and the cryptogram (the last one the card gave)."""
        ac = self.second_ac or self.first_ac
        data = {"aid": self.aid or "", "label": self._label or "", "tvr": self.tvr.hex(),
                "tsi": self.tsi.hex()}
        if ac is not None:
            data.update(atc=ac.atc.hex().upper(), cryptogram=ac.ac.hex().upper(),
                        cryptogram_type=ac.kind)
        if self.cvm is not None:
            data["cvm"] = self.cvm.method
        return {k: v for k, v in data.items() if v}
