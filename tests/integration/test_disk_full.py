"""A full or read-only disk (issue 9): a sale is refused before anything is sent, with one
clear line, and nothing already stored is lost.

The terminal's data directory lives on a small file system of its own (a 8 MB tmpfs), which
the test fills to the last byte or remounts read-only; the host is a real posterm-host
process and the cashier's command is ``posterm sale`` as its own process. Mounting needs
root (CI runs as root); elsewhere the test is skipped with that reason.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import HostSim, Run, assert_one_clean_error_line, posterm, provision, read_host_ledger

CARD = "unionpay-debit-chip"


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "small-disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (CI runs as root)")
    mounted = _mount("-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(where))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        _mount("-o", "remount,rw", str(where))
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path) -> Path:
    """Write a file until the disk refuses another byte."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        chunk = b"\0" * 65536
        try:
            while True:
                out.write(chunk)
        except OSError:
            pass
        try:
            while True:
                out.write(b"\0")
        except OSError:
            pass
    assert os.statvfs(disk).f_bavail == 0
    return filler


def _sale(data: Path, amount: str) -> Run:
    return posterm(data, "sale", amount, "--card", CARD)


def _journal(data: Path) -> list[dict]:
    run = posterm(data, "txns", "--json")
    assert run.returncode == 0, str(run)
    return run.json()["transactions"]


def test_a_full_disk_refuses_the_sale_before_it_is_sent_and_loses_nothing(
        tmp_path: Path, small_disk: Path):
    host = HostSim(tmp_path / "host", tmp_path / "host-stderr.log")
    try:
        data = small_disk / "terminal"
        provision(data, host.address, host.data)
        first = _sale(data, "12.50")
        assert first.returncode == 0, str(first)
        before_journal, before_host = _journal(data), read_host_ledger(host.data)
        assert len(before_journal) == 1 and len(before_host) == 1

        filler = _fill(small_disk)
        refused = _sale(data, "33.00")
        line = assert_one_clean_error_line(refused, 2)
        assert "the disk is full" in line and "nothing was written" in line, line
        assert read_host_ledger(host.data) == before_host       # nothing reached the host

        filler.unlink()
        assert _journal(data) == before_journal                 # nothing lost, nothing added
        again = _sale(data, "33.00")
        assert again.returncode == 0, str(again)
        assert len(read_host_ledger(host.data)) == 2
        assert [t["amount"] for t in _journal(data)] == [3300, 1250]
    finally:
        host.stop()


def test_a_read_only_disk_refuses_the_sale_with_one_line(tmp_path: Path, small_disk: Path):
    host = HostSim(tmp_path / "host", tmp_path / "host-stderr.log")
    try:
        data = small_disk / "terminal"
        provision(data, host.address, host.data)
        assert _sale(data, "12.50").returncode == 0
        before_host = read_host_ledger(host.data)

        remounted = _mount("-o", "remount,ro", str(small_disk))
        assert remounted.returncode == 0, remounted.stderr
        refused = _sale(data, "20.00")
        line = assert_one_clean_error_line(refused, 2)
        assert "read-only" in line, line
        assert read_host_ledger(host.data) == before_host

        assert _mount("-o", "remount,rw", str(small_disk)).returncode == 0
        assert _sale(data, "20.00").returncode == 0
        assert [t["amount"] for t in _journal(data)] == [2000, 1250]
    finally:
        host.stop()
