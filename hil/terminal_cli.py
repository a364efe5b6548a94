"""Running the posterm CLI against the host simulator on a bench's (or virtual) devices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app import config as config_mod

REPO = Path(__file__).resolve().parent.parent


def posterm(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``posterm --data DATA ARGS`` as its own process."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "app", "--data", str(data), *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
                          check=False)


def terminal_on(tmp_path: Path, host: tuple[str, Path], devices: dict[str, str]) -> Path:
    """A terminal provisioned on ``host`` (address, data dir) with these device URLs."""
    data = tmp_path / "terminal"
    address, host_data = host
    init = posterm(data, "init", "--host", address, "--host-data", str(host_data))
    assert init.returncode == 0, init.stderr
    values = config_mod.load(data).values
    values["devices"].update(devices)
    config_mod.write(data, values)
    return data
