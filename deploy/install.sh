#!/usr/bin/env bash
# Install posterm on a POS box (Debian 12 / Raspberry Pi OS bookworm, Ubuntu 22.04+):
# the Debian packages it needs, the system user and group `posterm` (home = the data
# directory), a virtualenv with posterm in it, the udev rules for its USB devices, and the
# systemd unit that runs the cashier app on tty1; pcscd and the unit are enabled.
#
#   sudo deploy/install.sh [--dry-run] [--reinstall] [--prefix DIR] [--data DIR]
#                          [--root DIR] [--pip-args ARGS] [SOURCE]
#
# SOURCE is a wheel (posterm-*.whl) or a source tree; default: the tree holding this script.
# Idempotent: every step first looks, and changes only what differs; a second run says
# "nothing to change". --dry-run prints what would be done and changes nothing.
# --root DIR installs into DIR as a DESTDIR (user and group in DIR/etc, the unit and the
# rules under DIR/etc, no udevadm, nothing started): for images and for the tests.
# Exit: 0 done (or nothing to do), 1 refused or failed, 2 usage. See docs/install.md.
set -euo pipefail

PROG=install.sh
NAME=posterm
PREFIX=/opt/posterm
DATA=/var/lib/posterm
ROOT=/
DRY_RUN=0
REINSTALL=0
PIP_ARGS=""
SOURCE=""
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APT_PACKAGES=(python3-venv python3-dev gcc swig pcscd libpcsclite1 libpcsclite-dev
              libusb-1.0-0 fonts-wqy-microhei)

usage() {     # usage EXIT_CODE: on stdout for --help, on stderr after a usage error
    if [ "$1" -eq 0 ]; then sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    else sed -n '7,8p' "$0" | sed 's/^# \{0,1\}//' >&2; fi
    exit "$1"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --reinstall) REINSTALL=1 ;;
        --prefix) PREFIX=${2:?--prefix needs a directory}; shift ;;
        --data) DATA=${2:?--data needs a directory}; shift ;;
        --root) ROOT=${2:?--root needs a directory}; shift ;;
        --pip-args) PIP_ARGS=${2?--pip-args needs a value}; shift ;;
        -h|--help) usage 0 ;;
        -*) echo "$PROG: unknown option $1" >&2; usage 2 ;;
        *) [ -z "$SOURCE" ] || { echo "$PROG: one SOURCE only" >&2; usage 2; }; SOURCE=$1 ;;
    esac
    shift
done
SOURCE=${SOURCE:-$(dirname "$HERE")}
ROOT=$(cd "$ROOT" 2>/dev/null && pwd) || { echo "$PROG: --root: no such directory" >&2; exit 2; }
R=${ROOT%/}                              # prefix for paths: "" for the real system

if [ "$(id -u)" -ne 0 ] && [ "$DRY_RUN" -eq 0 ]; then
    echo "$PROG: please run it as root (sudo $0 ...), or with --dry-run to see what it would do; nothing was changed" >&2
    exit 1
fi
if [ -f "$SOURCE" ] && [[ "$SOURCE" == *.whl ]]; then
    SOURCE_VERSION=$(basename "$SOURCE" | cut -d- -f2)
elif [ -f "$SOURCE/pyproject.toml" ]; then
    SOURCE_VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$SOURCE/pyproject.toml" | head -1)
else
    echo "$PROG: $SOURCE is neither a posterm wheel nor a source tree with pyproject.toml" >&2
    exit 2
fi
SOURCE=$(cd "$(dirname "$SOURCE")" && pwd)/$(basename "$SOURCE")

CHANGES=0
say() { printf '  %-6s %s\n' "$1" "$2"; }
already() { say "ok" "$1"; }
# change DESCRIPTION COMMAND...: run it (or only say it under --dry-run), and count it.
change() {
    local what=$1; shift
    CHANGES=$((CHANGES + 1))
    if [ "$DRY_RUN" -eq 1 ]; then
        say "would" "$what"
    else
        say "do" "$what"
        "$@"
    fi
}

systemd_running() { [ -z "$R" ] && [ -d /run/systemd/system ]; }
SYSTEMCTL=(systemctl)
[ -z "$R" ] || SYSTEMCTL=(systemctl --root="$ROOT")

has_group() {
    if [ -z "$R" ]; then getent group "$1" >/dev/null; else grep -q "^$1:" "$R/etc/group"; fi
}
has_user() {
    if [ -z "$R" ]; then getent passwd "$1" >/dev/null; else grep -q "^$1:" "$R/etc/passwd"; fi
}
user_groups() {
    if [ -z "$R" ]; then id -nG "$1"; else
        awk -F: -v u="$1" '{ n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) print $1 }' \
            "$R/etc/group"
    fi
}
numeric_id() {     # numeric_id passwd|group NAME
    if [ -z "$R" ]; then getent "$1" "$2" | cut -d: -f3; else
        awk -F: -v n="$2" '$1 == n { print $3 }' "$R/etc/$1"
    fi
}
prefix_args=()
[ -z "$R" ] || prefix_args=(--prefix "$ROOT")

echo "$PROG: posterm $SOURCE_VERSION from $SOURCE into ${R}$PREFIX, data in ${R}$DATA$([ "$DRY_RUN" -eq 1 ] && echo ' (dry run)')"

# 1. Debian packages --------------------------------------------------------------------
if [ -z "$R" ]; then
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        already "Debian packages: ${APT_PACKAGES[*]}"
    else
        change "apt-get install ${missing[*]}" \
            sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null' \
            apt "${missing[@]}"
    fi
else
    say "skip" "Debian packages (not under --root)"
fi

# 2. The group and the system user --------------------------------------------------------
if has_group "$NAME"; then
    already "group $NAME"
else
    change "create the system group $NAME" groupadd "${prefix_args[@]}" --system "$NAME"
fi
if has_user "$NAME"; then
    already "user $NAME"
else
    change "create the system user $NAME (home $DATA, no login shell)" \
        useradd "${prefix_args[@]}" --system --gid "$NAME" --home-dir "$DATA" \
        --no-create-home --shell /usr/sbin/nologin --comment "posterm cashier app" "$NAME"
fi
for extra in dialout lp; do
    if ! has_group "$extra"; then
        say "skip" "group $extra (not on this system)"
    elif user_groups "$NAME" 2>/dev/null | tr ' ' '\n' | grep -qx "$extra"; then
        already "user $NAME in group $extra"
    else
        change "add user $NAME to group $extra (serial ports, printers)" \
            usermod "${prefix_args[@]}" -a -G "$extra" "$NAME"
    fi
done

# 3. The data directory: owned by posterm, 0700 -------------------------------------------
data_dir=$R$DATA
want_owner="$(numeric_id passwd "$NAME" 2>/dev/null || true):$(numeric_id group "$NAME" 2>/dev/null || true)"
if [ -d "$data_dir" ] && [ "$(stat -c '%u:%g %a' "$data_dir")" = "$want_owner 700" ]; then
    already "data directory $DATA (owner $NAME, 0700)"
else
    change "make the data directory $DATA (owner $NAME, 0700)" \
        sh -c 'install -d -m 0700 "$1" && chown "$2" "$1"' sh "$data_dir" "$want_owner"
fi

# 4. The virtualenv and posterm in it -------------------------------------------------------
venv=$R$PREFIX/venv
if [ -x "$venv/bin/python" ]; then
    already "virtualenv $PREFIX/venv"
else
    change "create the virtualenv $PREFIX/venv" python3 -m venv "$venv"
fi
installed=""
if [ -x "$venv/bin/python" ]; then
    installed=$("$venv/bin/python" -I -c 'import importlib.metadata as m; print(m.version("posterm"))' 2>/dev/null || true)
fi
if [ "$installed" = "$SOURCE_VERSION" ] && [ "$REINSTALL" -eq 0 ]; then
    already "posterm $installed in the virtualenv (--reinstall to install it again)"
else
    what="pip install posterm $SOURCE_VERSION${installed:+ (replacing $installed)} with the device drivers"
    # shellcheck disable=SC2086  # PIP_ARGS is a list of pip options
    change "$what" "$venv/bin/python" -m pip install -q --disable-pip-version-check \
        $PIP_ARGS "$SOURCE[devices]"
fi

# 5. udev rules: group posterm, mode 0660 for the readers, printers and serial adapters ----
rules=$R/etc/udev/rules.d/60-posterm.rules
if cmp -s "$HERE/60-posterm.rules" "$rules"; then
    already "udev rules /etc/udev/rules.d/60-posterm.rules"
else
    change "install the udev rules /etc/udev/rules.d/60-posterm.rules" \
        install -D -m 0644 "$HERE/60-posterm.rules" "$rules"
    if [ -n "$R" ]; then
        say "skip" "udevadm reload and trigger (under --root)"
    elif command -v udevadm >/dev/null && [ -d /run/udev ]; then
        change "reload the udev rules and apply them to the plugged devices" \
            sh -c 'udevadm control --reload && udevadm trigger --action=add --subsystem-match=usb --subsystem-match=tty --subsystem-match=usbmisc'
    else
        say "skip" "udevadm reload (udev is not running here): replug the devices after a reboot"
    fi
fi

# 6. The systemd units, with this install's paths: the cashier app, the daily backup --------
reload=0
for name in posterm.service posterm-backup.service posterm-backup.timer; do
    unit=$R/etc/systemd/system/$name
    rendered=$(sed -e "s#/opt/posterm/venv#$PREFIX/venv#g" -e "s#/var/lib/posterm#$DATA#g" \
        "$HERE/$name")
    if [ "$DATA" != /var/lib/posterm ]; then
        # StateDirectory= only names directories under /var/lib: a data directory elsewhere
        # is made by step 3 and opened for writing with ReadWritePaths=.
        rendered=$(printf '%s\n' "$rendered" | sed -e "s#^StateDirectory=.*#ReadWritePaths=$DATA#" \
            -e '/^StateDirectoryMode=/d')
    fi
    if [ -f "$unit" ] && [ "$(cat "$unit")" = "$rendered" ]; then
        already "systemd unit /etc/systemd/system/$name"
    else
        change "install the systemd unit /etc/systemd/system/$name" \
            sh -c 'install -d "$(dirname "$1")" && printf "%s\n" "$2" > "$1.tmp" && chmod 0644 "$1.tmp" && mv "$1.tmp" "$1"' \
            sh "$unit" "$rendered"
        reload=1
    fi
done
if [ "$reload" -eq 1 ] && systemd_running; then
    change "systemctl daemon-reload" systemctl daemon-reload
fi

# 7. Enable pcscd, the unit and the daily backup's timer; tty1 belongs to the cashier app ------------------------------
unit_known() { [ -e "$R/lib/systemd/system/$1" ] || [ -e "$R/usr/lib/systemd/system/$1" ] \
               || [ -e "$R/etc/systemd/system/$1" ]; }
for u in pcscd.socket posterm.service posterm-backup.timer; do
    if [ "$("${SYSTEMCTL[@]}" is-enabled "$u" 2>/dev/null || true)" = enabled ]; then
        already "$u enabled"
    elif unit_known "$u" || [ "$DRY_RUN" -eq 1 ]; then
        change "systemctl enable $u" "${SYSTEMCTL[@]}" enable --quiet "$u"
    else
        say "skip" "$u is not installed${R:+ under $ROOT}: cannot enable it"
    fi
done
if systemd_running && [ "$DRY_RUN" -eq 0 ] && ! systemctl is-active --quiet pcscd.socket; then
    change "start pcscd.socket" systemctl start pcscd.socket
fi
getty_state=$("${SYSTEMCTL[@]}" is-enabled getty@tty1.service 2>/dev/null || true)
if [ "$getty_state" = enabled ]; then
    change "disable the login prompt on tty1 (getty@tty1.service)" \
        "${SYSTEMCTL[@]}" disable --quiet getty@tty1.service
else
    already "no login prompt on tty1 (getty@tty1.service ${getty_state:-not installed})"
fi

# ---------------------------------------------------------------------------------------------
if [ "$DRY_RUN" -eq 1 ]; then
    echo "$PROG: dry run: $CHANGES change(s) would be made; nothing was changed"
elif [ "$CHANGES" -eq 0 ]; then
    echo "$PROG: nothing to change: posterm $SOURCE_VERSION is installed as it should be"
else
    echo "$PROG: $CHANGES change(s) made. Next: create the terminal as user $NAME"
    echo "  (sudo -u $NAME $PREFIX/venv/bin/posterm --data $DATA init --host HOST:PORT ...),"
    echo "  then 'sudo systemctl start posterm' or reboot; docs/install.md"
fi
