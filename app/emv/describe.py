"""``posterm card read``: selection and the application's data on any reader, described
for a payments engineer (AIP, AFL and CVM list decoded, every record tag by name).

Nothing here shows the clear PAN, track data or the cardholder's name: the PAN is masked
(first 6, last 4) and those tags are listed by name only.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

from app.cardread import open_reader
from app.emv import tags
from app.emv.carddata import expiry_passed
from app.emv.kernel import EmvKernel
from app.emv.params import TerminalParams
from app.emv.selection import Chooser
from hal.errors import DeviceError
from hal.interfaces import CardReader, ContactlessReader
from hal.testcards import TestCard
from storage.pan import mask_pan

log = logging.getLogger(__name__)

AIP_BITS = ((0, 0x40, "SDA supported"), (0, 0x20, "DDA supported"),
            (0, 0x10, "cardholder verification supported"),
            (0, 0x08, "terminal risk management to be performed"),
            (0, 0x04, "issuer authentication supported"), (0, 0x01, "CDA supported"))
CVM_METHODS = {0x00: "fail CVM processing", 0x01: "plaintext PIN verified by the ICC",
               0x02: "enciphered PIN verified online", 0x03: "plaintext PIN by ICC and signature",
               0x04: "enciphered PIN verified by the ICC",
               0x05: "enciphered PIN by ICC and signature", 0x1E: "signature (paper)",
               0x1F: "no CVM required", 0x3F: "no CVM performed"}
CVM_CONDITIONS = {0x00: "always", 0x01: "if unattended cash",
                  0x02: "if not unattended cash, not manual cash, not cashback",
                  0x03: "if the terminal supports the CVM", 0x04: "if manual cash",
                  0x05: "if purchase with cashback", 0x06: "if under X", 0x07: "if over X",
                  0x08: "if under Y", 0x09: "if over Y"}


def decode_aip(aip: bytes) -> list[str]:
    return [text for byte, mask, text in AIP_BITS if len(aip) > byte and aip[byte] & mask]


def decode_cvm_list(raw: bytes) -> dict[str, Any]:
    """X and Y (minor units of the application currency) and each CV Rule in words."""
    if len(raw) < 8:
        return {"x": None, "y": None, "rules": []}
    rules = []
    for i in range(8, len(raw) - 1, 2):
        code, condition = raw[i], raw[i + 1]
        rules.append({
            "rule": raw[i:i + 2].hex().upper(),
            "method": CVM_METHODS.get(code & 0x3F, f"unknown method {code & 0x3F:02X}"),
            "condition": CVM_CONDITIONS.get(condition, f"unknown condition {condition:02X}"),
            "next_if_fails": bool(code & 0x40)})
    return {"x": int.from_bytes(raw[:4], "big"), "y": int.from_bytes(raw[4:8], "big"),
            "rules": rules}


def _shown(tag: str, value: bytes) -> str:
    """A record value as ``card read`` shows it: card data is never shown in clear."""
    if tag == "5A":
        return mask_pan(value.hex().upper().rstrip("F"))
    if tag in tags.SENSITIVE:
        return f"({len(value)} bytes, not shown)"
    if tags.data_format(tag) in ("an", "ans", "a"):
        return "".join(ch if 0x20 <= ord(ch) < 0x7F else "?" for ch in value.decode("latin-1"))
    return value.hex().upper()


def describe(kernel: EmvKernel, today: date | None = None) -> dict[str, Any]:
    """What a read application holds, ready for JSON (no clear card data)."""
    card = kernel.card_data()
    assert kernel.gpo is not None
    cvm = kernel.card.get("8E")
    return {
        "interface": card.interface, "aid": card.aid, "label": card.label,
        "preferred_name": card.preferred_name, "pan_masked": mask_pan(card.pan),
        "expiry": card.expiry, "expired": expiry_passed(card.expiry, today),
        "pan_sequence": card.card_seq, "service_code": card.service_code,
        "card_org": card.card_org,
        "candidates": [{"aid": c.aid, "label": c.label, "preferred_name": c.preferred_name,
                        "priority": c.priority} for c in kernel.candidates],
        "aip": kernel.gpo.aip.hex().upper(), "aip_decoded": decode_aip(kernel.gpo.aip),
        "gpo_format": kernel.gpo.format,
        "afl": [{"sfi": e.sfi, "first": e.first, "last": e.last, "oda_records": e.oda_records}
                for e in kernel.gpo.afl],
        "cvm_list": decode_cvm_list(cvm) if cvm else None,
        "static_data_bytes": len(kernel.static_data),
        "tags": [{"tag": tag, "name": tags.name(tag), "value": _shown(tag, value)}
                 for tag, value in kernel.card.items()],
        "apdus": kernel.channel.count,
    }


def read_on_reader(reader_url: str, *, data_dir: Path, contactless: bool = False,
                   test_card: TestCard | None = None, chooser: Chooser | None = None,
                   timeout: float = 30.0, params: TerminalParams | None = None) -> dict[str, Any]:
    """Open ``reader_url``, wait for a card, select and read its application, let it go."""
    device = open_reader(reader_url, data_dir=data_dir, contactless=contactless,
                         test_card=test_card)
    try:
        if isinstance(device, ContactlessReader):
            device.poll(timeout)
            release = device.release
        else:
            assert isinstance(device, CardReader)
            device.wait_for_card(timeout)
            release = device.power_off
        try:
            kernel = EmvKernel(device.transceive, params or TerminalParams(),
                               contactless=isinstance(device, ContactlessReader), amount=0,
                               chooser=chooser)
            kernel.read()
            return describe(kernel)
        finally:
            try:
                release()
            except DeviceError as exc:
                log.info("releasing the card: %s", exc)
    finally:
        device.close()


def render(info: dict[str, Any]) -> str:
    """``card read``'s text form."""
    lines = [
        f"AID             {info['aid']}",
        f"label           {info['label'] or '-'}",
        f"preferred name  {info['preferred_name'] or '-'}",
        f"PAN             {info['pan_masked']}  (sequence {info['pan_sequence'] or '-'})",
        f"expiry          {info['expiry'] or '-'}" + ("  EXPIRED" if info["expired"] else ""),
        f"service code    {info['service_code'] or '-'}",
        f"AIP             {info['aip']}  " + "; ".join(info["aip_decoded"]),
        "AFL             " + (", ".join(f"SFI {e['sfi']} records {e['first']}-{e['last']}"
                                        f" ({e['oda_records']} for ODA)" for e in info["afl"])
                              or "-"),
    ]
    if len(info["candidates"]) > 1:
        lines.append("applications    " + ", ".join(
            f"{c['aid']} {c['preferred_name'] or c['label'] or ''}".strip()
            for c in info["candidates"]))
    cvm = info["cvm_list"]
    if cvm:
        lines.append(f"CVM list        X={cvm['x']} Y={cvm['y']}")
        lines += [f"  {r['rule']}  {r['method']}, {r['condition']}"
                  + ("; else next rule" if r["next_if_fails"] else "") for r in cvm["rules"]]
    else:
        lines.append("CVM list        -")
    lines.append("data objects:")
    lines += [f"  {t['tag']:<5} {t['name']:<52} {t['value']}" for t in info["tags"]]
    return "\n".join(lines)
