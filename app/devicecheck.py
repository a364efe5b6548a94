"""``posterm devices``: every configured device, whether it answers, and a test on request."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from app.terminal import Terminal
from hal.document import Document, Line
from hal.errors import DeviceError, DeviceURLError
from hal.interfaces import CardReader, ContactlessReader, Device, PinPad, Printer
from hal.registry import DeviceContext, Devices, open_device

log = logging.getLogger(__name__)

ROLE_NAMES = {"card_reader": "chip reader 接触式读卡器", "contactless": "contactless 非接读卡器",
              "pinpad": "PIN pad 密码键盘", "printer": "printer 打印机"}


def _test_page(term: Terminal) -> Document:
    t = term.config["terminal"]
    now = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return Document("test-page", (
        Line("打印测试 PRINTER TEST", align="center", bold=True),
        Line(rule=True), Line(t["merchant_name"]), Line(f"TID {t['terminal_id']}"),
        Line(f"MID {t['merchant_id']}"), Line(now), Line(rule=True),
        Line("中文 ABC abc 0123456789 ¥"), Line("right", align="right"),
        Line("centre", align="center")))


def _state(device: Device, test: bool, term: Terminal, state: dict[str, Any]) -> None:
    """Fill ``state`` with what one open device reports, and its test's result when asked."""
    state.update(found=True, info=device.info())
    if isinstance(device, CardReader):
        state["card_present"] = device.card_present()
        if test:
            state["atr"] = device.wait_for_card(5.0).hex().upper()
            device.power_off()
    elif isinstance(device, ContactlessReader):
        state["card_present"] = device.card_present()
        if test:
            state["uid"] = device.poll(5.0).hex().upper()
            device.release()
    elif isinstance(device, Printer):
        status = device.status()
        state["status"] = {"online": status.online, "paper_out": status.paper_out,
                           "cover_open": status.cover_open}
        if test:
            device.print_document(_test_page(term))
            state["test_page"] = "printed"
    elif isinstance(device, PinPad) and test:
        device.display("posterm 测试 TEST")
        state["display"] = "shown"


def check_devices(term: Terminal, *, test: bool = False, roles: Iterable[str] | None = None,
                  opened: Devices | None = None) -> dict[str, dict[str, Any]]:
    """Open each configured device on its own, so one missing device hides no other.

    ``roles`` limits the check to some roles (default: every configured one). A device of
    ``opened`` (the cashier app's, held open for its whole life) is checked as it is and left
    open: a serial PIN pad cannot be opened twice, and a mock device shows its own state."""
    context = DeviceContext(data_dir=term.data_dir, language=term.language)
    report: dict[str, dict[str, Any]] = {}
    wanted = None if roles is None else set(roles)
    for role, url in term.config["devices"].items():
        if wanted is not None and role not in wanted:
            continue
        entry: dict[str, Any] = {"url": url, "name": ROLE_NAMES[role]}
        held = getattr(opened, role, None) if opened is not None else None
        device = None
        try:
            device = held if held is not None else open_device(role, url, context=context)
            _state(device, test, term, entry)
        except (DeviceError, DeviceURLError) as exc:
            entry.setdefault("found", False)
            entry["error" if not entry["found"] else "test_error"] = str(exc)
        finally:
            if device is not None and device is not held:
                try:
                    device.close()
                except DeviceError as exc:
                    log.warning("closing %s: %s", role, exc)
        report[role] = entry
    return report


def failed(entry: dict[str, Any]) -> bool:
    """Whether a device of the report is missing or failed its test."""
    return "error" in entry or "test_error" in entry


def device_line(entry: dict[str, Any]) -> str:
    """One device of the report as ``posterm devices`` prints it: name, URL, state, model
    and what it told (card present, ATR, test page...)."""
    from hal.document import text_width
    info = entry.get("info", {})
    model = info.get("model") or info.get("driver") or ""
    extra = " ".join(f"{k}={v}" for k, v in entry.items()
                     if k in ("card_present", "atr", "uid", "test_page", "display"))
    status = entry.get("status")
    if status:
        extra += " " + " ".join(k for k, v in status.items() if v and k != "online")
    state = (f"NOT FOUND: {entry['error']}" if "error" in entry else
             f"found, test FAILED: {entry['test_error']}" if "test_error" in entry
             else "ok")
    name = entry["name"] + " " * max(1, 26 - text_width(entry["name"]))
    return f"{name}{entry['url']:<28} {state} {model} {extra}".rstrip()
