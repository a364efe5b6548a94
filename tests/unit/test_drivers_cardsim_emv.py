"""The card emulator as an EMV card, over APDUs only: selection with several or blocked
applications, GPO formats and the quick path, records, GET DATA, and both GENERATE ACs.

Cryptograms and ARPCs are checked with pyemv directly, from the contract in docs/cards.md
(option A master key, common session key with R = ATC || 00..00, MAC over the recommended
data + AIP + ATC + CVR, ARPC method 1), never with the emulator's own crypto module.
"""

from __future__ import annotations

import dataclasses

import pyemv.ac
import pyemv.kd
import pytest

from drivers.cardsim import PPSE, PSE, CardApplet
from hal.testcards import CATALOGUE, TEST_IMK_AC, TestCard, test_card

IMK = bytes.fromhex(TEST_IMK_AC)
# Distinctive terminal data, so a value taken from the wrong offset changes the cryptogram.
TERMINAL = {
    "9F66": bytes.fromhex("26000080"), "9F02": bytes.fromhex("000000012345"),
    "9F03": bytes(6), "9F1A": bytes.fromhex("0156"), "95": bytes.fromhex("8000048000"),
    "5F2A": bytes.fromhex("0156"), "9A": bytes.fromhex("260315"), "9C": b"\x00",
    "9F37": bytes.fromhex("A1B2C3D4"), "9F35": b"\x22", "9F45": bytes.fromhex("0000"),
    "9F4C": bytes(8), "9F34": bytes.fromhex("420300"), "9F21": bytes.fromhex("120102"),
    "9F7C": bytes(20), "9F4E": b"TEST SHOP".ljust(20, b" "),
}
RECOMMENDED = (("9F02", 6), ("9F03", 6), ("9F1A", 2), ("95", 5), ("5F2A", 2), ("9A", 3),
               ("9C", 1), ("9F37", 4))
CHIP_PROFILES = [n for n, c in CATALOGUE.items() if c.interface != "swipe" and not c.chip_fault]


# --- an independent BER-TLV reader and DOL filler -----------------------------------------

def tlvs(data: bytes) -> list[tuple[str, bytes]]:
    """Top-level (tag, value) pairs, duplicates kept."""
    out, i = [], 0
    while i < len(data):
        start = i
        i += 1
        if data[start] & 0x1F == 0x1F:
            while data[i] & 0x80:
                i += 1
            i += 1
        tag = data[start:i].hex().upper()
        length = data[i]
        i += 1
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[i:i + n], "big")
            i += n
        out.append((tag, data[i:i + length]))
        assert len(data[i:i + length]) == length, f"{tag} truncated"
        i += length
    return out


def flat(data: bytes) -> dict[str, bytes]:
    """Every primitive tag, constructed ones opened (bit 6 of the first tag byte)."""
    out: dict[str, bytes] = {}
    for tag, value in tlvs(data):
        if bytes.fromhex(tag)[0] & 0x20:
            out.update(flat(value))
        else:
            out[tag] = value
    return out


def fill(dol: bytes, values: dict[str, bytes]) -> bytes:
    """DOL data as a terminal builds it: each value cut or zero-padded to its length."""
    out, i = b"", 0
    while i < len(dol):
        start = i
        i += 2 if dol[i] & 0x1F == 0x1F else 1
        tag, length = dol[start:i].hex().upper(), dol[i]
        i += 1
        out += values.get(tag, b"")[:length].rjust(length, b"\x00")
    return out


def apdu(header: str, data: bytes | None = None) -> bytes:
    command = bytes.fromhex(header)
    if data is not None:
        command += bytes([len(data)]) + data
    return command + b"\x00"


def ok(response: bytes) -> bytes:
    assert response[-2:] == b"\x90\x00", response[-2:].hex()
    return response[:-2]


# --- a small terminal ---------------------------------------------------------------------

class Session:
    """One card, driven the way a terminal's kernel would."""

    def __init__(self, card: TestCard | str, *, contactless: bool | None = None) -> None:
        self.card = test_card(card) if isinstance(card, str) else card
        self.applet = CardApplet(self.card, contactless=contactless)
        self.data: dict[str, bytes] = {}
        self.aid = self.card.aid

    def send(self, command: bytes) -> bytes:
        return self.applet.transceive(command)

    def select(self, aid: str | None = None) -> dict[str, bytes]:
        self.aid = aid or self.card.aid
        return flat(ok(self.send(apdu("00A40400", bytes.fromhex(self.aid)))))

    def gpo(self, **overrides: bytes) -> bytes:
        fci = self.select(self.aid)
        self.pdol_data = fill(fci.get("9F38", b""), {**TERMINAL, **overrides})
        return ok(self.send(apdu("80A80000", bytes([0x83, len(self.pdol_data)]) + self.pdol_data)))

    def read_records(self, gpo: bytes) -> dict[str, bytes]:
        afl = gpo[4:] if gpo[0] == 0x80 else flat(gpo)["94"]
        for i in range(0, len(afl), 4):
            for record in range(afl[i + 1], afl[i + 2] + 1):
                self.data.update(flat(ok(self.send(bytes([0, 0xB2, record, afl[i] | 4, 0])))))
        return self.data

    def start(self, **overrides: bytes) -> dict[str, bytes]:
        """SELECT, GPO, READ RECORD: the card's data."""
        gpo = self.gpo(**overrides)
        self.data = {}
        self.data.update(flat(gpo) if gpo[0] == 0x77 else {"82": gpo[2:4]})
        return self.read_records(gpo)

    def generate_ac(self, p1: int, dol_tag: str, values: dict[str, bytes]) -> bytes:
        body = fill(self.data[dol_tag], values)
        return self.send(apdu(f"80AE{p1:02X}00", body))

    def get_data(self, tag: str) -> bytes:
        return flat(ok(self.send(bytes.fromhex(f"80CA{tag}00"))))[tag]


def parse_ac(response: bytes) -> dict[str, bytes]:
    """Format 1 (80: CID, ATC, AC, IAD) or format 2 (77) into 9F27, 9F36, 9F26, 9F10."""
    body = ok(response)
    if body[0] == 0x80:
        value = tlvs(body)[0][1]
        return {"9F27": value[:1], "9F36": value[1:3], "9F26": value[3:11], "9F10": value[11:]}
    return flat(body)


def cvr(iad: bytes) -> bytes:
    if iad[:2] == b"\x0f\xa5":           # CCD format A: CVR in bytes 4-8
        return iad[3:8]
    assert iad[0] == 0x06 and iad[2] == 0x0A  # Visa CVN 10: CVR (03 + 3 bytes) in bytes 4-7
    return iad[3:7]


def expected_ac(card: TestCard, psn: bytes, terminal: dict[str, bytes], aip: bytes,
                atc: bytes, iad: bytes) -> bytes:
    sk = session_key(card, psn, atc)
    data = b"".join(terminal.get(t, b"")[:n].rjust(n, b"\x00") for t, n in RECOMMENDED)
    return pyemv.ac.generate_ac(sk, data + aip + atc + cvr(iad))


def session_key(card: TestCard, psn: bytes, atc: bytes) -> bytes:
    icc_mk = pyemv.kd.derive_icc_mk_a(IMK, card.pan, psn.hex())
    return pyemv.kd.derive_common_sk(icc_mk, atc + bytes(6))


def online(session: Session) -> dict[str, bytes]:
    """Start a transaction and ask for an ARQC: the first GENERATE AC's answer."""
    session.start()
    return parse_ac(session.generate_ac(0x80, "8C", TERMINAL))


def issuer_data(session: Session, first: dict[str, bytes], arc: bytes = b"00") -> bytes:
    sk = session_key(session.card, session.data["5F34"], first["9F36"])
    return pyemv.ac.generate_arpc_1(sk, first["9F26"], arc) + arc


# --- selection ----------------------------------------------------------------------------

def test_dual_app_pse_directory_lists_both_applications_one_per_record():
    s = Session("unionpay-dual-app")
    fci = flat(ok(s.send(apdu("00A40400", PSE))))
    sfi = fci["88"][0]
    entries = []
    for record in range(1, 10):
        answer = s.send(bytes([0, 0xB2, record, sfi << 3 | 4, 0]))
        if answer == b"\x6a\x83":
            break
        entries.append(flat(ok(answer)))
    assert [(e["4F"].hex().upper(), e["50"], e["87"]) for e in entries] == [
        ("A000000333010101", b"UnionPay Debit", b"\x01"),
        ("A000000333010102", b"UnionPay Credit", b"\x02")]
    assert entries[1]["9F12"] == b"UNIONPAY CREDIT"


def test_dual_app_ppse_has_one_61_entry_per_application():
    s = Session("unionpay-dual-app", contactless=True)
    fci = ok(s.send(apdu("00A40400", PPSE)))
    [(_, body)] = tlvs(fci)
    a5 = dict(tlvs(body))["A5"]
    entries = [flat(value) for tag, value in tlvs(dict(tlvs(a5))["BF0C"]) if tag == "61"]
    assert [(e["4F"].hex().upper(), e["87"]) for e in entries] == [
        ("A000000333010101", b"\x01"), ("A000000333010102", b"\x02")]


def test_partial_aid_selects_each_match_in_turn_then_not_found():
    s = Session("unionpay-dual-app")
    rid = bytes.fromhex("A000000333")
    first = flat(ok(s.send(apdu("00A40400", rid))))
    second = flat(ok(s.send(apdu("00A40402", rid))))
    assert (first["84"].hex().upper(), second["84"].hex().upper()) == (
        "A000000333010101", "A000000333010102")
    assert s.send(apdu("00A40402", rid)) == b"\x6a\x82"


def test_each_application_of_the_dual_card_has_its_own_pan_sequence_number():
    for aid, psn in (("A000000333010101", b"\x01"), ("A000000333010102", b"\x02")):
        s = Session("unionpay-dual-app")
        s.aid = aid
        assert s.start()["5F34"] == psn


def test_blocked_application_answers_6283_and_cannot_be_used_the_other_can():
    s = Session("blocked-app")
    answer = s.send(apdu("00A40400", bytes.fromhex("A000000333010101")))
    assert answer[-2:] == b"\x62\x83"
    assert flat(answer[:-2])["84"] == bytes.fromhex("A000000333010101")  # the FCI still comes
    assert s.send(apdu("80A80000", bytes.fromhex("830C") + bytes(12))) == b"\x69\x85"
    s.aid = "A000000333010102"
    assert s.start()["5A"].hex().upper().rstrip("F") == s.card.pan


def test_failed_chip_answers_6f00_to_every_select():
    s = Session("chip-failure-fallback")
    for name in (PSE, bytes.fromhex(s.card.aid), bytes.fromhex("A000000333")):
        assert s.send(apdu("00A40400", name)) == b"\x6f\x00"
    assert s.send(apdu("80A80000", bytes.fromhex("830C") + bytes(12))) == b"\x69\x85"


# --- GPO, records, GET DATA ---------------------------------------------------------------

@pytest.mark.parametrize("name, pdol, fmt", [
    ("unionpay-debit-chip", "9F02065F2A029F3704", 0x80),
    ("visa-chip", None, 0x80),
    ("mc-tap", "9F66049F02069F03069F1A0295055F2A029A039C019F3704", 0x77),
])
def test_pdol_and_gpo_answer_format_per_scheme(name, pdol, fmt):
    s = Session(name)
    assert s.select().get("9F38", b"").hex().upper() == (pdol or "")
    gpo = s.gpo()
    assert gpo[0] == fmt
    if fmt == 0x77:
        assert set(flat(gpo)) == {"82", "94"}   # the full path: no cryptogram yet


def test_gpo_data_of_the_wrong_length_is_6700():
    s = Session("mc-tap")
    s.select()
    assert s.send(apdu("80A80000", bytes.fromhex("830C") + bytes(12))) == b"\x67\x00"


def test_quick_path_gpo_carries_an_arqc_that_verifies_over_the_pdol_data():
    s = Session("qpboc-tap")
    answer = s.gpo()
    gpo = flat(answer)
    assert {"82", "94", "57", "5F34", "9F10", "9F26", "9F27", "9F36"} <= set(gpo)
    assert gpo["9F27"] == b"\x80"
    assert gpo["57"].hex().upper().startswith(s.card.pan + "D3012201")
    assert gpo["9F26"] == expected_ac(s.card, gpo["5F34"], TERMINAL, gpo["82"], gpo["9F36"],
                                      gpo["9F10"])
    # The records can still be read (the card may leave the field afterwards); no GEN AC.
    assert s.read_records(answer)["5A"].hex().upper().rstrip("F") == s.card.pan
    assert s.send(apdu("80AE8000", bytes(52))) == b"\x69\x85"


def test_quick_path_card_answers_the_full_path_when_the_reader_cannot_do_it():
    s = Session("qpboc-tap")
    gpo = flat(s.gpo(**{"9F66": bytes(4)}))
    assert set(gpo) == {"82", "94"}
    s.start(**{"9F66": bytes(4)})
    assert parse_ac(s.generate_ac(0x80, "8C", TERMINAL))["9F27"] == b"\x80"


REQUIRED_RECORD_TAGS = {"5A", "57", "5F24", "5F25", "5F28", "5F30", "5F34", "5F20", "8C", "8D",
                        "8E", "9F07", "9F08", "9F0D", "9F0E", "9F0F", "9F42", "9F4A"}


@pytest.mark.parametrize("name", CHIP_PROFILES)
def test_every_chip_profile_reads_its_records_per_the_afl(name):
    s = Session(name)
    data = s.start()
    assert REQUIRED_RECORD_TAGS <= set(data)
    assert data["5A"].hex().upper().rstrip("F") == s.card.pan
    assert data["5F24"].hex()[:4] == s.card.expiry
    assert data["5F30"].hex()[1:] == s.card.service_code
    assert data["8E"].hex().upper() == s.card.cvm_list
    assert (data["9F0D"] + data["9F0E"] + data["9F0F"]).hex().upper() == \
        s.card.iac_default + s.card.iac_denial + s.card.iac_online


def test_expired_card_reads_with_its_expiry_in_the_past_and_signature_card_asks_signature():
    data = Session("expired").start()
    assert data["5F24"] == bytes.fromhex("210131") and data["5F25"] < data["5F24"]
    cvm = Session("signature-cvm").start()["8E"]
    assert cvm[8:10] == bytes.fromhex("1E03")  # first rule: signature, if the terminal can


def test_get_data_answers_atc_last_online_atc_and_pin_try_counter():
    s = Session("visa-chip")
    s.select()
    assert s.get_data("9F36") == bytes.fromhex("0000")
    assert s.get_data("9F17") == b"\x03"
    assert s.get_data("9F13") == bytes.fromhex("0000")


# --- GENERATE AC ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in CHIP_PROFILES if not CATALOGUE[n].quick_path])
def test_first_generate_ac_gives_an_arqc_that_verifies_independently(name):
    s = Session(name)
    first = online(s)
    assert first["9F27"] == b"\x80"
    assert first["9F26"] == expected_ac(s.card, s.data["5F34"], TERMINAL, s.data["82"],
                                        first["9F36"], first["9F10"])
    types = cvr(first["9F10"])[1 if s.card.org == "VIS" else 0]
    assert types & 0xF0 == 0xA0    # ARQC at the first GENERATE AC, the second not yet asked


@pytest.mark.parametrize("name, fmt", [("unionpay-debit-chip", 0x80), ("visa-chip", 0x80),
                                       ("mc-tap", 0x77)])
def test_generate_ac_answer_format_and_iad_per_scheme(name, fmt):
    s = Session(name)
    s.start()
    response = s.generate_ac(0x80, "8C", TERMINAL)
    assert response[0] == fmt
    iad = parse_ac(response)["9F10"]
    if s.card.org == "VIS":
        assert iad[:4] == bytes.fromhex("06010A03") and iad[4] == 0xA0  # ARQC, 2nd not asked
    else:
        assert iad[:3] == bytes.fromhex("0FA501") and iad[3] == 0xA0 and len(iad) == 32


def test_atc_increments_once_per_transaction_and_survives_a_power_cycle():
    s = Session("unionpay-debit-chip")
    atcs = []
    for _ in range(3):
        first = online(s)
        second = parse_ac(s.generate_ac(0x40, "8D", {**TERMINAL, "91": issuer_data(s, first),
                                                     "8A": b"00"}))
        assert second["9F36"] == first["9F36"]          # one transaction, one ATC
        assert s.get_data("9F36") == first["9F36"]
        assert s.get_data("9F13") == first["9F36"]      # last online ATC
        atcs.append(int.from_bytes(first["9F36"], "big"))
        s.applet.reset()
    assert atcs == [1, 2, 3]


def test_cdol1_data_is_cut_by_the_cards_own_cdol1_with_two_byte_tags():
    s = Session("mc-tap")          # CDOL1 with 9F35, 9F45, 9F4C, 9F34, 9F21, 9F7C after the head
    s.start()
    assert len(fill(s.data["8C"], TERMINAL)) == 29 + 1 + 2 + 8 + 3 + 3 + 20
    other = {**TERMINAL, "9F7C": b"\xff" * 20, "9F35": b"\x14"}  # not in the cryptogram
    first = parse_ac(s.generate_ac(0x80, "8C", other))
    assert first["9F26"] == expected_ac(s.card, s.data["5F34"], other, s.data["82"],
                                        first["9F36"], first["9F10"])


@pytest.mark.parametrize("name", ["unionpay-debit-chip", "visa-chip", "mc-tap",
                                  "unionpay-dual-app", "over-floor-limit"])
def test_second_generate_ac_with_a_valid_arpc_and_approval_is_a_tc(name):
    s = Session(name)
    first = online(s)
    cdol2 = {**TERMINAL, "91": issuer_data(s, first), "8A": b"00"}
    second = parse_ac(s.generate_ac(0x40, "8D", cdol2))
    assert second["9F27"] == b"\x40"
    # The TC covers the same data with CDOL2's values, and a CVR that says "TC at the second".
    assert second["9F26"] == expected_ac(s.card, s.data["5F34"], cdol2, s.data["82"],
                                         second["9F36"], second["9F10"])
    assert s.send(apdu("80AE4000", fill(s.data["8D"], cdol2))) == b"\x69\x85"  # no third


@pytest.mark.parametrize("tamper", ["arpc", "arc"])
def test_second_generate_ac_with_a_tampered_91_is_an_aac_with_issuer_auth_failed(tamper):
    s = Session("unionpay-debit-chip")
    first = online(s)
    good = issuer_data(s, first)
    bad = bytes([good[0] ^ 1]) + good[1:] if tamper == "arpc" else good[:8] + b"51"
    second = parse_ac(s.generate_ac(0x40, "8D", {**TERMINAL, "91": bad, "8A": b"00"}))
    assert second["9F27"] == b"\x00"
    ccd_cvr = cvr(second["9F10"])
    assert ccd_cvr[0] & 0x01                       # issuer authentication failed
    assert ccd_cvr[0] >> 6 == 0b00                 # AAC at the second GENERATE AC


def test_a_verified_decline_or_no_issuer_data_is_an_aac():
    s = Session("visa-chip")
    first = online(s)
    declined = parse_ac(s.generate_ac(0x40, "8D", {**TERMINAL, "91": issuer_data(s, first, b"51"),
                                                   "8A": b"51"}))
    assert declined["9F27"] == b"\x00"
    online(s)
    unauthenticated = parse_ac(s.generate_ac(0x40, "8D", {**TERMINAL, "8A": b"00"}))
    assert unauthenticated["9F27"] == b"\x00"
    assert cvr(unauthenticated["9F10"])[2] & 0x04   # Visa: issuer authentication not performed


def test_card_declines_after_the_host_approved():
    s = Session("declines-after-approval")
    first = online(s)
    assert first["9F27"] == b"\x80"
    second = parse_ac(s.generate_ac(0x40, "8D", {**TERMINAL, "91": issuer_data(s, first),
                                                 "8A": b"00"}))
    assert second["9F27"] == b"\x00"
    assert second["9F26"] == expected_ac(s.card, s.data["5F34"], TERMINAL, s.data["82"],
                                         second["9F36"], second["9F10"])


def test_a_card_that_declines_answers_aac_to_an_arqc_request():
    s = Session(dataclasses.replace(test_card("unionpay-debit-chip"), card_decision="decline"))
    assert online(s)["9F27"] == b"\x00"
    assert s.send(apdu("80AE4000", bytes(8))) == b"\x69\x85"  # the transaction is over


def test_tc_only_where_the_card_agrees_to_offline():
    online_only = Session("unionpay-debit-chip")
    online_only.start()
    assert parse_ac(online_only.generate_ac(0x40, "8C", TERMINAL))["9F27"] == b"\x80"
    s = Session("over-floor-limit")               # agrees to 3 offline TCs in a row
    kinds = []
    for _ in range(4):
        s.start()
        first = parse_ac(s.generate_ac(0x40, "8C", TERMINAL))
        kinds.append(first["9F27"])
        s.applet.reset()
    assert kinds == [b"\x40"] * 3 + [b"\x80"]
    assert cvr(first["9F10"])[2] & 0x80           # lower consecutive offline limit exceeded
    s.start()
    assert parse_ac(s.generate_ac(0x00, "8C", TERMINAL))["9F27"] == b"\x00"  # AAC asked


def test_generate_ac_with_rfu_p1_is_6a86():
    s = Session("visa-chip")
    s.start()
    assert s.generate_ac(0xC0, "8C", TERMINAL) == b"\x6a\x86"


def test_issuer_authentication_is_in_cdol2_not_external_authenticate():
    s = Session("unionpay-debit-chip")
    first = online(s)
    assert not s.data["82"][0] & 0x04                      # AIP: no EXTERNAL AUTHENTICATE
    assert s.data["8D"].startswith(bytes.fromhex("8A02910A"))
    assert s.send(apdu("00820000", issuer_data(s, first))) == b"\x6d\x00"


def test_only_a_card_that_allows_offline_carries_velocity_limits():
    assert {"9F14": b"\x03", "9F23": b"\x05"}.items() <= Session("over-floor-limit").start().items()
    assert not {"9F14", "9F23"} & set(Session("unionpay-debit-chip").start())
