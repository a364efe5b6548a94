"""What people type: amounts, configuration values, and what reaches the log."""

from __future__ import annotations

import logging

import pytest

from app import config
from app.amount import format_yuan, parse_yuan
from app.errors import ConfigError, InputError
from app.redaction import RedactingFilter, redact


@pytest.mark.parametrize("text,fen", [("12.50", 1250), ("12.5", 1250), ("0.01", 1),
                                      ("100", 10000), (" 7.05 ", 705)])
def test_yuan_amounts_become_integer_fen(text, fen):
    assert parse_yuan(text) == fen
    assert isinstance(parse_yuan(text), int)


@pytest.mark.parametrize("text", ["12.345", "-1", "abc", "0", "0.00", "", "1e3", "12,50",
                                  "1.", ".5"])
def test_bad_amounts_are_refused_with_one_line(text):
    with pytest.raises(InputError) as exc:
        parse_yuan(text)
    assert "\n" not in str(exc.value)


def test_format_yuan_round_trips():
    assert format_yuan(1250) == "12.50" and format_yuan(5) == "0.05"
    assert parse_yuan(format_yuan(123456789)) == 123456789


def test_defaults_validate_and_every_bad_value_names_its_key(tmp_path):
    assert config.validate({}) == config.defaults()
    cases = [({"terminal": {"terminal_id": "123"}}, "terminal.terminal_id"),
             ({"terminal": {"language": "fr"}}, "terminal.language"),
             ({"host": {"address": "localhost"}}, "host.address"),
             ({"host": {"response_timeout": 0}}, "host.response_timeout"),
             ({"devices": {"printer": "lpt:1"}}, "devices.printer"),
             ({"terminal": {"colour": "red"}}, "terminal.colour"),
             ({"nonsense": {}}, "[nonsense]"),
             ({"terminal": {"single_txn_limit": 12.5}}, "terminal.single_txn_limit")]
    for raw, name in cases:
        with pytest.raises(ConfigError, match=name.replace("[", r"\[").replace("]", r"\]")):
            config.validate(raw)


def test_config_file_round_trips_and_broken_files_are_one_line_errors(tmp_path):
    values = config.defaults()
    values["terminal"]["terminal_id"] = "87654321"
    config.write(tmp_path, values)
    assert config.load(tmp_path)["terminal"]["terminal_id"] == "87654321"
    path = tmp_path / config.CONFIG_NAME
    text = path.read_text(encoding="utf-8")
    cut_mid_line = text[:text.index("[host]") + 12]
    path.write_text(cut_mid_line, encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(tmp_path)
    path.write_text(text[:text.index("[devices]")], encoding="utf-8")   # cut between tables
    with pytest.raises(ConfigError, match="incomplete.*devices.card_reader"):
        config.load(tmp_path)
    path.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(ConfigError):
        config.load(tmp_path)
    with pytest.raises(ConfigError, match="posterm init"):
        config.load(tmp_path / "missing")


def test_log_lines_lose_pans_and_track_data_whoever_writes_them(caplog):
    assert redact("card 6226090000000048 ok") == "card 622609******0048 ok"
    assert redact("t2 6226090000000048=30122010000000000") == "t2 [track data removed]"
    assert redact("order 1234567890123 stays") == "order 1234567890123 stays"  # fails Luhn
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "pan %s", ("4761739001010010",),
                               None)
    RedactingFilter().filter(record)
    assert "4761739001010010" not in record.getMessage()
    assert "476173******0010" in record.getMessage()
