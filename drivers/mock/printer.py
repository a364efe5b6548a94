"""Mock receipt printer: real ESC/POS bytes from python-escpos's Dummy, plus a text preview file."""

from __future__ import annotations

import itertools
import logging
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from escpos.printer import Dummy  # type: ignore[import-untyped]

from drivers.escpos_render import render
from hal.device_url import DeviceURL
from hal.document import Document
from hal.errors import PrinterFault
from hal.interfaces import Printer, PrinterStatus
from hal.registry import DeviceContext

__all__ = ["MockPrinter"]

log = logging.getLogger(__name__)

_counter = itertools.count(1)
_counter_lock = threading.Lock()


def slug(title: str) -> str:
    """A file-name-safe form of a document title ('Sale — merchant copy' -> 'sale-merchant-copy')."""
    text = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return text[:60] or "document"


class MockPrinter(Printer):
    """Renders each document to ESC/POS (kept in :attr:`last_bytes`) and writes
    ``<data_dir>/receipts/<utc time>-<n>-<title>.txt``, the paper as text.

    URL options: ``paper=out`` and ``cover=open`` make printing fail as a real printer
    would (:attr:`paper_out` and :attr:`cover_open` can also be changed while it runs);
    ``width=32|48`` is the paper width in columns (32, a 58 mm roll, by default).
    """

    encoding = "gb18030"

    def __init__(self, url: DeviceURL, context: DeviceContext) -> None:
        self._url = url
        self.width = int(url.options.get("width", "32"))
        self.paper_out = url.options.get("paper") == "out"
        self.cover_open = url.options.get("cover") == "open"
        self.receipts_dir = Path(context.data_dir) / "receipts"
        self.last_bytes = b""
        self.last_preview: Path | None = None
        self._closed = False

    def info(self) -> dict[str, Any]:
        return {
            "driver": "mock",
            "role": "printer",
            "url": self._url.text,
            "model": "mock receipt printer",
            "width": self.width,
            "receipts_dir": str(self.receipts_dir),
        }

    def close(self) -> None:
        self._closed = True

    def status(self) -> PrinterStatus:
        return PrinterStatus(
            online=not self._closed, paper_out=self.paper_out, cover_open=self.cover_open
        )

    def print_document(self, doc: Document) -> None:
        if self._closed:
            raise PrinterFault("Printer not connected")
        if self.paper_out:
            raise PrinterFault("Printer paper out: load paper")
        if self.cover_open:
            raise PrinterFault("Printer cover open: close it")
        dummy = Dummy()
        render(doc, dummy, width=self.width, encoding=self.encoding)
        self.last_bytes = dummy.output
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        try:
            self.receipts_dir.mkdir(parents=True, exist_ok=True)
            # Another process (the next posterm command) counts from 1 again: take the next
            # name nobody has, created exclusively, so no preview overwrites another.
            while True:
                with _counter_lock:
                    n = next(_counter)
                path = self.receipts_dir / f"{stamp}-{n}-{slug(doc.title)}.txt"
                try:
                    with open(path, "x", encoding="utf-8") as fh:
                        fh.write(doc.plain_text(self.width))
                    break
                except FileExistsError:
                    continue
        except OSError as exc:
            raise PrinterFault(f"Cannot write the receipt preview: {exc.strerror}") from exc
        self.last_preview = path
        log.info("printed %r (%d bytes of ESC/POS), preview %s", doc.title, len(self.last_bytes), path)
