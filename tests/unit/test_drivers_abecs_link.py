"""ABECS link level: CRC and escaping against the spec's own examples, and ACK/NAK/CAN
behaviour against a scripted pad on the other end of a real pseudo-terminal."""

import os
import select
import time
import tty
from concurrent.futures import ThreadPoolExecutor

import pytest
import serial
from hypothesis import given
from hypothesis import strategies as st

from drivers.pinpad_abecs import (
    ACK,
    CAN,
    EOT,
    NAK,
    AbecsLink,
    Interrupted,
    LinkError,
    PacketDecoder,
    build_packet,
    crc16,
    decode_track,
    encode_command,
    encode_track,
    escape,
    parse_response,
    unescape,
)
from hal.errors import DeviceUnavailable

# Whole packets as section 2.2.2 of the spec prints them.
SPEC_OPN = bytes.fromhex("16 4F 50 4E 17 A8 A9")
SPEC_DSP000 = bytes.fromhex("16 44 53 50 30 30 30 17 39 63")
SPEC_DSP032 = bytes.fromhex(
    "16 44 53 50 30 33 32 20 20 20 20 4F 50 45 52 41"
    "C7 C3 4F 20 20 20 20 20 20 20 46 49 4E 41 4C 49"
    "5A 41 44 41 20 20 20 17 52 13"
)


def reference_crc(data: bytes) -> int:
    """The C routine of the spec's section 7.2, transcribed bit by bit."""
    crc = 0
    for byte in data:
        word = byte << 8
        for _ in range(8):
            if (crc ^ word) & 0x8000:
                crc = ((crc << 1) ^ 0x1021) & 0xFFFF
            else:
                crc = (crc << 1) & 0xFFFF
            word = (word << 1) & 0xFFFF
    return crc


def test_crc_of_the_spec_examples():
    assert crc16(b"OPN\x17") == 0xA8A9
    assert crc16(b"DSP000\x17") == 0x3963
    assert crc16(SPEC_DSP032[1:-2]) == 0x5213


def test_packets_are_byte_for_byte_the_spec_examples():
    assert build_packet(b"OPN") == SPEC_OPN
    assert build_packet(b"DSP000") == SPEC_DSP000
    assert build_packet(SPEC_DSP032[1:-3]) == SPEC_DSP032  # its CRC ends in 13h, sent unescaped


@given(st.binary(max_size=300))
def test_crc_equals_the_spec_routine(data):
    assert crc16(data) == reference_crc(data)


@pytest.mark.parametrize("special", [0x13, 0x16, 0x17])
def test_each_special_byte_is_escaped_as_dc3_and_byte_plus_20h(special):
    data = bytes((0x41, special, 0x42))
    assert escape(data) == bytes((0x41, 0x13, special + 0x20, 0x42))
    assert unescape(escape(data)) == data
    packet = build_packet(data)
    assert 0x16 not in packet[1:-3] and 0x17 not in packet[1:-3]
    assert packet[-2:] == crc16(data + b"\x17").to_bytes(2, "big")  # CRC over the original bytes


@given(st.binary(max_size=2049))
def test_any_data_survives_a_packet_round_trip(data):
    decoder = PacketDecoder()
    results = [decoder.feed(byte) for byte in build_packet(data)]
    assert all(result is None for result in results[:-1])
    assert results[-1].packet == data


def test_a_packet_with_a_wrong_crc_is_reported_bad():
    packet = bytearray(build_packet(b"GIN00200"))
    packet[-1] ^= 0x01
    decoder = PacketDecoder()
    assert [decoder.feed(b) for b in packet][-1].bad


def test_bytes_between_packets_are_control_bytes():
    decoder = PacketDecoder()
    assert decoder.feed(EOT).control == EOT
    assert decoder.feed(ACK).control == ACK


def test_command_and_response_formats():
    assert encode_command("GIN", b"00") == b"GIN00200"
    assert encode_command("OPN") == b"OPN"
    response = parse_response(b"GPN000036" + b"A" * 16 + b"0" * 20)
    assert (response.cmd, response.status, response.data) == ("GPN", 0, b"A" * 16 + b"0" * 20)
    assert parse_response(b"GPN013").status == 13
    with pytest.raises(ValueError):
        parse_response(b"GPN000036ABC")


def test_track_two_nibble_coding():
    track = "6250940000000019=30121010000000000"
    assert encode_track(track)[8] == 0xD3  # "=3": "=" is Dh
    assert decode_track(encode_track(track)) == track


# --- the link against a scripted pad on a real pty ----------------------------------------


class Pad:
    """The pad's end of the pty, driven by the test."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = bytearray()

    def byte(self, timeout: float = 2.0) -> int:
        if not self.pending:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            assert ready, "nothing from the terminal"
            self.pending += os.read(self.fd, 4096)
        value = self.pending[0]
        del self.pending[0]
        return value

    def packet(self) -> bytes:
        decoder = PacketDecoder()
        while True:
            got = decoder.feed(self.byte())
            if got is not None and got.packet is not None:
                return got.packet
            assert got is None, f"unexpected {got}"

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)


@pytest.fixture
def line():
    master, slave = os.openpty()
    tty.setraw(slave)
    port = serial.serial_for_url(os.ttyname(slave), baudrate=19200, timeout=0.02)
    link = AbecsLink(port, ack_timeout=0.5, byte_timeout=0.3, eot_timeout=0.5, silence=0.05)
    pad = Pad(master)
    with ThreadPoolExecutor(1) as terminal:
        yield link, pad, terminal
    port.close()
    os.close(pad.fd)
    os.close(slave)


def test_acked_command_is_sent_once(line):
    link, pad, terminal = line
    sending = terminal.submit(link.send, b"GIN00200")
    assert pad.packet() == b"GIN00200"
    pad.send(bytes((ACK,)))
    sending.result(timeout=2)
    with pytest.raises(AssertionError):
        pad.byte(timeout=0.1)


def test_nak_makes_the_terminal_send_the_command_again(line):
    link, pad, terminal = line
    sending = terminal.submit(link.send, b"DSP032" + b"\x13\x16\x17".ljust(32))
    first = pad.packet()
    pad.send(bytes((NAK,)))
    assert pad.packet() == first
    pad.send(bytes((ACK,)))
    sending.result(timeout=2)


def test_three_naks_are_an_error(line):
    link, pad, terminal = line
    sending = terminal.submit(link.send, b"OPN")
    for _ in range(3):
        assert pad.packet() == b"OPN"
        pad.send(bytes((NAK,)))
    with pytest.raises(DeviceUnavailable, match="three|3 times"):
        sending.result(timeout=2)
    with pytest.raises(AssertionError):
        pad.byte(timeout=0.1)  # no fourth try


def test_no_ack_is_an_error(line):
    link, _pad, terminal = line
    started = time.monotonic()
    with pytest.raises(LinkError, match="does not answer"):
        terminal.submit(link.send, b"OPN").result(timeout=3)
    assert time.monotonic() - started < 2


def test_a_garbled_response_is_naked_and_the_retransmission_taken(line):
    link, pad, terminal = line
    receiving = terminal.submit(link.receive, deadline=time.monotonic() + 5, blocking=False)
    good = build_packet(b"GIN000100" + b"X" * 100)
    bad = bytearray(good)
    bad[20] ^= 0x01
    pad.send(bytes(bad))
    assert pad.byte() == NAK
    pad.send(good)
    assert receiving.result(timeout=2) == b"GIN000100" + b"X" * 100


def test_garbled_three_times_is_an_error(line):
    link, pad, terminal = line
    receiving = terminal.submit(link.receive, deadline=time.monotonic() + 5, blocking=False)
    bad = bytearray(build_packet(b"DSP000"))
    bad[-1] ^= 0x01
    pad.send(bytes(bad))
    assert pad.byte() == NAK
    pad.send(bytes(bad))
    assert pad.byte() == NAK
    pad.send(bytes(bad))
    with pytest.raises(LinkError, match="garbled"):
        receiving.result(timeout=2)


def test_a_packet_cut_short_is_naked_after_the_byte_timeout(line):
    link, pad, terminal = line
    receiving = terminal.submit(link.receive, deadline=time.monotonic() + 5, blocking=False)
    pad.send(build_packet(b"DSP000")[:4])
    assert pad.byte(timeout=1) == NAK
    pad.send(build_packet(b"DSP000"))
    assert receiving.result(timeout=2) == b"DSP000"


def test_cancel_sends_can_and_waits_for_eot(line):
    link, pad, terminal = line
    asked = []
    receiving = terminal.submit(
        link.receive, deadline=None, blocking=True, cancelled=lambda: bool(asked)
    )
    asked.append(True)
    link.send_can()  # as AbecsPinPad.cancel does, from another thread
    assert pad.byte() == CAN
    pad.send(build_packet(b"GPN000036" + b"0" * 36))  # a late answer is ignored...
    pad.send(bytes((EOT,)))  # ...until EOT
    with pytest.raises(Interrupted) as stop:
        receiving.result(timeout=2)
    assert stop.value.reason == "cancel"


def test_a_blocking_command_past_its_deadline_is_cancelled(line):
    link, pad, terminal = line
    receiving = terminal.submit(link.receive, deadline=time.monotonic() + 0.2, blocking=True)
    assert pad.byte(timeout=1) == CAN
    pad.send(bytes((EOT,)))
    with pytest.raises(Interrupted) as stop:
        receiving.result(timeout=2)
    assert stop.value.reason == "timeout"


def test_can_is_sent_again_when_no_eot_comes(line):
    link, pad, terminal = line
    aborting = terminal.submit(link.abort)
    assert pad.byte() == CAN
    assert pad.byte(timeout=1) == CAN  # after eot_timeout
    pad.send(bytes((EOT,)))
    aborting.result(timeout=2)


def test_a_vanished_pad_is_device_unavailable(line):
    link, pad, terminal = line
    os.close(pad.fd)
    pad.fd = os.open(os.devnull, os.O_RDONLY)  # so the fixture's close stays harmless
    with pytest.raises(DeviceUnavailable, match="disconnected"):
        terminal.submit(link.send, b"OPN").result(timeout=3)
