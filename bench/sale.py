"""Benchmark: sales on mock devices against a local posterm-host, and CLI cold start.

Prints p50/p99 latency of a whole sale (card read, PIN block, journal, host round trip,
receipts) over N sales, sales per second, and the cold start of ``posterm --help``.
Targets (issue 2): p99 under 20 ms; cold start under 300 ms.

    .venv/bin/python bench/sale.py [--sales 1000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stats import percentile

from app.demo import start_host
from app.flows.sale import run_sale
from app.provision import init
from app.terminal import Terminal
from hal.testcards import test_card


def bench_sales(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="posterm-bench-") as tmp:
        term_dir, host_dir = Path(tmp) / "terminal", Path(tmp) / "host"
        host_dir.mkdir()
        host, address = start_host(host_dir, quiet=True)
        try:
            init(term_dir, host=address, host_data=host_dir, force=True,
                 supervisor_password="bench-supervisor")
            card = test_card("unionpay-debit-chip")
            with Terminal(term_dir) as term:
                term.session.sign_on()
                run_sale(term, 100, card_profile=card)        # warm-up: imports, connection
                times = []
                started = time.perf_counter()
                for i in range(count):
                    t0 = time.perf_counter()
                    outcome = run_sale(term, 100 + i, card_profile=card)
                    times.append(time.perf_counter() - t0)
                    if not outcome.result.approved:
                        raise SystemExit(f"sale {i} not approved: {outcome.result.record}")
                elapsed = time.perf_counter() - started
        finally:
            host.terminate()
            host.wait(timeout=10)
    return {"sales": count, "p50_ms": percentile(times, 50) * 1000,
            "p99_ms": percentile(times, 99) * 1000, "max_ms": max(times) * 1000,
            "sales_per_s": count / elapsed}


def bench_cold_start(runs: int = 7) -> float:
    exe = Path(sys.executable).with_name("posterm")
    cmd = [str(exe), "--help"] if exe.exists() else [sys.executable, "-m", "app", "--help"]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sales", type=int, default=1000)
    args = parser.parse_args()
    r = bench_sales(args.sales)
    print(f"sales: {r['sales']}  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
          f"max {r['max_ms']:.2f} ms  {r['sales_per_s']:.0f} sales/s  (target p99 < 20 ms)")
    print(f"cold start 'posterm --help': median {bench_cold_start():.0f} ms (target < 300 ms)")


if __name__ == "__main__":
    main()
