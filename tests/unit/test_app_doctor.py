"""posterm doctor's checks, one by one: what each measurement is classified as (ok, warning,
failed) and the fix it names; the measurements on real files, sockets and SQLite databases."""

from __future__ import annotations

import socket
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.doctor import (
    CLOCK_FAIL_SECONDS,
    CLOCK_WARN_SECONDS,
    DISK_FAIL_BYTES,
    DISK_WARN_BYTES,
    FAILED,
    OK,
    PERMISSION_FIX,
    WARNING,
    Check,
    FileState,
    Holder,
    classify_batch,
    classify_clock,
    classify_device,
    classify_disk,
    classify_held,
    classify_host,
    classify_integrity,
    classify_pcscd,
    classify_permissions,
    denied_nodes,
    device_nodes,
    host_time,
    integrity,
    node_holders,
    overall,
    pcscd_process,
    report_json,
    report_text,
    socket_answers,
    usb_nodes,
)

MB = 1024 * 1024


# -- overall and the exit code -----------------------------------------------------------------

def test_the_worst_check_decides_and_json_carries_the_exit_code():
    ok, warn, fail = Check("a", OK, "x"), Check("b", WARNING, "y", "f"), Check("c", FAILED, "z", "g")
    assert overall([ok]) == OK and overall([ok, warn]) == WARNING
    assert overall([warn, fail, ok]) == FAILED
    assert report_json([ok])["exit_code"] == 0
    assert report_json([ok, warn])["exit_code"] == 1
    assert report_json([ok, warn, fail])["exit_code"] == 2


def test_the_text_is_one_line_per_check_and_one_fix_line_when_not_ok():
    text = report_text([Check("disk", OK, "plenty"), Check("host", FAILED, "down", "call")])
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("正常 ok") and "disk space" in lines[0]
    assert lines[1].startswith("失败 failed") and lines[2].strip() == "fix 处理: call"
    assert lines[3] == "posterm doctor: 失败 failed"


# -- pcscd ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("needed", "process", "sock", "status"), [
    (True, True, False, OK), (True, False, True, OK), (True, False, False, FAILED),
    (False, False, False, OK), (False, True, True, OK)])
def test_pcscd_is_needed_only_for_a_pcsc_device_and_its_socket_counts(needed, process, sock,
                                                                    status):
    check = classify_pcscd(needed, process, sock)
    assert check.status == status
    assert ("systemctl enable --now pcscd.socket" in check.fix) == (status == FAILED)


def test_a_pcscd_process_is_found_by_its_name_in_proc(tmp_path):
    (tmp_path / "12").mkdir()
    (tmp_path / "12/comm").write_text("bash\n")
    assert not pcscd_process(tmp_path)
    (tmp_path / "340").mkdir()
    (tmp_path / "340/comm").write_text("pcscd\n")
    assert pcscd_process(tmp_path)


def test_a_socket_answers_only_while_something_listens(tmp_path):
    path = tmp_path / "pcscd.comm"
    assert not socket_answers(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        assert socket_answers(path)
    assert not socket_answers(path)           # the file is left, nobody listens


# -- devices -------------------------------------------------------------------------------------

def test_a_found_device_is_ok_and_a_printer_without_paper_is_a_warning():
    assert classify_device("printer", "mock:", {"found": True}, []).status == OK
    paper = classify_device("printer", "usb:04b8:0202",
                            {"found": True, "status": {"paper_out": True}}, [])
    assert (paper.status, paper.fix) == (WARNING, "load a paper roll")


def test_a_device_node_without_permission_fails_with_the_udev_rule_and_group_as_the_fix():
    check = classify_device("pinpad", "serial:/dev/ttyUSB0", {"found": False},
                            ["/dev/ttyUSB0"])
    assert check.status == FAILED and check.fix == PERMISSION_FIX
    assert "/etc/udev/rules.d/60-posterm.rules" in check.fix and "group posterm" in check.fix
    # a driver's own "permission" message gets the same fix
    nfc = classify_device("contactless", "nfc:usb", {
        "found": False, "error": "Contactless reader nfc:usb: no permission to open it"}, [])
    assert nfc.status == FAILED and nfc.fix == PERMISSION_FIX


def test_a_missing_device_fails_with_its_error_and_the_way_to_find_it():
    check = classify_device("pinpad", "serial:/dev/ttyUSB9",
                            {"found": False, "error": "no such port /dev/ttyUSB9"}, [])
    assert check.status == FAILED and "no such port" in check.detail
    assert "posterm devices" in check.fix


def fake_usb(sysfs: Path, name: str, vid: str, pid: str, bus: int, dev: int) -> None:
    d = sysfs / name
    d.mkdir(parents=True)
    for attr, value in (("idVendor", vid), ("idProduct", pid), ("busnum", str(bus)),
                        ("devnum", str(dev))):
        (d / attr).write_text(value + "\n")


def test_usb_devices_are_found_in_sysfs_by_vendor_and_product(tmp_path):
    fake_usb(tmp_path, "1-1", "04b8", "0202", 1, 5)
    fake_usb(tmp_path, "1-2", "054c", "06c3", 1, 7)
    fake_usb(tmp_path, "usb1", "1d6b", "0002", 1, 1)
    (tmp_path / "1-1:1.0").mkdir()                  # an interface: no ids, skipped
    assert usb_nodes([("04B8", "0202")], tmp_path) == [Path("/dev/bus/usb/001/005")]
    assert device_nodes("usb:04b8:0202?model=tm-t20ii", tmp_path) == [
        Path("/dev/bus/usb/001/005")]
    assert device_nodes("nfc:usb", tmp_path) == [Path("/dev/bus/usb/001/007")]
    assert device_nodes("nfc:usb:054c:06c3", tmp_path) == [Path("/dev/bus/usb/001/007")]


def test_the_nodes_of_serial_file_and_tty_urls_and_none_for_the_others(tmp_path):
    assert device_nodes("serial:/dev/ttyUSB0?baudrate=19200", tmp_path) == [
        Path("/dev/ttyUSB0")]
    assert device_nodes("file:/dev/usb/lp0", tmp_path) == [Path("/dev/usb/lp0")]
    assert device_nodes("nfc:tty:USB0:pn532", tmp_path) == [Path("/dev/ttyUSB0")]
    for url in ("mock:", "pcsc:", "pcsc:ACS", "tcp:127.0.0.1:9100", "nfc:udp:127.0.0.1:5",
                "file:/tmp/receipts.txt"):
        assert device_nodes(url, tmp_path) == []


def test_a_node_that_is_not_there_is_not_a_permission_problem(tmp_path):
    assert denied_nodes([tmp_path / "ttyUSB7"]) == []


def fake_process(proc: Path, pid: int, command: str, *fds: str) -> None:
    d = proc / str(pid)
    (d / "fd").mkdir(parents=True)
    (d / "cmdline").write_bytes(command.replace(" ", "\0").encode() + b"\0")
    for number, target in enumerate(fds):
        (d / "fd" / str(number)).symlink_to(target)


def test_the_processes_holding_a_device_node_are_found_in_proc(tmp_path):
    fake_process(tmp_path, 100, "/opt/posterm/venv/bin/python /opt/posterm/venv/bin/posterm ui",
                 "/dev/tty1", "/dev/ttyUSB0", "socket:[123]")
    fake_process(tmp_path, 200, "/usr/sbin/ModemManager", "/dev/ttyACM0")
    fake_process(tmp_path, 300, "bash", "/dev/pts/3")
    (tmp_path / "self").mkdir()
    holders = node_holders([Path("/dev/ttyUSB0"), Path("/dev/ttyACM0")], tmp_path)
    assert sorted((h.pid, h.node) for h in holders) == [(100, "/dev/ttyUSB0"),
                                                        (200, "/dev/ttyACM0")]
    assert next(h for h in holders if h.pid == 100).command.endswith("posterm ui")
    assert node_holders([], tmp_path) == []
    assert node_holders([Path("/dev/ttyUSB9")], tmp_path) == []


def test_a_device_held_by_posterm_is_ok_and_by_another_program_a_warning():
    app = Holder(100, "/opt/posterm/venv/bin/python /opt/posterm/venv/bin/posterm ui",
                 "/dev/ttyUSB0")
    mine = classify_held("pinpad", "serial:/dev/ttyUSB0", [app])
    assert mine.status == OK and "in use by PID 100" in mine.detail and mine.fix == ""
    modem = classify_held("pinpad", "serial:/dev/ttyACM0",
                          [Holder(200, "/usr/sbin/ModemManager", "/dev/ttyACM0")])
    assert modem.status == WARNING and "ModemManager" in modem.fix and "PID 200" in modem.fix


# -- the journal ---------------------------------------------------------------------------------

def test_a_sound_journal_passes_integrity_check(tmp_path):
    db = tmp_path / "posterm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    conn.close()
    assert integrity(db) == Check("journal", OK, "PRAGMA integrity_check: ok")


def test_a_damaged_or_foreign_file_fails_with_restore_as_the_fix(tmp_path):
    db = tmp_path / "posterm.db"
    db.write_bytes(b"this is not a database at all" * 200)
    check = integrity(db)
    assert check.status == FAILED and "restore" in check.fix
    missing = integrity(tmp_path / "gone.db")
    assert missing.status == FAILED and "does not exist" in missing.detail


def test_integrity_check_rows_other_than_ok_fail_and_are_counted():
    check = classify_integrity(["row 5 missing from index i", "page 9: btree error"])
    assert check.status == FAILED
    assert check.detail == "PRAGMA integrity_check: row 5 missing from index i (+1 more)"


# -- permissions ---------------------------------------------------------------------------------

def state(name: str, mode: int, uid: int = 999, owner: int = 999,
          readable: bool = True) -> FileState:
    return FileState(Path("/var/lib/posterm") / name, mode, uid, owner, readable)


def test_a_private_key_and_database_owned_as_the_data_directory_are_ok():
    check = classify_permissions(state("posterm.key", 0o600),
                                 [state("posterm.db", 0o600), state("posterm.db-wal", 0o600)])
    assert check.status == OK


def test_a_key_file_readable_by_others_fails_with_chmod_600():
    check = classify_permissions(state("posterm.key", 0o644), [state("posterm.db", 0o600)])
    assert check.status == FAILED
    assert check.fix == "chmod 600 /var/lib/posterm/posterm.key"


def test_a_key_file_of_another_owner_or_missing_fails():
    other = classify_permissions(state("posterm.key", 0o600, uid=0), [])
    assert other.status == FAILED and other.fix.startswith("chown --reference=")
    assert classify_permissions(None, []).status == FAILED
    unreadable = classify_permissions(state("posterm.key", 0o600, readable=False), [])
    assert unreadable.status == FAILED and "sudo -u posterm" in unreadable.fix


def test_a_database_readable_by_others_is_a_warning_with_chmod():
    check = classify_permissions(state("posterm.key", 0o600),
                                 [state("posterm.db", 0o600), state("posterm.db-shm", 0o644)])
    assert check.status == WARNING and check.fix.startswith("chmod 600 /var/lib/posterm/")


# -- disk ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("free", "status"), [
    (DISK_WARN_BYTES, OK), (DISK_WARN_BYTES - 1, WARNING), (DISK_FAIL_BYTES, WARNING),
    (DISK_FAIL_BYTES - 1, FAILED), (0, FAILED), (20_000 * MB, OK)])
def test_disk_space_warns_under_500_mb_and_fails_under_50_mb(free, status):
    check = classify_disk(free, Path("/var/lib/posterm"))
    assert check.status == status
    assert bool(check.fix) == (status != OK)


# -- host and clock --------------------------------------------------------------------------------

def test_an_echo_answered_00_is_ok_anything_else_fails_and_not_signed_on_warns():
    assert classify_host("10.0.0.5:5800", code="00", millis=41.0).status == OK
    refused = classify_host("10.0.0.5:5800", code="A0", millis=41.0)
    assert refused.status == FAILED and "posterm signon" in refused.fix
    down = classify_host("10.0.0.5:5800", problem="cannot connect (Connection refused)")
    assert down.status == FAILED and "host.address in posterm.toml is 10.0.0.5:5800" in down.fix
    unsigned = classify_host("10.0.0.5:5800", signed_on=False)
    assert (unsigned.status, unsigned.fix) == (WARNING, "posterm signon")


CST = timezone(timedelta(hours=8))


def test_the_host_time_takes_the_year_closest_to_the_terminal_clock():
    near = datetime(2026, 12, 4, 15, 30, 0, tzinfo=CST)
    assert host_time("1204", "153212", near) == datetime(2026, 12, 4, 15, 32, 12, tzinfo=CST)
    new_year = datetime(2026, 12, 31, 23, 59, 50, tzinfo=CST)
    assert host_time("0101", "000005", new_year) == datetime(2027, 1, 1, 0, 0, 5, tzinfo=CST)
    assert host_time("1231", "235955", datetime(2027, 1, 1, 0, 0, 1, tzinfo=CST)).year == 2026
    assert host_time("0229", "120000", datetime(2028, 2, 29, 11, 0, tzinfo=CST)).day == 29


@pytest.mark.parametrize(("f13", "f12"), [("", ""), ("12", "153212"), ("1304", "153212"),
                                          ("1204", "25xx00")])
def test_fields_12_and_13_that_are_not_a_time_are_refused(f13, f12):
    with pytest.raises(ValueError):
        host_time(f13, f12, datetime(2026, 12, 4, tzinfo=CST))


@pytest.mark.parametrize(("offset", "status"), [
    (0.0, OK), (CLOCK_WARN_SECONDS, OK), (CLOCK_WARN_SECONDS + 1, WARNING),
    (-CLOCK_WARN_SECONDS - 1, WARNING), (CLOCK_FAIL_SECONDS, WARNING),
    (CLOCK_FAIL_SECONDS + 1, FAILED), (-8 * 3600, FAILED)])
def test_the_clock_warns_over_2_minutes_and_fails_over_10(offset, status):
    check = classify_clock(offset)
    assert check.status == status
    assert ("timedatectl" in check.fix) == (status != OK)


def test_the_clock_says_which_way_it_is_off():
    assert "ahead of the host" in classify_clock(300.0).detail
    assert "behind the host" in classify_clock(-300.0).detail
    unknown = classify_clock(None, "the host is not reachable")
    assert unknown.status == WARNING and "not reachable" in unknown.detail


# -- the open batch --------------------------------------------------------------------------------

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def test_an_empty_or_young_batch_is_ok_and_one_over_the_hours_warns_to_settle():
    assert classify_batch(7, None, NOW, 24).status == OK
    young = classify_batch(7, (NOW - timedelta(hours=23)).isoformat(), NOW, 24)
    assert young.status == OK and "000007" in young.detail
    old = classify_batch(7, (NOW - timedelta(hours=25)).isoformat(), NOW, 24)
    assert old.status == WARNING and old.fix == "settle it: posterm settle"
    assert "25 h, more than 24 h" in old.detail


def test_an_interrupted_settlement_is_a_warning_to_finish_it():
    check = classify_batch(7, None, NOW, 24, settling=True)
    assert check.status == WARNING and "posterm settle" in check.fix
