"""The cashier app's tests: a real ``posterm-host`` process on a free port, a terminal data
directory made by ``posterm init`` on it, and the app driven by Textual's Pilot at 80x24.

The host simulator and ``provision`` come from tests/integration/conftest.py (loaded from
its file, so the two folders share one implementation).
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .uipilot import CASHIER_PASSWORD

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("posterm_integration_conftest",
                                               HERE.parent / "integration" / "conftest.py")
assert _spec is not None and _spec.loader is not None
integration = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = integration
_spec.loader.exec_module(integration)

HostSim = integration.HostSim

SUPERVISOR = "sup-24680"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run this folder's ``async def`` tests (Pilot) in a fresh event loop each."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@dataclass
class Till:
    """A terminal provisioned on ``host``; cashier 01's password is CASHIER_PASSWORD unless
    made ``fresh`` (then it is still the initial 0000)."""

    data: Path
    host: HostSim


def make_till(tmp_path: Path, host: HostSim, *, fresh: bool = False,
              language: str = "zh") -> Till:
    data = tmp_path / "till"
    integration.provision(data, host.address, host.data, "--supervisor-password", SUPERVISOR,
                          "--language", language)
    if not fresh:
        from app.operators import change_password
        from app.terminal import Terminal
        with Terminal(data) as term:
            change_password(term, "01", "0000", CASHIER_PASSWORD)
    return Till(data, host)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[HostSim]:
    sim = HostSim(tmp_path / "host", tmp_path / "host-stderr.log")
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def till(tmp_path: Path, host: HostSim) -> Till:
    return make_till(tmp_path, host)


@pytest.fixture
def till_factory(tmp_path: Path, host: HostSim) -> Callable[..., Till]:
    return lambda **kw: make_till(tmp_path, host, **kw)
