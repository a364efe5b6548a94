"""deploy/: every systemd unit passes ``systemd-analyze verify``, the udev rules pass udevadm's
own parser, and deploy/install.sh is idempotent, honest under --dry-run and polite without
root.

The checkers are the real tools (CI installs the systemd and udev packages); a test skips
with the reason only where a tool is absent. udev 252 (Debian 12) has no ``udevadm
verify``: its rules parser runs through ``udevadm test`` in a private mount namespace where
/etc/udev/rules.d holds only our file and /etc/group knows the posterm group. install.sh
runs for real into a DESTDIR-style ``--root`` (its user and group in ROOT/etc, its unit,
rules and virtualenv under ROOT), so the machine running the tests is left alone.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import doctor

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "posterm.service"
RULES = DEPLOY / "60-posterm.rules"
INSTALL = DEPLOY / "install.sh"
VENV_BIN = Path(sys.executable).parent

needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                           reason="systemd-analyze not installed "
                                                  "(apt install systemd)")
needs_udevadm = pytest.mark.skipif(shutil.which("udevadm") is None,
                                   reason="udevadm not installed (apt install udev)")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="install.sh's real run needs root")


# -- the systemd unit --------------------------------------------------------------------------

def unit_settings(text: str) -> dict[str, list[str]]:
    """``Section.Key`` -> every value it is given (systemd allows a key more than once)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return settings


def verify_unit(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)


def rendered_unit(tmp_path: Path, venv: Path, unit: Path = UNIT) -> Path:
    """A unit as install.sh writes it, with ExecStart in an existing virtualenv; every unit
    of deploy/ beside it (a timer is verified with its service)."""
    for other in sorted(DEPLOY.glob("*.service")) + sorted(DEPLOY.glob("*.timer")):
        (tmp_path / other.name).write_text(
            other.read_text().replace("/opt/posterm/venv", str(venv)))
    return tmp_path / unit.name


DEPLOY_UNITS = sorted(DEPLOY.glob("*.service")) + sorted(DEPLOY.glob("*.timer"))


@needs_systemd_analyze
@pytest.mark.parametrize("unit", DEPLOY_UNITS, ids=[u.name for u in DEPLOY_UNITS])
def test_every_unit_passes_systemd_analyze_verify_without_a_single_remark(tmp_path, unit):
    run = verify_unit(rendered_unit(tmp_path, VENV_BIN.parent, unit))
    # verify exits 0 even for an unknown key or a bad value (it says "ignoring" on stderr):
    # any line at all is a finding.
    assert run.returncode == 0 and run.stderr.strip() == "", run.stderr


@needs_systemd_analyze
def test_systemd_analyze_verify_catches_a_bad_setting_so_the_check_above_can_fail(tmp_path):
    unit = rendered_unit(tmp_path, VENV_BIN.parent)
    unit.write_text(unit.read_text().replace("Restart=always", "Restart=alwayz")
                    .replace("TTYReset=yes", "TTYResett=yes"))
    run = verify_unit(unit)
    assert "alwayz" in run.stderr and "TTYResett" in run.stderr


def test_the_unit_runs_the_cashier_app_on_tty1_as_posterm_after_pcscd():
    s = unit_settings(UNIT.read_text())
    assert s["Service.ExecStart"] == ["/opt/posterm/venv/bin/posterm ui"]
    assert s["Service.User"] == ["posterm"] and s["Service.Group"] == ["posterm"]
    assert s["Service.StandardInput"] == ["tty"] and s["Service.TTYPath"] == ["/dev/tty1"]
    assert s["Service.Restart"] == ["always"]
    after = " ".join(s["Unit.After"]).split()
    wants = " ".join(s["Unit.Wants"]).split()
    assert {"pcscd.socket", "pcscd.service"} <= set(after) and "pcscd.socket" in wants
    assert s["Unit.Conflicts"] == ["getty@tty1.service"]
    assert s["Service.UMask"] == ["0077"]
    assert s["Install.WantedBy"] == ["multi-user.target"]
    # Hardening that would close the device nodes or break ctypes callbacks stays out.
    for closing in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock",
                    "MemoryDenyWriteExecute"):
        assert f"Service.{closing}" not in s


# -- the udev rules ------------------------------------------------------------------------------

RULE_KEY = re.compile(r'\s*([A-Z_]+)(?:\{([^}]+)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*')
MATCH_KEYS = {"ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "KERNELS", "ATTR", "ATTRS",
              "ENV", "DRIVERS", "TAG"}
ASSIGN_KEYS = {"MODE", "GROUP", "OWNER", "GOTO", "LABEL", "ENV", "TAG", "SYMLINK", "RUN"}


def parse_rules(text: str) -> list[list[tuple[str, str | None, str, str]]]:
    """Our own strict reading of the rules grammar: comma-separated KEY[{attr}] OP "value".

    ValueError names the line of anything else. A cross-check of udevadm's parser (which
    is lenient with a missing comma) and the reading the coverage tests below rely on."""
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = []
        for chunk in line.split(","):
            m = RULE_KEY.fullmatch(chunk)
            if m is None:
                raise ValueError(f"line {number}: {chunk.strip()!r} is not KEY OP \"value\"")
            key, attr, op, value = m.groups()
            allowed = MATCH_KEYS if op in ("==", "!=") else ASSIGN_KEYS
            if key not in allowed:
                raise ValueError(f"line {number}: {key} {op} is not a known key here")
            parts.append((key, attr, op, value))
        rules.append(parts)
    gotos = {v for r in rules for k, _, _, v in r if k == "GOTO"}
    labels = {v for r in rules for k, _, _, v in r if k == "LABEL"}
    if gotos - labels:
        raise ValueError(f"GOTO without its LABEL: {sorted(gotos - labels)}")
    return rules


def device_rules() -> list[dict[str, str]]:
    """Each rule that sets a group, as {key: value} (ATTR{x} and ATTRS{x} as 'x')."""
    found = []
    for rule in parse_rules(RULES.read_text()):
        flat = {(attr or key): value for key, attr, _, value in rule}
        if "GROUP" in flat:
            found.append(flat)
    return found


def test_the_rules_file_reads_cleanly_and_every_rule_gives_group_posterm_mode_0660():
    rules = device_rules()
    assert len(rules) > 20
    assert all(r["GROUP"] == "posterm" and r["MODE"] == "0660" for r in rules)


def test_the_strict_reading_refuses_a_broken_line():
    with pytest.raises(ValueError, match="line 1"):
        parse_rules('SUBSYSTEM=="tty" ATTRS{idVendor}=="1a86", MODE="0660"\n')
    with pytest.raises(ValueError, match="GOTO without"):
        parse_rules('ACTION=="remove", GOTO="nowhere"\n')


def test_the_rules_cover_every_usb_reader_nfcpy_supports():
    nfc_device = pytest.importorskip("nfc.clf.device")
    usb_rules = {(r["idVendor"], r.get("idProduct")) for r in device_rules()
                 if r.get("SUBSYSTEM") == "usb"}
    for vid, pid in nfc_device.usb_device_map:
        assert (f"{vid:04x}", f"{pid:04x}") in usb_rules, f"{vid:04x}:{pid:04x}"
    # and posterm doctor looks for the same readers behind 'nfc:usb'
    assert set(doctor.NFCPY_USB_IDS) == {(f"{v:04x}", f"{p:04x}")
                                         for v, p in nfc_device.usb_device_map}


def test_the_rules_cover_the_printers_pcsc_vendors_and_serial_adapters():
    rules = device_rules()
    usb = {(r["idVendor"], r.get("idProduct")) for r in rules if r.get("SUBSYSTEM") == "usb"}
    tty = {(r["idVendor"], r["idProduct"]) for r in rules if r.get("SUBSYSTEM") == "tty"}
    lp = {(r["idVendor"], r["idProduct"]) for r in rules if r.get("SUBSYSTEM") == "usbmisc"}
    assert {("04b8", "0202"), ("0416", "5011")} <= usb & lp              # python-escpos's ids
    assert {("072f", None), ("04e6", None), ("08e6", None)} <= usb     # ACS, Identiv, Gemalto
    assert {("1a86", "7523"), ("0403", "6001"), ("067b", "2303"), ("10c4", "ea60")} <= tty
    # ModemManager leaves the serial adapters alone
    assert all(r.get("ID_MM_DEVICE_IGNORE") == "1" for r in rules if r.get("SUBSYSTEM") == "tty")


def udevadm_findings(rules_file: Path, tmp_path: Path) -> list[str]:
    """What udevadm's rules parser says about ``rules_file``: ``udevadm verify`` where udev
    has it (254+), else ``udevadm test`` with only this file in /etc/udev/rules.d and a
    posterm group in /etc/group, inside a private mount namespace."""
    verify = subprocess.run(["udevadm", "verify", "--help"], capture_output=True, text=True,
                            check=False)
    if verify.returncode == 0:
        run = subprocess.run(["udevadm", "verify", "--resolve-names=never", str(rules_file)],
                             capture_output=True, text=True, timeout=60, check=False)
        return [] if run.returncode == 0 else (run.stdout + run.stderr).splitlines()
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("udev < 254 has no 'udevadm verify'; its parser runs in a mount "
                    "namespace, which needs root and unshare")
    rules_dir = tmp_path / "rules.d"
    rules_dir.mkdir()
    shutil.copy(rules_file, rules_dir / "60-posterm.rules")
    group = tmp_path / "group"
    group.write_text(Path("/etc/group").read_text() + "posterm:x:64999:\n")
    script = (f"mount --bind {rules_dir} /etc/udev/rules.d && "
              f"mount --bind {group} /etc/group && "
              "udevadm test --action=add /sys/class/tty/tty0 2>&1")
    run = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          script], capture_output=True, text=True, timeout=120, check=False)
    if "Reading rules file: /etc/udev/rules.d/60-posterm.rules" not in run.stdout:
        pytest.skip(f"udevadm test could not read the rules here: {run.stdout[-300:]}")
    return [line for line in run.stdout.splitlines()
            if line.startswith("/etc/udev/rules.d/60-posterm.rules")]


@needs_udevadm
def test_udevadm_reads_the_rules_without_a_remark(tmp_path):
    assert udevadm_findings(RULES, tmp_path) == []


@needs_udevadm
def test_udevadm_reports_a_broken_rule_so_the_check_above_can_fail(tmp_path):
    broken = tmp_path / "broken.rules"
    broken.write_text(RULES.read_text() + 'SUBSYSTEM=="tty", ATTRS{idVendor}="1a86"\n'
                      'FOO=="x", GROUP="posterm"\n')
    findings = udevadm_findings(broken, tmp_path)
    assert len(findings) >= 2, findings


# -- install.sh ----------------------------------------------------------------------------------

def run_install(*args: str | Path, user: int | None = None) -> subprocess.CompletedProcess[str]:
    cmd = ["bash", str(INSTALL), *map(str, args)]
    if user is not None:
        # the script on stdin, so an unprivileged user needs no access to the repository
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "bash",
               "/dev/stdin", *map(str, args)]
        with open(INSTALL, encoding="utf-8") as script:
            return subprocess.run(cmd, stdin=script, capture_output=True, text=True,
                                  timeout=60, check=False)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its type, mode, owner, mtime and content hash."""
    state = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            what: object = os.readlink(path)
        elif path.is_file():
            what = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            what = "dir"
        state[str(path.relative_to(root))] = (what, st.st_mode, st.st_uid, st.st_gid,
                                              st.st_mtime_ns)
    return state


def fresh_root(base: Path) -> Path:
    """A DESTDIR with the files of a Debian system that install.sh reads or changes."""
    root = base / "root"
    (root / "etc/systemd/system/getty.target.wants").mkdir(parents=True)
    (root / "lib/systemd/system").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\nlp:x:7:\ndialout:x:20:\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc/gshadow").write_text("root:*::\nlp:*::\ndialout:*::\n")
    for unit in ("pcscd.socket", "pcscd.service", "getty@.service"):
        src = Path("/lib/systemd/system") / unit
        if src.exists():
            shutil.copy(src, root / "lib/systemd/system" / unit)
    if (root / "lib/systemd/system/getty@.service").exists():
        (root / "etc/systemd/system/getty.target.wants/getty@tty1.service").symlink_to(
            "/lib/systemd/system/getty@.service")
    return root


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """posterm's wheel, built from the committed tree (git archive), outside the repository."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                            str(base), str(src)], capture_output=True, text=True, timeout=300,
                           check=False)
    wheels = sorted(base.glob("posterm-*.whl"))
    if built.returncode != 0 or not wheels:
        pytest.skip(f"cannot build the wheel here (setuptools from PyPI?): {built.stderr[-300:]}")
    return wheels[0]


def test_without_root_it_refuses_politely_and_changes_nothing(tmp_path):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to become another user with setpriv")
    root = fresh_root(tmp_path)
    before = snapshot(root)
    run = run_install("--root", "/", user=65534)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        ("install.sh: please run it as root (sudo /dev/stdin ...), or with --dry-run to see "
         "what it would do; nothing was changed")]
    assert snapshot(root) == before


def test_dry_run_lists_every_step_and_changes_nothing(tmp_path):
    root = fresh_root(tmp_path)
    before = snapshot(root)
    run = run_install("--dry-run", "--root", root, REPO)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for step in ("would  create the system group posterm",
                 "would  create the system user posterm (home /var/lib/posterm",
                 "would  make the data directory /var/lib/posterm",
                 "would  create the virtualenv /opt/posterm/venv",
                 "would  pip install posterm 0.1.0",
                 "would  install the udev rules /etc/udev/rules.d/60-posterm.rules",
                 "would  install the systemd unit /etc/systemd/system/posterm.service",
                 "would  systemctl enable pcscd.socket",
                 "would  systemctl enable posterm.service"):
        assert step in out, out
    assert out.rstrip().endswith("change(s) would be made; nothing was changed")
    assert snapshot(root) == before


def test_help_is_on_stdout_and_an_unknown_option_is_a_usage_error():
    shown = run_install("--help")
    assert shown.returncode == 0 and shown.stderr == ""
    assert "sudo deploy/install.sh [--dry-run]" in shown.stdout
    wrong = run_install("--frobnicate")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.splitlines()[0] == "install.sh: unknown option --frobnicate"


def test_a_bad_source_is_one_line_and_exit_2(tmp_path):
    run = run_install("--dry-run", "--root", fresh_root(tmp_path), tmp_path / "nothing")
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1
    assert "neither a posterm wheel nor a source tree" in run.stderr


@needs_root
def test_install_into_a_root_then_again_changes_nothing_and_says_so(tmp_path, wheel):
    root = fresh_root(tmp_path)
    pip_args = ("--pip-args", "--no-deps --no-index")      # the wheel alone, offline
    first = run_install("--root", root, *pip_args, wheel)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "  do     create the system user posterm" in first.stdout

    passwd = (root / "etc/passwd").read_text()
    line = next(ln for ln in passwd.splitlines() if ln.startswith("posterm:"))
    _, _, uid, gid, _, home, shell = line.split(":")
    assert (home, shell) == ("/var/lib/posterm", "/usr/sbin/nologin")
    assert int(uid) < 1000                                            # a system user
    groups = (root / "etc/group").read_text()
    assert re.search(rf"^posterm:x:{gid}:", groups, re.MULTILINE)
    assert re.search(r"^dialout:x:20:posterm$", groups, re.MULTILINE)
    data = root / "var/lib/posterm"
    st = data.stat()
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o700, int(uid), int(gid))
    installed = subprocess.run([root / "opt/posterm/venv/bin/python", "-I", "-c",
                                "import importlib.metadata as m; print(m.version('posterm'))"],
                               capture_output=True, text=True, check=True).stdout.strip()
    assert installed == "0.1.0"
    assert (root / "etc/udev/rules.d/60-posterm.rules").read_bytes() == RULES.read_bytes()
    unit = root / "etc/systemd/system/posterm.service"
    assert unit.read_text() == UNIT.read_text()
    wants = root / "etc/systemd/system/multi-user.target.wants/posterm.service"
    assert wants.is_symlink()
    for name in ("posterm-backup.service", "posterm-backup.timer"):      # the daily backup
        assert (root / "etc/systemd/system" / name).read_text() == (DEPLOY / name).read_text()
    assert (root / "etc/systemd/system/timers.target.wants/posterm-backup.timer").is_symlink()
    if (root / "lib/systemd/system/pcscd.socket").exists():
        assert (root / "etc/systemd/system/sockets.target.wants/pcscd.socket").is_symlink()
    assert not (root / "etc/systemd/system/getty.target.wants/getty@tty1.service").exists()
    if shutil.which("systemd-analyze"):
        # the installed unit, its ExecStart pointed at the virtualenv under the root
        check = verify_unit(rendered_unit(tmp_path, root / "opt/posterm/venv"))
        assert check.returncode == 0 and check.stderr.strip() == "", check.stderr

    before = snapshot(root)
    second = run_install("--root", root, *pip_args, wheel)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.rstrip().endswith(
        "nothing to change: posterm 0.1.0 is installed as it should be")
    assert "  do " not in second.stdout
    assert snapshot(root) == before
