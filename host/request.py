"""Reading the fields of a decoded request: the digits a type needs, or FormatError (30)."""

from __future__ import annotations

from host.errors import HostError

Fields = dict[str, str]


class FormatError(HostError):
    """A request lacks or garbles a field its type needs (answered 30)."""


def digits(request: Fields, field: str) -> str:
    value = request.get(field, "")
    if not value.isdigit():
        raise FormatError(f"field {field} missing or not digits")
    return value


def stan_of(request: Fields) -> int:
    return int(digits(request, "11"))


def amount_of(request: Fields) -> int:
    return int(digits(request, "4"))


def batch_of(request: Fields) -> int:
    """60.2, the batch number the terminal says the message belongs to."""
    f60 = digits(request, "60")
    if len(f60) < 8:
        raise FormatError("field 60 has no batch number")
    return int(f60[2:8])


def original_of(request: Fields) -> tuple[int, int]:
    """Field 61's original batch and STAN (the first 12 digits)."""
    f61 = request.get("61", "")
    if len(f61) < 12 or not f61[:12].isdigit():
        raise FormatError("field 61 lacks the original batch and STAN")
    return int(f61[:6]), int(f61[6:12])
