"""A virtual EMV card in vsmartcard's virtual reader (vpcd), so pcscd and every PC/SC program see it.

vpcd listens on 127.0.0.1:35963 (and 35964 for its second reader) once pcscd runs; this
program is its TCP client. Each message is a 2-byte big-endian length and a payload; a
1-byte payload is a control code (0 power off, 1 power on, 2 reset, 4 "send your ATR"),
anything else a command APDU, answered with the response APDU. A connected client is a
card in the slot: closing the socket pulls the card out.

The card serves a test-card profile (:class:`drivers.cardsim.CardApplet`) or a recorded
trace (:class:`drivers.trace.TraceReplayer`). Knobs for tests: ``--t0-chaining`` answers
like a T=0 card (61xx then GET RESPONSE, 6Cxx for a wrong Le), ``--remove-after N`` pulls
the card out instead of answering command N+1, SIGUSR1 pulls it out, SIGUSR2 puts it back.

    python -m drivers.virtual.card --profile unionpay-debit-chip
    python -m drivers.virtual.card --trace field.json --port 35964
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from types import FrameType

from drivers.cardsim import CardApplet
from drivers.trace import TraceReplayer, trace_uid
from hal.testcards import CATALOGUE, test_card
from hal.trace import TraceError, load_trace

__all__ = ["CONTACTLESS_ATR", "CONTACT_ATR", "T0Card", "main"]

log = logging.getLogger(__name__)

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 35963

CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4

#: A contact card's ATR: T=0 only, 14 historical bytes, as a typical PBOC card.
CONTACT_ATR = bytes.fromhex("3B6E000080318066B08412016E0183009000")
#: What a PC/SC contactless reader reports for an ISO 14443-4 card: T=1, no historical bytes.
CONTACTLESS_ATR = bytes.fromhex("3B80800101")

_RECONNECT_PAUSE = 0.1


class T0Card:
    """Wraps a card's answers the way a T=0 card transmits them (ISO 7816-3 / EMV book 1).

    A case-4 command with response data is answered 61xx; GET RESPONSE (00 C0) then returns
    the data. A case-2 command whose Le is not the data's length is answered 6Cxx, and the
    terminal resends it with Le = xx.
    """

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self._answer = answer
        self._pending = b""  # data still to hand out by GET RESPONSE
        self._pending_sw = b""

    def reset(self) -> None:
        self._pending, self._pending_sw = b"", b""

    def transceive(self, apdu: bytes) -> bytes:
        if len(apdu) >= 4 and apdu[:2] == b"\x00\xc0":
            return self._get_response(apdu[4] if len(apdu) > 4 else 0)
        self.reset()
        response = self._answer(apdu)
        data, sw = response[:-2], response[-2:]
        if not data:
            return response
        if len(apdu) == 5:  # case 2: P3 is Le
            le = apdu[4] or 256
            if le != len(data):
                self._pending = b""
                return bytes([0x6C, len(data) & 0xFF])
            return response
        self._pending, self._pending_sw = data, sw
        return bytes([0x61, len(data) & 0xFF])

    def _get_response(self, le: int) -> bytes:
        if not self._pending:
            return b"\x69\x85"
        size = le or 256
        if size > len(self._pending):
            return bytes([0x6C, len(self._pending) & 0xFF])
        chunk, self._pending = self._pending[:size], self._pending[size:]
        if self._pending:
            return chunk + bytes([0x61, len(self._pending) & 0xFF])
        return chunk + self._pending_sw


class VirtualCard:
    """The card: its ATR, its answers, and (contactless) a UID for the reader's GET DATA."""

    def __init__(self, atr: bytes, answer: Callable[[bytes], bytes], reset: Callable[[], None],
                 uid: bytes | None) -> None:
        self.atr = atr
        self._answer = answer
        self._reset = reset
        self.uid = uid

    def power_on(self) -> None:
        self._reset()

    def transceive(self, apdu: bytes) -> bytes:
        # FF CA 00 00 is PC/SC's "GET DATA: UID", answered by a contactless reader itself;
        # vpcd passes it to the card, so the card answers for the reader it lives in.
        if self.uid is not None and apdu[:4] == b"\xff\xca\x00\x00":
            return self.uid + b"\x90\x00"
        return self._answer(apdu)


def build_card(*, profile: str | None, trace_path: str | None, interface: str | None,
               t0_chaining: bool) -> VirtualCard:
    """The virtual card for the command line's choices; ValueError/TraceError if they are bad."""
    if trace_path:
        trace = load_trace(trace_path)
        replayer = TraceReplayer(trace)
        contactless = (interface or trace["interface"]) == "contactless"
        atr, answer, reset = replayer.atr, replayer.transceive, replayer.reset
        uid = trace_uid(atr) if contactless else None
    else:
        card = test_card(profile or "unionpay-debit-chip")
        contactless = (interface or ("contactless" if card.interface == "tap" else "contact")) \
            == "contactless"
        applet = CardApplet(card, contactless=contactless)
        atr = CONTACTLESS_ATR if contactless else CONTACT_ATR
        answer, reset = applet.transceive, applet.reset
        uid = b"\x08" + hashlib.sha256(card.name.encode()).digest()[:3] if contactless else None
    if t0_chaining:
        t0 = T0Card(answer)
        inner_reset = reset

        def reset() -> None:
            inner_reset()
            t0.reset()

        answer = t0.transceive
    return VirtualCard(atr, answer, reset, uid)


class _Link:
    """The TCP link to vpcd: one message in, one answer out."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self._buffer = b""

    def connect(self) -> bool:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=1.0)
        except OSError:
            return False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        self.sock, self._buffer = sock, b""
        self._quick_ack()
        return True

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def receive(self, wait: float) -> bytes | None:
        """The next message, None if none within ``wait``; EOFError if vpcd closed the link."""
        assert self.sock is not None
        while True:
            if len(self._buffer) >= 2:
                (size,) = struct.unpack(">H", self._buffer[:2])
                if len(self._buffer) >= 2 + size:
                    message = self._buffer[2 : 2 + size]
                    self._buffer = self._buffer[2 + size :]
                    return message
            ready, _, _ = select.select([self.sock], [], [], wait)
            if not ready:
                return None
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError
            self._buffer += chunk
            self._quick_ack()

    def _quick_ack(self) -> None:
        # vpcd writes the length and the APDU in two sends without TCP_NODELAY: with our
        # delayed ACK, Nagle holds its second write back ~40 ms. Acknowledge at once instead
        # (Linux clears the flag after each ACK, so it is set again after every read).
        if self.sock is not None and hasattr(socket, "TCP_QUICKACK"):
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def send(self, payload: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(struct.pack(">H", len(payload)) + payload)


class _Knobs:
    """What signals and options ask for: stop, pull the card, put it back."""

    def __init__(self) -> None:
        self.stop = False
        self.inserted = True

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stop = True
        elif signum == signal.SIGUSR1:
            self.inserted = False
        elif signum == signal.SIGUSR2:
            self.inserted = True


def serve(card: VirtualCard, link: _Link, knobs: _Knobs, *, remove_after: int | None,
          ready: Callable[[], None]) -> None:
    """Be the card in vpcd's slot until told to stop; reconnect whenever pcscd comes back."""
    answered = 0
    announced = False
    while not knobs.stop:
        if not knobs.inserted:
            link.close()
            time.sleep(0.05)
            continue
        if link.sock is None:
            if not link.connect():
                time.sleep(_RECONNECT_PAUSE)
                continue
            answered = 0
            log.info("card inserted in vpcd %s:%d", link.host, link.port)
        try:
            message = link.receive(0.1)
            if message is None:
                continue
            if not announced:
                # Ready once vpcd talks to us: a connect alone may sit in the listen backlog.
                ready()
                announced = True
            if len(message) == 1:
                code = message[0]
                if code == CTRL_ATR:
                    link.send(card.atr)
                elif code in (CTRL_ON, CTRL_RESET, CTRL_OFF):
                    card.power_on()
                continue
            if remove_after is not None and answered >= remove_after:
                log.info("pulling the card out after %d commands", answered)
                knobs.inserted = False
                link.close()
                continue
            link.send(card.transceive(message))
            answered += 1
        except (EOFError, OSError):
            # pcscd stopped (or restarted): wait for vpcd to listen again.
            log.info("vpcd closed the link; reconnecting")
            link.close()
    link.close()


def main(argv: list[str] | None = None) -> int:
    """Run the virtual card until SIGTERM/SIGINT; prints one line once it is in the reader."""
    parser = argparse.ArgumentParser(
        prog="posterm-virtual card",
        description="A virtual EMV card in vsmartcard's vpcd reader (pcscd must be running).",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--profile", choices=sorted(n for n, c in CATALOGUE.items()
                                                    if c.interface != "swipe"),
                        help="test-card profile to serve (default unionpay-debit-chip)")
    source.add_argument("--trace", metavar="FILE", help="recorded trace to replay")
    parser.add_argument("--interface", choices=("contact", "contactless"),
                        help="PSE or PPSE (default: the profile's or the trace's)")
    parser.add_argument("--host", default=VPCD_HOST, help="vpcd address (default %(default)s)")
    parser.add_argument("--port", type=int, default=VPCD_PORT,
                        help="vpcd port: 35963 is its first reader, 35964 its second")
    parser.add_argument("--t0-chaining", action="store_true",
                        help="answer as a T=0 card: 61xx + GET RESPONSE, 6Cxx for a wrong Le")
    parser.add_argument("--remove-after", type=int, metavar="N",
                        help="pull the card out instead of answering command N+1")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        card = build_card(profile=args.profile, trace_path=args.trace,
                          interface=args.interface, t0_chaining=args.t0_chaining)
    except (TraceError, KeyError, ValueError) as exc:
        print(f"posterm-virtual card: {exc}", file=sys.stderr)
        return 2
    knobs = _Knobs()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, knobs.on_signal)
    link = _Link(args.host, args.port)
    what = f"trace {args.trace}" if args.trace else f"profile {args.profile or 'unionpay-debit-chip'}"

    def ready() -> None:
        print(f"virtual card ({what}) on vpcd {args.host}:{args.port}", flush=True)

    serve(card, link, knobs, remove_after=args.remove_after, ready=ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
