"""``posterm doctor [--json]``: is this POS box fit to take cards? Each check says ok, warning
or failed, what it found in one line, and (when not ok) the one-line fix.

The checks: the configuration, pcscd (process or its socket), every configured device (found,
and the device node readable and writable by this user; a permission problem names the udev
rule and the group; a device another process holds open, the running cashier app's say, is
left alone), the journal's ``PRAGMA integrity_check``, the key file's and the
database's permissions, free space in the data directory, the host (an echo test 0820/301)
and the clock's offset from the host (fields 12/13 of the echo reply: the settlement date is
the host's), and the age of the open batch.

Exit code: 0 every check ok, 1 a warning and no failure, 2 a failure (a monitoring
system's usual 0/1/2). The classification of each check is a pure function of what was
measured, so each is tested on its own.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import stat
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from app.cli import _json_option, cli, guarded

OK, WARNING, FAILED = "ok", "warning", "failed"
EXIT_FOR = {OK: 0, WARNING: 1, FAILED: 2}
STATUS_WORDS = {OK: "正常 ok", WARNING: "警告 warning", FAILED: "失败 failed"}

#: Where the rules, the group and the install script are named in every permission fix.
UDEV_RULE = "/etc/udev/rules.d/60-posterm.rules"
GROUP = "posterm"
PERMISSION_FIX = (f"give group {GROUP} access: sudo deploy/install.sh (installs {UDEV_RULE}, "
                  f"MODE 0660 GROUP {GROUP}) and run posterm as a member of {GROUP}; then "
                  "unplug and replug the device")

#: Free space in the data directory: below WARN a warning, below FAIL a failure. A day's
#: journal grows by well under a megabyte; 500 MB leaves room for the SQLite backups and
#: the exports, 50 MB is where a sale's PENDING row may soon fail to commit.
DISK_WARN_BYTES = 500 * 1024 * 1024
DISK_FAIL_BYTES = 50 * 1024 * 1024

#: The clock's offset from the host: the settlement date (field 15) and the batch's day come
#: from the clock, so minutes matter near midnight.
CLOCK_WARN_SECONDS = 120
CLOCK_FAIL_SECONDS = 600

#: The open batch's age when settlement.warn_open_hours is 0 (never warn in the app):
#: the doctor still says it after a day.
BATCH_WARN_HOURS = 24

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
SYSFS_USB = Path("/sys/bus/usb/devices")
#: nfcpy's USB readers (nfc/clf/device.py usb_device_map): ``nfc:usb`` opens the first found.
NFCPY_USB_IDS = (("054c", "0193"), ("04cc", "0531"), ("04cc", "2533"), ("04e6", "5591"),
                 ("04e6", "5593"), ("054c", "02e1"), ("054c", "06c1"), ("054c", "06c3"),
                 ("072f", "2200"))

TITLES = {
    "config": "configuration 配置", "pcscd": "pcscd 智能卡服务", "journal": "journal 流水库",
    "permissions": "key and database files 密钥与数据库文件", "disk": "disk space 磁盘空间",
    "key": "key file 密钥文件", "host": "host 主机 (echo 0820/301)", "clock": "clock 时钟",
    "batch": "open batch 当前批次",
}


@dataclass(frozen=True)
class Check:
    """One check's outcome; ``fix`` is one line, empty when the check is ok."""

    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def title(self) -> str:
        if self.name.startswith("device."):
            from app.devicecheck import ROLE_NAMES
            role = self.name.split(".", 1)[1]
            return f"device {ROLE_NAMES.get(role, role)}"
        return TITLES.get(self.name, self.name)


def overall(checks: Iterable[Check]) -> str:
    """The worst status of ``checks``."""
    statuses = {c.status for c in checks}
    return FAILED if FAILED in statuses else WARNING if WARNING in statuses else OK


# -- the classifications (pure) -----------------------------------------------------------------

def classify_pcscd(needed: bool, process: bool, socket_ok: bool) -> Check:
    """pcscd: a running process, or a socket that systemd would start it on."""
    if process:
        return Check("pcscd", OK, "pcscd is running")
    if socket_ok:
        return Check("pcscd", OK, f"pcscd's socket {PCSCD_SOCKET} answers (started on demand)")
    if not needed:
        return Check("pcscd", OK, "not running, and no pcsc: device is configured")
    return Check("pcscd", FAILED, "pcscd is not running and its socket does not answer",
                 "sudo apt install pcscd && sudo systemctl enable --now pcscd.socket")


def classify_device(role: str, url: str, entry: dict[str, Any],
                    denied: list[str]) -> Check:
    """One configured device from ``posterm devices``' report and the nodes it cannot open."""
    name = f"device.{role}"
    if denied:
        return Check(name, FAILED, f"{url} — no read/write permission on {', '.join(denied)}",
                     PERMISSION_FIX)
    if entry.get("found"):
        extra = ""
        status = entry.get("status") or {}
        if status.get("paper_out"):
            return Check(name, WARNING, f"{url} — found, paper out", "load a paper roll")
        if status.get("cover_open"):
            return Check(name, WARNING, f"{url} — found, cover open", "close the printer's cover")
        if entry.get("info", {}).get("name"):
            extra = f" ({entry['info']['name']})"
        return Check(name, OK, f"{url} — found{extra}")
    error = str(entry.get("error") or "not found")
    if "permission" in error.lower():
        return Check(name, FAILED, f"{url} — {error}", PERMISSION_FIX)
    return Check(name, FAILED, f"{url} — {error}",
                 "plug the device in and check its URL in posterm.toml [devices] "
                 "(posterm devices lists what answers)")


def classify_integrity(rows: list[str] | None, problem: str | None = None) -> Check:
    """``PRAGMA integrity_check``'s rows: exactly ["ok"] is a sound journal."""
    if problem is not None:
        return Check("journal", FAILED, problem,
                     "stop posterm and restore the journal and its key file from a backup")
    if rows == ["ok"]:
        return Check("journal", OK, "PRAGMA integrity_check: ok")
    first = rows[0] if rows else "no result"
    more = f" (+{len(rows) - 1} more)" if rows and len(rows) > 1 else ""
    return Check("journal", FAILED, f"PRAGMA integrity_check: {first}{more}",
                 "stop posterm and restore the journal from a backup; keep the damaged file")


@dataclass(frozen=True)
class FileState:
    """What the permissions check needs of one file."""

    path: Path
    mode: int           # the permission bits
    uid: int
    owner_uid: int      # who should own it: the data directory's owner
    readable: bool      # by the user running the doctor


def classify_permissions(key: FileState | None, databases: list[FileState]) -> Check:
    """The key file must be 0600 (no group/other bits) and owned as the data directory; the
    database files should be too (they hold encrypted card data and password hashes)."""
    if key is None:
        return Check("permissions", FAILED, "the key file is missing",
                     "restore posterm.key from the backup made at installation")
    if key.mode & 0o077:
        return Check("permissions", FAILED,
                     f"{key.path} has mode {key.mode:04o}: others may read the root key",
                     f"chmod 600 {key.path}")
    if key.uid != key.owner_uid:
        return Check("permissions", FAILED,
                     f"{key.path} is owned by uid {key.uid}, not by the data directory's "
                     f"owner (uid {key.owner_uid})",
                     f"chown --reference={key.path.parent} {key.path}")
    if not key.readable:
        return Check("permissions", FAILED, f"{key.path} cannot be read by this user",
                     f"run posterm as the data directory's owner (sudo -u {GROUP} posterm ...)")
    for db in databases:
        if db.uid != db.owner_uid:
            return Check("permissions", WARNING,
                         f"{db.path} is owned by uid {db.uid}, not by the data directory's "
                         f"owner (uid {db.owner_uid})",
                         f"chown --reference={db.path.parent} {db.path}")
        if db.mode & 0o077:
            return Check("permissions", WARNING,
                         f"{db.path} has mode {db.mode:04o}: readable beyond its owner",
                         f"chmod 600 {db.path}*  (the service's UMask=0077 keeps new files so)")
    return Check("permissions", OK, f"{key.path.name} 0600 and the database files private, "
                 "owned as the data directory")


def classify_disk(free: int, path: Path) -> Check:
    """Free bytes in the data directory's file system."""
    shown = f"{free / 1024 / 1024:,.0f} MB free in {path}"
    fix = (f"free space on the file system of {path} (old exports, receipts/, "
           "journalctl --vacuum-size=100M)")
    if free < DISK_FAIL_BYTES:
        return Check("disk", FAILED, f"{shown}: a sale may fail to journal", fix)
    if free < DISK_WARN_BYTES:
        return Check("disk", WARNING, f"{shown} (under {DISK_WARN_BYTES // 2**20} MB)", fix)
    return Check("disk", OK, shown)


def host_time(f13: str, f12: str, near: datetime) -> datetime:
    """The host's local time from an echo reply's field 13 (MMDD) and 12 (hhmmss), in
    ``near``'s time zone, with the year that puts it closest to ``near``."""
    if not (len(f13) == 4 and len(f12) == 6 and f13.isdigit() and f12.isdigit()):
        raise ValueError(f"fields 13/12 {f13!r}/{f12!r} are not MMDD/hhmmss")
    month, day = int(f13[:2]), int(f13[2:])
    hour, minute, second = int(f12[:2]), int(f12[2:4]), int(f12[4:])
    candidates = []
    for year in (near.year - 1, near.year, near.year + 1):
        try:
            candidates.append(near.replace(year=year, month=month, day=day, hour=hour,
                                           minute=minute, second=second, microsecond=0))
        except ValueError:           # 29 February of a year without one
            continue
    if not candidates:
        raise ValueError(f"field 13 {f13!r} is not a date")
    return min(candidates, key=lambda c: abs(c - near))


def classify_clock(offset: float | None, problem: str | None = None) -> Check:
    """The terminal clock minus the host's, in seconds (None: not measured, ``problem`` says
    why)."""
    if offset is None:
        return Check("clock", WARNING, f"not compared with the host: {problem}",
                     "fix the host check first, then run posterm doctor again")
    ahead = "ahead of" if offset > 0 else "behind"
    shown = f"{abs(offset):.0f} s {ahead} the host" if abs(offset) >= 1 else "in step with the host"
    fix = ("set the clock: sudo timedatectl set-ntp true (or sudo date -s 'YYYY-MM-DD hh:mm:ss'); "
           "check the time zone (timedatectl)")
    if abs(offset) > CLOCK_FAIL_SECONDS:
        return Check("clock", FAILED, f"{shown}: settlement dates may be wrong", fix)
    if abs(offset) > CLOCK_WARN_SECONDS:
        return Check("clock", WARNING, f"{shown} (more than {CLOCK_WARN_SECONDS} s)", fix)
    return Check("clock", OK, shown)


def classify_host(address: str, *, code: str | None = None, millis: float | None = None,
                  problem: str | None = None, signed_on: bool = True) -> Check:
    """The echo test's outcome."""
    where = f"host.address in posterm.toml is {address}"
    if problem is not None:
        return Check("host", FAILED, f"{address}: {problem}",
                     f"check the network, the host's firewall and {where}")
    if not signed_on:
        return Check("host", WARNING, f"{address} accepts connections; not signed on, so "
                     "no echo test", "posterm signon")
    if code != "00":
        return Check("host", FAILED, f"{address} answered the echo test with {code}",
                     "sign on again (posterm signon); if it persists, call the acquirer")
    return Check("host", OK, f"{address} answered the echo test (00) in {millis:.0f} ms")


def classify_batch(batch: int, opened_utc: str | None, now: datetime, hours: int,
                   settling: bool = False) -> Check:
    """The open batch's age from its first transaction."""
    if settling:
        return Check("batch", WARNING, f"batch {batch:06d} has an interrupted settlement",
                     "posterm settle (finishes it)")
    if opened_utc is None:
        return Check("batch", OK, f"batch {batch:06d} is open and empty")
    age = now.astimezone(UTC) - datetime.fromisoformat(opened_utc)
    shown = f"batch {batch:06d} open since {opened_utc[:16].replace('T', ' ')} UTC"
    if age > timedelta(hours=hours):
        return Check("batch", WARNING,
                     f"{shown}: {age.total_seconds() / 3600:.0f} h, more than {hours} h",
                     "settle it: posterm settle")
    return Check("batch", OK, f"{shown} ({age.total_seconds() / 3600:.1f} h)")


# -- measuring ----------------------------------------------------------------------------------

def pcscd_process(proc: Path = Path("/proc")) -> bool:
    """Whether a process named pcscd runs."""
    for comm in proc.glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "pcscd":
                return True
        except OSError:
            continue
    return False


def socket_answers(path: Path) -> bool:
    """Whether a Unix stream socket at ``path`` accepts a connection."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def usb_nodes(ids: Iterable[tuple[str, str]], sysfs: Path = SYSFS_USB) -> list[Path]:
    """The /dev/bus/usb nodes of the plugged USB devices with these (vendor, product) ids."""
    wanted = {(v.lower(), p.lower()) for v, p in ids}
    nodes = []
    for dev in sorted(sysfs.glob("*")):
        try:
            vid = (dev / "idVendor").read_text().strip().lower()
            pid = (dev / "idProduct").read_text().strip().lower()
            bus = int((dev / "busnum").read_text())
            num = int((dev / "devnum").read_text())
        except (OSError, ValueError):
            continue
        if (vid, pid) in wanted:
            nodes.append(Path(f"/dev/bus/usb/{bus:03d}/{num:03d}"))
    return nodes


def device_nodes(url: str, sysfs: Path = SYSFS_USB) -> list[Path]:
    """The device nodes a URL opens directly (none for mock:, pcsc:, tcp:, udp:...)."""
    scheme, _, rest = url.partition(":")
    path = rest.partition("?")[0]
    if scheme in ("serial", "file") and path.startswith("/dev/"):
        return [Path(path)]
    if scheme == "usb":
        vid, _, pid = path.partition(":")
        return usb_nodes([(vid, pid)], sysfs)
    if scheme == "nfc" and path == "usb":
        return usb_nodes(NFCPY_USB_IDS, sysfs)
    if scheme == "nfc" and path.startswith("usb:"):
        vid, _, pid = path[4:].partition(":")
        return usb_nodes([(vid, pid)], sysfs)
    if scheme == "nfc" and path.startswith("tty:"):
        return [Path("/dev/tty" + path.split(":")[1])]
    return []


def denied_nodes(nodes: Iterable[Path]) -> list[str]:
    """The existing nodes this user cannot open for reading and writing."""
    return [str(n) for n in nodes if n.exists() and not os.access(n, os.R_OK | os.W_OK)]


@dataclass(frozen=True)
class Holder:
    """Another process that has one of a device's nodes open."""

    pid: int
    command: str
    node: str


def node_holders(nodes: Iterable[Path], proc: Path = Path("/proc")) -> list[Holder]:
    """The other processes holding any of ``nodes`` open (those whose /proc/PID/fd this user
    may read: its own and, for root, all)."""
    wanted = {str(n) for n in nodes}
    if not wanted:
        return []
    holders = []
    for fd_dir in proc.glob("[0-9]*/fd"):
        pid = int(fd_dir.parent.name)
        if pid == os.getpid():
            continue
        try:
            targets = {os.readlink(fd) for fd in fd_dir.iterdir()}
        except OSError:
            continue
        for node in sorted(wanted & targets):
            try:
                raw = (fd_dir.parent / "cmdline").read_bytes()
            except OSError:
                raw = b""
            command = raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"
            holders.append(Holder(pid, command, node))
    return holders


def classify_held(role: str, url: str, holders: list[Holder]) -> Check:
    """A device another process holds open is not opened by the doctor (a PIN pad or a
    reader in the middle of a sale must not be disturbed): posterm itself holding it is how
    a running box looks; another program (ModemManager probing a serial adapter, say)
    keeps posterm from it."""
    first = holders[0]
    shown = f"{url} — in use by PID {first.pid} ({first.command[:60]}), not opened"
    if all("posterm" in h.command for h in holders):
        return Check(f"device.{role}", OK, shown)
    return Check(f"device.{role}", WARNING, shown,
                 f"stop the program holding {first.node} (PID {first.pid}); for ModemManager: "
                 "sudo systemctl disable --now ModemManager")


def _file_state(path: Path, owner_uid: int) -> FileState | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return FileState(path, stat.S_IMODE(st.st_mode), st.st_uid, owner_uid,
                     os.access(path, os.R_OK))


def integrity(db_path: Path) -> Check:
    """``PRAGMA integrity_check`` on the journal file, read only."""
    if not db_path.exists():
        return classify_integrity(None, f"{db_path} does not exist")
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
        try:
            rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return classify_integrity(None, f"{db_path} is not a usable SQLite database ({exc})")
    return classify_integrity(rows)


def _host_checks(term: Any) -> tuple[Check, Check]:
    """The echo test and the clock's offset measured from its reply."""
    from storage.errors import StorageError
    from sync.errors import SyncError
    address = term.config["host"]["address"]
    session = term.session
    if session.needs_sign_on():
        host, port = term.config.host_address
        try:
            with socket.create_connection(
                    (host, port), timeout=float(term.config["host"]["connect_timeout"])):
                pass
        except OSError as exc:
            return (classify_host(address, problem=f"cannot connect ({exc.strerror or exc})"),
                    classify_clock(None, "the host is not reachable"))
        return (classify_host(address, signed_on=False),
                classify_clock(None, "not signed on (the echo test needs the MAC key)"))
    started = time.monotonic()
    sent = datetime.now().astimezone()
    try:
        reply = session.echo()
    except (SyncError, StorageError) as exc:
        return (classify_host(address, problem=str(exc)),
                classify_clock(None, "the host did not answer the echo test"))
    received = datetime.now().astimezone()
    millis = (time.monotonic() - started) * 1000
    host_check = classify_host(address, code=reply.get("39"), millis=millis)
    midpoint = sent + (received - sent) / 2
    try:
        theirs = host_time(reply.get("13", ""), reply.get("12", ""), midpoint)
    except ValueError as exc:
        return host_check, classify_clock(None, f"the echo reply carries no time ({exc})")
    # The reply's time has whole seconds: half a second either way is no offset.
    offset = (midpoint - theirs).total_seconds()
    offset = 0.0 if abs(offset) < 1.5 else offset
    return host_check, classify_clock(offset)


def run_checks(data_dir: Path) -> list[Check]:
    """Every check on the terminal in ``data_dir``, in the order a person fixes them."""
    from app import config as config_mod
    from app.errors import AppError, ConfigError
    from storage.errors import StorageError
    try:
        config = config_mod.load(data_dir)
    except ConfigError as exc:
        return [Check("config", FAILED, str(exc),
                      "posterm init (a new terminal) or correct posterm.toml")]
    checks = [Check("config", OK, f"{config.data_dir / config_mod.CONFIG_NAME} is valid")]
    urls = dict(config["devices"])
    needed = any(u.startswith("pcsc:") for u in urls.values())
    checks.append(classify_pcscd(needed, pcscd_process(),
                                 socket_answers(Path(os.environ.get("PCSCLITE_CSOCK_NAME",
                                                                    PCSCD_SOCKET)))))
    from app.devicecheck import check_devices
    from app.terminal import Terminal
    term = Terminal(data_dir)
    try:
        nodes = {role: device_nodes(url) for role, url in urls.items()}
        held = {role: h for role in urls if (h := node_holders(nodes[role]))}
        report = check_devices(term, roles=[r for r in urls if r not in held])
        for role, url in urls.items():
            if role in held:
                checks.append(classify_held(role, url, held[role]))
            else:
                checks.append(classify_device(role, url, report.get(role, {}),
                                              denied_nodes(nodes[role])))
        journal_check = integrity(config.db_path)
        checks.append(journal_check)
        owner = data_dir.stat().st_uid
        key = _file_state(config.key_path, owner)
        dbs = [s for s in (_file_state(Path(f"{config.db_path}{suffix}"), owner)
                           for suffix in ("", "-wal", "-shm")) if s is not None]
        permissions = classify_permissions(key, dbs)
        checks.append(permissions)
        checks.append(classify_disk(shutil.disk_usage(data_dir).free, data_dir))
        if journal_check.status != OK or permissions.status == FAILED:
            why = "the journal or its key file is not usable"
            checks += [Check("host", WARNING, f"not checked: {why}", "fix the checks above"),
                       Check("clock", WARNING, f"not checked: {why}", "fix the checks above"),
                       Check("batch", WARNING, f"not checked: {why}", "fix the checks above")]
            return checks
        try:
            journal = term.journal
        except (AppError, StorageError) as exc:
            # e.g. a key file that is not the one this journal was made with
            checks.append(Check("key", FAILED, str(exc),
                                "restore the key file this journal was made with "
                                "(posterm.key, from its offline copy)"))
            checks += [Check(name, WARNING, "not checked: the journal cannot be opened",
                             "fix the checks above") for name in ("host", "clock", "batch")]
            return checks
        checks.extend(_host_checks(term))
        batch = journal.current_batch()
        hours = config["settlement"]["warn_open_hours"] or BATCH_WARN_HOURS
        checks.append(classify_batch(batch, journal.settlements.opened_at(batch),
                                     datetime.now().astimezone(), hours,
                                     settling=journal.settlements.active() is not None))
    finally:
        term.close()
    return checks


def report_json(checks: list[Check]) -> dict[str, Any]:
    status = overall(checks)
    return {"result": status, "exit_code": EXIT_FOR[status],
            "checks": [asdict(c) | {"title": c.title} for c in checks]}


def report_text(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"{STATUS_WORDS[c.status]:<12} {c.title}: {c.detail}")
        if c.fix:
            lines.append(f"{'':<12}   fix 处理: {c.fix}")
    status = overall(checks)
    lines.append(f"posterm doctor: {STATUS_WORDS[status]}")
    return "\n".join(lines) + "\n"


@cli.command()
@_json_option
@click.pass_context
@guarded
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check this POS box: pcscd, devices, journal, key and file permissions, disk, host
    (echo), clock, open batch. Exit 0 all ok, 1 a warning, 2 a failure."""
    from app.redaction import setup_logging
    setup_logging(None, verbose=ctx.obj["verbose"])
    checks = run_checks(ctx.obj["data"])
    if as_json:
        click.echo(json.dumps(report_json(checks), ensure_ascii=False))
    else:
        click.echo(report_text(checks), nl=False)
    sys.exit(EXIT_FOR[overall(checks)])
