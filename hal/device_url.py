"""Device URLs split into scheme, path and options (``scheme:path?key=value&...``).

Only the syntax lives here; which schemes and paths a role accepts is in :mod:`hal.registry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import parse_qsl

__all__ = ["DeviceURL", "split_url"]


@dataclass(frozen=True)
class DeviceURL:
    """A parsed device URL; ``text`` is the URL as written in the config."""

    text: str
    scheme: str
    path: str
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __str__(self) -> str:
        return self.text


def split_url(text: str) -> DeviceURL:
    """Split ``text`` into scheme, path and options; ``ValueError`` with the reason if it cannot."""
    if not isinstance(text, str):
        raise TypeError(f"a device URL is a string, not {type(text).__name__}")
    scheme, colon, rest = text.strip().partition(":")
    if not colon:
        raise ValueError("no scheme (a URL starts with a scheme and a colon, like 'mock:')")
    if not scheme or not scheme.isalpha() or not scheme.islower():
        raise ValueError(f"bad scheme {scheme!r}")
    path, question, query = rest.partition("?")
    options: dict[str, str] = {}
    if question and query:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise ValueError(f"options {query!r} are not key=value pairs joined by '&'") from None
        for key, value in pairs:
            if key in options:
                raise ValueError(f"option {key!r} given twice")
            options[key] = value
    return DeviceURL(text=text.strip(), scheme=scheme, path=path, options=MappingProxyType(options))
