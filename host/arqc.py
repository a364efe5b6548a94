"""The issuer's side of EMV online authorisation: verify the ARQC of field 55, build the ARPC.

The contract with the cards (docs/cards.md; the card emulator's half is
``drivers/emv_card_crypto.py``, which the host never imports): the ICC master key is
derived by EMV option A from the issuer master key, PAN and PAN sequence number (Book 2
A1.4.1); the session key by the common session key derivation with R = ATC || 00 * 6
(A1.3.1); the cryptogram is the ISO 9797-1 algorithm 3 MAC (padding method 2) over 9F02,
9F03, 9F1A, 95, 5F2A, 9A, 9C, 9F37 (as field 55 carries them; zeros for one it lacks),
82, 9F36 and the CVR found in 9F10 (Book 2 A1.2). The reply's tag 91 is ARPC method 1
(Book 2 8.2.1) over the ARQC and the ARC, the response code's two ASCII characters,
followed by that ARC.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import pyemv.ac
import pyemv.kd
import pyemv.tlv

from host import issuer

__all__ = ["IMK_AC", "ISSUER_MASTER_KEYS_AC", "ArqcCheck", "IccDataError", "decode_icc",
           "issuer_reply_data",
           "verify_arqc"]

#: The issuer master key for application cryptograms: one public test value for every card
#: of the catalogue (the terminal's hal/testcards.py personalises its cards with the same).
IMK_AC = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
#: PAN -> issuer master key (AC), as an issuer's key table would hold them.
ISSUER_MASTER_KEYS_AC: dict[str, bytes] = {pan: IMK_AC for pan in issuer.CARDS}

#: The terminal data in the cryptogram, in order, with their lengths (EMV Book 2 A1.2).
_TERMINAL_DATA = (("9F02", 6), ("9F03", 6), ("9F1A", 2), ("95", 5), ("5F2A", 2), ("9A", 3),
                  ("9C", 1), ("9F37", 4))
_REQUIRED = ("9F26", "9F36", "9F10", "82")


class IccDataError(ValueError):
    """Field 55 cannot be decoded, or lacks a tag the cryptogram check needs."""


@dataclass(frozen=True)
class ArqcCheck:
    """The outcome of one cryptogram check; ``session_key`` and ``arqc`` for the ARPC."""

    ok: bool
    reason: str = ""
    session_key: bytes = b""
    arqc: bytes = b""


def _cvr(iad: bytes) -> bytes | None:
    """The CVR part of the IAD: CCD format A (0F A5 ..., 5 bytes) or Visa CVN 10 (4 bytes)."""
    if len(iad) >= 8 and iad[0] == 0x0F and iad[1] == 0xA5:
        return iad[3:8]
    if len(iad) >= 7 and iad[0] == 0x06 and iad[2] == 0x0A:
        return iad[3:7]
    return None


def _psn(f23: str | None, icc: dict[str, bytes]) -> str:
    """The PAN sequence number as two digits: from F23 (n3), else 5F34, else 00."""
    if f23 and f23.isdigit():
        return f23[-2:].zfill(2)
    seq = icc.get("5F34")
    return seq.hex()[-2:] if seq else "00"


def decode_icc(icc_hex: str) -> dict[str, bytes]:
    """Field 55's tags (flattened); IccDataError if it is not BER-TLV or lacks what we need."""
    try:
        icc = pyemv.tlv.decode(bytes.fromhex(icc_hex), flatten=True)
    except (ValueError, pyemv.tlv.DecodeError) as exc:
        raise IccDataError(f"field 55 is not BER-TLV: {exc}") from None
    missing = [tag for tag in _REQUIRED if tag not in icc]
    if missing:
        raise IccDataError(f"field 55 lacks {', '.join(missing)}")
    if len(icc["9F26"]) != 8 or len(icc["9F36"]) != 2:
        raise IccDataError("field 55 has a 9F26 or 9F36 of the wrong length")
    return icc


def verify_arqc(icc_hex: str, pan: str, f23: str | None) -> ArqcCheck:
    """Recompute the card's cryptogram from field 55 and compare; IccDataError if malformed."""
    icc = decode_icc(icc_hex)
    key = ISSUER_MASTER_KEYS_AC.get(pan)
    if key is None:
        return ArqcCheck(False, "no issuer master key for the card")
    cvr = _cvr(icc["9F10"])
    if cvr is None:
        return ArqcCheck(False, "IAD format not supported")
    atc = icc["9F36"]
    icc_mk = pyemv.kd.derive_icc_mk_a(key, pan, _psn(f23, icc))
    sk = pyemv.kd.derive_common_sk(icc_mk, atc + bytes(6))
    data = b"".join(icc.get(tag, b"")[:n].rjust(n, b"\x00") for tag, n in _TERMINAL_DATA)
    data += icc["82"] + atc + cvr
    expected = pyemv.ac.generate_ac(sk, data)
    if not hmac.compare_digest(expected, icc["9F26"]):
        return ArqcCheck(False, "cryptogram does not match")
    return ArqcCheck(True, session_key=sk, arqc=icc["9F26"])


def issuer_reply_data(check: ArqcCheck, response_code: str) -> str:
    """Field 55 of the reply (hex): tag 91 = ARPC (method 1) + ARC, the ARC being the
    response code in ASCII."""
    arc = response_code.encode("ascii")
    arpc = pyemv.ac.generate_arpc_1(check.session_key, check.arqc, arc)
    return pyemv.tlv.encode({"91": arpc + arc}).hex().upper()
