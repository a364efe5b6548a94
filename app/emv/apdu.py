"""The EMV commands (EMV 4.3 Book 1 11, Book 3 6.5) over one ``transceive`` callable.

:class:`Channel` adds what ISO 7816-4 leaves to the terminal on T=0 (61xx: GET RESPONSE,
6Cxx: send again with the right Le) and logs each command's instruction and status word
only: the data may be a PAN or track 2.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from app.emv.errors import CardError

log = logging.getLogger(__name__)

SW_OK = 0x9000
SW_BLOCKED_APP = 0x6283           # selected file invalidated: the application is blocked
SW_CARD_BLOCKED = 0x6A81          # function not supported: the card (or PSE) is blocked
SW_NOT_FOUND = 0x6A82
SW_RECORD_NOT_FOUND = 0x6A83
SW_CONDITIONS = 0x6985            # conditions of use not satisfied

INS_NAMES = {0xA4: "SELECT", 0xA8: "GET PROCESSING OPTIONS", 0xB2: "READ RECORD",
             0xCA: "GET DATA", 0xAE: "GENERATE AC", 0x82: "EXTERNAL AUTHENTICATE",
             0xC0: "GET RESPONSE"}


@dataclass(frozen=True)
class Response:
    """A response APDU: data and status word."""

    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK

    @property
    def sw_hex(self) -> str:
        return f"{self.sw:04X}"


class Channel:
    """Commands to one card; ``transceive`` takes a command APDU and returns data + SW."""

    def __init__(self, transceive: Callable[[bytes], bytes]) -> None:
        self._transceive = transceive
        self.count = 0
        self.status_words: list[int] = []     # every final SW, in order (for diagnosis)

    def send(self, apdu: bytes) -> Response:
        raw = self._exchange(apdu)
        data = b""
        for _ in range(32):                      # bounded: a card looping on 61xx is broken
            sw1, sw2 = raw[-2], raw[-1]
            if sw1 == 0x61:                      # more data: GET RESPONSE for it
                data += raw[:-2]
                raw = self._exchange(bytes([0x00, 0xC0, 0x00, 0x00, sw2]))
                continue
            if sw1 == 0x6C:                      # wrong Le: the same command with Le = SW2
                raw = self._exchange(apdu[:-1] + bytes([sw2]) if len(apdu) > 5
                                     else apdu[:4] + bytes([sw2]))
                continue
            break
        response = Response(data + raw[:-2], (raw[-2] << 8) | raw[-1])
        self.status_words.append(response.sw)
        return response

    def answered_any(self, sws: frozenset[int]) -> bool:
        """Whether any command so far ended with one of ``sws``."""
        return any(sw in sws for sw in self.status_words)

    def _exchange(self, apdu: bytes) -> bytes:
        raw = bytes(self._transceive(apdu))
        self.count += 1
        if len(raw) < 2:
            raise CardError("card gave no status word: try again")
        log.debug("%s -> %02X%02X", INS_NAMES.get(apdu[1], f"INS {apdu[1]:02X}"),
                  raw[-2], raw[-1])
        return raw

    # -- the commands ----------------------------------------------------------------------
    def select(self, name: bytes, *, next_occurrence: bool = False) -> Response:
        """SELECT by DF name, first or next occurrence (Book 1 11.3)."""
        return self.send(bytes([0x00, 0xA4, 0x04, 0x02 if next_occurrence else 0x00,
                                len(name)]) + name + b"\x00")

    def read_record(self, sfi: int, record: int) -> Response:
        return self.send(bytes([0x00, 0xB2, record, (sfi << 3) | 0x04, 0x00]))

    def get_processing_options(self, pdol_data: bytes) -> Response:
        body = bytes([0x83, len(pdol_data)]) + pdol_data
        return self.send(bytes([0x80, 0xA8, 0x00, 0x00, len(body)]) + body + b"\x00")

    def get_data(self, tag: str) -> Response:
        p1p2 = bytes.fromhex(tag.rjust(4, "0"))
        return self.send(bytes([0x80, 0xCA]) + p1p2 + b"\x00")

    def generate_ac(self, p1: int, cdol_data: bytes) -> Response:
        return self.send(bytes([0x80, 0xAE, p1, 0x00, len(cdol_data)]) + cdol_data + b"\x00")

    def external_authenticate(self, issuer_auth_data: bytes) -> Response:
        return self.send(bytes([0x00, 0x82, 0x00, 0x00, len(issuer_auth_data)])
                         + issuer_auth_data)
