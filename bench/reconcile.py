"""Benchmark: reconcile a 1,000,000-row journal against a 1,000,000-line statement.

Set-up (not timed): a terminal data directory (``posterm init`` without a host), its
journal filled with N approved transactions in closed batches (bench/recon_data.py), and
the acquirer's statement for them written as ``posterm-host statement`` writes its CSV
(UTF-8 with BOM, the 16 columns, a blank line, the summary block), with a few lines
changed so that every class is exercised: amounts, fees, statuses, lines dropped and added.

Timed: ``posterm reconcile STATEMENT --json`` as its own process — reading the file through
the bundled profile, the journal, the matching, storing the run — wall time and the
process's peak RSS (wait4). Then, in a process of its own, a pandas merge doing the same
matching (RRN, then STAN/batch/date, amount, status and fee comparisons, probable matches
by amount, card and time) on the same two sources, and the ratio.
Targets (issue 7): under 15 s and under 1 GB peak.

    .venv/bin/pip install -e '.[bench]'          # pandas, for the comparison
    .venv/bin/python bench/reconcile.py [--count 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app import config as config_mod
from app.amount import format_yuan
from app.provision import init
from bench.recon_data import fill_journal, statement_rows
from storage.keyfile import load_key_file

HEADER = ("merchant_id,terminal_id,txn_date,txn_time,stan,batch,rrn,auth_code,card,type,"
          "type_zh,status,amount,fee,net,payout_date")
TYPE_ZH = {"sale": "消费", "completion": "预授权完成", "offline_sale": "离线消费", "refund": "退货"}
#: Every this-many-th line is changed, one kind of change after another.
EDIT_EVERY = 10_007


def write_statement(path: Path, count: int, seed: int) -> dict[str, int]:
    """The statement CSV for the journal's transactions, with some lines edited; returns how
    many edits of each kind were made."""
    edits = {"amount": 0, "fee": 0, "status": 0, "removed": 0, "added": 0}
    kinds = tuple(edits)
    n = amount_sum = fee_sum = net_sum = 0
    with open(path, "w", encoding="utf-8-sig", newline="") as out:
        out.write(HEADER + "\r\n")
        for i, line in enumerate(statement_rows(count, seed)):
            amount, fee, net, status = line.amount, line.fee, line.net, "approved"
            if i % EDIT_EVERY == EDIT_EVERY - 1:
                kind = kinds[(i // EDIT_EVERY) % len(kinds)]
                edits[kind] += 1
                if kind == "removed":
                    continue
                if kind == "amount":
                    amount += 1
                    net += 1
                elif kind == "fee":
                    fee += 1
                    net -= 1
                elif kind == "status":
                    status = "reversed"
                elif kind == "added":
                    out.write(f"{line.merchant_id},{line.terminal_id},{line.date},{line.time},"
                              f"999999,{line.batch:06d},9{line.rrn[1:]},,622609******0000,"
                              f"sale,消费,approved,1.23,0.01,1.22,{line.settlement_date}\r\n")
                    n, amount_sum, fee_sum, net_sum = n + 1, amount_sum + 123, fee_sum + 1, \
                        net_sum + 122
            out.write(f"{line.merchant_id},{line.terminal_id},{line.date},{line.time},"
                      f"{line.stan:06d},{line.batch:06d},{line.rrn},{line.auth_code},"
                      f"{line.card_masked},{line.txn_type},{TYPE_ZH[line.txn_type]},{status},"
                      f"{format_yuan(amount)},{format_yuan(fee)},{format_yuan(net)},{line.settlement_date}\r\n")
            n, amount_sum, fee_sum, net_sum = (n + 1, amount_sum + amount, fee_sum + fee,
                                               net_sum + net)
        out.write(f"\r\nsummary,count,amount,fee,net\r\ntotal,{n},{format_yuan(amount_sum)},"
                  f"{format_yuan(fee_sum)},{format_yuan(net_sum)}\r\n")
    return edits


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and its children (the statement's reading process)."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines()
                              if line.startswith("VmRSS:")))
            for task in Path(f"/proc/{p}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def timed_child(args: list[str]) -> tuple[float, int, int, str]:
    """Run a process; (wall seconds, its own peak RSS in MB, the peak of its RSS and its
    children's together in MB (sampled every 20 ms), its stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, cwd=REPO, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{args[2:5]} exited {proc.returncode}")
    return elapsed, usage.ru_maxrss // 1024, peak[0] // 1024, out


# -- the pandas comparison (run in its own process: `--pandas DATA STATEMENT`) ---------------

def pandas_match(data: Path, statement: Path) -> dict[str, int]:
    """The same matching with pandas merges; returns the class counts."""
    import sqlite3

    import numpy as np
    import pandas as pd

    cfg = config_mod.load(data)
    fees = cfg.fees
    card_bp = int(fees.card_rate * 100)
    qr_bp = int(fees.qr_rate * 100)
    text = {c: str for c in ("merchant_id", "terminal_id", "stan", "batch", "rrn",
                             "auth_code", "card")}
    st = pd.read_csv(statement, encoding="utf-8-sig", dtype=text, skip_blank_lines=False)
    end = st.index[st["merchant_id"].isna()]
    if len(end):
        st = st.iloc[: end[0]]
    st["line"] = np.arange(2, len(st) + 2)
    for col in ("amount", "fee", "net"):
        st[col] = (pd.to_numeric(st[col]) * 100).round().astype("int64")
    st["stan_i"] = st["stan"].astype("int64")
    st["batch_i"] = st["batch"].astype("int64")
    conn = sqlite3.connect(data / config_mod.DB_NAME)
    jr = pd.read_sql_query(
        "SELECT id, rrn, stan, batch, amount, txn_type, entry_mode, substr(pan_masked, -4)"
        " AS last4, substr(created_local, 1, 10) AS date, substr(created_local, 12, 8)"
        " AS time, CASE WHEN voided_by IS NOT NULL THEN 'voided' WHEN state = 'APPROVED'"
        " THEN 'settled' ELSE lower(state) END AS status FROM transactions", conn)
    conn.close()
    jr["signed"] = np.where(jr["txn_type"] == "refund", -jr["amount"], jr["amount"])
    # 1. by RRN, 2. the rest by (batch, STAN, date)
    first = st.merge(jr, on="rrn", how="left", suffixes=("", "_j"), indicator=True)
    hit = first[first["_merge"] == "both"]
    rest = st[~st["line"].isin(hit["line"])]
    taken = set(hit["id"])
    free = jr[~jr["id"].isin(taken)]
    second = rest.merge(free, left_on=["batch_i", "stan_i", "txn_date"],
                        right_on=["batch", "stan", "date"], how="inner", suffixes=("", "_j"))
    pairs = pd.concat([hit, second], ignore_index=True)
    # 3. probable: amount, last four, within 10 minutes
    unmatched = st[~st["line"].isin(pairs["line"])].copy()
    free = free[~free["id"].isin(second["id"])]
    unmatched["last4"] = unmatched["card"].str[-4:]
    cand = unmatched.merge(free, left_on=["amount", "last4"], right_on=["signed", "last4"],
                           suffixes=("", "_j"))
    gap = (pd.to_datetime(cand["txn_date"] + " " + cand["txn_time"])
           - pd.to_datetime(cand["date"] + " " + cand["time"])).abs()
    probable = cand[gap <= pd.Timedelta(seconds=600)].drop_duplicates("line")
    probable = probable.drop_duplicates("id")
    # classes of the pairs
    status_bad = ((pairs["status_j"] if "status_j" in pairs else pairs["status"]) != "settled")
    line_status = pairs["status"].map({"approved": "settled", "adjusted": "settled",
                                       "added": "settled"}).fillna("other")
    jstatus = pairs["status_j"]
    status_bad = ((jstatus != "settled") & (line_status == "settled")) | (
        (jstatus == "settled") & (line_status != "settled"))
    amount_bad = ~status_bad & (pairs["amount"] != pairs["signed"])
    bp = np.where(pairs["entry_mode"].str.startswith("03"), qr_bp, card_bp)
    fee = (pairs["amount_j"] * bp * 2 + 10_000) // 20_000      # half up
    fee = np.where(pairs["txn_type"] == "refund", -fee, fee)
    fee_bad = ~status_bad & ~amount_bad & ((pairs["fee"] != fee)
                                          | (pairs["net"] != pairs["signed"] - fee))
    matched_ids = set(pairs["id"]) | set(probable["id"])
    expected = jr[(jr["status"] == "settled")]
    counts = {"matched": int((~status_bad & ~amount_bad & ~fee_bad).sum()),
              "probable": len(probable), "amount_mismatch": int(amount_bad.sum()),
              "journal_only": int((~expected["id"].isin(matched_ids)).sum()),
              "statement_only": len(unmatched) - len(probable),
              "status_mismatch": int(status_bad.sum()), "fee_mismatch": int(fee_bad.sum()),
              "unparseable": 0}
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", type=Path, help="Keep the data directory and statement here.")
    p.add_argument("--pandas", nargs=2, type=Path, metavar=("DATA", "STATEMENT"),
                   help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.pandas:
        start = time.perf_counter()
        counts = pandas_match(*args.pandas)
        print(json.dumps({"seconds": time.perf_counter() - start, "counts": counts}))
        return
    with tempfile.TemporaryDirectory(prefix="posterm-recon-") as tmp:
        base = args.keep or Path(tmp)
        data = base / "terminal"
        statement = base / "statement.csv"
        t0 = time.perf_counter()
        init(data, host=None, host_data=None, force=True,
             supervisor_password="bench-supervisor-1")
        fill_journal(data / config_mod.DB_NAME, args.count, args.seed,
                     root_key=load_key_file(data / config_mod.KEY_NAME))
        edits = write_statement(statement, args.count, args.seed)
        size_mb = statement.stat().st_size / 1e6
        # The set-up's writes (the journal and the statement, about 450 MB) reach the disk
        # before the clock starts: their write-back would otherwise land in the timed run.
        os.sync()
        print(f"set-up: journal of {args.count:,} rows, statement of {size_mb:.0f} MB "
              f"({edits}) in {time.perf_counter() - t0:.1f} s", flush=True)

        seconds, rss, tree, out = timed_child([sys.executable, "-m", "app", "--data",
                                               str(data), "reconcile", str(statement),
                                               "--json"])
        result = json.loads(out)
        print(f"posterm reconcile: {seconds:.2f} s, peak RSS {rss} MB (with its reading "
              f"process {tree} MB), {args.count / seconds:,.0f} rows/s "
              "(target < 15 s, < 1024 MB)")
        print(f"  counts {result['counts']}, summary {result['summary_check']}")
        try:
            import pandas  # noqa: F401
        except ImportError:
            print("pandas comparison skipped: pip install -e '.[bench]'")
            return
        _, prss, _, pout = timed_child([sys.executable, __file__, "--pandas", str(data),
                                        str(statement)])
        pres = json.loads(pout)
        print(f"pandas merge (same matching): {pres['seconds']:.2f} s, peak RSS {prss} MB; "
              f"posterm / pandas = {seconds / pres['seconds']:.2f}")
        print(f"  pandas counts {pres['counts']}")


if __name__ == "__main__":
    main()
