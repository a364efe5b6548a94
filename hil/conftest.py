"""The HIL suite's bench: which device URLs the tests run against.

With ``--bench FILE`` (or ``POSTERM_BENCH=FILE``) the tests use the devices the bench file
names; without one, each device family's fixtures start its virtual device (pcscd with a
virtual card, an ABECS PIN pad on a pseudo-terminal, a TCP ESC/POS printer, nfcpy's udp
pair). A test whose device the bench lacks is skipped with the reason.

Bench file (TOML)::

    [devices]
    card_reader = "pcsc:ACS"                           # leave a role out if the bench lacks it
    contactless = "nfc:usb"
    pinpad = "serial:/dev/ttyUSB0?baudrate=19200"
    printer = "usb:04b8:0202"

    [cards]                                            # the test card each reader holds
    card_reader = "unionpay-debit-chip"                # a catalogue profile the real card matches
    contactless = "mc-tap"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROLES = ("card_reader", "contactless", "pinpad", "printer")


@dataclass(frozen=True)
class Bench:
    """A real bench's device URLs and the cards on its readers (None: virtual devices)."""

    path: Path | None
    devices: dict[str, str] = field(default_factory=dict)
    cards: dict[str, str] = field(default_factory=dict)

    @property
    def virtual(self) -> bool:
        return self.path is None

    def url(self, role: str) -> str:
        """The bench's URL for ``role``; skips the calling test when the bench has none."""
        if role not in self.devices:
            pytest.skip(f"the bench file {self.path} has no {role}")
        return self.devices[role]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench", default=os.environ.get("POSTERM_BENCH"),
                     help="bench file of device URLs (default: start the virtual devices)")


def load_bench(path: str | None) -> Bench:
    if not path:
        return Bench(None)
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    devices = {k: v for k, v in data.get("devices", {}).items() if k in ROLES}
    return Bench(Path(path), devices, dict(data.get("cards", {})))


@pytest.fixture(scope="session")
def bench(request: pytest.FixtureRequest) -> Bench:
    return load_bench(request.config.getoption("--bench"))
