"""The package as a POS box gets it (issue 9): the wheel built from this tree, installed
into a clean virtualenv outside the source tree, then ``posterm doctor`` and the HIL suite
on virtual devices run against that installed package.

The tree is copied (without .git, .venv, tests) to a temporary directory and built there,
so nothing is written into the checkout; the virtualenv gets the wheel with its
``devices`` and ``test`` extras from the package index (pip's cache makes the second
install quick: setup.sh has built pyscard once already). The HIL suite runs from a copy of
``hil/`` in a directory holding nothing else, so every ``import app`` and every ``python -m
app`` of its fixtures finds the installed package, never this tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import REPO, HostSim

INSTALL_TIMEOUT = 1200
HIL_TIMEOUT = 1800


def _run(argv: list[str | Path], *, cwd: Path, timeout: float,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in (env or os.environ).items()
             if k not in ("PYTHONPATH", "POSTERM_DATA", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=clean, check=False)


def _ok(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 0, f"$ {' '.join(run.args)}\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    return run.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ directory of a fresh virtualenv holding only the built wheel (and its
    dependencies)."""
    base = tmp_path_factory.mktemp("installed")
    source = base / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "tests", "hil", "bench", "build", "*.egg-info", "__pycache__",
        ".pytest_cache", ".ruff_cache", ".mypy_cache", "demo-data"))
    wheels = base / "wheels"
    _ok(_run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", wheels,
              source], cwd=base, timeout=INSTALL_TIMEOUT))
    (wheel,) = wheels.glob("posterm-*.whl")
    venv = base / "venv"
    _ok(_run([sys.executable, "-m", "venv", venv], cwd=base, timeout=120))
    _ok(_run([venv / "bin" / "pip", "install", "--quiet", f"{wheel}[devices,test]"], cwd=base,
             timeout=INSTALL_TIMEOUT))
    return venv / "bin"


def test_the_installed_posterm_is_the_wheel_not_this_tree(installed: Path, tmp_path: Path):
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert version in _ok(_run([installed / "posterm", "--version"], cwd=tmp_path, timeout=60))
    code = "import app, host, drivers; print(app.__file__, host.__file__, drivers.__file__)"
    where = _ok(_run([installed / "python", "-c", code], cwd=tmp_path, timeout=60))
    for path in where.split():
        assert "site-packages" in path and not path.startswith(str(REPO)), where
    # the bundled statement profiles are package data of the wheel
    profiles = _ok(_run([installed / "posterm", "recon", "profiles"], cwd=tmp_path, timeout=60))
    assert "posterm-host" in profiles


def test_posterm_doctor_runs_from_the_installed_package(installed: Path, tmp_path: Path):
    host = HostSim(tmp_path / "host", tmp_path / "host-stderr.log")
    try:
        data = tmp_path / "terminal"
        _ok(_run([installed / "posterm", "init", "--data", data, "--host", host.address,
                  "--host-data", host.data, "--json"], cwd=tmp_path, timeout=120))
        doctor = _run([installed / "posterm", "--data", data, "doctor", "--json"],
                      cwd=tmp_path, timeout=120)
        assert doctor.returncode in (0, 1), doctor.stderr        # no check failed
        report = json.loads(doctor.stdout)
        checks = {c["name"]: c for c in report["checks"]}
        assert "Traceback" not in doctor.stderr
        for name, check in checks.items():
            assert check["status"] in ("ok", "warning"), (name, check)
        assert any(c["status"] == "ok" for c in checks.values())
    finally:
        host.stop()


def test_the_hil_suite_passes_on_virtual_devices_against_the_installed_package(
        installed: Path, tmp_path: Path):
    outside = tmp_path / "bench"
    shutil.copytree(REPO / "hil", outside / "hil",
                    ignore=shutil.ignore_patterns("__pycache__"))
    run = _run([installed / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "--rootdir", outside, "hil"], cwd=outside, timeout=HIL_TIMEOUT)
    tail = run.stdout[-3000:]
    assert run.returncode == 0, tail + run.stderr[-3000:]
    assert " passed" in tail and " failed" not in tail, tail
