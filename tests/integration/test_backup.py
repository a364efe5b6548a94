"""posterm backup create|list|verify|restore, the upgrade backup and the newer-journal refusal,
through real ``posterm`` processes on real files (and a real posterm-host for the sales)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from contextlib import closing
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from conftest import (
    PY,
    REPO,
    Run,
    Terminal,
    _env,
    assert_one_clean_error_line,
    posterm,
    posterm_cmd,
    set_config,
)

from storage.migrations import LATEST_VERSION, MIGRATIONS

#: The journal's tables compared after a restore (the audit log is checked as a chain).
TABLES = ("meta", "counters", "keys", "transactions", "reversals", "operators", "advices",
          "settlements", "recon_runs", "recon_items")


def dump(db: Path) -> dict[str, list[tuple]]:
    with closing(sqlite3.connect(db)) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}


def copy_of(db: Path, dest: Path) -> Path:
    """A consistent copy of a live journal, for comparing afterwards."""
    with closing(sqlite3.connect(db)) as src, closing(sqlite3.connect(dest)) as out:
        src.backup(out)
    return dest


def sell(term: Terminal, *amounts: str) -> None:
    for amount in amounts:
        run = term.run("sale", amount, "--card", "unionpay-debit-chip", "--json")
        assert run.returncode == 0, str(run)


def init_plain(data: Path, *extra: str) -> None:
    """A terminal without a host (for the commands that need none)."""
    run = posterm_cmd("init", "--data", data, "--supervisor-password", "secret-99", "--json",
                      *extra)
    assert run.returncode == 0, str(run)


@dataclass
class Till:
    """A terminal initialised without a host: no transactions (for what needs none)."""

    data: Path

    def run(self, *args: str | Path) -> Run:
        return posterm(self.data, *args)


@pytest.fixture
def plain(tmp_path: Path) -> Till:
    init_plain(tmp_path / "till")
    return Till(tmp_path / "till")


@pytest.fixture
def trading(terminal: Terminal) -> Terminal:
    """A provisioned terminal, signed on, with three approved sales."""
    run = terminal.run("signon", "--json")
    assert run.returncode == 0, str(run)
    sell(terminal, "12.50", "8.00", "100.01")
    return terminal


# ---------------------------------------------------------------------- round trip

def test_round_trip_create_corrupt_verify_restore(trading: Terminal, tmp_path: Path):
    data = trading.data
    created = trading.run("backup", "create", "--json")
    assert created.returncode == 0, str(created)
    made = created.json()
    backup = Path(made["file"])
    assert made["transactions"] == 3 and made["kind"] == "daily"
    assert backup.parent == data / "backups" and oct(backup.stat().st_mode & 0o777) == "0o600"
    reference = copy_of(data / "posterm.db", tmp_path / "reference.db")
    with closing(sqlite3.connect(data / "posterm.db")) as conn:     # audited after the snapshot
        (last,) = conn.execute("SELECT action || detail FROM audit ORDER BY id DESC LIMIT 1"
                               ).fetchone()
    assert last.startswith("backup.create") and backup.name in last

    verified = trading.run("backup", "verify", "--json")           # default: the newest
    assert verified.returncode == 0, str(verified)
    contents = verified.json()["contents"]
    assert contents["integrity"] == "ok" and contents["transactions"] == 3
    assert contents["open_batch"] == 1 and contents["audit_problems"] == []
    line = trading.run("backup", "verify", backup.name)
    assert line.returncode == 0 and line.stdout.count("\n") == 1
    assert "3 transactions" in line.stdout and "备份完好" in line.stdout

    damaged = tmp_path / backup.name
    raw = bytearray(backup.read_bytes())
    raw[len(raw) // 2] ^= 0x40                                      # one byte
    damaged.write_bytes(bytes(raw))
    failed = trading.run("backup", "verify", damaged)
    message = assert_one_clean_error_line(failed, 1)
    assert "damaged" in message and "损坏" in message and backup.name in message

    sell(trading, "55.55", "66.66")                                 # the day goes on
    assert len(dump(data / "posterm.db")["transactions"]) == 5
    restored = trading.run("backup", "restore", backup.name, "--json")
    assert restored.returncode == 0, str(restored)
    assert restored.json()["previous_kind"] == "pre-restore"
    assert dump(data / "posterm.db") == dump(reference)            # the same journal, by SQL

    audit = trading.run("audit", "verify")                         # the chain, extended
    assert audit.returncode == 0, str(audit)
    txns = trading.run("txns", "--json")
    assert txns.returncode == 0 and len(txns.json()["transactions"]) == 3
    # the journal replaced by the restore is kept, and holds the five sales
    previous = Path(restored.json()["previous"])
    kept = trading.run("backup", "verify", previous, "--json")
    assert kept.returncode == 0 and kept.json()["contents"]["transactions"] == 5
    with closing(sqlite3.connect(data / "posterm.db")) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit ORDER BY id")]
    assert actions[-1] == "backup.restore"


def test_list_shows_every_backup_newest_first(plain: Till):
    assert plain.run("backup", "list").stdout.startswith("没有备份")
    first = plain.run("backup", "create", "--json").json()
    (plain.data / "backups" / "junk.ptbak").write_bytes(b"not a backup")
    listed = plain.run("backup", "list", "--json")
    assert listed.returncode == 0, str(listed)
    items = listed.json()["backups"]
    assert [i["name"] for i in items if "error" not in i] == [first["name"]]
    assert any("error" in i and i["name"] == "junk.ptbak" for i in items)
    text = plain.run("backup", "list").stdout
    assert first["name"] in text and "unreadable" in text


def test_create_twice_in_a_day_keeps_the_newest_and_keep_daily_is_configurable(
        plain: Till):
    first = plain.run("backup", "create", "--json").json()
    time.sleep(1.1)                                   # another second, another name
    second = plain.run("backup", "create", "--json").json()
    assert second["rotated_out"] == [first["name"]]
    names = [i["name"] for i in plain.run("backup", "list", "--json").json()["backups"]]
    assert names == [second["name"]]
    set_config(plain.data, "backup", "keep_daily", 0)   # refused by the schema
    bad = plain.run("backup", "list")
    assert "backup.keep_daily" in assert_one_clean_error_line(bad, 2)


def test_the_backup_directory_is_configurable(plain: Till, tmp_path: Path):
    elsewhere = tmp_path / "usb-stick" / "posterm"
    set_config(plain.data, "backup", "directory", str(elsewhere))
    made = plain.run("backup", "create", "--json")
    assert made.returncode == 0, str(made)
    assert Path(made.json()["file"]).parent == elsewhere


# ---------------------------------------------------------------------- refusals

def test_a_backup_of_another_terminal_is_refused_unless_forced(trading: Terminal,
                                                               tmp_path: Path):
    backup = Path(trading.run("backup", "create", "--json").json()["file"])
    other = tmp_path / "other"
    init_plain(other, "--terminal-id", "87654321")
    shutil.copy(trading.data / "posterm.key", other / "posterm.key")   # the same root key
    before = dump(other / "posterm.db")

    refused = posterm(other, "backup", "restore", backup)
    message = assert_one_clean_error_line(refused, 1)
    assert "12345678" in message and "87654321" in message and "--force" in message
    assert dump(other / "posterm.db") == before

    forced = posterm(other, "backup", "restore", backup, "--force")
    assert forced.returncode == 0, str(forced)
    assert "强制" in forced.stdout and "forced" in forced.stdout
    assert len(dump(other / "posterm.db")["transactions"]) == 3
    with closing(sqlite3.connect(other / "posterm.db")) as conn:
        (detail,) = conn.execute("SELECT detail FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    assert '"forced":true' in detail


def test_a_backup_under_another_key_file_is_refused(plain: Till, tmp_path: Path):
    backup = Path(plain.run("backup", "create", "--json").json()["file"])
    other = tmp_path / "other"
    init_plain(other)                                      # same terminal id, its own key
    message = assert_one_clean_error_line(posterm(other, "backup", "verify", backup), 1)
    assert "another key file" in message


def _journal_open_by(pid: int, db: Path) -> bool:
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd_dir / fd) == str(db) for fd in os.listdir(fd_dir))
    except (FileNotFoundError, PermissionError):
        return False


def test_restore_is_refused_while_a_posterm_process_has_the_journal_open(trading: Terminal):
    backup = Path(trading.run("backup", "create", "--json").json()["file"])
    db = trading.data / "posterm.db"
    before = dump(db)
    watch = subprocess.Popen([PY, "-m", "app", "--data", str(trading.data), "watch",
                              "--interval", "60"], cwd=REPO, env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _journal_open_by(watch.pid, db):
            assert watch.poll() is None and time.monotonic() < deadline, "watch never opened it"
            time.sleep(0.1)
        refused = trading.run("backup", "restore", backup)
        message = assert_one_clean_error_line(refused, 1)
        assert "another posterm process" in message and "另一个 posterm 进程" in message
        assert dump(db) == before
        assert not list((trading.data / "backups").glob("*pre-restore*"))
        # a backup is still possible beside the running process (online backup); it is
        # the day's newest, so the day's first one is rotated out
        beside = trading.run("backup", "create", "--json")
        assert beside.returncode == 0, str(beside)
        assert beside.json()["rotated_out"] == [backup.name]
    finally:
        watch.terminate()
        watch.wait(timeout=10)
    assert trading.run("backup", "restore", beside.json()["file"]).returncode == 0


def test_a_damaged_journal_is_restored_and_kept_aside(trading: Terminal):
    backup = Path(trading.run("backup", "create", "--json").json()["file"])
    db = trading.data / "posterm.db"
    expected = dump(db)
    db.write_bytes(b"\x00" * 4096 + b"garbage" * 1000)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    broken = trading.run("txns")
    assert "backup" in assert_one_clean_error_line(broken, 2)        # "restore it from a backup"
    assert trading.run("backup", "verify").returncode == 0          # needs no journal
    restored = trading.run("backup", "restore", backup, "--json")
    assert restored.returncode == 0, str(restored)
    assert restored.json()["previous_kind"] == "damaged"
    assert Path(restored.json()["previous"]).read_bytes().startswith(b"\x00" * 16)
    assert dump(db) == expected
    assert trading.run("txns", "--json").returncode == 0


def test_unknown_backup_names_are_one_line(plain: Till):
    assert "no backup" in assert_one_clean_error_line(plain.run("backup", "verify"), 2)
    assert "no backup" in assert_one_clean_error_line(
        plain.run("backup", "restore", "nope.ptbak"), 2)


# ---------------------------------------------------------------------- upgrades

def make_old_journal(db: Path, version: int) -> None:
    """Replace DATA's journal with one an older build made: migrations up to `version` and
    one approved sale in the columns that version had."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        for migration in MIGRATIONS[:version]:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {migration.version}")
        conn.execute(
            "INSERT INTO transactions (txn_type, state, amount, currency, stan, batch, "
            "terminal_id, merchant_id, operator, pan_masked, pan_hash, card, card_org, "
            "entry_mode, pin_entered, reversible, response_code, rrn, auth_code, created_utc, "
            "created_local, updated_utc, updated_local) VALUES ('sale', 'APPROVED', 1250, "
            "'156', 1, 1, '12345678', '898110048990001', '01', '622609******0048', 'h', x'00', "
            "'CUP', '051', 0, 1, '00', '000000000001', '123456', '2026-11-20T01:00:00Z', "
            "'2026-11-20T09:00:00+08:00', '2026-11-20T01:00:00Z', '2026-11-20T09:00:00+08:00')")


def test_an_older_journal_is_backed_up_once_then_migrated(tmp_path: Path):
    data = tmp_path / "till"
    init_plain(data)
    db = data / "posterm.db"
    make_old_journal(db, 3)
    before = dump_v3(db)

    first = posterm(data, "txns", "--json")
    assert first.returncode == 0, str(first)
    assert [t["amount"] for t in first.json()["transactions"]] == [1250]
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (LATEST_VERSION,)
    assert posterm(data, "txns").returncode == 0                    # no second upgrade
    assert posterm(data, "backup", "create").returncode == 0

    listed = posterm(data, "backup", "list", "--json").json()["backups"]
    upgrades = [b for b in listed if b["kind"] == "upgrade"]
    assert len(upgrades) == 1 and len(listed) == 2
    (up,) = upgrades
    assert up["schema_version"] == 3 and up["note"] == f"schema 3 to {LATEST_VERSION}"
    assert f"upgrade-schema-3-to-{LATEST_VERSION}" in up["name"]
    verified = posterm(data, "backup", "verify", up["name"], "--json")
    assert verified.returncode == 0 and verified.json()["contents"]["schema_version"] == 3

    # restoring it brings back the old journal, which the next start upgrades again
    assert posterm(data, "backup", "restore", up["name"]).returncode == 0
    assert dump_v3(db) == before
    assert posterm(data, "txns").returncode == 0
    kinds = [b["kind"] for b in posterm(data, "backup", "list", "--json").json()["backups"]]
    assert kinds.count("upgrade") == 2 and kinds.count("pre-restore") == 1


def dump_v3(db: Path) -> dict[str, list[tuple]]:
    with closing(sqlite3.connect(db)) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
                for t in ("meta", "counters", "transactions", "reversals", "operators")}


def test_no_migration_without_its_backup(tmp_path: Path):
    data = tmp_path / "till"
    init_plain(data)
    make_old_journal(data / "posterm.db", 4)
    set_config(data, "backup", "directory", "posterm.toml/backups")   # cannot be made
    run = posterm(data, "txns")
    message = assert_one_clean_error_line(run, 2)
    assert "needs an upgrade" in message and "升级前的备份失败" in message
    with closing(sqlite3.connect(data / "posterm.db")) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (4,)
    set_config(data, "backup", "directory", "")
    assert posterm(data, "txns").returncode == 0
    kinds = [b["kind"] for b in posterm(data, "backup", "list", "--json").json()["backups"]]
    assert kinds == ["upgrade"]


def test_two_processes_starting_together_make_one_upgrade_backup(tmp_path: Path):
    data = tmp_path / "till"
    init_plain(data)
    make_old_journal(data / "posterm.db", 2)
    procs = [subprocess.Popen([PY, "-m", "app", "--data", str(data), "txns", "--json"],
                              cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    listed = posterm(data, "backup", "list", "--json").json()["backups"]
    assert [b["kind"] for b in listed] == ["upgrade"]


def test_a_journal_newer_than_this_posterm_is_one_line_and_untouched(tmp_path: Path):
    data = tmp_path / "till"
    init_plain(data)
    db = data / "posterm.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    size = db.stat().st_size
    for args in (("txns",), ("backup", "create"), ("signon",)):
        run = posterm(data, *args)
        message = assert_one_clean_error_line(run, 2)
        assert f"schema version {LATEST_VERSION + 1}" in message
        assert "newer than this posterm" in message and "请升级 posterm" in message
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (LATEST_VERSION + 1,)
    assert db.stat().st_size == size
    assert posterm(data, "backup", "list", "--json").json()["backups"] == []


def test_the_cashier_app_shows_a_newer_journal_as_one_line(tmp_path: Path):
    """What the cashier app's start does (app.ui.app boot): Terminal(...).journal, and the
    error through the app's one_line."""
    from app.terminal import Terminal as AppTerminal
    from app.ui.problems import one_line
    data = tmp_path / "till"
    init_plain(data)
    with closing(sqlite3.connect(data / "posterm.db")) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with AppTerminal(data) as term, pytest.raises(Exception) as failed:
        term.journal  # noqa: B018
    for language in ("zh", "en"):
        line = one_line(failed.value, language)
        assert "\n" not in line and "newer than this posterm" in line and "请升级" in line
        assert "internal error" not in line and "内部错误" not in line


def test_the_version_is_the_package_version_on_the_cli_and_the_settlement_report(
        trading: Terminal):
    version = metadata.version("posterm")
    run = posterm_cmd("--version")
    assert run.returncode == 0
    assert run.stdout.strip() == f"posterm, version {version}"
    settled = trading.run("settle", "--json")
    assert settled.returncode == 0 and settled.json()["result"] == "balanced", str(settled)
    report = (trading.data / "reports" / "settlement-000001.txt").read_text(encoding="utf-8")
    assert f"posterm {version}" in report
    # a backup after the close says which batch was settled last
    assert trading.run("backup", "create").returncode == 0
    contents = trading.run("backup", "verify", "--json").json()["contents"]
    assert (contents["last_settled_batch"], contents["open_batch"]) == (1, 2)


# ---------------------------------------------------------------------- the daily timer

DEPLOY = REPO / "deploy"


def test_the_daily_timer_runs_posterm_backup_create():
    service = (DEPLOY / "posterm-backup.service").read_text(encoding="utf-8")
    timer = (DEPLOY / "posterm-backup.timer").read_text(encoding="utf-8")
    assert "ExecStart=/opt/posterm/venv/bin/posterm backup create\n" in service
    assert "Environment=POSTERM_DATA=/var/lib/posterm\n" in service
    assert "Type=oneshot" in service and "UMask=0077" in service
    assert "Unit=posterm-backup.service" in timer and "Persistent=true" in timer


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_backup_units_pass_systemd_analyze_verify(tmp_path: Path):
    """In a scratch root: the system's units, the two files, a stand-in for the installed
    posterm (verify checks that ExecStart is executable)."""
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "lib").symlink_to("usr/lib")
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    for name in ("posterm-backup.service", "posterm-backup.timer"):
        shutil.copy(DEPLOY / name, units / name)
    exe = root / "opt/posterm/venv/bin/posterm"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    run = subprocess.run(["systemd-analyze", "verify", f"--root={root}",
                          units / "posterm-backup.timer", units / "posterm-backup.service"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0 and run.stderr.strip() == "", run.stderr
