"""A virtual ABECS 2.12 PIN pad on a pseudo-terminal, holding its keys inside.

Run it by hand::

    python -m drivers.virtual.pinpad --pin 123456 --master-key 1:0123456789ABCDEFFEDCBA9876543210 \\
        --swipe unionpay-credit-swipe --link /tmp/pinpad

It prints ``virtual pinpad on /dev/pts/N`` and serves until SIGTERM/SIGINT; point posterm at
``serial:/dev/pts/N?baudrate=19200`` (or at the ``--link`` path, which survives a restart).

The customer is scripted: ``--pin`` is what they type at every PIN entry, ``--swipe`` the card
they swipe whenever asked, ``--keyboard`` lets a person type on stdin instead. A control FIFO
(``--control PATH``; stdin lines in ``--keyboard`` mode are read the same way) takes one
command per line while it runs:

    pin DIGITS|none      the PIN typed at every entry from now on (none: nobody types)
    type DIGITS          typed once, at the entry under way or the next one
    cancel               CANCEL pressed at the entry (or key wait) under way or the next one
    never                the customer does not type at the next entry (the pad's idle timer runs)
    key ok|clear|f1..f4|cancel   the next key pressed for GKY
    swipe PROFILE|none   the test card swiped whenever a swipe is awaited
    idle SECONDS         the pad's idle timeout for PIN entry (ABECS: 60)
    corrupt N            flip a byte in the Nth packet this pad sends from now
    nak N                answer NAK to the next N command packets

Master keys arrive with ``--master-key SLOT:HEX`` (a pad that already holds its keys) or over
the line with posterm's vendor-extension command XMK; working keys are decrypted inside and
PIN blocks computed inside (:mod:`drivers.pin_block`). Activity goes to stderr, never a PIN,
key, PIN block or track.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import logging
import os
import select
import signal
import stat
import sys
import time
import tty
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from drivers.pin_block import check_value, iso0_pin_block, tdes_decrypt, tdes_encrypt
from drivers.pinpad_abecs import (
    ACK,
    BYTE_TIMEOUT,
    CAN,
    EOT,
    NAK,
    PP_EVENT,
    PP_MANVERS,
    PP_MKTDESP,
    PP_MNNAME,
    PP_MODEL,
    PP_SERNUM,
    PP_SOVER,
    PP_SPECVER,
    PP_TRACK2,
    PP_TRACK3,
    PP_TRK2INC,
    SPE_CEXOPT,
    SPE_IDLIST,
    SPE_TIMEOUT,
    SPE_TRACKS,
    ST_CANCEL,
    ST_ERRCRYPT,
    ST_ERRKEY,
    ST_INVCALL,
    ST_INVPARM,
    ST_OK,
    ST_TIMEOUT,
    PacketDecoder,
    abecs_params,
    build_packet,
    encode_track,
    parse_abecs_data,
)
from hal.errors import DeviceError
from hal.testcards import CATALOGUE, TestCard, test_card

__all__ = ["Customer", "PinPadEmulator", "main"]

log = logging.getLogger("drivers.virtual.pinpad")

MANUFACTURER = "POSTERM"
MODEL = "VIRTUAL-PP;1MB"
OS_VERSION = "posterm-vpp 1.0"
SPEC_VERSION = "2.12"
MANAGER_VERSION = "001.00 250101"
SERIAL_NUMBER = "VPP00000001"

# GKY answers the key as its return code (section 3.3.10).
_KEY_CODES = {"ok": 0, "f1": 4, "f2": 5, "f3": 6, "f4": 7, "clear": 8, "cancel": ST_CANCEL}


def _hex(text: bytes) -> bytes:
    return bytes.fromhex(text.decode("ascii"))


@dataclass
class Customer:
    """What the person in front of the pad does: PIN, keys, the card in their hand."""

    pin: str | None = None  # typed at every PIN entry
    once: deque[str] = field(default_factory=deque)  # one-shot PIN actions: 'cancel', 'never', digits
    keys: deque[str] = field(default_factory=deque)
    card: TestCard | None = None

    def pin_action(self) -> str | None:
        """What happens at a PIN entry now: digits, 'cancel', 'never', or None (nothing yet)."""
        if self.once:
            return self.once.popleft()
        return self.pin


@dataclass
class Pending:
    """A blocking command the pad is working on."""

    cmd: str
    idle_deadline: float | None
    pan: str = ""
    key: bytes = b""  # the clear working key, only ever inside the pad
    min_len: int = 4
    max_len: int = 12
    waiting_for: str = ""  # 'pin' | 'key' | 'swipe'
    never: bool = False
    prompted: bool = False


class PinPadEmulator:
    """The pad's firmware: link level as the pinpad side (section 6.2.1) and the commands."""

    def __init__(
        self,
        fd: int,
        customer: Customer,
        *,
        master_keys: dict[int, bytes] | None = None,
        msr: bool = True,
        idle: float = 60.0,
        corrupt_in: int = 0,
        keyboard: bool = False,
    ) -> None:
        self.fd = fd
        self.customer = customer
        self.master_keys = dict(master_keys or {})
        self.msr = msr
        self.idle = idle
        self.corrupt_in = corrupt_in
        self.nak_budget = 0
        self.keyboard = keyboard
        self.display = " " * 32
        self.decoder = PacketDecoder()
        self.last_byte = 0.0
        self.last_response: bytes | None = None
        self.pending: Pending | None = None
        self.tracks: tuple[str, str | None] | None = None  # kept for GTK after a swipe

    # --- output ---------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.fd, view)
            except BlockingIOError:
                select.select([], [self.fd], [], 1.0)
                continue
            view = view[written:]

    def respond(self, cmd: str, status: int, *blocks: bytes) -> None:
        """Send a response packet (2.3.2); a failed command carries no data."""
        data = bytearray(f"{cmd}{status:03d}".encode("ascii"))
        if status == ST_OK:
            for block in blocks:
                data += f"{len(block):03d}".encode("ascii") + block
        packet = build_packet(bytes(data))
        self.last_response = packet
        if self.corrupt_in > 0:
            self.corrupt_in -= 1
            if self.corrupt_in == 0:
                log.info("response %s%03d sent with a corrupted byte (as asked)", cmd, status)
                self._write(_corrupted(packet))
                return
        log.debug("response %s%03d", cmd, status)
        self._write(packet)

    # --- link level -----------------------------------------------------------------------

    def on_bytes(self, data: bytes) -> None:
        """Bytes from the terminal."""
        for byte in data:
            self.last_byte = time.monotonic()
            got = self.decoder.feed(byte)
            if got is None:
                continue
            if got.control is not None:
                self._on_control(got.control)
            elif got.bad:
                # The terminal sends one packet at a time, so a NAK right away is as good as
                # the spec's "wait for 500 ms of silence first".
                log.info("garbled command packet: NAK")
                self._write(bytes((NAK,)))
            elif got.packet is not None:
                self._on_packet(got.packet)

    def _on_control(self, byte: int) -> None:
        if byte == CAN:
            # Section 2.2.2.3: the pad always answers EOT, busy or not.
            if self.pending is not None:
                log.info("CAN: %s aborted", self.pending.cmd)
                self.pending = None
            self._write(bytes((EOT,)))
        elif byte == NAK:
            if self.last_response is not None:
                log.info("NAK received: response sent again")
                self._write(self.last_response)
        elif byte != ACK:
            log.debug("stray byte %02X ignored", byte)

    def _on_packet(self, data: bytes) -> None:
        if self.nak_budget > 0:
            self.nak_budget -= 1
            log.info("command packet answered NAK (as asked)")
            self._write(bytes((NAK,)))
            return
        self._write(bytes((ACK,)))
        if self.pending is not None:
            # Section 6.2.1: a valid packet also aborts a blocking command.
            log.info("%s aborted by a new command", self.pending.cmd)
            self.pending = None
        self.last_response = None
        self.handle(data)

    def tick(self) -> None:
        """Timers: a packet cut short (2 s between bytes), a blocking command's idle timeout,
        and whatever the customer does for the command under way."""
        now = time.monotonic()
        if self.decoder.in_packet and now - self.last_byte > BYTE_TIMEOUT:
            self.decoder.reset()
            log.info("command packet cut short: NAK")
            self._write(bytes((NAK,)))
        pending = self.pending
        if pending is None:
            return
        if pending.idle_deadline is not None and now >= pending.idle_deadline:
            self.pending = None
            log.info("%s: idle timeout", pending.cmd)
            self.respond(pending.cmd, ST_TIMEOUT)
            return
        self._advance(pending)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do on its own."""
        times = []
        if self.decoder.in_packet:
            times.append(self.last_byte + BYTE_TIMEOUT)
        if self.pending is not None and self.pending.idle_deadline is not None:
            times.append(self.pending.idle_deadline)
        return min(times, default=None)

    # --- the customer ---------------------------------------------------------------------

    def _advance(self, pending: Pending) -> None:
        if pending.waiting_for == "pin":
            self._advance_pin(pending)
        elif pending.waiting_for == "key":
            if self.customer.keys:
                key = self.customer.keys.popleft()
                self.pending = None
                log.info("GKY: key %s", key)
                self.respond("GKY", _KEY_CODES[key])
        elif pending.waiting_for == "swipe":
            card = self.customer.card
            if card is not None:
                self.pending = None
                self._swiped(card)

    def _advance_pin(self, pending: Pending) -> None:
        if pending.never:
            return
        action = self.customer.pin_action()
        if action is None:
            if self.keyboard and not pending.prompted:
                pending.prompted = True
                print(f"PIN pad: {self.display[:16].strip()} - type the PIN and Enter "
                      "('cancel' presses CANCEL)", file=sys.stderr, flush=True)
            return
        if action == "never":
            log.info("GPN: the customer does not type")
            pending.never = True
            return
        self.pending = None
        if action == "cancel":
            log.info("GPN: the customer pressed CANCEL")
            self.respond("GPN", ST_CANCEL)
            return
        if not pending.min_len <= len(action) <= pending.max_len:
            log.info("GPN: %d digits typed, %d to %d allowed", len(action),
                     pending.min_len, pending.max_len)
            self.respond("GPN", ST_INVPARM)
            return
        # Section 6.5.11: a PAN of fewer than 13 digits is padded with zeros on the left.
        pin_block = tdes_encrypt(pending.key, iso0_pin_block(action, pending.pan.rjust(13, "0")))
        log.info("GPN: the customer typed %d digits", len(action))
        self.respond("GPN", ST_OK, pin_block.hex().upper().encode("ascii") + b"0" * 20)

    def _swiped(self, card: TestCard) -> None:
        track2 = card.track2()
        self.tracks = (track2, None)
        separator = track2.find("=")
        # Section 5.4.1: the incomplete track stops 7 characters after the separator.
        incomplete = track2[:separator + 8] if separator >= 0 else track2[:19]
        log.info("swipe: %s", card.name)
        self.respond("CEX", ST_OK, abecs_params([
            (PP_EVENT, b"90"), (PP_TRK2INC, incomplete.encode("ascii")),
        ]))

    def control(self, line: str) -> None:
        """One control command (see the module docstring); errors are logged, not raised."""
        words = line.split()
        if not words:
            return
        verb, args = words[0].lower(), words[1:]
        try:
            if verb.isdigit() and not args:
                self._once(_digits(verb))  # keyboard mode: digits and Enter
            elif verb == "pin" and len(args) == 1:
                self.customer.pin = None if args[0] == "none" else _digits(args[0])
            elif verb == "type" and len(args) == 1:
                self._once(_digits(args[0]))
            elif verb in ("cancel", "never") and not args:
                if verb == "cancel" and self.pending is not None and self.pending.waiting_for == "key":
                    self.customer.keys.append("cancel")
                else:
                    self._once(verb)
            elif verb == "key" and len(args) == 1 and args[0] in _KEY_CODES:
                self.customer.keys.append(args[0])
            elif verb == "swipe" and len(args) == 1:
                self.customer.card = None if args[0] == "none" else test_card(args[0])
            elif verb == "idle" and len(args) == 1:
                self.idle = float(args[0])
                if self.pending is not None and self.pending.waiting_for == "pin":
                    self.pending.idle_deadline = time.monotonic() + self.idle
            elif verb == "corrupt" and len(args) == 1:
                self.corrupt_in = int(args[0])
            elif verb == "nak" and len(args) == 1:
                self.nak_budget = int(args[0])
            else:
                raise ValueError(f"unknown control command {line.strip()!r}")
        except (ValueError, KeyError) as exc:
            log.warning("control: %s", exc)
            return
        log.info("control: %s", verb if verb in ("pin", "type") or verb.isdigit() else line.strip())

    def _once(self, action: str) -> None:
        self.customer.once.append(action)
        if action != "never" and self.pending is not None and self.pending.never:
            self.pending.never = False  # the customer who was not typing acts after all

    # --- commands -------------------------------------------------------------------------

    def handle(self, data: bytes) -> None:
        """Run one command packet (section 2.3.1) and answer, now or when the customer acts."""
        cmd = data[:3].decode("latin-1")
        try:
            blocks = _split_blocks(data[3:])
        except ValueError:
            self.respond(cmd, ST_INVPARM)
            return
        handler = getattr(self, f"cmd_{cmd.lower()}", None) if cmd.isalpha() else None
        if handler is None:
            log.info("unknown command %r: ERR010", cmd)
            self.respond("ERR", ST_INVCALL)
            return
        log.debug("command %s", cmd)
        try:
            handler(blocks)
        except (ValueError, IndexError, DeviceError):
            self.respond(cmd, ST_INVPARM)

    def cmd_opn(self, blocks: list[bytes]) -> None:
        # Classic OPN; a secure OPN's key is ignored and answered like a pad without
        # "Comunicação Segura" (section 3.2.2, "pinpad obsoleto").
        self.display = " " * 32
        self.respond("OPN", ST_OK)

    def cmd_clo(self, blocks: list[bytes]) -> None:
        self.display = (blocks[0] if blocks else b"").decode("latin-1")[:32].ljust(32)
        self.tracks = None
        self.respond("CLO", ST_OK)

    def cmd_dsp(self, blocks: list[bytes]) -> None:
        text = (blocks[0] if blocks else b"").decode("latin-1")
        # Section 6.5.5: control characters show as spaces, short messages are padded.
        self.display = "".join(max(ch, " ") for ch in text)[:32].ljust(32)
        log.debug("display |%s|%s|", self.display[:16], self.display[16:])
        self.respond("DSP", ST_OK)

    def cmd_gin(self, blocks: list[bytes]) -> None:
        index = blocks[0][:2] if blocks else b"00"
        if index == b"00":
            body = (
                MANUFACTURER.ljust(20) + MODEL.ljust(19) + " " + OS_VERSION.ljust(20)
                + SPEC_VERSION + MANAGER_VERSION.ljust(16) + SERIAL_NUMBER.ljust(20)
            )
        else:
            body = "Abecs".ljust(20) + MANAGER_VERSION + SPEC_VERSION + "   " + "00"
        self.respond("GIN", ST_OK, body.encode("ascii"))

    def cmd_gix(self, blocks: list[bytes]) -> None:
        params = parse_abecs_data(b"".join(blocks))
        keymap = "".join("1" if slot in self.master_keys else "0" for slot in range(100))
        known = {
            PP_SERNUM: SERIAL_NUMBER, PP_MODEL: MODEL, PP_MNNAME: MANUFACTURER,
            PP_SOVER: OS_VERSION, PP_SPECVER: SPEC_VERSION, PP_MANVERS: MANAGER_VERSION.ljust(16),
            PP_MKTDESP: keymap,
        }
        wanted = params.get(SPE_IDLIST)
        if wanted is None:
            ids = list(known)
        else:
            if len(wanted) % 2:
                raise ValueError("SPE_IDLIST has an odd length")
            ids = [int.from_bytes(wanted[i:i + 2], "big") for i in range(0, len(wanted), 2)]
        self.respond("GIX", ST_OK, abecs_params(
            (ident, known[ident].encode("ascii")) for ident in ids if ident in known
        ))

    def cmd_xmk(self, blocks: list[bytes]) -> None:
        """Vendor extension: METHOD(1, '1' = TDES) SLOT(2) KEY(H32|H48), a clear master key."""
        block = blocks[0]
        if block[:1] != b"1" or len(block) not in (3 + 32, 3 + 48):
            raise ValueError("XMK takes method 1, a slot and a 16- or 24-byte key in hex")
        slot = int(block[1:3])
        self.master_keys[slot] = _hex(block[3:])
        log.info("master key loaded into slot %02d", slot)
        self.respond("XMK", ST_OK)

    def cmd_xkv(self, blocks: list[bytes]) -> None:
        """Vendor extension: METHOD(1) SLOT(2) WKENC(H32) KCV(H6..H16): does the working key,
        decrypted under the slot's master key, have this check value?"""
        block = blocks[0]
        if block[:1] != b"1" or not 3 + 32 + 6 <= len(block) <= 3 + 32 + 16 or len(block) % 2 == 0:
            raise ValueError("XKV takes method 1, a slot, a 16-byte key and a check value in hex")
        slot = int(block[1:3])
        master = self.master_keys.get(slot)
        if master is None:
            self.respond("XKV", ST_ERRKEY)
            return
        clear = tdes_decrypt(master, _hex(block[3:35]))
        kcv = _hex(block[35:])
        ok = hmac.compare_digest(check_value(clear, len(kcv)), kcv)
        log.info("working key for slot %02d: check value %s", slot, "matches" if ok else "differs")
        self.respond("XKV", ST_OK if ok else ST_ERRCRYPT)

    def cmd_gpn(self, blocks: list[bytes]) -> None:
        block = blocks[0]
        method, slot = block[0:1], int(block[1:3])
        wk_encrypted = _hex(block[3:35])
        pan_len = int(block[35:37])
        pan = block[37:56].decode("ascii")[:pan_len]
        entries, min_len, max_len = block[56:57], int(block[57:59]), int(block[59:61])
        message = block[61:93].decode("latin-1")
        if method in (b"2", b"3"):
            self.respond("GPN", ST_ERRKEY)  # no DUKPT keys in this pad
            return
        if method != b"1" or entries != b"1" or min_len < 4 or max_len < min_len:
            self.respond("GPN", ST_INVPARM)
            return
        if pan_len == 0:
            self.respond("GPN", ST_INVCALL)  # no card read on this pad to take the PAN from
            return
        if not (pan.isdigit() and pan.isascii() and 2 <= len(pan) <= 19):
            self.respond("GPN", ST_INVPARM)
            return
        master = self.master_keys.get(slot)
        if master is None:
            # Section 6.5.11: the key is checked before the customer is asked anything.
            self.respond("GPN", ST_ERRKEY)
            return
        self.display = message.ljust(32)[:32]
        log.debug("display |%s|%s|", self.display[:16], self.display[16:])
        self.pending = Pending(
            "GPN", time.monotonic() + self.idle, pan=pan, key=tdes_decrypt(master, wk_encrypted),
            min_len=min_len, max_len=max_len, waiting_for="pin",
        )
        self._advance(self.pending)

    def cmd_gky(self, blocks: list[bytes]) -> None:
        self.pending = Pending("GKY", None, waiting_for="key")
        self._advance(self.pending)

    def cmd_cex(self, blocks: list[bytes]) -> None:
        params = parse_abecs_data(b"".join(blocks))
        options = params.get(SPE_CEXOPT, b"000000").decode("ascii").ljust(6, "0")
        self.tracks = None  # section 6.5.1: CEX always forgets the tracks kept for GTK
        if options[1] != "1":
            self.respond("CEX", ST_INVPARM)  # only the swipe event is emulated
            return
        if not self.msr:
            log.info("CEX: this pad has no card swipe")
            self.respond("CEX", ST_INVCALL)
            return
        timeout = params.get(SPE_TIMEOUT)
        deadline = time.monotonic() + timeout[0] if timeout else None
        self.pending = Pending("CEX", deadline, waiting_for="swipe")
        self._advance(self.pending)

    def cmd_gtk(self, blocks: list[bytes]) -> None:
        if self.tracks is None:
            self.respond("GTK", ST_INVCALL)
            return
        params = parse_abecs_data(b"".join(blocks))
        wanted = params.get(SPE_TRACKS, b"1111").decode("ascii").ljust(4, "0")
        track2, track3 = self.tracks
        self.tracks = None  # section 6.5.12: GTK gives the tracks once
        data = []
        if wanted[2] == "1":
            data.append((PP_TRACK2, encode_track(track2)))
        if wanted[3] == "1" and track3:
            data.append((PP_TRACK3, encode_track(track3)))
        self.respond("GTK", ST_OK, abecs_params(data))


def _split_blocks(data: bytes) -> list[bytes]:
    blocks = []
    pos = 0
    while pos < len(data):
        size = data[pos:pos + 3]
        if len(size) != 3 or not size.isdigit():
            raise ValueError("no 3-digit block length")
        block = data[pos + 3:pos + 3 + int(size)]
        if len(block) != int(size):
            raise ValueError("block shorter than its length")
        blocks.append(block)
        pos += 3 + int(size)
    return blocks


def _corrupted(packet: bytes) -> bytes:
    """``packet`` with one bit flipped in a data byte that stays an ordinary byte (so the
    framing holds and only the CRC catches it); the CRC's last byte if there is none."""
    corrupt = bytearray(packet)
    special = {0x12, 0x13, 0x16, 0x17}
    middle = len(packet) // 2
    for pos in sorted(range(1, len(packet) - 3), key=lambda p: abs(p - middle)):
        if corrupt[pos] not in special and corrupt[pos] ^ 1 not in special and corrupt[pos - 1] != 0x13:
            corrupt[pos] ^= 1
            return bytes(corrupt)
    corrupt[-1] ^= 1
    return bytes(corrupt)


def _digits(text: str) -> str:
    if not (text.isascii() and text.isdigit() and 1 <= len(text) <= 12):
        raise ValueError("a PIN is 1 to 12 digits")
    return text


def _master_key(text: str) -> tuple[int, bytes]:
    slot, colon, key = text.partition(":")
    if not colon or not slot.isdigit() or not 0 <= int(slot) <= 99:
        raise argparse.ArgumentTypeError("expected SLOT:HEX, SLOT 0 to 99")
    try:
        value = bytes.fromhex(key)
    except ValueError:
        raise argparse.ArgumentTypeError("the key is not hex") from None
    if len(value) not in (16, 24):
        raise argparse.ArgumentTypeError("a master key is 16 or 24 bytes")
    return int(slot), value


def _profile(name: str) -> TestCard:
    try:
        return test_card(name)
    except KeyError as exc:
        raise argparse.ArgumentTypeError(str(exc.args[0])) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posterm-virtual pinpad",
        description="A virtual ABECS 2.12 PIN pad on a pseudo-terminal.",
    )
    parser.add_argument("--pin", type=_digits, help="what the customer types at every PIN entry")
    parser.add_argument("--keyboard", action="store_true",
                        help="read the customer's PIN (and control commands) from stdin")
    parser.add_argument("--swipe", type=_profile, metavar="PROFILE",
                        help=f"test card swiped when asked ({', '.join(CATALOGUE)})")
    parser.add_argument("--no-msr", action="store_true", help="a pad without a card swipe")
    parser.add_argument("--master-key", type=_master_key, action="append", default=[],
                        metavar="SLOT:HEX", help="a master key the pad already holds (repeatable)")
    parser.add_argument("--control", type=Path, metavar="PATH",
                        help="FIFO (created if missing) taking control commands, one per line")
    parser.add_argument("--link", type=Path, metavar="PATH",
                        help="symlink to the pty, a path that stays the same across restarts")
    parser.add_argument("--corrupt-next", type=int, default=0, metavar="N",
                        help="flip a byte in the Nth packet the pad sends")
    parser.add_argument("--idle", type=float, default=60.0, metavar="SECONDS",
                        help="PIN entry idle timeout (ABECS: 60)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log events (-v) or every command and response too (-vv)")
    return parser


def _open_control(path: Path) -> tuple[int, int, bool]:
    created = False
    if not path.exists():
        os.mkfifo(path, 0o600)
        created = True
    elif not stat.S_ISFIFO(path.stat().st_mode):
        raise SystemExit(f"{path} exists and is not a FIFO")
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    # Our own writer keeps the FIFO from reporting end-of-file between two writers.
    keeper = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    return reader, keeper, created


def _link(pty_path: str, link: Path) -> None:
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(pty_path, tmp)
    os.replace(tmp, link)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s virtual-pinpad %(message)s",
    )
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line editing, until the terminal's pyserial configures it
    os.set_blocking(master, False)
    pty_path = os.ttyname(slave)
    customer = Customer(pin=args.pin, card=args.swipe)
    pad = PinPadEmulator(
        master, customer, master_keys=dict(args.master_key), msr=not args.no_msr,
        idle=args.idle, corrupt_in=args.corrupt_next, keyboard=args.keyboard,
    )

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.set_wakeup_fd(wake_w)

    control_fd = keeper = None
    created_fifo = False
    if args.control:
        control_fd, keeper, created_fifo = _open_control(args.control)
    if args.link:
        _link(pty_path, args.link)
    inputs = {"control": control_fd, "stdin": sys.stdin.fileno() if args.keyboard else None}
    pending_text = {"control": b"", "stdin": b""}

    print(f"virtual pinpad on {pty_path}" + (f" (link {args.link})" if args.link else ""),
          flush=True)
    try:
        while not stopping:
            deadline = pad.next_deadline()
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            fds = [master, wake_r] + [fd for fd in inputs.values() if fd is not None]
            ready, _, _ = select.select(fds, [], [], wait)
            if wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 64)
            # Control first: a command written before the terminal's next packet applies to it.
            for name, fd in inputs.items():
                if fd is not None and fd in ready:
                    try:
                        chunk = os.read(fd, 4096)
                    except BlockingIOError:
                        chunk = b""
                    if not chunk and name == "stdin":
                        inputs["stdin"] = None  # stdin closed: the keyboard is gone
                        continue
                    lines = (pending_text[name] + chunk).split(b"\n")
                    pending_text[name] = lines.pop()
                    for line in lines:
                        pad.control(line.decode("utf-8", errors="replace"))
            if master in ready:
                try:
                    data = os.read(master, 4096)
                except (BlockingIOError, OSError):
                    data = b""
                pad.on_bytes(data)
            pad.tick()
    finally:
        signal.set_wakeup_fd(-1)
        if args.link:
            with contextlib.suppress(OSError):
                if os.readlink(args.link) == pty_path:
                    args.link.unlink()
        for fd in (control_fd, keeper):
            if fd is not None:
                os.close(fd)
        if created_fifo and args.control is not None:
            with contextlib.suppress(OSError):
                args.control.unlink()
        os.close(master)
        os.close(slave)
    return 0


if __name__ == "__main__":
    sys.exit(main())
