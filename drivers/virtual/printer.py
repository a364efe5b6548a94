"""A virtual receipt printer: raw ESC/POS over TCP (the port-9100 protocol), decoded to text.

Run it by hand::

    python -m drivers.virtual.printer --listen 127.0.0.1:9100 --out /tmp/receipts

and point posterm at ``tcp:127.0.0.1:9100``. Every document (up to a cut) is written to
``OUT/NNNN.txt`` and echoed on stdout. It answers DLE EOT status queries as an Epson-style
printer does, and a control port takes one command per line so a test can change its state
while it runs: ``paper out``, ``paper ok``, ``cover open``, ``cover closed``, ``status``,
``dump`` (the documents printed since start, as a JSON list of texts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

from drivers.virtual.escpos_decoder import EscposDecoder, PrintedDocument

__all__ = ["VirtualPrinter", "main"]

log = logging.getLogger(__name__)

# DLE EOT answers: bits 1 and 4 are always set, bits 0 and 7 always clear (ESC/POS spec).
_FIXED = 0x12
_OFFLINE = 0x08  # n=1: printer is offline
_COVER_OPEN = 0x04  # n=2: cover is open
_STOPPED_PAPER_END = 0x20  # n=2: printing stopped because the paper ran out
_PAPER_END = 0x60  # n=4: roll paper end sensor (bits 5 and 6)


class VirtualPrinter:
    """The printer's state and paper: status flags, the documents printed, the output folder."""

    def __init__(
        self, out_dir: Path | None = None, *, paper_out: bool = False, cover_open: bool = False,
        chinese_default: bool = False, answers_status: bool = True, echo: bool = True,
    ) -> None:
        self.out_dir = out_dir
        self.paper_out = paper_out
        self.cover_open = cover_open
        self.chinese_default = chinese_default
        self.answers_status = answers_status
        self.echo = echo
        self.documents: list[PrintedDocument] = []
        self._number = 0
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            # A restarted printer goes on numbering after what is already in the folder.
            numbers = [int(p.stem) for p in out_dir.glob("*.txt") if p.stem.isdigit()]
            self._number = max(numbers, default=0)

    def status_byte(self, n: int) -> int | None:
        """The answer to DLE EOT ``n``; None for a query this printer does not answer."""
        if not self.answers_status:
            return None
        if n == 1:
            return _FIXED | (_OFFLINE if self.paper_out or self.cover_open else 0)
        if n == 2:
            return (_FIXED | (_COVER_OPEN if self.cover_open else 0)
                    | (_STOPPED_PAPER_END if self.paper_out else 0))
        if n == 3:
            return _FIXED
        if n == 4:
            return _FIXED | (_PAPER_END if self.paper_out else 0)
        return None

    def keep(self, doc: PrintedDocument) -> None:
        """File a finished document: OUT/NNNN.txt (written whole, then renamed) and stdout."""
        self._number += 1
        self.documents.append(doc)
        name = f"{self._number:04d}.txt"
        if self.out_dir is not None:
            tmp = self.out_dir / f".{name}.tmp"
            tmp.write_text(doc.text, encoding="utf-8")
            os.replace(tmp, self.out_dir / name)
        log.info("document %s: %d lines%s", name, len(doc.lines), ", cut" if doc.cut else "")
        if self.echo:
            print(f"--- {name} ---\n{doc.text}", end="", flush=True)

    def command(self, line: str) -> str:
        """Run one control command; the answer is one line."""
        words = line.split()
        match words:
            case ["paper", "out"]:
                self.paper_out = True
            case ["paper", "ok" | "in"]:
                self.paper_out = False
            case ["cover", "open"]:
                self.cover_open = True
            case ["cover", "closed" | "close"]:
                self.cover_open = False
            case ["status"]:
                return json.dumps({"paper_out": self.paper_out, "cover_open": self.cover_open,
                                   "documents": len(self.documents)})
            case ["dump"]:
                return json.dumps([doc.text for doc in self.documents], ensure_ascii=False)
            case _:
                return ("error: unknown command; commands: paper out, paper ok, cover open, "
                        "cover closed, status, dump")
        log.info("control: %s", " ".join(words))
        return "ok"

    # --- the two TCP services ----------------------------------------------------------

    async def serve_printer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One print connection: decode what arrives, answer status queries in real time."""
        peer = writer.get_extra_info("peername")
        log.info("connection from %s", peer)
        decoder = EscposDecoder(chinese_default=self.chinese_default)
        try:
            while data := await reader.read(65536):
                if self.paper_out or self.cover_open:
                    log.debug("%d bytes received while offline", len(data))
                answers = [self.status_byte(n) for n in decoder.feed(data)]
                reply = bytes(a for a in answers if a is not None)
                if reply:
                    writer.write(reply)
                    await writer.drain()
                for doc in decoder.take_documents():
                    self.keep(doc)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            decoder.finish()
            for doc in decoder.take_documents():
                self.keep(doc)
            writer.close()
            log.info("connection from %s closed", peer)

    async def serve_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One control connection: a command per line, an answer per line."""
        try:
            while line := await reader.readline():
                text = line.decode("utf-8", errors="replace").strip()
                if text:
                    writer.write(self.command(text).encode("utf-8") + b"\n")
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def _address(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (PORT 0 picks a free one)")
    return host.strip("[]"), int(port)


async def _run(args: argparse.Namespace) -> int:
    printer = VirtualPrinter(args.out, paper_out=args.paper_out, cover_open=args.cover_open,
                             chinese_default=args.chinese_default,
                             answers_status=not args.no_status, echo=not args.quiet)
    connections: set[asyncio.Task[None]] = set()

    def tracked(handler):  # type: ignore[no-untyped-def]
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            try:
                await handler(reader, writer)
            finally:
                connections.discard(task)
        return run

    try:
        server = await asyncio.start_server(tracked(printer.serve_printer), *args.listen)
        control = await asyncio.start_server(tracked(printer.serve_control), *args.control)
    except OSError as exc:
        print(f"virtual printer: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 1
    host, port = server.sockets[0].getsockname()[:2]
    chost, cport = control.sockets[0].getsockname()[:2]
    print(f"virtual printer on {host}:{port} control {chost}:{cport}"
          + (f" out {args.out}" if args.out else ""), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    control.close()
    for task in list(connections):
        task.cancel()  # each connection files what it had decoded on its way out
    with contextlib.suppress(Exception):
        await asyncio.gather(*connections, return_exceptions=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the virtual printer until SIGTERM or SIGINT; exit 0."""
    parser = argparse.ArgumentParser(prog="posterm-virtual printer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 9100),
                        help="HOST:PORT for print data (default 127.0.0.1:9100; port 0: a free one)")
    parser.add_argument("--control", type=_address, default=("127.0.0.1", 0),
                        help="HOST:PORT for control commands (default 127.0.0.1 on a free port)")
    parser.add_argument("--out", type=Path, help="write each document to OUT/NNNN.txt")
    parser.add_argument("--paper-out", action="store_true", help="start with the paper out")
    parser.add_argument("--cover-open", action="store_true", help="start with the cover open")
    parser.add_argument("--chinese-default", action="store_true",
                        help="Chinese (GB18030) mode on after power-on and ESC @, as many "
                             "Chinese printers are set")
    parser.add_argument("--no-status", action="store_true",
                        help="never answer DLE EOT, like printers behind a one-way print server")
    parser.add_argument("--quiet", action="store_true", help="do not echo documents on stdout")
    parser.add_argument("--verbose", action="store_true", help="log every connection and command")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
