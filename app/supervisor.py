"""Supervisor approval for voids, refunds and reconciliation resolves: the password of
supervisor 99 checked through the operator lockout (app.operators), the override written
to the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.operators import authorize_supervisor

if TYPE_CHECKING:
    from app.terminal import Terminal


def approve(term: Terminal, password: str, *, action: str, detail: dict) -> str:
    """The approving supervisor's code. Refused (exit 1) for a wrong password (counted: the
    limit locks the supervisor for [operators] lock_minutes), a locked supervisor, or a
    password that must be changed first (app.operators.PasswordChangeRequired)."""
    return authorize_supervisor(term, password, action=action, detail=detail).code
