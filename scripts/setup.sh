#!/usr/bin/env bash
# Set up a fresh machine for posterm: Debian packages for the virtual devices (when root
# or sudo is available), a virtualenv in .venv with posterm and its test tools.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3-venv pcscd vsmartcard-vpcd libpcsclite-dev socat libusb-1.0-0 fonts-wqy-microhei)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo -n);
    else SUDO=(false); fi
    echo "setup: installing Debian packages: ${missing[*]}"
    if ! { "${SUDO[@]}" apt-get update -qq \
           && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq \
              --no-install-recommends "${missing[@]}" >/dev/null; }; then
        echo "setup: could not install ${missing[*]} (needs root); mock devices work without them" >&2
    fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.posterm-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    extras=test
    # pyscard compiles against libpcsclite-dev; without it the device drivers stay out
    # and the mock devices still work.
    if dpkg-query -W -f='${Status}' libpcsclite-dev 2>/dev/null | grep -q "install ok installed"; then
        extras=test,devices
    else
        echo "setup: libpcsclite-dev missing: real and virtual device drivers not installed" >&2
    fi
    .venv/bin/python -m pip install -q -e ".[$extras]"
    touch "$stamp"
fi
