"""Soak: thousands of mixed transactions (sales, voids, refunds, pre-authorisations and
completions) through the journaled online path while the host breaks a share of its
replies at random (drop, delay, bad MAC, closed connection, duplicate, wrong STAN). At the
end the terminal's journal and the host's ledger must agree on every transaction's net
effect.

Prints: transactions, faults injected (by kind), reversals sent, differences (target 0).

    .venv/bin/python bench/soak.py [--count 10000] [--fault-rate 0.05] [--seed 7]
"""

from __future__ import annotations

import argparse
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from app import config as config_mod
from app.errors import Refused
from app.flows.preauth import run_completion, run_preauth
from app.flows.refund import run_refund
from app.flows.sale import run_sale
from app.flows.void import run_void
from app.provision import init
from app.redaction import setup_logging
from app.terminal import Terminal
from hal.testcards import TestCard, test_card
from sync.errors import SyncError

SUPERVISOR = "bench-supervisor"
KINDS = ("drop", "delay", "corrupt-mac", "close", "duplicate", "wrong-stan")
CARDS = ("unionpay-debit-chip", "visa-chip", "mc-tap", "decline-51", "wrong-pin")


def _start_host(host_dir: Path, rate: float, seed: int) -> tuple[subprocess.Popen, str, str]:
    flags = []
    for kind in KINDS:
        spec = f"{kind}:any:rate={rate / len(KINDS):.6f}"
        flags += ["--fault", spec + (":ms=400" if kind == "delay" else "")]
    proc = subprocess.Popen([sys.executable, "-m", "host", "--data", str(host_dir), "--listen",
                             "127.0.0.1:0", "--control", "127.0.0.1:0", "--seed", str(seed),
                             *flags], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    assert proc.stdout is not None
    address = proc.stdout.readline().strip().rsplit(" ", 1)[1]
    control = proc.stdout.readline().strip().rsplit(" ", 1)[1]
    return proc, address, control


def _control(address: str, command: str) -> str:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(command.encode() + b"\n")
        return sock.makefile().readline().strip()


def _one(term: Terminal, i: int, card: TestCard, good: TestCard):
    """Transaction ``i`` of the mix: mostly sales; every 7th voids the last approved sale,
    every 11th refunds part of one, every 13th pre-authorises, the one after completes it."""
    journal = term.journal
    if i % 7 == 6:
        last = next((r for r in journal.transactions(limit=20) if r.txn_type == "sale"
                     and r.state == "APPROVED" and r.voided_by is None), None)
        if last is not None:
            return run_void(term, last.stan, supervisor_password=SUPERVISOR)
    if i % 11 == 10:
        last = next((r for r in journal.transactions(limit=20) if r.txn_type == "sale"
                     and r.state == "APPROVED" and r.rrn), None)
        if last is not None:
            date = last.created_local[5:7] + last.created_local[8:10]
            return run_refund(term, 1, rrn=last.rrn, date=date,
                              supervisor_password=SUPERVISOR, card_profile=good)
    if i % 13 == 12:
        return run_preauth(term, 1000, card_profile=good)
    if i % 13 == 0 and i:
        pre = next((r for r in journal.transactions(limit=5) if r.txn_type == "preauth"
                    and r.state == "APPROVED" and r.voided_by is None), None)
        if pre is not None:
            return run_completion(term, 1100, preauth_stan=pre.stan, card_profile=good)
    return run_sale(term, 100 + i % 5000, card_profile=card)


def soak(count: int, rate: float, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="posterm-soak-") as tmp:
        term_dir, host_dir = Path(tmp) / "terminal", Path(tmp) / "host"
        host_dir.mkdir()
        host, address, control = _start_host(host_dir, rate, seed)
        outcomes = {"approved": 0, "declined": 0, "uncertain": 0}
        started = time.perf_counter()
        try:
            init(term_dir, host=address, host_data=host_dir, force=True,
                 supervisor_password=SUPERVISOR)
            values = config_mod.load(term_dir).values
            values["host"].update(response_timeout=0.3, reversal_backoff=0.05,
                                  reversal_tries=10)
            config_mod.write(term_dir, values)
            with Terminal(term_dir) as term:
                good = test_card("unionpay-debit-chip")
                for i in range(count):
                    card = test_card(CARDS[i % len(CARDS)])
                    try:
                        outcome = _one(term, i, card, good)
                        if outcome is not None:
                            outcomes["approved" if outcome.result.approved else "declined"] += 1
                    except (SyncError, Refused):
                        outcomes["uncertain"] += 1
                _control(control, "fault clear")
                term.session.flush_reversals()          # the last armed reversal, if any
                term.session.flush_advices()            # and the last queued refund
                rows = term.journal.transactions()
                journal = {(r.stan, r.txn_type, r.amount,
                            "voided" if r.voided_by else r.state.lower())
                           for r in rows if r.state == "APPROVED"}
                pending = sum(r.state == "PENDING" for r in rows)
                by_type = dict(Counter(r.txn_type for r in rows))
            stats = _control(control, "stats")
        finally:
            host.terminate()
            host.wait(timeout=10)
        elapsed = time.perf_counter() - started
        conn = sqlite3.connect(host_dir / "host.db")
        ledger = set(conn.execute(
            "SELECT stan, txn_type, amount, state FROM transactions"
            " WHERE state IN ('approved', 'voided', 'completed')"))
        # A completed pre-authorisation is approved on the terminal's side.
        ledger = {(s, t, a, "approved" if st == "completed" else st) for s, t, a, st in ledger}
        reversals = conn.execute("SELECT count(*) FROM transactions WHERE state = 'reversed'"
                                 ).fetchone()[0]
        conn.close()
    return {"transactions": count, "seconds": elapsed, **outcomes, "host_stats": stats,
            "reversed_on_host": reversals, "pending_left": pending, "by_type": by_type,
            "differences": len(journal ^ ledger)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    setup_logging(None)     # discarded duplicate replies are expected here, not news
    r = soak(args.count, args.fault_rate, args.seed)
    print(f"soak: {r['transactions']} transactions in {r['seconds']:.0f} s — approved {r['approved']}, "
          f"declined {r['declined']}, uncertain then reversed {r['uncertain']}")
    print(f"journal rows by type: {r['by_type']}")
    print(f"host: {r['host_stats']}")
    print(f"reversed on the host: {r['reversed_on_host']}; pending left: {r['pending_left']}; "
          f"differences between journal and ledger: {r['differences']}")
    return 0 if r["differences"] == 0 and r["pending_left"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
