"""Bench helper (not a test, not shipped): a big journal and the statement that matches it,
for timing reconciliation.

``fill_journal`` writes ``n`` approved transactions straight into a real, migrated journal
file (one executemany; the card blob is a placeholder, so ``Journal.card_for`` cannot open
these rows — reconciliation never needs it). ``statement_rows`` yields the acquirer's lines
for the same transactions, generated on the fly from the same seed, so both sides agree
line for line unless asked otherwise. Every batch is closed (the open batch is the next
one), so every row is expected on the statement.

    from bench.recon_data import fill_journal, statement_rows
    fill_journal(path, 1_000_000, seed=7)
    for line in statement_rows(1_000_000, seed=7): ...
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from app.recon.model import StatementLine
from storage.journal import Journal
from sync.fees import FeeSchedule, Line

TERMINAL_ID = "12345678"
MERCHANT_ID = "898110048990001"
BENCH_ROOT_KEY = bytes(range(32))
FIRST_DAY = date(2026, 10, 1)
PER_BATCH = 5000          # one batch per day-ish: settled every 5,000 transactions
PER_DAY = 5000
_TYPES = ("sale",) * 92 + ("refund",) * 5 + ("completion",) * 2 + ("offline_sale",)
_ENTRY = ("051",) * 6 + ("071",) * 3 + ("031",)


def _transactions(n: int, seed: int) -> Iterator[tuple]:
    """(txn_id, batch, stan, date, time, rrn, auth, pan_masked, type, entry_mode, amount) of
    ``n`` transactions, the same for the same seed."""
    rng = random.Random(seed)
    cards = [f"622609******{rng.randrange(10000):04d}" for _ in range(5000)]
    prices = [rng.randrange(1, 500000) for _ in range(5000)]   # a shop's price list
    days = [(FIRST_DAY + timedelta(days=d)).isoformat() for d in range(n // PER_DAY + 1)]
    for i in range(n):
        second = 8 * 3600 + (i % PER_DAY) * 10       # 08:00:00, one every 10 s
        time = f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
        yield (i + 1, i // PER_BATCH + 1, i % 999999 + 1, days[i // PER_DAY], time,
               f"{i + 1:012d}", f"{rng.randrange(1000000):06d}", rng.choice(cards),
               rng.choice(_TYPES), rng.choice(_ENTRY), rng.choice(prices))


def fill_journal(path: Path, n: int, seed: int = 1, *, terminal_id: str = TERMINAL_ID,
                 merchant_id: str = MERCHANT_ID, root_key: bytes = BENCH_ROOT_KEY) -> Path:
    """Create (or replace) the journal at ``path`` with ``n`` approved transactions in closed
    batches; returns the path."""
    path = Path(path)
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    with Journal.open(path, root_key) as journal:
        rows = ((txn_id, kind, "APPROVED", amount, "156", stan, batch, terminal_id,
                 merchant_id, "01", card, "bench", b"bench placeholder", "CUP", entry, None,
                 0, 0, "00", rrn, auth, None, "{}", f"{day}T{time}Z", f"{day}T{time}+08:00",
                 f"{day}T{time}Z", f"{day}T{time}+08:00", "printed")
                for (txn_id, batch, stan, day, time, rrn, auth, card, kind, entry, amount)
                in _transactions(n, seed))
        with journal._write() as conn:
            conn.executemany(
                "INSERT INTO transactions (id, txn_type, state, amount, currency, stan, batch,"
                " terminal_id, merchant_id, operator, pan_masked, pan_hash, card, card_org,"
                " entry_mode, card_seq, pin_entered, reversible, response_code, rrn, auth_code,"
                " settlement_date, extra, created_utc, created_local, updated_utc,"
                " updated_local, receipt_state) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?)", rows)
            conn.execute("UPDATE counters SET value = ? WHERE name = 'batch'",
                         ((n - 1) // PER_BATCH + 2 if n else 1,))
            conn.execute("UPDATE counters SET value = ? WHERE name = 'stan'", (n % 999999,))
    return path


def statement_rows(n: int, seed: int = 1, *, fees: FeeSchedule | None = None,
                   terminal_id: str = TERMINAL_ID,
                   merchant_id: str = MERCHANT_ID) -> Iterator[StatementLine]:
    """The statement lines of the transactions ``fill_journal(path, n, seed)`` wrote, in the
    same order (line 1 is the file's header): amount, fee and net signed, status settled."""
    schedule = fees or FeeSchedule()
    money_of: dict[tuple[str, int, str], Line] = {}
    for (txn_id, batch, stan, day, time, rrn, auth, card, kind, entry, amount) \
            in _transactions(n, seed):
        money = money_of.get((kind, amount, entry))
        if money is None:
            money = money_of[kind, amount, entry] = schedule.line(
                "credit" if kind == "refund" else "debit", amount, entry)
        yield StatementLine(txn_id + 1, money.gross, terminal_id, merchant_id, day, time, stan,
                            batch, rrn, auth, card, card[-4:], kind, "settled", money.fee,
                            money.net, day)
