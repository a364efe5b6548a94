"""Benchmark: settle a 10,000-transaction batch forced unbalanced, on loopback.

Set-up (not timed): a terminal and a ``posterm-host`` on 127.0.0.1; N approved transactions
(sales, a share of them on foreign cards, and refunds) written to the terminal's journal and,
all but ``--lost`` of them, to the host's ledger, so the first 0500 is unbalanced. Timed:
the whole ``settle`` of the app (flush, totals, 0500, the batch upload of N records in
N/8 messages, the upload end, the report saved as text and PNG, the close). Prints the time,
transactions per second and messages per second. Target (issue 6): under 10 s.

    .venv/bin/python bench/settle.py [--count 10000] [--lost 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path

from app.demo import start_host
from app.flows.settle import settle
from app.provision import init
from app.terminal import Terminal
from host.ledger import Ledger
from storage.journal import NewTransaction

PANS = {"CUP": "6228480000000000017", "VIS": "4761739001010010"}


def fill(term: Terminal, host_dir: Path, count: int, lost: int) -> None:
    """``count`` approved rows in the journal; all but every (count // lost)-th on the host."""
    journal = term.journal
    t = term.config["terminal"]
    batch = journal.current_batch()
    skip = set(range(0, count, max(1, count // lost))) if lost else set()
    now = datetime.now().astimezone()
    with Ledger.open(host_dir) as ledger:
        ledger.db.conn.execute("BEGIN")
        for i in range(count):
            org = "VIS" if i % 5 == 4 else "CUP"
            kind = "refund" if i % 10 == 9 else "sale"
            amount = 100 + i % 9_000
            stan = journal.next_stan()
            txn_id = journal.begin(NewTransaction(
                txn_type=kind, amount=amount, currency="156", stan=stan, batch=batch,
                terminal_id=t["terminal_id"], merchant_id=t["merchant_id"], operator="01",
                pan=PANS[org], expiry="3012", card_org=org, entry_mode="051", card_seq="001",
                pin_entered=True, reversible=kind == "sale"))
            rrn = ledger.next_rrn()
            journal.complete(txn_id, approved=True, response_code="00", rrn=rrn,
                             auth_code=f"{i % 1_000_000:06d}", settlement_date=f"{now:%m%d}")
            if i in skip:
                continue
            ledger.record(terminal_id=t["terminal_id"], merchant_id=t["merchant_id"],
                          batch=batch, stan=stan, mti="0220" if kind == "refund" else "0200",
                          txn_type=kind, processing_code="200000" if kind == "refund"
                          else "000000", amount=amount, currency="156", pan=PANS[org],
                          entry_mode="051", response_code="00", rrn=rrn,
                          auth_code=f"{i % 1_000_000:06d}", state="approved",
                          settlement_date=f"{now:%m%d}", moment=now, card_org=org)
        ledger.db.conn.execute("COMMIT")


def bench(count: int, lost: int) -> dict[str, float | str | int]:
    with tempfile.TemporaryDirectory(prefix="posterm-bench-") as tmp:
        term_dir, host_dir = Path(tmp) / "terminal", Path(tmp) / "host"
        host_dir.mkdir()
        host, address = start_host(host_dir, quiet=True)
        try:
            init(term_dir, host=address, host_data=host_dir, force=True,
                 supervisor_password="bench-supervisor")
            with Terminal(term_dir) as term:
                term.session.sign_on()
                t0 = time.perf_counter()
                fill(term, host_dir, count, lost)
                setup = time.perf_counter() - t0
                started = time.perf_counter()
                outcome = settle(term)
                elapsed = time.perf_counter() - started
                row = outcome.row
        finally:
            host.terminate()
            host.wait(timeout=10)
    messages = -(-row.upload_total // 8) + 2
    return {"count": count, "lost": lost, "setup_s": setup, "settle_s": elapsed,
            "txn_per_s": count / elapsed, "messages_per_s": messages / elapsed,
            "result": row.result or "error", "after": row.result_after_upload or "-",
            "uploaded": row.uploaded, "step": row.step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--lost", type=int, default=10,
                        help="transactions the host lacks (forces the batch upload)")
    args = parser.parse_args()
    r = bench(args.count, args.lost)
    print(f"settle: {r['count']} transactions, host lacked {r['lost']}: first 0500 "
          f"{r['result']}, uploaded {r['uploaded']}, after upload {r['after']}, {r['step']}")
    print(f"settle time {r['settle_s']:.2f} s  {r['txn_per_s']:.0f} txn/s  "
          f"{r['messages_per_s']:.0f} messages/s  (target < 10 s; set-up {r['setup_s']:.1f} s "
          "not timed)")


if __name__ == "__main__":
    main()
