"""Device URLs: the documented forms are accepted, bad ones refused with the URL named."""

import pytest

from hal import registry
from hal.errors import DeviceUnavailable, DeviceURLError
from hal.interfaces import CardReader, ContactlessReader, PinPad, Printer
from hal.registry import DeviceContext, Devices, open_device, open_devices, validate_url
from hal.testcards import test_card

GOOD = [
    ("card_reader", "pcsc:"),
    ("card_reader", "pcsc:ACS ACR39U"),
    ("card_reader", "mock:"),
    ("contactless", "nfc:usb"),
    ("contactless", "nfc:usb:054c:06c3"),
    ("contactless", "nfc:tty:USB0:pn532"),
    ("contactless", "nfc:udp:127.0.0.1:54321"),
    ("contactless", "nfc:udp:localhost:54321"),
    ("contactless", "pcsc:ACR1252 PICC"),
    ("contactless", "mock:"),
    ("pinpad", "serial:/dev/ttyUSB0?baudrate=19200"),
    ("pinpad", "serial:/dev/ttyUSB0"),
    ("pinpad", "mock:"),
    ("printer", "usb:04b8:0202"),
    ("printer", "serial:/dev/ttyS0?baudrate=38400"),
    ("printer", "tcp:192.168.1.50:9100"),
    ("printer", "tcp:[::1]:9100"),
    ("printer", "file:/dev/usb/lp0"),
    ("printer", "mock:"),
    ("printer", "mock:?paper=out"),
    ("printer", "mock:?width=48"),
]

BAD = [
    ("card_reader", "nfc:usb"),  # a scheme of another role
    ("card_reader", "mock:extra"),
    ("contactless", "pcsc:"),  # which reader? the first one is the contact reader
    ("contactless", "nfc:usb:54c:6c3"),
    ("contactless", "nfc:usb:zzzz:06c3"),
    ("contactless", "nfc:udp:127.0.0.1:port"),
    ("contactless", "nfc:tty:USB0"),
    ("contactless", "nfc:bluetooth"),
    ("pinpad", "serial:ttyUSB0"),
    ("pinpad", "serial:/dev/ttyUSB0?baudrate=fast"),
    ("pinpad", "serial:/dev/ttyUSB0?speed=19200"),
    ("printer", "usb:04b8"),
    ("printer", "usb:04b8:020g"),
    ("printer", "tcp:192.168.1.50"),
    ("printer", "tcp:192.168.1.50:0"),
    ("printer", "tcp:192.168.1.50:70000"),
    ("printer", "file:"),
    ("printer", "mock:?paper=maybe"),
    ("printer", "mock:?width=40"),
    ("printer", "lpt1"),
    ("printer", ""),
]


@pytest.mark.parametrize("role,url", GOOD)
def test_documented_forms_are_accepted(role, url):
    validate_url(role, url)


@pytest.mark.parametrize("role,url", BAD)
def test_bad_urls_are_refused_naming_role_url_and_allowed_forms(role, url):
    with pytest.raises(DeviceURLError) as info:
        validate_url(role, url)
    message = str(info.value)
    assert repr(url) in message
    assert role in message
    assert "mock:" in message  # the allowed forms are listed
    assert isinstance(info.value, ValueError)


def test_unknown_role_is_refused():
    with pytest.raises(DeviceURLError, match="scanner"):
        validate_url("scanner", "mock:")


@pytest.fixture
def context(tmp_path):
    return DeviceContext(data_dir=tmp_path)


def test_open_mock_printer(context):
    printer = open_device("printer", "mock:", context=context)
    assert isinstance(printer, Printer)
    assert printer.status().online
    assert printer.info()["driver"] == "mock"
    printer.close()


def test_open_unknown_scheme_raises_device_url_error(context):
    with pytest.raises(DeviceURLError, match="'bogus:1'"):
        open_device("printer", "bogus:1", context=context)


def test_a_scheme_whose_driver_module_is_not_built_is_unavailable(context, monkeypatch):
    # A table entry naming a module this build lacks (as a slimmed-down box would).
    monkeypatch.setitem(registry.SCHEMES["card_reader"], "pcsc",
                        registry.Scheme("drivers.not_in_this_build", ("pcsc:",),
                                        registry.SCHEMES["card_reader"]["pcsc"].check))
    with pytest.raises(DeviceUnavailable, match="pcsc: driver not available in this build"):
        open_device("card_reader", "pcsc:", context=context)


def test_open_devices_opens_every_role_and_present_reaches_the_slots(context):
    devices = open_devices(
        {"card_reader": "mock:", "contactless": "mock:", "pinpad": "mock:", "printer": "mock:"},
        context,
    )
    assert isinstance(devices.card_reader, CardReader)
    assert isinstance(devices.contactless, ContactlessReader)
    assert isinstance(devices.pinpad, PinPad)
    devices.present(test_card("unionpay-debit-chip"))
    assert devices.card_reader.card_present()
    assert not devices.contactless.card_present()
    devices.close()
    assert not devices.printer.status().online


def test_open_devices_refuses_a_bad_url_before_opening_anything(context):
    with pytest.raises(DeviceURLError, match="printer"):
        open_devices({"card_reader": "mock:", "printer": "tcp:nowhere"}, context)


def test_devices_without_test_card_slots_cannot_be_presented_a_card():
    with pytest.raises(DeviceUnavailable):
        Devices().present(test_card("visa-chip"))


def test_hal_imports_no_driver_statically():
    import pathlib

    import hal

    for source in pathlib.Path(hal.__file__).parent.glob("*.py"):
        text = source.read_text()
        assert "import drivers" not in text and "from drivers" not in text, source
