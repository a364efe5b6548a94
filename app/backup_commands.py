"""``posterm backup create|list|verify|restore``: encrypted copies of the journal.

Registered on the main group by ``app.cli``.
"""

from __future__ import annotations

import click

from app.cli import cli


@cli.group()
def backup() -> None:
    """Encrypted backups of the journal (备份): create, list, verify, restore."""
