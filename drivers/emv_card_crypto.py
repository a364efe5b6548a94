"""The card emulator's cryptography: session keys, application cryptograms, ARPC, the IAD.

This is one half of the contract the host simulator verifies (docs/cards.md); both halves
use pyemv and public test keys only:

- ICC master key: EMV option A from the issuer master key, the PAN and the PAN sequence
  number (EMV 4.3 Book 2 A1.4.1, ``pyemv.kd.derive_icc_mk_a``);
- session key: EMV common session key derivation with R = ATC || 00 00 00 00 00 00
  (Book 2 A1.3.1, ``pyemv.kd.derive_common_sk``);
- cryptogram (ARQC, TC, AAC): ISO 9797-1 MAC algorithm 3, padding method 2
  (``pyemv.ac.generate_ac``), over the data Book 2 A1.2 recommends: amount, other
  amount, terminal country, TVR, currency, date, type, unpredictable number (as the
  terminal sent them in CDOL1, or PDOL on the quick path), then AIP, ATC and the CVR as it
  stands in the IAD;
- ARPC: method 1 (Book 2 8.2.1), ARPC = 3DES(session key, ARQC XOR ARC || 00..00).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyemv.ac
import pyemv.kd

__all__ = ["AC_TERMINAL_DATA", "CID", "CvrFacts", "ac_data", "application_cryptogram", "arpc",
           "iad", "iad_cvr", "session_key"]

#: The terminal data in the cryptogram, in order, with their lengths (EMV Book 2 A1.2).
AC_TERMINAL_DATA: tuple[tuple[str, int], ...] = (
    ("9F02", 6), ("9F03", 6), ("9F1A", 2), ("95", 5), ("5F2A", 2), ("9A", 3), ("9C", 1),
    ("9F37", 4),
)

#: Cryptogram information data (9F27) for each cryptogram type (EMV Book 3 C6.5.5.4).
CID = {"AAC": 0x00, "TC": 0x40, "ARQC": 0x80}

# CVR coding of the cryptogram types: bits 6-5 of the first CVR byte for the first
# GENERATE AC, bits 8-7 for the second (the same in CCD and Visa CVN 10).
_FIRST = {"AAC": 0b00, "TC": 0b01, "ARQC": 0b10}
_SECOND = {"AAC": 0b00, "TC": 0b01, None: 0b10}  # None: second GENERATE AC not requested


def session_key(imk_ac: bytes, pan: str, psn: str, atc: int) -> bytes:
    """The AC session key for one transaction (option A master key, common session key)."""
    icc_mk = pyemv.kd.derive_icc_mk_a(imk_ac, pan, psn)
    return pyemv.kd.derive_common_sk(icc_mk, atc.to_bytes(2, "big") + bytes(6))


def ac_data(terminal: Mapping[str, bytes], aip: bytes, atc: int, cvr: bytes) -> bytes:
    """The cryptogram's input: the recommended terminal data (zeros where the terminal sent
    none), AIP, ATC, CVR."""
    out = b""
    for tag, length in AC_TERMINAL_DATA:
        out += terminal.get(tag, b"")[:length].rjust(length, b"\x00")
    return out + aip + atc.to_bytes(2, "big") + cvr


def application_cryptogram(sk: bytes, data: bytes) -> bytes:
    """ARQC, TC or AAC: 8 bytes."""
    return pyemv.ac.generate_ac(sk, data)


def arpc(sk: bytes, arqc: bytes, arc: bytes) -> bytes:
    """The ARPC (method 1) the issuer returns in tag 91 before the ARC."""
    return pyemv.ac.generate_arpc_1(sk, arqc, arc)


@dataclass(frozen=True)
class CvrFacts:
    """What the card verification results say about this transaction."""

    first: str  # 'AAC' | 'TC' | 'ARQC': the cryptogram of the first GENERATE AC (or GPO)
    second: str | None = None  # 'AAC' | 'TC' at the second GENERATE AC; None: not requested
    issuer_auth_failed: bool = False
    issuer_auth_not_performed: bool = False
    offline_limit_exceeded: bool = False  # lower consecutive offline limit
    pin_tries: int = 3


def _cvr_ccd(facts: CvrFacts) -> bytes:
    """CCD CVR, 5 bytes (EMV 4.3 Book 3 Annex C7.3)."""
    byte1 = _SECOND[facts.second] << 6 | _FIRST[facts.first] << 4
    byte1 |= 0x02 if facts.issuer_auth_not_performed else 0
    byte1 |= 0x01 if facts.issuer_auth_failed else 0
    byte2 = (facts.pin_tries & 0x0F) << 4
    byte3 = 0x80 if facts.offline_limit_exceeded else 0
    return bytes([byte1, byte2, byte3, 0, 0])


def _cvr_visa(facts: CvrFacts) -> bytes:
    """Visa CVN 10 CVR: its length (03) and 3 bytes (Visa VIS 1.5, CVN 10)."""
    byte2 = _SECOND[facts.second] << 6 | _FIRST[facts.first] << 4
    byte2 |= 0x08 if facts.issuer_auth_failed else 0
    byte3 = 0x20 if facts.offline_limit_exceeded else 0  # exceeded velocity checking counters
    byte3 |= 0x04 if facts.issuer_auth_not_performed else 0
    return bytes([0x03, byte2, byte3, 0])


def iad(iad_format: str, facts: CvrFacts, dki: int = 1) -> bytes:
    """Issuer application data (9F10).

    ``ccd``: format A of the Common Core Definitions, 32 bytes: 0F, CCI A5 (format A,
    cryptogram version 5), DKI, CVR (5), counters (8), 0F and 15 bytes of issuer
    discretionary data. ``visa-cvn10``: 06, DKI, CVN 0A, CVR (03 + 3 bytes).
    """
    if iad_format == "ccd":
        return bytes([0x0F, 0xA5, dki]) + _cvr_ccd(facts) + bytes(8) + b"\x0f" + bytes(15)
    if iad_format == "visa-cvn10":
        return bytes([0x06, dki, 0x0A]) + _cvr_visa(facts)
    raise ValueError(f"unknown IAD format {iad_format!r}")


def iad_cvr(value: bytes) -> bytes:
    """The CVR part of an IAD as it goes into the cryptogram (empty if the format is unknown)."""
    if len(value) >= 8 and value[0] == 0x0F and value[1] == 0xA5:
        return value[3:8]
    if len(value) >= 7 and value[0] == 0x06 and value[2] == 0x0A:
        return value[3:7]
    return b""
