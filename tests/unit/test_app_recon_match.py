"""The matching engine: every statement line and every expected journal row lands in exactly
one class, by the rules of issue 7 (keys, duplicates, probable pairs, refunds' signs, fees,
the summary check, other terminals)."""

from __future__ import annotations

import os
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from app.recon.match import Matcher, _Fees
from app.recon.model import CLASSES, StatementLine, SummaryFigures, Unparseable
from storage.journal import Journal, NewTransaction
from storage.recon import ReconBook
from sync.fees import FeeSchedule

TID, MID = "12345678", "898110048990001"
CARD = "622609******0048"
_STATE = {"settled": 0, "voided": 0, "reversed": 1, "declined": 2, "pending": 3, "failed": 4}
D0 = FeeSchedule.from_texts("D0", "0.60%", "0.38%", "0.10%", 200)


def row(txn_id, amount, *, rrn=None, stan=None, batch=1, date="2026-11-20", time="14:30:00",
        status="settled", closed=True, txn_type="sale", entry="051", card=CARD, terminal=TID):
    """A journal row as ReconBook.journal_rows yields it (amount positive as stored)."""
    stan = txn_id if stan is None else stan
    key = ((batch * 1_000_000 + stan) * 64 + _STATE[status] * 4 + (status == "voided") * 2
           + int(closed))
    rrn = f"{txn_id:012d}" if rrn is None else (rrn or None)
    return (txn_id, rrn, amount, f"{date}T{time}+08:00", card, key, terminal, txn_type, entry)


def line(line_no, amount, *, rrn=None, stan=None, batch=1, date="2026-11-20", time="14:30:00",
         status="settled", terminal=TID, merchant=MID, card=CARD, fee=None, net=None, **more):
    return StatementLine(line_no, amount, terminal_id=terminal, merchant_id=merchant,
                         date=date, time=time, stan=stan, batch=batch, rrn=rrn,
                         card_masked=card, card_last4=card[-4:] if card else None,
                         status=status, fee=fee, net=net, **more)


def run(rows, lines, summary=None, fees=None, **options):
    matcher = Matcher(rows, terminal_id=TID, merchant_id=MID, fees=fees or FeeSchedule(),
                      **options)
    matcher.feed_many(lines)
    return matcher, matcher.finish(summary)


def only(outcome, cls):
    return [item for item in outcome.items if item.cls == cls]


def test_lines_found_by_rrn_are_matched_and_only_counted():
    _, out = run([row(1, 100), row(2, 250)],
                 [line(2, 100, rrn="000000000001"), line(3, 250, rrn="000000000002")])
    assert out.counts == {**dict.fromkeys(CLASSES, 0), "matched": 2}
    assert out.items == [] and out.journal_rows == 2 and out.statement_lines == 2
    assert out.period == ("2026-11-20", "2026-11-20")


def test_without_an_rrn_match_the_line_is_found_by_stan_date_and_batch():
    rows = [row(1, 100, stan=7, batch=3), row(2, 100, stan=7, batch=4, rrn="")]
    _, out = run(rows, [line(2, 100, rrn="999999999999", stan=7, batch=4),
                        line(3, 100, stan=7, batch=3)])
    assert out.counts["matched"] == 2 and out.items == []
    _, out = run([row(1, 100, stan=7)], [line(2, 100, stan=7, date="2026-11-21")],
                 period=("2026-11-20", "2026-11-21"))
    assert [i.cls for i in out.items] == ["journal_only", "statement_only"]


def test_a_second_line_for_the_same_row_is_a_duplicate_of_the_first():
    _, out = run([row(1, 100)], [line(5, 100, rrn="000000000001"),
                                 line(9, 100, rrn="000000000001")])
    (dup,) = only(out, "statement_only")
    assert (dup.line_no, dup.detail, dup.detail_zh) == (9, "duplicate of line 5", "与第5行重复")
    assert out.counts["matched"] == 1 and out.counts["journal_only"] == 0


def test_other_terminals_are_counted_not_matched_and_a_line_without_terminal_is_ours():
    _, out = run([row(1, 100)], [line(2, 100, rrn="000000000001", terminal=None),
                                 line(3, 999, rrn="000000000002", terminal="87654321")])
    assert out.other_terminal_lines == 1 and out.counts["matched"] == 1
    assert out.items == [] and out.statement_lines == 2


def test_a_line_of_our_terminal_for_another_merchant_is_statement_only():
    _, out = run([], [line(2, 100, merchant="898110048990002", date=None)])
    (item,) = out.items
    assert item.cls == "statement_only" and "898110048990002" in item.detail


def test_amount_mismatch_says_both_amounts_in_yuan():
    _, out = run([row(1, 10000)], [line(2, 10050, rrn="000000000001")])
    (item,) = out.items
    assert item.cls == "amount_mismatch"
    assert item.detail == "amount 100.00 here, 100.50 on the statement"
    assert item.detail_zh == "金额不符：本机 100.00，对账单 100.50"
    assert (item.txn_id, item.line_no, item.journal_amount, item.statement_amount) == (
        1, 2, 10000, 10050)


def test_refunds_are_negative_on_both_sides():
    rows = [row(1, 2500, txn_type="refund"), row(2, 2500, txn_type="refund")]
    _, out = run(rows, [line(2, -2500, rrn="000000000001"), line(3, 2500, rrn="000000000002")])
    (item,) = out.items
    assert (item.cls, item.txn_id, item.journal_amount) == ("amount_mismatch", 2, -2500)
    assert out.counts["matched"] == 1


def test_status_mismatch_voided_here_settled_there_and_the_reverse():
    rows = [row(1, 100, status="voided"), row(2, 100), row(3, 100, status="reversed")]
    lines = [line(2, 100, rrn="000000000001"), line(3, 100, rrn="000000000002",
                                                     status="reversed"),
             line(4, 100, rrn="000000000003", status="reversed")]
    _, out = run(rows, lines)
    got = [(i.txn_id, i.journal_status, i.statement_status) for i in out.items]
    assert got == [(1, "voided", "settled"), (2, "settled", "reversed")]
    assert out.items[0].detail == "voided here, settled on the statement"
    assert out.items[0].detail_zh == "状态不符：本机已撤销，对账单已结算"
    assert out.counts["matched"] == 1          # reversed on both sides agrees
    assert out.counts["journal_only"] == 0      # the voided row was not expected


def test_fees_and_nets_are_checked_against_a_d0_schedule():
    # D0: card 0.60% + 0.10% = 0.70%, QR 0.48%, sales pay 2.00 fixed; refunds get the rate back.
    rows = [row(1, 10000), row(2, 10000, entry="031"), row(3, 5000, txn_type="refund"),
            row(4, 10000), row(5, 10000)]
    lines = [line(2, 10000, rrn="000000000001", fee=270, net=9730),
             line(3, 10000, rrn="000000000002", fee=248, net=9752),
             line(4, -5000, rrn="000000000003", fee=-35, net=-4965),
             line(5, 10000, rrn="000000000004", fee=271, net=9729),
             line(6, 10000, rrn="000000000005", net=9700)]
    _, out = run(rows, lines, fees=D0)
    assert out.counts["matched"] == 3
    first, second = only(out, "fee_mismatch")
    assert (first.fee_expected, first.fee_statement, first.net_expected) == (270, 271, 9730)
    assert first.detail == ("fee 2.70 expected, 2.71 on the statement; "
                            "net 97.30 expected, 97.29 on the statement")
    assert first.detail_zh.startswith("手续费/净额不符：手续费应为 2.70，对账单 2.71")
    assert second.detail == "net 97.30 expected, 97.00 on the statement"


@given(amount=st.integers(1, 10**9), entry=st.sampled_from(["051", "071", "031", "", None]),
       mode=st.sampled_from(["T1", "D0"]), card=st.sampled_from(["0.60%", "0.55%", "1.2345%"]),
       fixed=st.integers(0, 500), refund=st.booleans())
def test_the_fast_fee_arithmetic_is_the_fee_schedules(amount, entry, mode, card, fixed, refund):
    schedule = FeeSchedule.from_texts(mode, card, "0.38%", "0.07%", fixed)
    money = schedule.line("credit" if refund else "debit", amount, entry)
    assert _Fees(schedule).fee_net(money.gross, entry) == (money.fee, money.net)
    assert schedule.rate(entry) > Decimal(0)


def test_probable_pairs_same_amount_and_card_within_the_window_nearest_first():
    rows = [row(1, 800, time="14:00:00"), row(2, 800, time="14:04:00"),
            row(3, 800, time="15:00:00", card="622609******1111"),
            row(4, 900, time="16:00:00")]
    lines = [line(2, 800, rrn="000000000077", time="14:05:00"),    # nearest: row 2 (60 s)
             line(3, 800, time="15:00:00"),                       # card differs: no
             line(4, 900, time="16:10:01")]                       # 601 s: outside the window
    _, out = run(rows, lines)
    (probable,) = only(out, "probable")
    assert (probable.line_no, probable.txn_id) == (2, 2)
    assert "60 s apart" in probable.detail and "60秒" in probable.detail_zh
    assert [i.line_no for i in only(out, "statement_only")] == [3, 4]
    assert [i.txn_id for i in only(out, "journal_only")] == [1, 3, 4]
    _, wider = run(rows, lines, window_s=601)
    assert [i.txn_id for i in only(wider, "probable")] == [2, 4]


def test_a_probable_pair_with_a_wrong_fee_is_a_fee_mismatch():
    _, out = run([row(1, 10000)], [line(2, 10000, rrn="x", fee=61)])
    (item,) = out.items
    assert item.cls == "fee_mismatch" and "no reference match" in item.detail


def test_only_settled_money_rows_of_closed_batches_inside_the_period_are_expected():
    rows = [row(1, 100), row(2, 100, closed=False), row(3, 100, date="2026-11-19"),
            row(4, 100, txn_type="void"), row(5, 100, txn_type="preauth"),
            row(6, 100, status="declined"), row(7, 100, txn_type="completion"),
            row(8, 100, txn_type="offline_sale"), row(9, 100, terminal="87654321")]
    _, out = run(rows, [])
    assert out.journal_rows == 0 and out.period is None      # no period, no dated line
    matcher, out = run(rows, [], period=("2026-11-20", "2026-11-20"))
    assert [i.txn_id for i in out.items] == [1, 7, 8]
    assert out.items[0].detail == "settled here in closed batch 000001, not on the statement"
    assert out.items[0].detail_zh == "漏单：本机已结算，对账单无此笔"
    fates = {txn: (expected, cls) for txn, expected, cls in matcher.row_fates()}
    assert fates[1] == (True, "journal_only") and fates[2] == (False, None)
    assert 9 not in fates                                    # another terminal's row
    _, out = run(rows, [line(2, 100, rrn="000000000002")])   # open batch: matchable
    assert out.counts["matched"] == 1 and [i.txn_id for i in out.items] == [1, 7, 8]


def test_unparseable_lines_are_items_with_line_column_and_reason():
    bad = Unparseable(7, "amount", "amount 'abc' is not a number of yuan", "abc")
    _, out = run([], [bad])
    (item,) = out.items
    assert (item.cls, item.line_no) == ("unparseable", 7)
    assert item.detail == "line 7, column amount: amount 'abc' is not a number of yuan [abc]"
    assert out.counts["unparseable"] == 1


def test_a_clear_card_number_on_the_statement_is_masked_in_the_item():
    _, out = run([], [line(2, 100, card="6226090000000048")])
    assert out.items[0].card_masked == "622609******0048"


def test_summary_check_ok_mismatch_and_absent():
    lines = [line(2, 10000, rrn="000000000001", fee=60, net=9940),
             line(3, -2500, rrn="000000000002", fee=-15, net=-2485, terminal="87654321"),
             Unparseable(4, "amount", "bad")]
    rows = [row(1, 10000)]
    _, out = run(rows, lines, SummaryFigures(6, count=3, amount=7500, fee=45, net=7455))
    assert (out.summary_check, out.computed) == ("ok", {"count": 3, "amount": 7500,
                                                        "fee": 45, "net": 7455})
    _, out = run(rows, lines, SummaryFigures(6, count=2, amount=7600))
    assert out.summary_check == "mismatch"
    assert out.summary_detail == ("summary line 6: count 2 printed, 3 computed; "
                                  "amount 76.00 printed, 75.00 computed (1 unparseable "
                                  "line(s) are not in the computed sums)")
    assert "笔数汇总 2，逐笔合计 3" in out.summary_detail_zh
    _, out = run(rows, lines, None)
    assert out.summary_check == "absent" and out.summary_json()["printed"] is None


def test_counts_name_all_eight_classes_and_items_come_in_report_order():
    _, out = run([row(1, 100), row(2, 100)],
                 [Unparseable(2, None, "x"), line(3, 150, rrn="000000000002")],
                 period=("2026-11-20", "2026-11-20"))
    assert list(out.counts) == list(CLASSES)
    assert [i.cls for i in out.items] == ["amount_mismatch", "journal_only", "unparseable"]


@st.composite
def _case(draw):
    n = draw(st.integers(0, 12))
    rows = []
    for txn in range(1, n + 1):
        rows.append(row(txn, draw(st.sampled_from([100, 200, 300])),
                        stan=draw(st.integers(1, 4)), rrn=draw(st.sampled_from(["", None])),
                        time=f"14:{draw(st.integers(0, 30)):02d}:00",
                        status=draw(st.sampled_from(["settled", "settled", "voided",
                                                     "reversed"])),
                        closed=draw(st.booleans()),
                        txn_type=draw(st.sampled_from(["sale", "refund", "void"])),
                        card=draw(st.sampled_from([CARD, "622609******1111"]))))
    lines = []
    for no in range(2, 2 + draw(st.integers(0, 12))):
        if draw(st.integers(0, 9)) == 0:
            lines.append(Unparseable(no, "amount", "bad"))
            continue
        lines.append(line(no, draw(st.sampled_from([100, 200, -200, 300])),
                          rrn=draw(st.sampled_from([None, "000000000001", "000000000002"])),
                          stan=draw(st.sampled_from([None, 1, 2, 3])),
                          batch=draw(st.sampled_from([None, 1])),
                          time=f"14:{draw(st.integers(0, 30)):02d}:00",
                          status=draw(st.sampled_from([None, "settled", "voided"])),
                          terminal=draw(st.sampled_from([TID, None, "87654321"])),
                          card=draw(st.sampled_from([CARD, "622609******1111", None])),
                          fee=draw(st.sampled_from([None, 1]))))
    return rows, lines


@settings(max_examples=150, deadline=None)
@given(_case())
def test_every_line_and_every_expected_row_lands_in_exactly_one_class(case):
    rows, lines = case
    matcher, out = run(rows, lines)
    ours = out.statement_lines - out.other_terminal_lines
    # Every line of ours is in exactly one class; journal_only adds the rows left over.
    assert sum(out.counts.values()) == ours + out.counts["journal_only"]
    line_items = [i.line_no for i in out.items if i.cls != "journal_only"]
    assert len(line_items) == len(set(line_items))
    fates = list(matcher.row_fates())
    assert sum(1 for _, expected, _ in fates if expected) == out.journal_rows
    for txn, expected, cls in fates:
        assert cls is not None or not expected          # an expected row is never lost
        assert cls != "journal_only" or expected
    paired = [cls for _, _, cls in fates if cls not in (None, "journal_only")]
    assert len(paired) == ours - out.counts["statement_only"] - out.counts["unparseable"]
    item_rows = [i.txn_id for i in out.items if i.txn_id is not None]
    assert len(item_rows) == len(set(item_rows))        # a row is in at most one item


def test_a_real_journal_streamed_into_the_matcher(tmp_path):
    with Journal.open(tmp_path / "j.db", os.urandom(32)) as journal:
        ids = []
        for n, (kind, amount) in enumerate([("sale", 10000), ("refund", 2500), ("sale", 700)]):
            txn_id = journal.begin(NewTransaction(
                txn_type=kind, amount=amount, currency="156", stan=journal.next_stan(),
                batch=1, terminal_id=TID, merchant_id=MID, operator="01",
                pan="6226090000000048", expiry="3012", card_org="CUP", entry_mode="051",
                card_seq="001", pin_entered=True))
            journal.complete(txn_id, approved=True, response_code="00", rrn=f"{n + 1:012d}",
                             auth_code="123456")
            ids.append(txn_id)
        journal.set_batch(2)
        day = journal.get(ids[0]).created_local[:10]
        book = ReconBook(journal)
        matcher = Matcher(book.journal_rows(), terminal_id=TID, merchant_id=MID,
                          fees=FeeSchedule())
        matcher.feed(StatementLine(2, 10000, TID, MID, day, "00:00:00", 1, 1, "000000000001",
                                   fee=60, net=9940))
        matcher.feed(StatementLine(3, -2500, TID, MID, day, None, 2, 1, "000000000002",
                                   fee=-15, net=-2485))
        out = matcher.finish(SummaryFigures(5, count=2, amount=7500))
        assert out.counts["matched"] == 2 and out.summary_check == "ok"
        (missing,) = out.items
        assert (missing.cls, missing.txn_id, missing.card_masked) == (
            "journal_only", ids[2], "622609******0048")
        run_id = book.save_run(
            file_name="s.csv", file_hash="ab" * 32, file_size=10, profile="p",
            period_from=out.period[0], period_to=out.period[1],
            statement_lines=out.statement_lines, journal_rows=out.journal_rows,
            counts=out.counts, summary_check=out.summary_check, summary=out.summary_json(),
            other_terminal_lines=out.other_terminal_lines, forced=False, operator="S1",
            items=out.items)
        (saved,) = book.items(run_id)
        assert (saved.cls, saved.txn_id, saved.fee_expected, saved.net_expected) == (
            "journal_only", ids[2], 4, 696)
        assert book.get_run(run_id).summary["computed"]["amount"] == 7500


def test_a_line_voided_on_both_sides_has_no_fee_to_check():
    rows = [row(1, 10000, rrn="000000000001", status="voided")]
    lines = [line(2, 10000, rrn="000000000001", status="voided", fee=0, net=0)]
    _, out = run(rows, lines)
    assert out.counts["matched"] == 1 and out.items == []
