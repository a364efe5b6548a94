"""Card reading over the mock devices' APDUs, and the slip's contents."""

from __future__ import annotations

import pytest

from app.cardread import CardError, read_card
from app.receipt import MerchantInfo, sales_slip
from hal.registry import DeviceContext, open_devices
from hal.testcards import CATALOGUE
from storage.journal import TransactionRecord


@pytest.fixture
def devices(tmp_path):
    devs = open_devices({r: "mock:" for r in ("card_reader", "contactless", "pinpad", "printer")},
                        DeviceContext(data_dir=tmp_path))
    yield devs
    devs.close()


@pytest.mark.parametrize("name", sorted(n for n, c in CATALOGUE.items() if not c.chip_fault))
def test_every_test_card_reads_to_its_pan_and_expiry(devices, name):
    card = CATALOGUE[name]
    devices.present(card)
    data = read_card(devices, interface=card.interface, amount=1250, timeout=1)
    assert (data.pan, data.expiry, data.interface) == (card.pan, card.expiry, card.interface)
    assert data.card_org == card.org
    assert data.entry_mode(True) == {"chip": "051", "tap": "071", "swipe": "021"}[card.interface]
    if card.interface != "swipe":
        assert data.aid == card.aid and data.card_seq == f"{int(card.seq):03d}"
    assert data.track2 is not None and data.track2.startswith(card.pan + "=" + card.expiry)


def test_a_chip_card_is_found_without_naming_the_interface(devices):
    devices.present(CATALOGUE["visa-chip"])
    assert read_card(devices, interface=None, amount=1, timeout=0.6).pan == "4761739001010010"


def test_no_card_is_a_card_error_not_a_hang(devices):
    with pytest.raises(CardError, match="no card presented"):
        read_card(devices, interface=None, amount=1, timeout=0.3)


def _record(**kw):
    base = dict(id=1, txn_type="sale", state="APPROVED", amount=1250, currency="156", stan=12,
                batch=3, terminal_id="12345678", merchant_id="898110048990001", operator="01",
                pan_masked="622609******0048", pan_hash="x", card_org="CUP", entry_mode="051",
                card_seq="001", pin_entered=True, response_code="00", rrn="000000000012",
                auth_code="123456", settlement_date="1122", created_utc="2026-11-22T00:00:00Z",
                created_local="2026-11-22T08:00:00+08:00", updated_utc="", updated_local="",
                reversal_state="CANCELLED", reversal_reason=None, receipt_state="printed",
                original_id=None, voided_by=None, advice_state=None, extra={})
    base.update(kw)
    return TransactionRecord(**base)


@pytest.mark.parametrize("width", [32, 48])
def test_the_slip_shows_what_the_card_schemes_ask_for(width):
    merchant = MerchantInfo("测试商户", "898110048990001", "12345678")
    text = sales_slip(_record(), merchant, copy="merchant", width=width).plain_text(width)
    for needle in ("测试商户", "898110048990001", "12345678", "622609******0048", "银联 CUP",
                   "CHIP", "SALE", "000003", "000012", "123456", "000000000012",
                   "2026-11-22 08:00:00", "¥12.50", "PIN VERIFIED", "MERCHANT COPY"):
        assert needle in text, needle
    signed = sales_slip(_record(pin_entered=False), merchant, copy="merchant", width=width)
    assert "SIGNATURE" in signed.plain_text(width)
    holder = sales_slip(_record(), merchant, copy="cardholder", width=width).plain_text(width)
    assert "CARDHOLDER COPY" in holder and "PIN VERIFIED" not in holder
