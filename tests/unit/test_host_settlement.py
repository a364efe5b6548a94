"""The host's settlement: totals, batch upload, upload end, TC upload, sign-off, clearing,
the forget fault and the statement, through Host.respond with a real SQLite ledger.

The test plays the terminal with the shared dialect (sync.message, sync.frame,
sync.settlement) and keeps its own list of what it counts, as a terminal's journal would.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from openpyxl import load_workbook

from host import control
from host.faults import parse_rule
from host.ledger import Ledger
from host.server import Host
from host.statement import COLUMNS, NAMES, txt_positions
from sync import codec, crypto, frame, message
from sync.fees import FeeSchedule
from sync.settlement import (
    Kind,
    Totals,
    UploadRecord,
    area_of,
    chunks,
    encode_records,
    upload_count,
)
from sync.txntypes import TxnType

ROOT = Path(__file__).resolve().parents[2]
TID, MID = "12345678", "898110048990001"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TPDU = bytes.fromhex("6000030000")
HEADER = bytes.fromhex("603100311003")
CST = timezone(timedelta(hours=8))
FRIDAY = datetime(2026, 11, 20, 22, 30, tzinfo=CST)

CUP = "6226090000000048"          # unionpay-debit-chip
CUP2 = "6250940000000019"         # unionpay-credit-swipe
VISA = "4761739001010010"         # visa-chip


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Sold:
    """What the terminal's journal keeps of one approved transaction."""

    stan: int
    kind: Kind
    pan: str
    amount: int
    org: str
    rrn: str = ""

    @property
    def area(self) -> str:
        return area_of(self.org)

    def record(self) -> UploadRecord:
        return UploadRecord(self.area, self.kind, self.stan, self.pan, self.amount)


@dataclass
class Term:
    """The terminal's side: builds framed requests, reads the MACed replies (from a Host
    object, or over TCP when ``sock`` is given)."""

    host: Host | None
    ids: message.TerminalIds = field(default_factory=lambda: message.TerminalIds(TID, MID))
    mak: bytes | None = None
    batch: int = 1
    stan: int = 0
    sold: list[Sold] = field(default_factory=list)
    sock: socket.socket | None = None

    def next_stan(self) -> int:
        self.stan += 1
        return self.stan

    def exchange(self, fields: dict[str, str], *, deliver: bool = False) -> dict[str, str]:
        key = None if fields["t"] == "0800" else self.mak
        body = frame.wrap(message.encode_with_mac(fields, "ecb", key), TPDU, HEADER)[2:]
        if self.sock is not None:
            raw = self._over_tcp(body)
        elif deliver:
            assert self.host is not None
            raw, _, _ = self.host.deliver(body)
        else:
            assert self.host is not None
            raw = self.host.respond(body)
        assert raw is not None
        iso = frame.split_body(raw).iso
        reply = codec.decode(iso)
        if self.mak is not None and "64" in reply:
            message.verify_mac(iso, "ecb", self.mak)
        return reply

    def _over_tcp(self, body: bytes) -> bytes:
        assert self.sock is not None
        self.sock.sendall(len(body).to_bytes(2, "big") + body)
        return self._read(int.from_bytes(self._read(2), "big"))

    def _read(self, size: int) -> bytes:
        assert self.sock is not None
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            assert chunk, "the host closed the connection"
            data += chunk
        return data

    def build(self, txn: TxnType, fields: dict[str, object] | None = None,
              batch: int | None = None) -> dict[str, str]:
        return message.build(txn, self.ids, stan=self.next_stan(),
                             batch=self.batch if batch is None else batch, fields=fields)

    def sign_on(self) -> dict[str, str]:
        reply = self.exchange(self.build(TxnType.SIGN_ON, {"63": "001"}))
        assert reply["39"] == "00"
        keys = bytes.fromhex(reply["62"])
        self.mak = crypto.unwrap_working_key(TMK, keys[20:36], keys[36:40], "MAK")
        self.batch = int(reply["60"][2:8])
        return reply

    def sale(self, amount: int, pan: str = CUP, org: str = "CUP", *, entry: str = "051",
             deliver: bool = False, txn: TxnType = TxnType.SALE,
             extra: dict[str, object] | None = None) -> dict[str, str]:
        fields: dict[str, object] = {"2": pan, "4": amount, "14": "3012", "22": entry,
                                     "23": "001", "63": org, **(extra or {})}
        request = self.build(txn, fields)
        reply = self.exchange(request, deliver=deliver)
        if reply["39"] == "00":
            kind = Kind.of(txn.key)
            self.sold.append(Sold(int(request["11"]), kind, pan, amount, org, reply["37"]))
        return reply

    def refund(self, original: Sold, amount: int) -> dict[str, str]:
        return self.sale(amount, original.pan, original.org, txn=TxnType.REFUND,
                         extra={"37": original.rrn, "61": f"{self.batch:06d}"
                                f"{original.stan:06d}1120"})

    def totals(self) -> Totals:
        return Totals.count((s.kind.txn_type, s.org, s.amount) for s in self.sold)

    def settle(self, totals: Totals | None = None, f48: str | None = None) -> dict[str, str]:
        f48 = f48 if f48 is not None else (totals or self.totals()).to_field48()
        return self.exchange(self.build(TxnType.SETTLEMENT, {"48": f48, "49": "156",
                                                              "63": "001"}))

    def upload(self, records: list[UploadRecord]) -> dict[str, str]:
        return self.exchange(self.build(TxnType.BATCH_UPLOAD, {"48": encode_records(records)}))

    def upload_all(self, sold: list[Sold] | None = None) -> int:
        records = [s.record() for s in (self.sold if sold is None else sold)]
        for chunk in chunks(records):
            assert self.upload(chunk)["39"] == "00"
        return len(records)

    def end_upload(self, count: int) -> dict[str, str]:
        return self.exchange(self.build(TxnType.UPLOAD_END, {"48": upload_count(count)}))

    def sign_off(self) -> dict[str, str]:
        return self.exchange(self.build(TxnType.SIGN_OFF))


@dataclass
class Bench:
    host: Host
    ledger: Ledger
    clock: Clock
    term: Term
    hostdir: Path

    def rows(self, **where: object) -> list[dict]:
        return [t for t in self.ledger.transactions(TID)
                if all(t[k] == v for k, v in where.items())]


def open_bench(tmp_path: Path, fees: FeeSchedule | None = None,
               now: datetime = FRIDAY) -> Bench:
    hostdir = tmp_path / "host"
    ledger = Ledger.open(hostdir)
    ledger.register(TID, MID, "Test Shop", TMK, fees=fees)
    clock = Clock(now)
    host = Host(ledger, clock=clock)
    term = Term(host)
    term.sign_on()
    return Bench(host, ledger, clock, term, hostdir)


@pytest.fixture()
def bench(tmp_path: Path):
    opened = open_bench(tmp_path)
    yield opened
    opened.ledger.close()


def results(f48: str) -> tuple[str, str]:
    return f48[30], f48[61]


def forget_one_sale(bench: Bench, amount: int = 2500) -> None:
    """The host approves a sale and then loses its row (the forget fault)."""
    bench.host.faults.add(parse_rule("forget:mti=0200:count=1"))
    reply = bench.term.sale(amount, deliver=True)
    assert reply["39"] == "00"                      # the terminal sees an approval
    assert bench.rows(stan=bench.term.sold[-1].stan) == []


# -- settlement (0500) ----------------------------------------------------------------------

def test_balanced_settlement_clears_the_batch_and_advances_it(bench: Bench) -> None:
    term = bench.term
    term.sale(10000)
    term.sale(2050, CUP2)
    term.sale(30000, VISA, "VIS")
    term.refund(term.sold[0], 1000)
    reply = term.settle()
    assert (reply["t"], reply["39"]) == ("0510", "00")
    assert reply["15"] == "1120"
    assert results(reply["48"]) == ("1", "1")
    host_totals = Totals.from_field48(reply["48"])
    assert host_totals.domestic.figures() == (12050, 2, 1000, 1)
    assert host_totals.foreign.figures() == (30000, 1, 0, 0)
    counted = bench.rows(state="approved")
    assert len(counted) == 4
    assert all(r["cleared_date"] == "2026-11-20" and r["settlement_id"] for r in counted)
    assert bench.ledger.terminal(TID)["batch"] == 2
    [settlement] = bench.ledger.settlements(TID)
    assert (settlement["state"], settlement["result"]) == ("closed", "balanced")
    assert term.sign_on()["60"][2:8] == "000002"     # the next sign-on opens batch 2


def test_the_card_organisation_of_field_63_is_kept(bench: Bench) -> None:
    bench.term.sale(100, VISA, "VIS")
    bench.term.sale(100, CUP, "CUP      ")
    assert [r["card_org"] for r in bench.rows()] == ["VIS", "CUP"]


def test_unbalanced_after_a_forgotten_sale_stays_open(bench: Bench) -> None:
    bench.term.sale(1000)
    forget_one_sale(bench)
    reply = bench.term.settle()
    assert reply["39"] == "00"
    assert results(reply["48"]) == ("2", "1")       # domestic unbalanced, foreign balanced
    assert Totals.from_field48(reply["48"]).domestic.figures() == (1000, 1, 0, 0)
    [settlement] = bench.ledger.settlements(TID)
    assert (settlement["state"], settlement["result"]) == ("open", "unbalanced")
    assert all(r["cleared_date"] is None for r in bench.rows())
    assert bench.ledger.terminal(TID)["batch"] == 1


def test_upload_repairs_the_batch_and_the_difference_is_recorded_once(bench: Bench) -> None:
    term = bench.term
    for amount in (1000, 2000, 3000):
        term.sale(amount)
    forget_one_sale(bench, 2500)
    term.sale(4000, VISA, "VIS")
    assert results(term.settle()["48"]) == ("2", "1")
    records = [s.record() for s in term.sold]
    first, second = records[:3], records[3:]
    assert term.upload(first)["39"] == "00"
    assert term.upload(second)["39"] == "00"
    assert term.upload(second)["39"] == "00"        # resent after a crash: counted once
    assert bench.ledger.settlements(TID)[0]["state"] == "uploading"
    reply = term.end_upload(len(records))
    assert (reply["t"], reply["39"]) == ("0330", "00")
    assert results(reply["48"]) == ("1", "1")       # the host's result after the upload
    assert Totals.from_field48(reply["48"]).domestic.figures() == (8500, 4, 0, 0)
    [diff] = bench.ledger.differences(TID)
    assert (diff["kind"], diff["stan"], diff["resolution"]) == (
        "missing_on_host", term.sold[3].stan, "added from the batch upload")
    [added] = bench.rows(source="upload")
    assert (added["amount"], added["txn_type"], added["state"]) == (2500, "sale", "approved")
    assert added["card_org"] == "CUP" and added["pan_masked"] == "622609******0048"
    assert len(added["rrn"]) == 12 and added["pan_hash"] == bench.ledger.pan_hash(CUP)
    assert bench.ledger.uploads_received(TID, 1) == 5
    [settlement] = bench.ledger.settlements(TID)
    assert settlement["state"] == "closed"
    assert (settlement["result"], settlement["result_after_upload"]) == ("unbalanced",
                                                                         "balanced")
    assert (settlement["upload_count_claimed"], settlement["upload_count_received"]) == (5, 5)
    assert all(r["cleared_date"] == "2026-11-20" for r in bench.rows())
    assert bench.ledger.terminal(TID)["batch"] == 2


def test_a_foreign_record_missing_on_the_host_gets_the_foreign_marker(bench: Bench) -> None:
    bench.host.faults.add(parse_rule("forget:card=visa-chip:count=1"))
    bench.term.sale(4000, VISA, "VIS", deliver=True)
    assert results(bench.term.settle()["48"]) == ("1", "2")
    bench.term.upload_all()
    assert results(bench.term.end_upload(1)["48"]) == ("1", "1")
    [added] = bench.rows(source="upload")
    assert added["card_org"] == "FGN" and area_of(added["card_org"]) == "foreign"


def test_amount_and_state_differences_take_the_terminals_word(bench: Bench) -> None:
    term = bench.term
    term.sale(1000)
    term.sale(2000)
    sold = term.sold
    row = bench.rows(stan=sold[0].stan)[0]
    bench.ledger.update(row["id"], amount=999)                     # the host's copy differs
    bench.ledger.mark_reversed(bench.rows(stan=sold[1].stan)[0]["id"], "98")
    assert results(term.settle()["48"]) == ("2", "1")
    term.upload_all()
    assert results(term.end_upload(2)["48"]) == ("1", "1")
    kinds = {(d["stan"], d["kind"]) for d in bench.ledger.differences(TID)}
    assert kinds == {(sold[0].stan, "amount_differs"), (sold[1].stan, "state_differs")}
    assert [(r["amount"], r["state"]) for r in bench.rows()] == [(1000, "approved"),
                                                                  (2000, "approved")]


def test_a_host_row_the_terminal_does_not_upload_is_held(bench: Bench) -> None:
    term = bench.term
    term.sale(1000)
    term.sale(7000)
    extra = term.sold.pop()                  # the terminal does not count this one
    forget_one_sale(bench, 500)
    assert results(term.settle()["48"]) == ("2", "1")
    term.upload_all()
    reply = term.end_upload(2)
    assert results(reply["48"]) == ("1", "1")
    [held] = bench.rows(stan=extra.stan)
    assert (held["state"], held["cleared_date"]) == ("held", None)
    diffs = {d["kind"]: d for d in bench.ledger.differences(TID)}
    assert set(diffs) == {"missing_on_host", "not_in_upload"}
    assert diffs["not_in_upload"]["stan"] == extra.stan
    assert diffs["not_in_upload"]["resolution"] == "held for review"
    assert diffs["not_in_upload"]["detail"] == "approved sale of 70.00 not in the terminal's upload"
    cleared = bench.ledger.cleared("2026-11-20", TID)
    assert extra.stan not in {r["stan"] for r in cleared} and len(cleared) == 2


def test_upload_end_is_idempotent_and_records_a_count_that_differs(bench: Bench) -> None:
    term = bench.term
    term.sale(1000)
    forget_one_sale(bench)
    term.settle()
    term.upload_all()
    first = term.end_upload(7)                        # the terminal claims 7, sent 2
    again = term.end_upload(7)
    assert first["48"] == again["48"] and again["39"] == "00"
    counts = [d for d in bench.ledger.differences(TID) if d["kind"] == "upload_count"]
    assert len(counts) == 1 and counts[0]["stan"] == 0
    assert "7" in counts[0]["detail"] and "2" in counts[0]["detail"]
    assert term.upload([term.sold[0].record()])["39"] == "00"   # after closing: nothing applied
    assert bench.ledger.uploads_received(TID, 1) == 2


def test_repeated_settlement_of_a_closed_batch_answers_the_stored_result(bench: Bench) -> None:
    term = bench.term
    term.sale(1000)
    first = term.settle()
    before = (bench.rows(), bench.ledger.settlements(TID), bench.ledger.terminal(TID))
    bench.clock.now += timedelta(days=1)
    term.sale(50)             # batch 1 of the terminal, if it were still open
    term.sold.pop()
    again = term.settle()
    assert again["48"] == first["48"] and again["39"] == "00"
    after = (bench.rows()[:1], bench.ledger.settlements(TID), bench.ledger.terminal(TID))
    assert after == (before[0], before[1], before[2])


def test_repeated_settlement_while_open_compares_again(bench: Bench) -> None:
    term = bench.term
    term.sale(1000)
    forget_one_sale(bench)
    assert results(term.settle()["48"]) == ("2", "1")
    assert results(term.settle()["48"]) == ("2", "1")
    assert len(bench.ledger.settlements(TID)) == 1


@pytest.mark.parametrize("f48", ["0" * 61, "0" * 63, "0" * 30 + "9" + "0" * 31])
def test_malformed_settlement_field_48_is_30(bench: Bench, f48: str) -> None:
    bench.term.sale(1000)
    reply = bench.term.settle(f48=f48)
    assert reply["39"] == "30"
    assert bench.ledger.settlements(TID) == []
    assert bench.rows()[0]["cleared_date"] is None


def test_a_result_digit_in_the_request_is_an_error_for_that_area(bench: Bench) -> None:
    bench.term.sale(1000)
    f48 = bench.term.totals().to_field48()
    reply = bench.term.settle(f48=f48[:30] + "1" + f48[31:])
    assert reply["39"] == "00" and results(reply["48"]) == ("3", "1")
    assert bench.ledger.settlements(TID)[0]["state"] == "open"


def test_malformed_upload_is_30_and_applies_nothing(bench: Bench) -> None:
    bench.term.sale(1000)
    forget_one_sale(bench)
    bench.term.settle()
    good = encode_records([s.record() for s in bench.term.sold])
    for f48 in (good[:-1], "03" + good[2:], "00", good[:2] + "9" + good[3:]):
        request = bench.term.build(TxnType.BATCH_UPLOAD, {"48": f48})
        assert bench.term.exchange(request)["39"] == "30", f48
    assert bench.ledger.uploads_received(TID, 1) == 0
    assert bench.ledger.differences(TID) == []
    assert bench.term.end_upload(1)["39"] == "00"
    bad_end = bench.term.build(TxnType.UPLOAD_END, {"48": "12"})
    assert bench.term.exchange(bad_end)["39"] == "30"


def test_upload_without_a_settlement_is_25(bench: Bench) -> None:
    bench.term.sale(1000)
    assert bench.term.upload([bench.term.sold[0].record()])["39"] == "25"
    assert bench.term.end_upload(1)["39"] == "25"
    assert bench.ledger.uploads_received(TID, 1) == 0


# -- TC upload ------------------------------------------------------------------------------

def _tc_upload(term: Term, sold: Sold, tc: str = "1122334455667788") -> dict[str, str]:
    icc = f"9F2608{tc}9F270140" + "9F36020012"
    return term.exchange(term.build(TxnType.TC_UPLOAD, {
        "2": sold.pan, "4": sold.amount, "22": "051", "23": "001", "55": icc,
        "61": f"000001{sold.stan:06d}"}))


def test_tc_upload_stores_the_tc_on_the_ledger_row(bench: Bench) -> None:
    term = bench.term
    term.sale(1000)
    assert results(term.settle()["48"]) == ("1", "1")
    term.batch = 2
    assert _tc_upload(term, term.sold[0])["39"] == "00"
    assert _tc_upload(term, term.sold[0])["39"] == "00"          # idempotent
    [row] = bench.rows()
    assert (row["tc"], row["tc_cid"], row["tc_atc"]) == ("1122334455667788", "40", "0012")
    end = term.exchange(term.build(TxnType.TC_UPLOAD_END, {"48": upload_count(1)}))
    assert end["39"] == "00"


def test_tc_upload_of_an_unknown_transaction_is_25_and_bad_icc_is_30(bench: Bench) -> None:
    term = bench.term
    term.sale(1000)
    ghost = Sold(999, Kind.SALE, CUP, 1000, "CUP")
    assert _tc_upload(term, ghost)["39"] == "25"
    other_card = Sold(term.sold[0].stan, Kind.SALE, CUP2, 1000, "CUP")
    assert _tc_upload(term, other_card)["39"] == "25"
    request = term.build(TxnType.TC_UPLOAD, {"2": CUP, "4": 1000, "55": "9F2701",
                                             "61": f"000001{term.sold[0].stan:06d}"})
    assert term.exchange(request)["39"] == "30"
    assert bench.rows()[0]["tc"] is None


# -- sign-off -------------------------------------------------------------------------------

def test_sign_off_is_refused_while_the_batch_is_unsettled_then_accepted(bench: Bench) -> None:
    term = bench.term
    assert term.sign_off()["39"] == "00"              # nothing approved yet
    term.sale(1000)
    reply = term.sign_off()
    assert (reply["t"], reply["39"]) == ("0830", "12")
    term.settle()
    assert term.sign_off()["39"] == "00"


# -- fees, net and payout -------------------------------------------------------------------

def test_t1_fees_net_and_a_friday_settlement_paid_on_monday(bench: Bench) -> None:
    term = bench.term
    term.sale(10000)                               # card 0.60%: 60 fen
    term.sale(12345, entry="031")                  # QR 0.38%: 46.911 -> 47
    term.refund(term.sold[0], 2500)                # 15 fen given back
    term.settle()
    fee_net = [(r["txn_type"], r["fee"], r["net"], r["payout_date"]) for r in bench.rows()]
    assert fee_net == [("sale", 60, 9940, "2026-11-23"), ("sale", 47, 12298, "2026-11-23"),
                       ("refund", -15, -2485, "2026-11-23")]


def test_d0_adds_its_rate_and_fixed_fee_and_pays_the_same_day(tmp_path: Path) -> None:
    fees = FeeSchedule.from_texts("D0", "0.60%", "0.38%", "0.10%", 200)
    bench = open_bench(tmp_path, fees)
    try:
        bench.term.sale(10000)                     # 0.70% = 70 + 200 fixed
        bench.term.refund(bench.term.sold[0], 10000)   # -70, the fixed fee is not returned
        bench.term.settle()
        fee_net = [(r["fee"], r["net"], r["payout_date"]) for r in bench.rows()]
        assert fee_net == [(270, 9730, "2026-11-20"), (-70, -9930, "2026-11-20")]
    finally:
        bench.ledger.close()


# -- the forget fault -----------------------------------------------------------------------

def test_forget_answers_the_approval_and_loses_only_a_financial_row(bench: Bench) -> None:
    rule = bench.host.faults.add(parse_rule("forget:count=1"))
    echo = bench.term.exchange(bench.term.build(TxnType.ECHO), deliver=True)
    assert echo["39"] == "00" and rule in bench.host.faults.rules   # not financial: untouched
    reply = bench.term.sale(1000, deliver=True)
    assert reply["39"] == "00" and len(reply["38"]) == 6
    assert bench.rows() == [] and bench.host.faults.rules == []
    assert bench.host.faults.stats()["faults"]["forget"] == 1
    assert bench.term.sale(1000, deliver=True)["39"] == "00"
    assert len(bench.rows()) == 1


def test_forget_leaves_declines_alone_and_undoes_what_a_void_did(bench: Bench) -> None:
    term = bench.term
    term.sale(1000)
    sale = term.sold[0]
    control.Control(bench.host.faults).execute("fault add forget:mti=0200:count=1")
    declined = term.sale(100, "6226090000000113", deliver=True)     # decline-51
    assert declined["39"] == "51" and len(bench.host.faults.rules) == 1
    void = term.build(TxnType.VOID, {"2": sale.pan, "4": sale.amount, "37": sale.rrn,
                                     "61": f"{term.batch:06d}{sale.stan:06d}", "63": "CUP"})
    assert term.exchange(void, deliver=True)["39"] == "00"
    assert [(r["txn_type"], r["state"]) for r in bench.rows()] == [
        ("sale", "approved"), ("sale", "declined")]


def test_forget_through_the_command_line_rule_text() -> None:
    rule = parse_rule("forget:mti=0200:count=1")
    assert rule.text() == "forget:mti=0200:count=1"
    assert not rule.matches("0200", CUP, True)                  # not an approval
    assert rule.matches("0200", CUP, True, approval=True)


# -- the statement --------------------------------------------------------------------------

def _day(bench: Bench) -> None:
    """Two sales and a refund, one sale forgotten and re-created by the upload."""
    term = bench.term
    term.sale(10000)
    term.sale(30000, VISA, "VIS")
    term.refund(term.sold[0], 2500)
    forget_one_sale(bench, 1234)
    term.settle()
    term.upload_all()
    term.end_upload(len(term.sold))


def _statement(bench: Bench, fmt: str, tmp_path: Path, *args: str) -> Path:
    bench.ledger.close()
    out = tmp_path / f"statement.{fmt}"
    result = _cli("statement", "--data", str(bench.hostdir), "--date", "2026-11-20",
                  "--format", fmt, "-o", str(out), *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("statement of 2026-11-20: 4 transaction(s), net ")
    return out


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "host", *args], input=stdin, check=False,
                          capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


EXPECTED = [
    # type, status, amount, fee, net
    ("sale", "approved", "100.00", "0.60", "99.40"),
    ("sale", "approved", "300.00", "1.80", "298.20"),
    ("refund", "approved", "-25.00", "-0.15", "-24.85"),
    ("sale", "added", "12.34", "0.07", "12.27"),
]


def test_statement_csv_has_a_bom_a_header_the_lines_and_the_summary(
        bench: Bench, tmp_path: Path) -> None:
    _day(bench)
    data = _statement(bench, "csv", tmp_path).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(rows[0]) == NAMES
    lines = [dict(zip(NAMES, r)) for r in rows[1:5]]
    assert [(r["type"], r["status"], r["amount"], r["fee"], r["net"]) for r in lines] == EXPECTED
    first = lines[0]
    assert (first["merchant_id"], first["terminal_id"], first["batch"]) == (MID, TID, "000001")
    assert first["txn_date"] == "2026-11-20" and len(first["txn_time"]) == 8
    assert first["card"] == "622609******0048" and len(first["rrn"]) == 12
    assert len(first["auth_code"]) == 6 and first["payout_date"] == "2026-11-23"
    assert first["type_zh"] == "消费" and lines[2]["type_zh"] == "退货"
    assert lines[3]["auth_code"] == ""
    assert rows[5] == []
    assert rows[6] == ["summary", "count", "amount", "fee", "net"]
    assert rows[7] == ["total", "4", "387.34", "2.32", "385.02"]
    assert len(rows) == 8


def test_statement_xlsx_has_one_sheet_with_header_lines_and_summary(
        bench: Bench, tmp_path: Path) -> None:
    _day(bench)
    book = load_workbook(_statement(bench, "xlsx", tmp_path))
    assert len(book.worksheets) == 1
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[0] == NAMES
    money = [NAMES.index(m) for m in ("amount", "fee", "net")]
    got = [(r[NAMES.index("type")], r[NAMES.index("status")],
            *(f"{r[i]:.2f}" for i in money)) for r in rows[1:5]]
    assert got == EXPECTED
    assert rows[1][NAMES.index("stan")] == f"{1 + 1:06d}"     # text, leading zeros kept
    assert all(v is None for v in rows[5])
    assert rows[6][:5] == ("summary", "count", "amount", "fee", "net")
    assert rows[7][0] == "total" and rows[7][1] == 4
    assert [f"{v:.2f}" for v in rows[7][2:5]] == ["387.34", "2.32", "385.02"]


def test_statement_txt_is_fixed_width_at_the_documented_positions(
        bench: Bench, tmp_path: Path) -> None:
    _day(bench)
    lines = _statement(bench, "txt", tmp_path).read_text("ascii").splitlines()
    assert lines[0].startswith("POSTERM-HOST STATEMENT  cleared 2026-11-20  all terminals")
    positions = txt_positions()
    assert [n for n, _, _ in positions] == [c[0] for c in COLUMNS if c[2]]

    def cells(line: str) -> dict[str, str]:
        return {n: line[a - 1:b].strip() for n, a, b in positions}

    assert cells(lines[1])["merchant_id"] == "MERCHANT"
    assert cells(lines[1])["payout_date"] == "PAYOUT" and cells(lines[1])["amount"] == "AMOUNT"
    assert set(lines[2]) == {"-"}
    body = [cells(line) for line in lines[3:7]]
    assert [(c["type"], c["status"], c["amount"], c["fee"], c["net"]) for c in body] == EXPECTED
    assert body[0]["terminal_id"] == TID and body[0]["payout_date"] == "2026-11-23"
    assert set(lines[7]) == {"-"}
    summary = {line[:10].strip(): line[10:26].strip() for line in lines[8:]}
    assert summary == {"COUNT": "4", "AMOUNT": "387.34", "FEE": "2.32", "NET": "385.02"}


def test_statement_of_one_terminal_and_of_a_day_without_clearing(tmp_path: Path) -> None:
    bench = open_bench(tmp_path)
    bench.ledger.register("87654321", MID, "Other", TMK)
    _day(bench)
    out = _statement(bench, "csv", tmp_path, "--terminal", TID)
    assert len(list(csv.reader(io.StringIO(out.read_text("utf-8-sig"))))) == 8
    empty = _cli("statement", "--data", str(bench.hostdir), "--date", "2026-11-21",
                 "--format", "txt", "-o", str(tmp_path / "empty.txt"))
    assert empty.returncode == 0 and "0 transaction(s)" in empty.stdout
    assert "COUNT" in (tmp_path / "empty.txt").read_text()


@pytest.mark.parametrize("args, code", [
    (["--date", "2026-13-01", "--format", "csv"], 2),
    (["--date", "20261120", "--format", "csv"], 2),
    (["--date", "2026-11-20", "--format", "pdf"], 2),
    (["--date", "2026-11-20", "--format", "csv", "--terminal", "99999999"], 2),
])
def test_statement_errors_are_one_line(tmp_path: Path, args: list[str], code: int) -> None:
    open_bench(tmp_path).ledger.close()
    result = _cli("statement", "--data", str(tmp_path / "host"), "-o",
                  str(tmp_path / "s.csv"), *args)
    assert result.returncode == code
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_statement_needs_an_existing_ledger_and_a_writable_file(tmp_path: Path) -> None:
    missing = _cli("statement", "--data", str(tmp_path / "nowhere"), "--date", "2026-11-20",
                   "--format", "csv", "-o", str(tmp_path / "s.csv"))
    assert missing.returncode == 2 and "no host ledger" in missing.stderr
    assert not (tmp_path / "nowhere").exists()
    open_bench(tmp_path).ledger.close()
    unwritable = _cli("statement", "--data", str(tmp_path / "host"), "--date", "2026-11-20",
                      "--format", "csv", "-o", str(tmp_path / "no" / "dir" / "s.csv"))
    assert unwritable.returncode == 1 and len(unwritable.stderr.splitlines()) == 1


# -- differences command, provisioning ------------------------------------------------------

def test_differences_command_lists_text_and_json(bench: Bench) -> None:
    _day(bench)
    bench.ledger.close()
    text = _cli("differences", "--data", str(bench.hostdir))
    assert text.returncode == 0
    assert "missing_on_host" in text.stdout and "added from the batch upload" in text.stdout
    listed = json.loads(_cli("differences", "--data", str(bench.hostdir), "--terminal", TID,
                             "--json").stdout)
    assert [d["kind"] for d in listed] == ["missing_on_host"]
    assert CUP not in text.stdout


def test_provision_takes_a_fee_schedule(tmp_path: Path) -> None:
    terminal = {"terminal_id": TID, "merchant_id": MID, "tmk": TMK.hex(),
                "settlement": {"mode": "D0", "card_rate": "0.55%", "qr_rate": "0.30%",
                               "d0_rate": "0.05%", "d0_fixed": 100}}
    result = _cli("provision", "--data", str(tmp_path), stdin=json.dumps(terminal))
    assert result.returncode == 0, result.stderr
    assert "D0 card 0.55% QR 0.30%" in result.stdout
    plain = {k: v for k, v in terminal.items() if k != "settlement"}
    again = _cli("provision", "--data", str(tmp_path),
                 stdin=json.dumps({**plain, "replace": True}))
    assert again.returncode == 0
    with Ledger.open(tmp_path) as ledger:
        assert ledger.fee_schedule(TID) == FeeSchedule.from_texts("D0", "0.55%", "0.30%",
                                                                  "0.05%", 100)
        ledger.register("87654321", MID, "", TMK)
        assert ledger.fee_schedule("87654321") == FeeSchedule()


@pytest.mark.parametrize("settlement", [
    "T1", {"mode": "T2"}, {"card_rate": 0.6}, {"card_rate": "0.6"}, {"qr_rate": "abc%"},
    {"d0_fixed": -1}, {"d0_fixed": 1.5}, {"d0_fixed": True}, {"colour": "red"},
])
def test_bad_fee_schedule_is_one_line_exit_2(tmp_path: Path, settlement: object) -> None:
    terminal = {"terminal_id": TID, "merchant_id": MID, "tmk": TMK.hex(),
                "settlement": settlement}
    result = _cli("provision", "--data", str(tmp_path), stdin=json.dumps(terminal))
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


# -- speed ----------------------------------------------------------------------------------

def test_an_upload_message_of_8_records_takes_well_under_2_ms(bench: Bench) -> None:
    ledger, term = bench.ledger, bench.term
    moment = bench.clock.now
    sold = []
    with ledger.transaction():
        for stan in range(1000, 3000):
            ledger.record(terminal_id=TID, merchant_id=MID, batch=1, stan=stan, mti="0200",
                          txn_type="sale", processing_code="000000", amount=100,
                          currency="156", pan=CUP, entry_mode="051", response_code="00",
                          rrn=ledger.next_rrn(), auth_code="123456", state="approved",
                          settlement_date="1120", moment=moment, card_org="CUP")
            sold.append(Sold(stan, Kind.SALE, CUP, 100 if stan % 50 else 101, "CUP"))
    term.stan = 5000
    assert results(term.settle(Totals.count(("sale", "CUP", s.amount) for s in sold))
                   ["48"]) == ("2", "1")
    started = time.perf_counter()
    term.upload_all(sold)
    per_message = (time.perf_counter() - started) / (len(sold) / 8)
    started = time.perf_counter()
    assert results(term.end_upload(len(sold))["48"]) == ("1", "1")
    closing = time.perf_counter() - started
    assert len(ledger.differences(TID)) == 40
    assert per_message < 0.002, f"{per_message * 1000:.2f} ms per upload message"
    assert closing < 1.0


def test_forget_from_the_command_line_and_the_control_port(tmp_path: Path) -> None:
    hostdir = tmp_path / "host"
    terminal = {"terminal_id": TID, "merchant_id": MID, "tmk": TMK.hex()}
    assert _cli("provision", "--data", str(hostdir), stdin=json.dumps(terminal)).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "host", "--data", str(hostdir), "--listen", "127.0.0.1:0",
         "--control", "127.0.0.1:0", "--fault", "forget:mti=0200:count=1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().rsplit(":", 1)[1])
        control_port = int(proc.stdout.readline().rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            term = Term(None, sock=sock)
            term.sign_on()
            assert term.sale(1000)["39"] == "00"              # answered, then forgotten
            assert term.sale(2000)["39"] == "00"
            assert control.send("127.0.0.1", control_port,
                                "fault add forget:card=visa-chip:count=1")["id"] == 2
            assert term.sale(3000, VISA, "VIS")["39"] == "00"
            stats = control.send("127.0.0.1", control_port, "stats")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
    assert stats["faults"]["forget"] == 2
    with Ledger.open(hostdir) as ledger:
        assert [t["amount"] for t in ledger.transactions(TID)] == [2000]
