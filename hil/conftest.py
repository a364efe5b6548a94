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

import pytest

from hil.bench import Bench, load_bench

# The device families' fixtures, defined once here so that every test module shares the
# same session objects (one pcscd, one virtual card per vpcd slot): a module importing a
# fixture itself would get a second, separate instance.
from hil.nfc_fixtures import contactless_card, contactless_url, virtual_nfc_card  # noqa: F401
from hil.pcsc_fixtures import (  # noqa: F401
    card_reader_card,
    card_reader_url,
    pcscd,
    virtual_card,
    virtual_cards,
)
from hil.pinpad_fixtures import pinpad_url, virtual_pinpad  # noqa: F401
from hil.printer_fixtures import printer_url, serial_printer_url, virtual_printer  # noqa: F401


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench", default=os.environ.get("POSTERM_BENCH"),
                     help="bench file of device URLs (default: start the virtual devices)")


@pytest.fixture(scope="session")
def bench(request: pytest.FixtureRequest) -> Bench:
    return load_bench(request.config.getoption("--bench"))


@pytest.fixture
def host(tmp_path):
    """posterm-host on a free loopback port: (address, data dir); stopped afterwards."""
    from app.demo import start_host
    data = tmp_path / "host"
    data.mkdir()
    proc, address = start_host(data, quiet=True)
    try:
        yield address, data
    finally:
        proc.terminate()
        proc.wait(timeout=10)
