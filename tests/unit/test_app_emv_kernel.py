"""The EMV kernel step by step against the mock readers' card (drivers.cardsim), opened
through the hal registry and presented a test card as a customer would."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pyemv.ac
import pyemv.kd
import pytest

from app.emv import tlv
from app.emv import tvr as bits
from app.emv.errors import CardDeclined, ChipFailure, NoSupportedApplication
from app.emv.kernel import FIELD55_TAGS, EmvKernel
from app.emv.params import AidEntry, TerminalParams
from hal.registry import DeviceContext, open_device
from hal.testcards import test_card

TEST_IMK_AC = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")   # the contract's test key
WHEN = datetime(2026, 5, 4, 10, 30, 0)


@pytest.fixture
def reader(tmp_path):
    """Opens a mock reader (contact or contactless) with a test card in it, powered."""
    opened = []

    def insert(name: str, **changes):
        card = replace(test_card(name), **changes) if changes else test_card(name)
        role = "contactless" if card.interface == "tap" else "card_reader"
        device = open_device(role, "mock:", context=DeviceContext(data_dir=tmp_path))
        opened.append(device)
        device.present(card)
        if role == "contactless":
            device.poll(1)
        else:
            device.wait_for_card(1)
        return device

    yield insert
    for device in opened:
        device.close()


def kernel_for(device, amount=1250, params=None, **kw) -> EmvKernel:
    contactless = device.info()["role"] == "contactless"
    return EmvKernel(device.transceive, params or TerminalParams(), contactless=contactless,
                     amount=amount, when=WHEN, unpredictable=bytes.fromhex("11223344"), **kw)


def arpc_91(card_name: str, arqc: bytes, atc: bytes, psn: str = "01", arc: bytes = b"00") -> bytes:
    """Issuer authentication data as the issuer makes it (ARPC method 1 + ARC)."""
    icc_mk = pyemv.kd.derive_icc_mk_a(TEST_IMK_AC, test_card(card_name).pan, psn)
    sk = pyemv.kd.derive_common_sk(icc_mk, atc + bytes(6))
    return tlv.encode("91", pyemv.ac.generate_arpc_1(sk, arqc, arc) + arc)


# -- selection ------------------------------------------------------------------------------

def test_pse_selection_reads_pan_expiry_aid_and_collects_static_data(reader):
    kernel = kernel_for(reader("unionpay-debit-chip"))
    kernel.read()
    card = kernel.card_data()
    assert (card.pan, card.expiry, card.aid, card.label, card.card_seq) == (
        "6226090000000048", "3012", "A000000333010101", "UnionPay Debit", "001")
    assert kernel.gpo is not None and kernel.gpo.format == 1
    assert kernel.static_data                       # AFL byte 4 names a record for ODA
    assert kernel.tvr.is_set(bits.ODA_NOT_PERFORMED)


def test_gpo_format_2_is_read_as_well(reader):
    kernel = kernel_for(reader("visa-chip", gpo_format=2))
    kernel.read()
    assert kernel.gpo.format == 2 and kernel.card_data().pan == "4761739001010010"


def test_priority_orders_the_applications_and_the_cardholder_may_choose(reader):
    first = kernel_for(reader("unionpay-dual-app"))
    first.read()
    assert [c.aid for c in first.candidates] == ["A000000333010101", "A000000333010102"]
    assert first.card_data().card_seq == "001"
    offered = []

    def cardholder(candidates):
        offered.extend(c.display for c in candidates)
        return 1

    chosen = kernel_for(reader("unionpay-dual-app"), chooser=cardholder)
    chosen.read()
    assert offered == ["UNIONPAY DEBIT", "UNIONPAY CREDIT"]
    assert (chosen.aid, chosen.card_data().card_seq) == ("A000000333010102", "002")


def test_a_blocked_application_is_skipped(reader):
    kernel = kernel_for(reader("blocked-app"))
    kernel.read()
    assert kernel.aid == "A000000333010102"


def test_partial_aid_matching_follows_the_terminal_list(reader):
    partial = TerminalParams(aids=(AidEntry("A000000333", partial=True),))
    kernel = kernel_for(reader("unionpay-debit-chip"), params=partial)
    kernel.read()
    assert kernel.aid == "A000000333010101"
    exact_only = TerminalParams(aids=(AidEntry("A000000333", partial=False),))
    with pytest.raises(NoSupportedApplication, match="no supported application"):
        kernel_for(reader("unionpay-debit-chip"), params=exact_only).read()


def test_a_card_with_no_application_of_ours_is_no_supported_application(reader):
    amex_only = TerminalParams(aids=(AidEntry("A00000002501"),))
    with pytest.raises(NoSupportedApplication):
        kernel_for(reader("visa-chip"), params=amex_only).read()
    with pytest.raises(NoSupportedApplication):
        kernel_for(reader("mc-tap"), params=amex_only).read()


def test_a_dead_chip_is_a_chip_failure(reader):
    with pytest.raises(ChipFailure):
        kernel_for(reader("chip-failure-fallback")).read()


# -- restrictions, CVM, risk management, action analysis ----------------------------------

def test_an_expired_card_is_read_and_marked_not_refused(reader):
    kernel = kernel_for(reader("expired"))
    kernel.read()
    assert kernel.card_data().expired(WHEN.date())
    kernel.processing_restrictions()
    assert kernel.tvr.is_set(bits.EXPIRED_APPLICATION)
    assert not kernel.tvr.is_set(bits.NOT_YET_EFFECTIVE)


def test_cvm_list_online_pin_then_signature_when_there_is_no_pin_pad(reader):
    kernel = kernel_for(reader("unionpay-debit-chip"))
    kernel.read()
    outcome = kernel.verify_cardholder(pin_pad=True)
    assert (outcome.method, outcome.results.hex().upper()) == ("online_pin", "420300")
    assert kernel.tvr.is_set(bits.ONLINE_PIN_ENTERED) and kernel.tsi.is_set(bits.TSI_CVM_PERFORMED)
    without_pad = kernel_for(reader("unionpay-debit-chip"))
    without_pad.read()
    outcome = without_pad.verify_cardholder(pin_pad=False)
    assert (outcome.method, outcome.results.hex().upper()) == ("signature", "1E0300")
    assert without_pad.tvr.is_set(bits.PIN_PAD_MISSING)


def test_signature_first_cvm_list_gives_signature(reader):
    kernel = kernel_for(reader("signature-cvm"))
    kernel.read()
    assert kernel.verify_cardholder(pin_pad=True).method == "signature"


def test_amount_conditions_of_the_cvm_list(reader):
    # Online PIN over X = 100.00, else no CVM (Book 3 Annex C3 conditions 07 and 00).
    cvm = "00002710" "00000000" "4207" "1F00"
    small = kernel_for(reader("unionpay-debit-chip", cvm_list=cvm), amount=5000)
    small.read()
    assert small.verify_cardholder(pin_pad=True).results.hex().upper() == "1F0002"
    big = kernel_for(reader("unionpay-debit-chip", cvm_list=cvm), amount=20000)
    big.read()
    assert big.verify_cardholder(pin_pad=True).online_pin


def test_contactless_cvm_limit_asks_online_pin_above_it(reader):
    under = kernel_for(reader("qpboc-tap"), amount=29_999)
    under.read()
    assert under.verify_cardholder(pin_pad=True).method == "no_cvm"
    over = kernel_for(reader("qpboc-tap"), amount=35_000)
    over.read()
    assert over.terminal["9F66"][1] & 0x40           # TTQ: CVM required
    assert over.verify_cardholder(pin_pad=True).online_pin


def test_floor_limit_and_action_codes_decide_the_cryptogram(reader):
    # The card's IACs go online only over the floor limit: under it the card gives a TC.
    params = TerminalParams(floor_limit=100_000, tac_online=bytes.fromhex("0000008000"),
                            tac_default=bytes(5))
    kernel = kernel_for(reader("over-floor-limit"), amount=5_000, params=params)
    kernel.read()
    kernel.processing_restrictions()
    kernel.verify_cardholder(pin_pad=True)
    ac = kernel.cryptogram()
    assert not kernel.tvr.is_set(bits.FLOOR_LIMIT_EXCEEDED)
    assert (kernel.action, ac.kind) == ("TC", "TC")
    over = kernel_for(reader("over-floor-limit"), amount=150_000, params=params)
    over.read()
    over.verify_cardholder(pin_pad=True)
    assert over.cryptogram().kind == "ARQC" and over.tvr.is_set(bits.FLOOR_LIMIT_EXCEEDED)


def test_velocity_checking_reads_atc_and_last_online_atc(reader):
    kernel = kernel_for(reader("over-floor-limit"))
    kernel.read()
    assert "9F14" in kernel.card and "9F23" in kernel.card
    kernel.risk_management()
    assert kernel.tsi.is_set(bits.TSI_TERMINAL_RISK_MANAGEMENT)
    assert kernel.tvr.is_set(bits.NEW_CARD)            # a fresh card was never online


def test_denial_codes_decline_offline(reader):
    deny_expired = TerminalParams(tac_denial=bytes.fromhex("0040000000"))
    kernel = kernel_for(reader("expired"), params=deny_expired)
    kernel.read()
    kernel.processing_restrictions()
    kernel.verify_cardholder(pin_pad=True)
    with pytest.raises(CardDeclined):
        kernel.cryptogram()
    assert kernel.action == "AAC"


# -- the cryptograms ---------------------------------------------------------------------

def test_first_and_second_generate_ac_with_issuer_authentication(reader):
    kernel = kernel_for(reader("unionpay-debit-chip"))
    kernel.read()
    kernel.processing_restrictions()
    kernel.verify_cardholder(pin_pad=True)
    arqc = kernel.cryptogram()
    assert arqc.kind == "ARQC" and len(arqc.ac) == 8
    field55 = {o.tag: o.value for o in tlv.parse(kernel.field55())}
    assert [t for t in FIELD55_TAGS if t in field55] == list(field55)
    for tag in ("9F26", "9F27", "9F10", "9F37", "9F36", "95", "9A", "9C", "9F02", "5F2A", "82",
                "9F1A", "9F03", "9F33", "9F34", "9F35", "9F1E", "84", "9F09"):
        assert tag in field55, tag
    assert field55["9F26"] == arqc.ac and field55["9F37"] == bytes.fromhex("11223344")
    assert field55["9F02"].hex() == "000000001250" and field55["9A"].hex() == "260504"
    final = kernel.complete(approved=True, response_code="00",
                            issuer_data=arpc_91("unionpay-debit-chip", arqc.ac, arqc.atc))
    assert final.kind == "TC"
    assert kernel.tsi.is_set(bits.TSI_ISSUER_AUTH_PERFORMED)
    data = kernel.receipt_data()
    assert data["cryptogram"] == final.ac.hex().upper() and data["cryptogram_type"] == "TC"


def test_a_host_decline_asks_aac_and_a_wrong_arpc_gets_aac(reader):
    declined = kernel_for(reader("unionpay-debit-chip"))
    declined.read()
    declined.verify_cardholder(pin_pad=True)
    declined.cryptogram()
    assert declined.complete(approved=False, response_code="51", issuer_data=None).kind == "AAC"
    forged = kernel_for(reader("unionpay-debit-chip"))
    forged.read()
    forged.verify_cardholder(pin_pad=True)
    forged.cryptogram()
    bad = tlv.encode("91", bytes(7) + b"\x01" + b"00")
    assert forged.complete(approved=True, response_code="00", issuer_data=bad).kind == "AAC"


def test_the_card_declines_after_approval(reader):
    kernel = kernel_for(reader("declines-after-approval"))
    kernel.read()
    kernel.verify_cardholder(pin_pad=True)
    arqc = kernel.cryptogram()
    final = kernel.complete(approved=True, response_code="00", issuer_data=arpc_91(
        "declines-after-approval", arqc.ac, arqc.atc))
    assert final.kind == "AAC"


def test_contactless_quick_path_takes_the_cryptogram_from_gpo(reader):
    device = reader("qpboc-tap")
    kernel = kernel_for(device)
    kernel.read()
    device.release()                   # the card may leave: nothing more is asked of it
    assert kernel.quick_path
    kernel.processing_restrictions()
    kernel.verify_cardholder(pin_pad=True)
    ac = kernel.cryptogram()
    assert ac.kind == "ARQC"
    field55 = {o.tag: o.value for o in tlv.parse(kernel.field55())}
    assert field55["9F26"] == ac.ac and field55["95"] == bytes(5)    # the TVR the card saw


def test_mchip_style_tap_runs_generate_ac_during_the_tap(reader):
    kernel = kernel_for(reader("mc-tap"))
    kernel.read()
    assert not kernel.quick_path
    kernel.verify_cardholder(pin_pad=True)
    assert kernel.cryptogram().kind == "ARQC"
