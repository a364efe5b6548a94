"""Exceptions of the storage layer; callers above catch StorageError and show str(e)."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every storage failure; str(e) is one clear line for a person."""


class CorruptDatabase(StorageError):
    """The journal file is not SQLite, or SQLite reports it damaged."""


class KeyFileError(StorageError):
    """The root key file is missing, unreadable, malformed or would be overwritten."""


class InvalidTransition(StorageError):
    """A state change that the transaction or reversal state machine does not allow."""


class DiskFull(StorageError):
    """A write to the journal was refused because the disk is full, read-only or failing.

    SQLite rolled the write back, so nothing is half-written; ``reason`` is "full",
    "read-only" or "I/O error"."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
