"""Supervisor approval for voids and refunds: the password checked against its scrypt hash
in the journal, the override written to the audit log."""

from __future__ import annotations

from app.errors import Refused
from app.terminal import Terminal


def approve(term: Terminal, password: str, *, action: str, detail: dict) -> str:
    """The approving supervisor's code; Refused (exit 1) for a wrong password."""
    code = term.journal.check_supervisor(password)
    if code is None:
        term.journal.audit("supervisor.refused", actor=term.config["terminal"]["operator"],
                           detail={"action": action, **detail})
        raise Refused("wrong supervisor password")
    term.journal.audit("supervisor.approved", actor=code, detail={"action": action, **detail})
    return code
