"""A HIL bench: its device URLs and the test cards on its readers (see hil/conftest.py)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROLES = ("card_reader", "contactless", "pinpad", "printer")


@dataclass(frozen=True)
class Bench:
    """A real bench's device URLs and the cards on its readers (None: virtual devices)."""

    path: Path | None
    devices: dict[str, str] = field(default_factory=dict)
    cards: dict[str, str] = field(default_factory=dict)

    @property
    def virtual(self) -> bool:
        return self.path is None

    def url(self, role: str) -> str:
        """The bench's URL for ``role``; skips the calling test when the bench has none."""
        if role not in self.devices:
            pytest.skip(f"the bench file {self.path} has no {role}")
        return self.devices[role]


def load_bench(path: str | None) -> Bench:
    if not path:
        return Bench(None)
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    devices = {k: v for k, v in data.get("devices", {}).items() if k in ROLES}
    return Bench(Path(path), devices, dict(data.get("cards", {})))
