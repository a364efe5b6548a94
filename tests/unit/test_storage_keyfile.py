"""The root key file: created 0600 without a race, never overwritten by accident, clear errors."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from storage.errors import KeyFileError
from storage.keyfile import create_key_file, load_key_file


def test_created_key_file_is_mode_0600_and_holds_64_hex_chars(tmp_path):
    path = tmp_path / "root.key"
    create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.endswith("\n") and len(text.strip()) == 64
    assert load_key_file(path) == bytes.fromhex(text.strip())


def test_mode_is_0600_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        create_key_file(tmp_path / "root.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "root.key").stat().st_mode) == 0o600


def test_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "root.key"
    create_key_file(path)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        create_key_file(path)
    assert path.read_bytes() == before


def test_force_replaces_the_key_and_keeps_mode_0600(tmp_path):
    path = tmp_path / "root.key"
    create_key_file(path)
    before = load_key_file(path)
    create_key_file(path, force=True)
    assert load_key_file(path) != before
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["root.key"]


def test_missing_key_file_is_a_one_line_error(tmp_path):
    with pytest.raises(KeyFileError) as info:
        load_key_file(tmp_path / "nope.key")
    assert "does not exist" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("content", ["abc\n", "zz" * 32 + "\n", "00" * 33 + "\n", ""])
def test_malformed_key_file_is_refused(tmp_path, content):
    path = tmp_path / "root.key"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="expected 64 hex characters"):
        load_key_file(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_key_file_is_refused(tmp_path):
    path = tmp_path / "root.key"
    create_key_file(path)
    path.chmod(0)
    with pytest.raises(KeyFileError, match="cannot be read"):
        load_key_file(path)


def test_wide_mode_warns_but_loads(tmp_path, caplog):
    path = tmp_path / "root.key"
    create_key_file(path)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="storage.keyfile"):
        key = load_key_file(path)
    assert len(key) == 32
    assert any("should be 600" in r.getMessage() for r in caplog.records)
    assert key.hex() not in caplog.text


def test_key_path_that_is_a_directory_is_refused(tmp_path):
    (tmp_path / "root.key").mkdir()
    with pytest.raises(KeyFileError, match="cannot be read"):
        load_key_file(tmp_path / "root.key")
