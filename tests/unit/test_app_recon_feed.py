"""The statement feed: a statement read by two processes sharing the work arrives at the
matcher exactly as when read here (same lines, same order, same summary), and a problem
they find arrives as the same one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.recon.feed import StatementFeed
from app.recon.model import LineBlock, StatementLine, Unparseable
from app.recon.profile import load_profile
from app.recon.statement import StatementError

HEADER = ("merchant_id,terminal_id,txn_date,txn_time,stan,batch,rrn,auth_code,card,type,"
          "type_zh,status,amount,fee,net,payout_date")


def _statement(path: Path, n: int, *, bad_line: int | None = None,
               summary: bool = True) -> Path:
    lines = [HEADER]
    for i in range(1, n + 1):
        kind, zh = ("refund", "退货") if i % 7 == 0 else ("sale", "消费")
        amount = "abc" if i == bad_line else f"{i}.{i % 100:02d}"
        lines.append(f"898110048990001,12345678,2026-11-20,14:{i % 60:02d}:00,{i:06d},000001,"
                     f"{i:012d},{i % 999999:06d},622609******{i % 10000:04d},{kind},{zh},"
                     f"approved,{amount},0.01,{i}.00,2026-11-23")
    if summary:
        lines += ["", "summary,count,amount,fee,net", f"total,{n},1.00,0.01,0.99"]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n")
    return path


def _lines(path: Path, *, parallel: bool, readers: int = 2) -> tuple[list, object]:
    profile = load_profile(None, path)
    out: list[StatementLine | Unparseable] = []
    with StatementFeed(path, profile, parallel=parallel, readers=readers) as feed:
        for item in feed.items():
            out.extend(item.lines() if isinstance(item, LineBlock) else [item])
        return out, feed.summary


@pytest.mark.parametrize("readers", [1, 2, 3])
def test_a_statement_read_by_reading_processes_is_the_same_as_read_here(tmp_path, readers):
    stmt = _statement(tmp_path / "s.csv", 40_000, bad_line=12_345)
    here, summary_here = _lines(stmt, parallel=False)
    there, summary_there = _lines(stmt, parallel=True, readers=readers)
    assert len(here) == 40_000
    assert there == here and summary_there == summary_here
    assert summary_here is not None and summary_here.count == 40_000
    [bad] = [x for x in there if isinstance(x, Unparseable)]
    assert bad.line_no == 12_346 and "abc" in bad.reason
    refunds = [x for x in there if isinstance(x, StatementLine) and x.txn_type == "refund"]
    assert refunds and all(x.amount < 0 for x in refunds)


def test_an_error_in_the_reading_process_is_the_same_one_line_error(tmp_path):
    stmt = tmp_path / "gbk.csv"
    _statement(stmt, 3000, summary=False)
    data = stmt.read_bytes()
    cut = data.index(b"\r\n", len(data) // 2)       # a byte that is not UTF-8, mid-file
    stmt.write_bytes(data[:cut] + b"\xff" + data[cut:])
    errors = []
    for parallel in (False, True):
        with pytest.raises(StatementError) as caught:
            _lines(stmt, parallel=parallel)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]
    assert "gbk.csv" in errors[0] and "line " in errors[0] and "\n" not in errors[0]


def test_leaving_early_stops_the_reading_processes(tmp_path):
    stmt = _statement(tmp_path / "s.csv", 50_000)
    with StatementFeed(stmt, load_profile(None, stmt), parallel=True, readers=2) as feed:
        next(iter(feed.items()))
        processes = list(feed._processes)
    assert len(processes) == 2 and not any(p.is_alive() for p in processes)


def test_a_block_pickled_comes_back_the_same_whatever_its_columns_hold():
    """A block's columns travel packed (one value repeated, integers as bytes, texts joined)
    or as they are (None among values, a NUL inside a text, a number too big for 64 bits):
    each comes back equal, column by column and line by line."""
    import pickle

    from app.recon.model import LINE_FIELDS

    columns = {name: [None, None, None] for name in LINE_FIELDS}
    columns.update({
        "amount": [100, -250, 2**63 + 1],                  # too big for an array: as is
        "terminal_id": ["12345678"] * 3,                    # one value repeated
        "merchant_id": ["898110048990001", None, "898110048990001"],   # None among texts
        "date": ["2026-11-20", "2026-11-21", "2026-11-20"],
        "rrn": ["000000000001", "a\x00b", ""],            # a NUL inside: as is
        "time": ["14:00:00", "", "23:59:59"],              # an empty text is kept empty
        "stan": [1, 2, 3],
        "fee": [1, None, 3],
    })
    block = LineBlock([2, 3, 5], columns)
    back = pickle.loads(pickle.dumps(block, protocol=pickle.HIGHEST_PROTOCOL))
    assert back.numbers == [2, 3, 5]
    assert back.column("stan") == [1, 2, 3] and back.column("rrn") == ["000000000001", "a\x00b", ""]
    assert back.columns == columns
    assert back.lines() == block.lines()
    # a block pickled again after some columns were rebuilt still holds all of them
    again = pickle.loads(pickle.dumps(pickle.loads(pickle.dumps(block)), protocol=5))
    again.column("amount")
    assert pickle.loads(pickle.dumps(again)).columns == columns
    empty = pickle.loads(pickle.dumps(LineBlock([], {name: [] for name in LINE_FIELDS})))
    assert len(empty) == 0 and empty.lines() == []
