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
