"""The sync layer's exceptions; each one's text is one clear line for a person."""


class SyncError(Exception):
    """Base of everything the host link raises."""


class MessageError(SyncError):
    """A message that cannot be built or parsed (malformed host reply, bad hex, wrong field)."""


class HostUnreachable(SyncError):
    """The host could not be reached: nothing was sent."""


class HostTimeout(SyncError):
    """The request left, but no matching reply came in time: the outcome is unknown."""


class MacError(SyncError):
    """The reply's MAC did not verify: the reply is not trusted."""


class KeyCheckError(SyncError):
    """A downloaded working key failed its check value."""


class NotSignedOn(SyncError):
    """No working keys yet: the terminal must sign on first."""
