"""Every transaction type through the terminal's journaled online path against posterm-host
over TCP: the journal and the host's ledger must tell the same story."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import HostSim, provision, set_config

from app.terminal import Terminal as Till
from drivers.pin_block import iso0_pin_block, tdes_encrypt
from hal.testcards import test_card
from sync import crypto
from sync.errors import HostTimeout
from sync.online import KEY_PIK, KEY_TMK, CardForHost, OriginalRef
from sync.txntypes import TxnType


def _card(name: str = "unionpay-debit-chip") -> CardForHost:
    c = test_card(name)
    return CardForHost(pan=c.pan, expiry=c.expiry, entry_mode="051", card_org=c.org,
                       track2=c.track2(), card_seq="001")


def _pin_block(till: Till, pan: str, pin: str = "123456") -> bytes:
    pik = crypto.decrypt(till.journal.get_key(KEY_TMK), till.journal.get_key(KEY_PIK))
    return tdes_encrypt(pik, iso0_pin_block(pin, pan))


@pytest.fixture
def till(tmp_path: Path, request):
    flags = getattr(request, "param", ())
    host = HostSim(tmp_path / "host", tmp_path / "host.log", *flags)
    data = tmp_path / "terminal"
    provision(data, host.address, host.data)
    set_config(data, "host", "response_timeout", 0.5)
    set_config(data, "host", "reversal_backoff", 0.05)
    with Till(data) as t:
        t.session.sign_on()
        t.host = host
        yield t
    host.stop()


def _host_row(till, stan: int, txn_type: str) -> dict:
    rows = [r for r in till.host.ledger_rows() if r["stan"] == stan and r["txn_type"] == txn_type]
    assert len(rows) == 1, rows
    return rows[0]


def test_a_void_voids_its_sale_on_both_sides_and_cannot_be_repeated(till):
    s = till.session
    sale = s.authorize(TxnType.SALE, _card(), 5000).record
    void = s.authorize(TxnType.VOID, _card(), 5000, original=OriginalRef.of(sale))
    assert void.approved and till.journal.get(sale.id).voided_by == void.record.id
    assert _host_row(till, sale.stan, "sale")["state"] == "voided"
    assert _host_row(till, void.record.stan, "void")["state"] == "approved"
    again = s.authorize(TxnType.VOID, _card(), 5000, original=OriginalRef.of(sale))
    assert again.record.response_code == "25"
    partial = s.authorize(TxnType.SALE, _card(), 700).record
    wrong = s.authorize(TxnType.VOID, _card(), 500, original=OriginalRef.of(partial))
    assert wrong.record.response_code == "13"          # a void is for the whole amount


def test_the_host_refuses_a_void_across_batches(till):
    sale = till.session.authorize(TxnType.SALE, _card(), 100).record
    till.journal.set_batch(sale.batch + 1)
    void = till.session.authorize(TxnType.VOID, _card(), 100, original=OriginalRef.of(sale))
    assert void.record.response_code == "12"


def test_refunds_up_to_what_is_left_of_the_original(till):
    s = till.session
    sale = s.authorize(TxnType.SALE, _card(), 1000).record
    first = s.authorize(TxnType.REFUND, _card(), 600, original=OriginalRef.of(sale))
    assert first.approved and first.record.reversal_state is None      # never reversed
    too_much = s.authorize(TxnType.REFUND, _card(), 500, original=OriginalRef.of(sale))
    assert too_much.record.response_code == "13"
    rest = s.authorize(TxnType.REFUND, _card(), 400, original=OriginalRef.of(sale))
    assert rest.approved
    unknown = s.authorize(TxnType.REFUND, _card(), 100,
                          original=OriginalRef(rrn="999999999999", date="0101"))
    assert unknown.record.response_code == "25"


@pytest.mark.parametrize("till", [("--fault", "drop:mti=0220:count=1")], indirect=True)
def test_a_refund_whose_answer_is_lost_is_repeated_and_counted_once(till):
    s = till.session
    sale = s.authorize(TxnType.SALE, _card(), 1000).record
    with pytest.raises(HostTimeout, match="queued"):
        s.authorize(TxnType.REFUND, _card(), 300, original=OriginalRef.of(sale))
    refund = till.journal.transactions(limit=1)[0]
    assert (refund.state, refund.advice_state) == ("PENDING", "QUEUED")
    assert s.flush_advices() == 1                      # sent again as 0221
    refund = till.journal.get(refund.id)
    assert (refund.state, refund.advice_state) == ("APPROVED", "SENT")
    rows = [r for r in till.host.ledger_rows() if r["txn_type"] == "refund"]
    assert len(rows) == 1 and rows[0]["rrn"] == refund.rrn
    assert "0221" in till.host.log_path.read_text(encoding="utf-8")


def test_balance_inquiry_needs_the_right_pin_and_moves_nothing(till):
    card = _card()
    ok = till.session.inquire_balance(card, _pin_block(till, card.pan))
    assert (ok.response_code, ok.balance) == ("00", 888_888)
    wrong = till.session.inquire_balance(card, _pin_block(till, card.pan, "000000"))
    assert (wrong.response_code, wrong.balance) == ("55", None)
    assert till.journal.transactions() == []
    assert not [r for r in till.host.ledger_rows() if r["txn_type"] != "sale"]


def test_pre_authorisation_completion_and_their_voids(till):
    s = till.session
    pre = s.authorize(TxnType.PREAUTH, _card(), 10_000).record
    assert pre.state == "APPROVED" and pre.auth_code
    over = s.authorize(TxnType.COMPLETION, _card(), 12_000, original=OriginalRef.of(pre))
    assert over.record.response_code == "61"           # more than 115% of the pre-auth
    done = s.authorize(TxnType.COMPLETION, _card(), 11_000, original=OriginalRef.of(pre))
    assert done.approved and _host_row(till, pre.stan, "preauth")["state"] == "completed"
    undo = s.authorize(TxnType.COMPLETION_VOID, _card(), 11_000,
                       original=OriginalRef.of(done.record))
    assert undo.approved and till.journal.get(done.record.id).voided_by == undo.record.id
    assert _host_row(till, pre.stan, "preauth")["state"] == "approved"
    cancel = s.authorize(TxnType.PREAUTH_VOID, _card(), 10_000, original=OriginalRef.of(pre))
    assert cancel.approved and _host_row(till, pre.stan, "preauth")["state"] == "voided"


def test_an_offline_sale_is_forwarded_once_as_an_advice(till):
    s = till.session
    offline = s.approve_offline(_card(), 800)
    assert offline.state == "APPROVED" and offline.advice_state == "QUEUED"
    assert [r for r in till.host.ledger_rows() if r["txn_type"] == "offline_sale"] == []
    s.authorize(TxnType.SALE, _card(), 100)            # advices go before the next message
    row = _host_row(till, offline.stan, "offline_sale")
    assert (row["state"], row["auth_code"], row["amount"]) == ("approved",
                                                               offline.auth_code, 800)
    assert till.journal.get(offline.id).advice_state == "SENT"


@pytest.mark.parametrize("till", [("--control", "127.0.0.1:0")], indirect=True)
def test_a_reversed_void_gives_the_sale_back(till):
    s = till.session
    sale = s.authorize(TxnType.SALE, _card(), 4000).record
    assert sale.state == "APPROVED"
    assert till.host.control("fault add drop:mti=0200:count=1").startswith("ok")
    with pytest.raises(HostTimeout, match="reversed"):
        s.authorize(TxnType.VOID, _card(), 4000, original=OriginalRef.of(sale))
    assert till.journal.get(sale.id).voided_by is None
    assert _host_row(till, sale.stan, "sale")["state"] == "approved"
