"""A contactless EMV card on nfcpy's ``udp`` driver: a Type 4A (or 4B) target answering ISO-DEP I-blocks.

Run ``python -m drivers.virtual.nfc --profile mc-tap --listen 127.0.0.1:54321`` and open
the reader ``nfc:udp:127.0.0.1:54321``; the card serves a test-card profile (through
:class:`drivers.cardsim.CardApplet` with the contactless PPSE) or a recorded trace.

nfcpy's udp driver does ISO 14443-3 for a listening target (SENS_RES, anticollision,
SEL_RES; SENSB_RES for ``--type B``) and hands back the first frame after it, the RATS
(ATTRIB). nfcpy has no ISO-DEP
*target* (its tag emulation is Type 3 only), so :class:`IsoDepCard` does ISO 14443-4 on
the card's side: the ATS (ATTRIB answer), block numbers, R(ACK)/R(NAK), chaining both ways, DESELECT.
The udp driver carries frames without CRC, so a block here is PCB + INF.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Protocol

import nfc
import nfc.clf

from hal.errors import DeviceError
from hal.testcards import CATALOGUE, test_card

__all__ = [
    "FRAME_SIZES", "IsoDepCard", "activation", "ats", "fsd_of_rats", "listen_target", "main",
]

log = logging.getLogger(__name__)

#: FSC/FSD by FSCI/FSDI (ISO 14443-4 5.2.3); values above 8 are RFU and read as 256.
FRAME_SIZES = (16, 24, 32, 40, 48, 64, 96, 128, 256)

# Frame waiting time integer sent in the ATS: FWT = 4096/13.56 MHz * 2**FWI, 302 us * 2**10
# = 309 ms. nfcpy's initiator retries min(1/FWT, 5) times, so a card that left the field is
# noticed in about 1.2 s, while a slow loopback turn-around (a busy CI box) is still in time.
FWI = 10

# Historical bytes when a profile is served (a trace brings its own, from its ATR).
_HISTORICAL = bytes.fromhex("80738401E0")

# SENS_RES 0400: single-size (4-byte) UID, bit frame anticollision; SEL_RES 20: UID
# complete, ISO 14443-4 compliant (nfcpy activates a Type 4A tag on bit 6).
_SENS_RES = bytes.fromhex("0400")
_SEL_RES = bytes.fromhex("20")

_R_ACK, _R_NAK = 0xA2, 0xB2
_S_DESELECT = 0xC2


class CardSource(Protocol):
    """What answers the APDUs: a CardApplet (profile) or a TraceReplayer (trace)."""

    def reset(self) -> None: ...

    def transceive(self, apdu: bytes) -> bytes: ...


def fsd_of_rats(rats: bytes) -> int:
    """The reader's maximum frame size from a RATS (``E0``, FSDI in the parameter's high nibble)."""
    fsdi = rats[1] >> 4 if len(rats) > 1 else 0
    return FRAME_SIZES[min(fsdi, 8)]


def ats(frame_size: int = 256, fwi: int = FWI, historical: bytes = _HISTORICAL) -> bytes:
    """An ATS: TL, T0 (TA1 TB1 TC1 present, FSCI), TA1 106 kbit/s only, TB1 (FWI, SFGI 0),
    TC1 (no CID, no NAD), historical bytes. nfcpy reads FSCI from T0 and FWI from TB1."""
    fsci = max(i for i, size in enumerate(FRAME_SIZES) if size <= frame_size)
    body = bytes([0x70 | fsci, 0x00, (fwi & 0x0F) << 4, 0x00]) + historical
    return bytes([len(body) + 1]) + body


class IsoDepCard:
    """The card's half of ISO 14443-4 half-duplex block transmission, one block in, one out.

    ``answer`` turns a complete command APDU into a response APDU. :meth:`handle` returns
    the block to send back, or None to stay silent (as a card does on a block it cannot
    use). Block rules by number from ISO 14443-4 7.5.4.
    """

    def __init__(self, answer: Callable[[bytes], bytes], fsd: int = 256,
                 max_inf: int | None = None) -> None:
        self._answer = answer
        # Two bytes of CRC count in the frame size even though udp frames carry none.
        self.max_inf = min(fsd - 3, max_inf if max_inf is not None else fsd)
        self.block_number = 1  # rule D: 1 at activation
        self.deselected = False
        self.apdus = 0
        self._last: bytes | None = None
        self._command = bytearray()
        self._pending = b""  # response bytes not yet sent (response chaining)

    def handle(self, block: bytes) -> bytes | None:
        """Take one block from the reader; return the block to answer with, or None."""
        if self.deselected or not block:
            return None
        pcb = block[0]
        if pcb & 0x0C:
            # CID or NAD following: the ATS said neither is supported, so the block is not ours.
            return None
        if pcb & 0xE2 == 0x02:
            return self._send(self._i_block(pcb, bytes(block[1:])))
        if pcb & 0xE6 == 0xA2:
            return self._r_block(pcb)
        if pcb & 0xF7 == _S_DESELECT:
            self.deselected = True
            return self._send(bytes([_S_DESELECT]))
        return None  # S(WTX) answers (never requested here) and invalid blocks

    @property
    def chaining(self) -> bool:
        """Whether a chained response still has blocks to send."""
        return bool(self._pending)

    def _send(self, block: bytes | None) -> bytes | None:
        if block is not None:
            self._last = block
        return block

    def _i_block(self, pcb: int, inf: bytes) -> bytes | None:
        self.block_number = pcb & 0x01  # rule E: toggle on a new I-block
        self._pending = b""
        self._command += inf
        if pcb & 0x10:  # the reader chains: acknowledge, wait for the rest (rule 2)
            return bytes([_R_ACK | self.block_number])
        command, self._command = bytes(self._command), bytearray()
        self.apdus += 1
        self._pending = self._answer(command)
        return self._next_chunk()

    def _next_chunk(self) -> bytes:
        chunk, self._pending = self._pending[: self.max_inf], self._pending[self.max_inf :]
        chaining = 0x10 if self._pending else 0x00
        return bytes([0x02 | chaining | self.block_number]) + chunk

    def _r_block(self, pcb: int) -> bytes | None:
        number = pcb & 0x01
        if number == self.block_number:
            return self._last  # rule 11: the reader missed our last block, send it again
        if pcb & 0x10:
            return self._send(bytes([_R_ACK | self.block_number]))  # rule 12 (presence check)
        if self._pending:
            self.block_number = number  # rule 13: the reader wants the next chained block
            return self._send(self._next_chunk())
        return None


def _uid(seed: bytes) -> bytes:
    """A 4-byte random-style UID (first byte 08), stable for one profile or trace."""
    return b"\x08" + hashlib.sha256(seed).digest()[:3]


class _Stop(Exception):
    """SIGTERM or SIGINT: leave the field and exit."""


def _on_signal(signum: int, frame: object) -> None:
    raise _Stop


def listen_target(technology: str, uid: bytes, frame_size: int, fwi: int = FWI) -> nfc.clf.LocalTarget:
    """What the card answers while the reader senses: Type A (SENS_RES, UID, SEL_RES with the
    ISO 14443-4 bit) or Type B (SENSB_RES with ``uid`` as PUPI, FSCI, ISO 14443-4, FWI)."""
    if technology == "A":
        return nfc.clf.LocalTarget("106A", sens_res=_SENS_RES, sdd_res=uid, sel_res=_SEL_RES)
    fsci = max(i for i, size in enumerate(FRAME_SIZES) if size <= frame_size)
    # Protocol info: 106 kbit/s only; FSCI | protocol type 1 (ISO 14443-4); FWI, no NAD/CID.
    sensb_res = b"\x50" + uid + bytes(4) + bytes([0x00, fsci << 4 | 0x01, (fwi & 0x0F) << 4])
    return nfc.clf.LocalTarget("106B", sensb_res=sensb_res)


def activation(technology: str, frame: bytes, uid: bytes, ats_bytes: bytes) -> tuple[int, bytes] | None:
    """The reader's frame size and the card's answer to its activation frame (RATS -> ATS for
    Type A; ATTRIB for this PUPI -> MBLI/CID 00 for Type B), or None for any other frame."""
    if technology == "A" and frame[:1] == b"\xe0" and len(frame) == 2:
        return fsd_of_rats(frame), ats_bytes
    if technology == "B" and frame[:1] == b"\x1d" and frame[1:5] == uid and len(frame) >= 9:
        return FRAME_SIZES[min(frame[6] & 0x0F, 8)], b"\x00"
    return None


# Frames of sensing and activation (SENS_REQ, WUPA, RATS, SENSB_REQ, ATTRIB): in the active
# state they mean the reader restarted without switching its field off first (a killed
# process sends no RFOFF), so the card goes back to waiting in the field.
_RESTART_FRAMES = (0x26, 0x52, 0xE0, 0x05, 0x1D)


def serve(clf: nfc.ContactlessFrontend, source: CardSource, uid: bytes, *, technology: str,
          ats_bytes: bytes, frame_size: int, leave_after: int | None,
          on_leave: Callable[[], None]) -> None:
    """Wait in the field for readers and answer them until stopped; counts APDUs for leave_after."""
    answered = 0
    target = listen_target(technology, uid, frame_size)
    while True:
        started = time.monotonic()
        try:
            activated = clf.listen(target, 10.0)
        except nfc.clf.CommunicationError as exc:  # udp listen_ttb lets RFOFF through
            log.info("field off during activation: %s", exc)
            continue
        frame = activated.tt4_cmd if activated is not None else None
        found = activation(technology, bytes(frame), uid, ats_bytes) if frame else None
        if found is None:
            if activated is None and time.monotonic() - started < 1.0:
                # nfcpy's listen gives up at once when another socket took the port.
                log.warning("udp port busy; trying again")
                time.sleep(0.5)
            continue  # no reader, or a stray frame of an earlier session
        fsd, reply = found
        card = IsoDepCard(source.transceive, fsd, frame_size - 3)
        source.reset()
        log.info("activated by a reader (%s)", bytes(frame).hex())
        while True:
            try:
                block = clf.exchange(reply, None)
            except nfc.clf.BrokenLinkError:
                log.info("the reader switched its field off")
                break
            except nfc.clf.CommunicationError as exc:
                log.info("link error: %s", exc)
                break
            if not block or block[0] in _RESTART_FRAMES:
                break
            before = card.apdus
            reply = card.handle(bytes(block))
            if card.apdus > before:
                answered += 1
                log.debug("APDU %d answered", answered)
            if card.deselected:
                clf.exchange(reply, 0)
                break
            if leave_after is not None and answered >= leave_after and not card.chaining:
                # The card answers its last APDU and is carried away before the next one.
                clf.exchange(reply, 0)
                on_leave()
                return


def _parse_listen(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def _free_port(port: int) -> int:
    """``port`` if it can be bound (nfcpy binds 0.0.0.0:PORT), or a free one when port is 0."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(("0.0.0.0", port))
        return int(probe.getsockname()[1])
    finally:
        probe.close()


def _source(args: argparse.Namespace) -> tuple[CardSource, bytes, bytes, str]:
    """The card's applet (or replayer), UID, historical bytes and a name for the readiness line."""
    if args.trace:
        from drivers.trace import TraceReplayer
        from hal.trace import load_trace

        replayer = TraceReplayer(load_trace(args.trace))
        atr = replayer.atr
        # A PC/SC reader shows a contactless card's historical bytes in a pseudo-ATR
        # 3B 8n 80 01 <historical> TCK (PC/SC part 3); give them back in the ATS.
        historical = atr[4:-1] if atr[:1] == b"\x3b" and atr[2:4] == b"\x80\x01" else _HISTORICAL
        return replayer, _uid(atr), historical, f"trace {args.trace}"
    from drivers.cardsim import CardApplet

    card = test_card(args.profile)
    return CardApplet(card, contactless=True), _uid(card.name.encode()), _HISTORICAL, card.name


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="posterm-virtual nfc",
        description="A contactless EMV card (Type 4A, ISO-DEP) on nfcpy's udp driver; "
        "readers open it as nfc:udp:HOST:PORT.",
    )
    card = parser.add_mutually_exclusive_group()
    card.add_argument("--profile", default="mc-tap", choices=[
        name for name, c in CATALOGUE.items() if c.interface != "swipe"],
        metavar="NAME", help="test-card profile to serve (default mc-tap)")
    card.add_argument("--trace", metavar="FILE", help="recorded trace to replay instead")
    parser.add_argument("--listen", type=_parse_listen, default=("127.0.0.1", 54321),
                        metavar="HOST:PORT", help="udp address (port 0: pick a free one); "
                        "nfcpy binds the port on every interface")
    parser.add_argument("--type", choices=("A", "B"), default="A",
                        help="ISO 14443 Type A (default; RATS/ATS) or Type B (ATTRIB)")
    parser.add_argument("--leave-after", type=int, metavar="N",
                        help="leave the field after answering N APDUs, and stay away")
    parser.add_argument("--frame-size", type=int, default=256, metavar="BYTES",
                        help="largest frame the card takes and sends (16..256; small values "
                        "make both sides chain)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each activation")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the card until SIGTERM or SIGINT; print one readiness line first."""
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(name)s: %(message)s")
    try:
        source, uid, historical, name = _source(args)
    except (KeyError, ValueError, DeviceError) as exc:  # a bad trace or profile: one line
        print(f"virtual nfc: {exc}", file=sys.stderr)
        return 2
    host, port = args.listen
    try:
        port = _free_port(port)
    except OSError as exc:
        print(f"virtual nfc: cannot use udp port {port}: {exc.strerror}", file=sys.stderr)
        return 2
    frame_size = max(16, min(args.frame_size, 256))
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    clf = nfc.ContactlessFrontend(f"udp:{host}:{port}")
    left = False

    def leave() -> None:
        nonlocal left
        left = True
        clf.close()
        log.info("the card left the field")

    print(f"virtual nfc card {name} (Type 4{args.type}, "
          f"{'UID' if args.type == 'A' else 'PUPI'} {uid.hex().upper()}) on udp {host}:{port}",
          flush=True)
    try:
        serve(clf, source, uid, technology=args.type, ats_bytes=ats(frame_size, FWI, historical),
              frame_size=frame_size, leave_after=args.leave_after, on_leave=leave)
        while left:
            signal.pause()
    except _Stop:
        pass
    finally:
        clf.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
