"""Soak: thousands of sales through the journaled online path while the host breaks a share
of its replies at random (drop, delay, bad MAC, closed connection, duplicate, wrong STAN).
At the end the terminal's journal and the host's ledger must agree on every approval.

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
from pathlib import Path

from app import config as config_mod
from app.flows.sale import run_sale
from app.provision import init
from app.redaction import setup_logging
from app.terminal import Terminal
from hal.testcards import test_card
from sync.errors import SyncError

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


def soak(count: int, rate: float, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="posterm-soak-") as tmp:
        term_dir, host_dir = Path(tmp) / "terminal", Path(tmp) / "host"
        host_dir.mkdir()
        host, address, control = _start_host(host_dir, rate, seed)
        outcomes = {"approved": 0, "declined": 0, "uncertain": 0}
        started = time.perf_counter()
        try:
            init(term_dir, host=address, host_data=host_dir, force=True,
                 supervisor_password="bench-supervisor")
            values = config_mod.load(term_dir).values
            values["host"].update(response_timeout=0.3, reversal_backoff=0.05,
                                  reversal_tries=10)
            config_mod.write(term_dir, values)
            with Terminal(term_dir) as term:
                for i in range(count):
                    card = test_card(CARDS[i % len(CARDS)])
                    try:
                        outcome = run_sale(term, 100 + i % 5000, card_profile=card)
                        outcomes["approved" if outcome.result.approved else "declined"] += 1
                    except SyncError:
                        outcomes["uncertain"] += 1
                _control(control, "fault clear")
                term.session.flush_reversals()          # the last armed reversal, if any
                journal = {(r.stan, r.amount) for r in term.journal.transactions()
                           if r.state == "APPROVED"}
                pending = sum(r.state == "PENDING" for r in term.journal.transactions())
            stats = _control(control, "stats")
        finally:
            host.terminate()
            host.wait(timeout=10)
        elapsed = time.perf_counter() - started
        conn = sqlite3.connect(host_dir / "host.db")
        ledger = {(stan, amount) for stan, amount in conn.execute(
            "SELECT stan, amount FROM transactions WHERE state = 'approved' AND mti = '0200'")}
        reversals = conn.execute("SELECT count(*) FROM transactions WHERE state = 'reversed'"
                                 ).fetchone()[0]
        conn.close()
    return {"transactions": count, "seconds": elapsed, **outcomes, "host_stats": stats,
            "reversed_on_host": reversals, "pending_left": pending,
            "differences": len(journal ^ ledger)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    setup_logging(None)     # discarded duplicate replies are expected here, not news
    r = soak(args.count, args.fault_rate, args.seed)
    print(f"soak: {r['transactions']} sales in {r['seconds']:.0f} s — approved {r['approved']}, "
          f"declined {r['declined']}, uncertain then reversed {r['uncertain']}")
    print(f"host: {r['host_stats']}")
    print(f"reversed on the host: {r['reversed_on_host']}; pending left: {r['pending_left']}; "
          f"differences between journal and ledger: {r['differences']}")
    return 0 if r["differences"] == 0 and r["pending_left"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
