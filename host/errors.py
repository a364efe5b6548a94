"""The host simulator's exceptions; each one's text is one clear line for a person."""


class HostError(Exception):
    """Base of everything the host simulator raises on purpose."""


class HostKeyError(HostError):
    """The host key file is missing, unreadable or not a key file."""


class LedgerError(HostError):
    """The ledger cannot be opened or refuses a change (e.g. a terminal registered twice)."""


class DuplicateTransaction(LedgerError):
    """A transaction with the same terminal, batch, STAN and MTI is already recorded."""
