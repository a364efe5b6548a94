"""A thread-safe place where something presented (a card, a typed PIN, a swipe) waits to be taken.

The app waits on a device in one thread while a laptop's UI or a test presents a card
from another, as a customer would.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

from hal.errors import Cancelled, Timeout

__all__ = ["Presented"]

T = TypeVar("T")


class Presented(Generic[T]):
    """Holds at most one presented item; :meth:`wait` blocks until one is there."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._cancelled = False

    def put(self, item: T) -> None:
        with self._cond:
            self._item = item
            self._cond.notify_all()

    def peek(self) -> T | None:
        with self._cond:
            return self._item

    def clear(self) -> None:
        with self._cond:
            self._item = None

    def cancel(self) -> None:
        """Make a :meth:`wait` under way raise :class:`Cancelled`."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    def wait(self, timeout: float, *, timeout_message: str, take: bool = False) -> T:
        """The presented item, waiting up to ``timeout`` seconds for one; ``take`` removes it."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            self._cancelled = False
            while self._item is None and not self._cancelled:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Timeout(timeout_message)
                self._cond.wait(remaining)
            if self._cancelled:
                self._cancelled = False
                raise Cancelled("Cancelled")
            item = self._item
            assert item is not None
            if take:
                self._item = None
            return item
