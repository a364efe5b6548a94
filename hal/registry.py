"""Device URLs to devices: which schemes each role accepts, and which driver module opens them.

The table maps a role and a URL scheme to a driver module *name*; the module is imported
only when a device is opened (as nfcpy's ``connect(path)`` picks its driver), so hal
imports no driver and a build without, say, pyscard still opens ``mock:`` devices.

A driver module provides one function::

    def connect(role: str, url: DeviceURL, context: DeviceContext) -> Device

which returns an instance of the role's interface or raises a :mod:`hal.errors` exception.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from hal.device_url import DeviceURL, split_url
from hal.errors import DeviceError, DeviceUnavailable, DeviceURLError
from hal.interfaces import CardReader, ContactlessReader, Device, PinPad, Printer, TestCardSlot

if TYPE_CHECKING:
    from hal.testcards import TestCard

__all__ = [
    "ROLES",
    "DeviceContext",
    "DeviceURL",
    "Devices",
    "allowed_forms",
    "open_device",
    "open_devices",
    "validate_url",
]

log = logging.getLogger(__name__)

ROLES = ("card_reader", "contactless", "pinpad", "printer")

_INTERFACES: dict[str, type] = {
    "card_reader": CardReader,
    "contactless": ContactlessReader,
    "pinpad": PinPad,
    "printer": Printer,
}

_BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400)
_HEX4 = r"[0-9A-Fa-f]{4}"


@dataclass(frozen=True)
class DeviceContext:
    """What a driver may need beyond its URL: where to keep files, the display language."""

    data_dir: Path
    language: str = "zh"


# --- syntax checks: each raises ValueError(reason) -------------------------------------


def _options(allowed: Mapping[str, tuple[str, ...]]) -> Callable[[DeviceURL], None]:
    def check(url: DeviceURL) -> None:
        for key, value in url.options.items():
            if key not in allowed:
                known = ", ".join(allowed) or "none"
                raise ValueError(f"unknown option {key!r} (options: {known})")
            if value not in allowed[key]:
                raise ValueError(f"option {key}={value!r} must be one of {'|'.join(allowed[key])}")

    return check


def _port(text: str) -> None:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"port {text!r} is not a number from 1 to 65535")


def _host_port(text: str) -> None:
    host, colon, port = text.rpartition(":")
    if not colon or not host:
        raise ValueError("expected HOST:PORT")
    _port(port)
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    elif not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", host):
        raise ValueError(f"{host!r} is not a host name or address")


def _no_path(url: DeviceURL) -> None:
    if url.path:
        raise ValueError(f"'{url.scheme}:' takes no path, got {url.path!r}")


def _mock(**allowed: tuple[str, ...]) -> Callable[[DeviceURL], None]:
    options = _options(allowed)

    def check(url: DeviceURL) -> None:
        _no_path(url)
        options(url)

    return check


def _pcsc(*, name_required: bool) -> Callable[[DeviceURL], None]:
    def check(url: DeviceURL) -> None:
        if name_required and not url.path.strip():
            raise ValueError("name the reader: pcsc:<part of the reader's name>")
        _options({})(url)

    return check


def _nfc(url: DeviceURL) -> None:
    _options({})(url)
    path = url.path
    if path == "usb" or re.fullmatch(rf"usb:{_HEX4}:{_HEX4}", path):
        return
    if path.startswith("usb:"):
        raise ValueError(f"{path[4:]!r} is not VID:PID in hex (like 054c:06c3)")
    if path.startswith("tty:"):
        if not re.fullmatch(r"tty:[A-Za-z0-9]+:[a-z0-9_]+", path):
            raise ValueError("expected tty:DEV:DRIVER (like tty:USB0:pn532)")
        return
    if path.startswith("udp:"):
        _host_port(path[4:])
        return
    raise ValueError(f"unknown nfc path {path!r}")


_BAUD = {"baudrate": tuple(str(b) for b in _BAUD_RATES)}
#: Printer models the ESC/POS driver knows (drivers.escpos_printer.MODELS) and widths.
PRINTER_OPTIONS = {"model": ("generic-58", "generic-80", "pos-5890", "tm-t20ii"),
                   "width": ("32", "48")}


def _serial(url: DeviceURL, extra: Mapping[str, tuple[str, ...]] | None = None) -> None:
    if not url.path.startswith("/"):
        raise ValueError("the serial port is an absolute device path, like /dev/ttyUSB0")
    _options({**_BAUD, **(extra or {})})(url)


def _pinpad_serial(url: DeviceURL) -> None:
    _serial(url, {"msr": ("yes", "no")})


def _printer_serial(url: DeviceURL) -> None:
    _serial(url, PRINTER_OPTIONS)


def _usb(url: DeviceURL) -> None:
    _options(PRINTER_OPTIONS)(url)
    if not re.fullmatch(rf"{_HEX4}:{_HEX4}", url.path):
        raise ValueError(f"{url.path!r} is not VID:PID in hex (like 04b8:0202)")


def _tcp(url: DeviceURL) -> None:
    _options(PRINTER_OPTIONS)(url)
    _host_port(url.path)


def _trace(url: DeviceURL) -> None:
    _file(url, {})


def _file(url: DeviceURL, allowed: Mapping[str, tuple[str, ...]] | None = None) -> None:
    _options(PRINTER_OPTIONS if allowed is None else allowed)(url)
    if not url.path:
        raise ValueError("no file path")


# --- the table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scheme:
    """One URL scheme of one role: the driver module that opens it, its forms, its syntax check."""

    module: str
    forms: tuple[str, ...]
    check: Callable[[DeviceURL], None]


SCHEMES: dict[str, dict[str, Scheme]] = {
    "card_reader": {
        "pcsc": Scheme("drivers.pcsc", ("pcsc:", "pcsc:<reader name>"), _pcsc(name_required=False)),
        "trace": Scheme("drivers.trace", ("trace:PATH",), _trace),
        "mock": Scheme("drivers.mock", ("mock:",), _mock()),
    },
    "contactless": {
        "nfc": Scheme(
            "drivers.nfc",
            ("nfc:usb", "nfc:usb:VID:PID", "nfc:tty:DEV:DRIVER", "nfc:udp:HOST:PORT"),
            _nfc,
        ),
        "pcsc": Scheme("drivers.pcsc", ("pcsc:<reader name>",), _pcsc(name_required=True)),
        "trace": Scheme("drivers.trace", ("trace:PATH",), _trace),
        "mock": Scheme("drivers.mock", ("mock:",), _mock()),
    },
    "pinpad": {
        "serial": Scheme("drivers.pinpad_abecs",
                         ("serial:/dev/ttyUSB0?baudrate=19200", "serial:DEV?baudrate=N&msr=no"),
                         _pinpad_serial),
        "mock": Scheme("drivers.mock", ("mock:", "mock:?msr=no"), _mock(msr=("yes", "no"))),
    },
    "printer": {
        "usb": Scheme("drivers.escpos_printer", ("usb:VID:PID[?model=NAME|width=32|48]",), _usb),
        "serial": Scheme("drivers.escpos_printer", ("serial:DEV?baudrate=N[&model=NAME]",),
                         _printer_serial),
        "tcp": Scheme("drivers.escpos_printer", ("tcp:HOST:PORT[?model=NAME|width=32|48]",),
                      _tcp),
        "file": Scheme("drivers.escpos_printer", ("file:PATH[?model=NAME]",), _file),
        "mock": Scheme(
            "drivers.mock",
            ("mock:", "mock:?paper=out", "mock:?cover=open", "mock:?width=32|48"),
            _mock(paper=("ok", "out"), cover=("closed", "open"), width=("32", "48")),
        ),
    },
}


def allowed_forms(role: str) -> tuple[str, ...]:
    """The URL forms ``role`` accepts, as shown in error messages and docs."""
    _check_role(role)
    return tuple(form for scheme in SCHEMES[role].values() for form in scheme.forms)


def _check_role(role: str) -> None:
    if role not in SCHEMES:
        raise DeviceURLError(f"unknown device role {role!r}; roles: {', '.join(ROLES)}")


def parse_url(role: str, url: str) -> DeviceURL:
    """Check ``url`` for ``role`` and return it parsed; :class:`DeviceURLError` if it is not valid."""
    _check_role(role)
    try:
        parsed = split_url(url)
        scheme = SCHEMES[role].get(parsed.scheme)
        if scheme is None:
            raise ValueError(f"unknown scheme '{parsed.scheme}:'")
        scheme.check(parsed)
    except ValueError as exc:
        forms = ", ".join(allowed_forms(role))
        raise DeviceURLError(
            f"bad {role} URL {url!r}: {exc}; allowed forms: {forms}"
        ) from None
    return parsed


def validate_url(role: str, url: str) -> None:
    """Raise :class:`DeviceURLError` (naming the role, the URL and the allowed forms) if ``url``
    is not a valid URL for ``role``."""
    parse_url(role, url)


def open_device(role: str, url: str, *, context: DeviceContext) -> Device:
    """Open the device at ``url`` for ``role`` with the driver the URL's scheme names.

    :class:`DeviceURLError` for a bad URL; :class:`DeviceUnavailable` if the driver is not
    in this build or its library is missing; any :class:`DeviceError` the driver raises.
    """
    parsed = parse_url(role, url)
    module_name = SCHEMES[role][parsed.scheme].module
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise DeviceUnavailable(
                f"{parsed.scheme}: driver not available in this build"
            ) from None
        raise DeviceUnavailable(
            f"{parsed.scheme}: driver needs the Python package {exc.name!r}, which is not installed"
        ) from exc
    try:
        device = module.connect(role, parsed, context)
    except DeviceError:
        raise
    except Exception as exc:
        # A library exception the driver did not translate: still one line for the cashier,
        # with the traceback in the log for the developer.
        log.exception("driver %s failed to open %s %s", module_name, role, parsed.text)
        raise DeviceUnavailable(f"{role} {parsed.text}: cannot open ({exc})") from exc
    if not isinstance(device, Device) or not isinstance(device, _INTERFACES[role]):
        raise TypeError(f"{module_name}.connect returned {type(device).__name__} for {role}")
    log.info("opened %s %s (%s)", role, parsed.text, module_name)
    return device


@dataclass
class Devices:
    """The terminal's devices by role; a role not configured is ``None``."""

    card_reader: CardReader | None = None
    contactless: ContactlessReader | None = None
    pinpad: PinPad | None = None
    printer: Printer | None = None

    def all(self) -> list[Device]:
        """The devices that are open, in role order."""
        found = [getattr(self, f.name) for f in fields(self)]
        return [device for device in found if device is not None]

    def present(self, card: TestCard, *, pin: str | None = None) -> None:
        """Present a test card to every mock/virtual device that has a test-card slot.

        Each device takes what it can (the contact reader a chip card, the PIN pad the PIN
        and a swipe). :class:`DeviceUnavailable` if no device has a slot (real devices).
        """
        slots = [device for device in self.all() if isinstance(device, TestCardSlot)]
        if not slots:
            raise DeviceUnavailable("no device here can be presented a test card")
        for slot in slots:
            slot.present(card, pin=pin)

    def close(self) -> None:
        """Close every device; a failure to close one is logged and does not stop the others."""
        for device in self.all():
            try:
                device.close()
            except DeviceError as exc:
                log.warning("closing %s failed: %s", type(device).__name__, exc)


def open_devices(urls: Mapping[str, str], context: DeviceContext) -> Devices:
    """Open one device per role in ``urls`` (role -> URL); all or none: on a failure the ones
    already open are closed again before the error propagates."""
    for role in urls:
        _check_role(role)
    for role, url in urls.items():
        validate_url(role, url)
    devices = Devices()
    try:
        for role in ROLES:
            if role in urls:
                setattr(devices, role, open_device(role, urls[role], context=context))
    except BaseException:
        devices.close()
        raise
    return devices
