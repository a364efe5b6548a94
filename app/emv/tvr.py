"""Terminal Verification Results (95) and Transaction Status Information (9B): the bits the
terminal sets as it goes (EMV 4.3 Book 3 Annex C5 and C6).

A bit is named as (byte index from 0, mask).
"""

from __future__ import annotations

Bit = tuple[int, int]

# TVR byte 1: offline data authentication, card data
ODA_NOT_PERFORMED: Bit = (0, 0x80)
SDA_FAILED: Bit = (0, 0x40)
ICC_DATA_MISSING: Bit = (0, 0x20)
CARD_ON_EXCEPTION_FILE: Bit = (0, 0x10)
DDA_FAILED: Bit = (0, 0x08)
CDA_FAILED: Bit = (0, 0x04)
# TVR byte 2: processing restrictions
DIFFERENT_APP_VERSIONS: Bit = (1, 0x80)
EXPIRED_APPLICATION: Bit = (1, 0x40)
NOT_YET_EFFECTIVE: Bit = (1, 0x20)
SERVICE_NOT_ALLOWED: Bit = (1, 0x10)
NEW_CARD: Bit = (1, 0x08)
# TVR byte 3: cardholder verification
CVM_NOT_SUCCESSFUL: Bit = (2, 0x80)
UNRECOGNISED_CVM: Bit = (2, 0x40)
PIN_TRY_LIMIT_EXCEEDED: Bit = (2, 0x20)
PIN_PAD_MISSING: Bit = (2, 0x10)
PIN_NOT_ENTERED: Bit = (2, 0x08)
ONLINE_PIN_ENTERED: Bit = (2, 0x04)
# TVR byte 4: terminal risk management
FLOOR_LIMIT_EXCEEDED: Bit = (3, 0x80)
LOWER_OFFLINE_LIMIT_EXCEEDED: Bit = (3, 0x40)
UPPER_OFFLINE_LIMIT_EXCEEDED: Bit = (3, 0x20)
RANDOMLY_SELECTED: Bit = (3, 0x10)
MERCHANT_FORCED_ONLINE: Bit = (3, 0x08)
# TVR byte 5: issuer authentication and scripts
DEFAULT_TDOL_USED: Bit = (4, 0x80)
ISSUER_AUTH_FAILED: Bit = (4, 0x40)
SCRIPT_FAILED_BEFORE_FINAL_AC: Bit = (4, 0x20)
SCRIPT_FAILED_AFTER_FINAL_AC: Bit = (4, 0x10)

TVR_NAMES: dict[Bit, str] = {
    ODA_NOT_PERFORMED: "offline data authentication was not performed",
    SDA_FAILED: "SDA failed", ICC_DATA_MISSING: "ICC data missing",
    CARD_ON_EXCEPTION_FILE: "card appears on terminal exception file",
    DDA_FAILED: "DDA failed", CDA_FAILED: "CDA failed",
    DIFFERENT_APP_VERSIONS: "ICC and terminal have different application versions",
    EXPIRED_APPLICATION: "expired application",
    NOT_YET_EFFECTIVE: "application not yet effective",
    SERVICE_NOT_ALLOWED: "requested service not allowed for card product",
    NEW_CARD: "new card",
    CVM_NOT_SUCCESSFUL: "cardholder verification was not successful",
    UNRECOGNISED_CVM: "unrecognised CVM", PIN_TRY_LIMIT_EXCEEDED: "PIN try limit exceeded",
    PIN_PAD_MISSING: "PIN entry required and PIN pad not present or not working",
    PIN_NOT_ENTERED: "PIN entry required, PIN pad present, but PIN was not entered",
    ONLINE_PIN_ENTERED: "online PIN entered",
    FLOOR_LIMIT_EXCEEDED: "transaction exceeds floor limit",
    LOWER_OFFLINE_LIMIT_EXCEEDED: "lower consecutive offline limit exceeded",
    UPPER_OFFLINE_LIMIT_EXCEEDED: "upper consecutive offline limit exceeded",
    RANDOMLY_SELECTED: "transaction selected randomly for online processing",
    MERCHANT_FORCED_ONLINE: "merchant forced transaction online",
    DEFAULT_TDOL_USED: "default TDOL used", ISSUER_AUTH_FAILED: "issuer authentication failed",
    SCRIPT_FAILED_BEFORE_FINAL_AC: "script processing failed before final GENERATE AC",
    SCRIPT_FAILED_AFTER_FINAL_AC: "script processing failed after final GENERATE AC",
}

# TSI byte 1
TSI_ODA_PERFORMED: Bit = (0, 0x80)
TSI_CVM_PERFORMED: Bit = (0, 0x40)
TSI_CARD_RISK_MANAGEMENT: Bit = (0, 0x20)
TSI_ISSUER_AUTH_PERFORMED: Bit = (0, 0x10)
TSI_TERMINAL_RISK_MANAGEMENT: Bit = (0, 0x08)
TSI_SCRIPT_PERFORMED: Bit = (0, 0x04)


class Bits:
    """A fixed-length bit field (the TVR is 5 bytes, the TSI 2)."""

    def __init__(self, size: int, names: dict[Bit, str] | None = None) -> None:
        self._value = bytearray(size)
        self._names = names or {}

    def set(self, bit: Bit) -> None:
        self._value[bit[0]] |= bit[1]

    def is_set(self, bit: Bit) -> bool:
        return bool(self._value[bit[0]] & bit[1])

    def any_of(self, mask: bytes) -> bool:
        """Whether any bit set here is also set in ``mask`` (an action code)."""
        return any(a & b for a, b in zip(self._value, mask, strict=False))

    @property
    def value(self) -> bytes:
        return bytes(self._value)

    def hex(self) -> str:
        return self._value.hex().upper()

    def describe(self) -> list[str]:
        """The names of the bits set, for logs and ``card read``."""
        return [text for bit, text in self._names.items() if self.is_set(bit)]


def new_tvr() -> Bits:
    return Bits(5, TVR_NAMES)


def new_tsi() -> Bits:
    return Bits(2)
