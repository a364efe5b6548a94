"""Render a hal :class:`~hal.document.Document` as ESC/POS through python-escpos.

Shared by the mock printer (into ``escpos.printer.Dummy``) and the real printer driver
(USB, serial, network, file): python-escpos writes the ESC/POS; this module only decides
what to say, line by line, wrapped and aligned the same way as ``Document.plain_text``.
"""

from __future__ import annotations

import logging

from escpos.escpos import Escpos  # type: ignore[import-untyped]
from escpos.exceptions import Error as EscposError  # type: ignore[import-untyped]

from hal.document import Document, wrap
from hal.errors import PrinterFault

__all__ = ["GB_ENCODINGS", "render"]

log = logging.getLogger(__name__)

#: Encodings of printers with a Chinese (GB) character ROM.
GB_ENCODINGS = frozenset({"gb18030", "gbk", "gb2312", "cp936"})

_FS_CHINESE_ON = b"\x1c\x26"  # FS &: select Chinese (double-byte) character mode
_FS_CHINESE_OFF = b"\x1c\x2e"  # FS .: cancel Chinese character mode


def _write(printer: Escpos, text: str, encoding: str) -> None:
    if text.isascii():
        # Printable ASCII is the same in every ESC/POS code page once ESC @ has reset the
        # international character set (render sends it first), so it goes out as it is:
        # python-escpos's magic encoder would test each character against each code page,
        # most of the time a slip takes to render.
        printer._raw(text.encode("ascii"))
        return
    if encoding.lower() not in GB_ENCODINGS:
        # ASCII, or a code-page printer: python-escpos's magic encoder picks a code page
        # and prints '?' for what none of the profile's code pages holds.
        printer.text(text)
        return
    # python-escpos's magic encoder does not map GB18030: its code-page tables have no
    # double-byte pages, and its one shortcut (text with an ideograph in U+4E00..U+9FA5 is
    # sent as raw GB18030) neither enters Chinese mode, which many printers need, nor covers
    # CJK punctuation or fullwidth forms (，。：￥), which come out as '?'. So for a GB printer
    # we enter Chinese mode with FS &, send the GB18030 bytes raw, and leave it with FS '.'.
    printer._raw(_FS_CHINESE_ON)
    printer._raw(text.encode(encoding, errors="replace"))
    printer._raw(_FS_CHINESE_OFF)


def render(doc: Document, printer: Escpos, *, width: int, encoding: str) -> None:
    """Send ``doc`` to ``printer``: initialise (ESC @), each line with its style, then cut.

    ``width`` is the paper's width in columns of the normal font; ``encoding`` the
    printer's character set (``gb18030`` for Chinese printers). :class:`PrinterFault` if
    python-escpos or the connection under it fails.
    """
    try:
        printer.hw("INIT")
        for line in doc.lines:
            if line.rule:
                printer.set(align="left", bold=False, normal_textsize=True)
                _write(printer, "-" * width + "\n", encoding)
                continue
            printer.set(
                align=line.align,
                bold=line.bold,
                normal_textsize=not line.double,
                double_width=line.double,
                double_height=line.double,
            )
            columns = width // 2 if line.double else width
            for piece in wrap(line.text, columns):
                _write(printer, piece + "\n", encoding)
        printer.set(align="left", bold=False, normal_textsize=True)
        if doc.cut:
            printer.cut()
    except (EscposError, OSError, ValueError) as exc:
        log.warning("printing %r failed: %s", doc.title, exc)
        raise PrinterFault(f"printer error: {exc}") from exc
