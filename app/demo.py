"""The main job for a laptop: a scripted day on mock devices against the bundled host.

It starts ``posterm-host`` on a free loopback port, initialises a terminal provisioned on
it, signs on, runs sales with different test cards (approvals, declines, a host that
never answers), lists the journal, settles and signs off; then it exports the day's
statement from the host (``posterm-host statement``) and reconciles it against the journal
(``posterm reconcile``), which must match every line. Each step is shown as the real
command a person would type.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from app import config as config_mod

DAY = [
    ("signon",),
    ("sale", "12.50", "--card", "unionpay-debit-chip"),
    ("sale", "88.00", "--card", "visa-chip"),
    ("sale", "23.40", "--card", "mc-tap"),
    ("sale", "199.99", "--card", "unionpay-credit-swipe", "--pin", "123456"),
    ("sale", "500.00", "--card", "decline-51"),
    ("sale", "30.00", "--card", "wrong-pin"),
    ("sale", "45.00", "--card", "expired"),
    ("sale", "66.66", "--card", "host-silent"),
    ("void", "3", "--supervisor-password", "demo-supervisor"),     # the visa sale, STAN 3
    ("balance", "--card", "unionpay-debit-chip"),
    ("preauth", "300.00", "--card", "unionpay-debit-chip"),        # STAN 12
    ("complete", "320.00", "--preauth", "12", "--card", "unionpay-debit-chip"),
    ("queue",),
    ("txns",),
    ("settle",),                                                    # 结算: balanced, batch 2
    ("signoff",),
]


def start_host(host_dir: Path, *, quiet: bool = False) -> tuple[subprocess.Popen, str]:
    """Start ``posterm-host`` on a free loopback port; returns the process and HOST:PORT."""
    proc = subprocess.Popen([sys.executable, "-m", "host", "--data", str(host_dir), "--listen",
                             "127.0.0.1:0"], stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.DEVNULL if quiet else None)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("posterm-host listening on "):
        proc.kill()
        raise RuntimeError(f"host simulator did not start: {line or 'no output'}")
    return proc, line.rsplit(" ", 1)[1]


def _posterm(data: Path, *args: str) -> int:
    shown = " ".join(shlex.quote(a) for a in ("posterm", *args))
    print(f"\n$ {shown}", flush=True)
    return subprocess.run([sys.executable, "-m", "app", "--data", str(data), *args],
                          env={**os.environ, "COLUMNS": "120"}, check=False).returncode


def _posterm_host(*args: str) -> int:
    shown = " ".join(shlex.quote(a) for a in ("posterm-host", *args))
    print(f"\n$ {shown}", flush=True)
    return subprocess.run([sys.executable, "-m", "host", *args], check=False).returncode


def run_day(keep: Path | None) -> int:
    """Run the scripted day; 0 when every step ended as the script expects."""
    with tempfile.TemporaryDirectory(prefix="posterm-day-") as tmp:
        base = keep or Path(tmp)
        term_dir, host_dir = base / "terminal", base / "host"
        host_dir.mkdir(parents=True, exist_ok=True)
        host, address = start_host(host_dir)
        print(f"posterm-host listening on {address} (data {host_dir})", flush=True)
        try:
            codes = [_posterm(term_dir, "init", "--host", address, "--host-data",
                              str(host_dir), "--supervisor-password", "demo-supervisor",
                              "--force")]
            values = config_mod.load(term_dir).values
            values["host"]["response_timeout"] = 3   # the host-silent card, without a long wait
            config_mod.write(term_dir, values)
            codes += [_posterm(term_dir, *step) for step in DAY]
        finally:
            host.terminate()
            host.wait(timeout=10)
        # 对账: the host's statement of what it cleared today (the host's local date) must
        # agree with the journal line by line.
        statement = base / "statement.csv"
        codes.append(_posterm_host("statement", "--data", str(host_dir), "--date",
                                   date.today().isoformat(), "--format", "csv",
                                   "-o", str(statement)))
        codes.append(_posterm(term_dir, "reconcile", str(statement)))
        expected = [0, 0, 0, 0, 0, 0, 1, 1, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        receipts = sorted((term_dir / "receipts").glob("*.txt"))
        print(f"\nday over: {len(receipts)} receipt previews in {term_dir / 'receipts'}"
              + ("" if keep else " (temporary; use --keep DIR to keep them)"))
        if receipts:
            print(f"\n--- {receipts[0].name} ---\n{receipts[0].read_text(encoding='utf-8')}")
        if codes != expected:
            print(f"unexpected exit codes: {codes}, expected {expected}", file=sys.stderr)
            return 1
        return 0
