"""storage imports nothing else of posterm (DESIGN.md: hal, storage -> nothing of ours)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import storage
from storage.errors import StorageError
from storage.journal import Journal

OURS = {"app", "hal", "drivers", "sync", "host", "hil"}


def test_storage_imports_no_other_posterm_package():
    offenders = []
    for path in Path(storage.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in OURS]
    assert offenders == []


def test_close_twice_is_harmless_and_use_after_close_is_a_storage_error(tmp_path):
    j = Journal.open(tmp_path / "journal.db", bytes(32))
    j.close()
    j.close()
    with pytest.raises(StorageError):
        j.next_stan()
