"""posterm.toml: the schema with laptop defaults, loading with validation, and writing.

Every key is declared once below (section, key, default, check, what is allowed); an
unknown key or a bad value is refused at start with the key's name and what is allowed.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from app.errors import ConfigError
from hal.errors import DeviceURLError
from hal.registry import allowed_forms, validate_url

CONFIG_NAME = "posterm.toml"
DB_NAME = "posterm.db"
KEY_NAME = "posterm.key"
LOG_NAME = "posterm.log"


@dataclass(frozen=True)
class Setting:
    default: Any
    check: Callable[[Any], bool]
    allowed: str


def _text(pattern: str) -> Callable[[Any], bool]:
    rx = re.compile(pattern)
    return lambda v: isinstance(v, str) and rx.fullmatch(v) is not None


def _int_range(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _seconds(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 600


def _file_or_empty(v: Any) -> bool:
    return isinstance(v, str) and (v == "" or Path(v).is_file())


def _host_address(v: Any) -> bool:
    if not isinstance(v, str) or ":" not in v:
        return False
    host, _, port = v.rpartition(":")
    return bool(host) and port.isdigit() and 1 <= int(port) <= 65535


def _device(role: str) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        try:
            validate_url(role, v)
        except DeviceURLError:
            return False
        return True
    return check


def _aid_list(v: Any) -> bool:
    """A list of {aid, partial, app_version, label} tables, at least one, AIDs unique."""
    if not isinstance(v, list) or not v:
        return False
    seen = set()
    for item in v:
        if not isinstance(item, dict) or not set(item) <= {"aid", "partial", "app_version", "label"}:
            return False
        aid = item.get("aid")
        if not isinstance(aid, str) or not re.fullmatch(r"(?:[0-9A-Fa-f]{2}){5,16}", aid):
            return False
        if not isinstance(item.get("partial", True), bool):
            return False
        if not re.fullmatch(r"[0-9A-Fa-f]{4}", str(item.get("app_version", "0030"))):
            return False
        if not isinstance(item.get("label", ""), str) or aid.upper() in seen:
            return False
        seen.add(aid.upper())
    return True


def _terminal_type(v: Any) -> bool:
    # EMV 4.3 Book 4 Annex A1: 1x financial institution, 2x merchant, 3x cardholder; x1-x6.
    return isinstance(v, str) and re.fullmatch(r"[12][1-6]|3[4-6]", v) is not None


def _default_aids() -> list[dict[str, Any]]:
    from app.emv.params import DEFAULT_AIDS
    return [{"aid": a.aid, "partial": a.partial, "app_version": a.app_version, "label": a.label}
            for a in DEFAULT_AIDS]


_FEN = "an amount in fen from 0 to 99999999999"
_RATE = "a rate like \"0.60%\" (0% to 99.9999%)"


def _rate(v: Any) -> bool:
    from sync.fees import parse_rate
    try:
        parse_rate(v)
    except ValueError:
        return False
    return True

_ACTION_CODE = "10 hex digits (5 bytes, EMV Book 3 Annex C5 bit layout)"

DEVICE_ROLES = ("card_reader", "contactless", "pinpad", "printer")

SCHEMA: dict[str, dict[str, Setting]] = {
    "terminal": {
        "terminal_id": Setting("12345678", _text(r"[0-9A-Za-z]{8}"), "8 letters or digits"),
        "merchant_id": Setting("898110048990001", _text(r"[0-9A-Za-z]{15}"),
                               "15 letters or digits"),
        "merchant_name": Setting("posterm 测试商户", _text(r".{1,40}"), "1 to 40 characters"),
        "operator": Setting("01", _text(r"[0-9]{2,3}"), "2 or 3 digits"),
        "currency": Setting("156", _text(r"[0-9]{3}"), "an ISO 4217 numeric code, e.g. 156"),
        "language": Setting("zh", lambda v: v in ("zh", "en"), "zh or en"),
        "single_txn_limit": Setting(5_000_000, _int_range(1, 99_999_999_999),
                                    "an amount in fen from 1 to 99999999999"),
    },
    "host": {
        "address": Setting("127.0.0.1:5800", _host_address, "HOST:PORT with a port 1-65535"),
        "tpdu": Setting("6000030000", _text(r"60[0-9A-Fa-f]{8}"),
                        "10 hex digits starting 60"),
        "header": Setting("602200000000", _text(r"[0-9A-Fa-f]{12}"), "12 hex digits"),
        "connect_timeout": Setting(5, _seconds, "seconds, more than 0 and at most 600"),
        "response_timeout": Setting(30, _seconds, "seconds, more than 0 and at most 600"),
        "mac_algorithm": Setting("ecb", lambda v: v in ("ecb", "x919"), "ecb or x919"),
        "reversal_tries": Setting(3, _int_range(1, 10), "a number of tries from 1 to 10"),
        "reversal_backoff": Setting(2, _seconds, "seconds before the second try (doubled "
                                                 "each time), more than 0 and at most 600"),
        "tls": Setting(False, lambda v: isinstance(v, bool), "true or false"),
        "ca_file": Setting("", _file_or_empty,
                           "the path of a PEM CA file that exists, or \"\" for the system's"),
        "client_cert": Setting("", _file_or_empty,
                               "the path of a PEM certificate file that exists, or \"\""),
        "client_key": Setting("", _file_or_empty,
                              "the path of a PEM key file that exists, or \"\""),
        "server_name": Setting("", _text(r"[A-Za-z0-9.-]{0,253}"),
                               "the host name in the host's certificate, or \"\""),
    },
    "devices": {role: Setting("mock:", _device(role), ", ".join(allowed_forms(role)))
                for role in DEVICE_ROLES},
    "emv": {
        "floor_limit": Setting(0, _int_range(0, 99_999_999_999), _FEN),
        "tac_default": Setting("DC4000A800", _text(r"[0-9A-Fa-f]{10}"), _ACTION_CODE),
        "tac_denial": Setting("0010000000", _text(r"[0-9A-Fa-f]{10}"), _ACTION_CODE),
        "tac_online": Setting("DC4004F800", _text(r"[0-9A-Fa-f]{10}"), _ACTION_CODE),
        "terminal_capabilities": Setting("606800", _text(r"[0-9A-Fa-f]{6}"),
                                         "6 hex digits (9F33: input, CVM, security)"),
        "additional_capabilities": Setting("6800F0F001", _text(r"[0-9A-Fa-f]{10}"),
                                           "10 hex digits (9F40)"),
        "terminal_type": Setting("22", _terminal_type,
                                 "9F35: 11-16, 21-26 or 34-36 (e.g. 22 attended, online "
                                 "with offline capability)"),
        "country_code": Setting("156", _text(r"[0-9]{3}"),
                                "an ISO 3166 numeric country code, e.g. 156"),
        "contactless_cvm_limit": Setting(30_000, _int_range(0, 99_999_999_999), _FEN),
        "contactless_txn_limit": Setting(500_000, _int_range(1, 99_999_999_999),
                                         "an amount in fen from 1 to 99999999999"),
        "random_threshold": Setting(0, _int_range(0, 99_999_999_999),
                                    _FEN + ", below the floor limit"),
        "random_target_percent": Setting(0, _int_range(0, 99), "a percentage from 0 to 99"),
        "random_max_percent": Setting(0, _int_range(0, 99),
                                      "a percentage from 0 to 99, at least the target"),
        "aids": Setting(_default_aids(), _aid_list,
                        "a list of tables {aid = \"A000000333010101\", partial = true, "
                        "app_version = \"0030\", label = \"...\"}: AIDs of 5 to 16 bytes "
                        "in hex, each once"),
    },
    "receipts": {
        "cardholder_copy": Setting(True, lambda v: isinstance(v, bool), "true or false"),
    },
    "limits": {
        "refund_max": Setting(5_000_000, _int_range(1, 99_999_999_999),
                              "the most one refund may be, in fen"),
        "refund_daily": Setting(10_000_000, _int_range(1, 99_999_999_999),
                                "the most refunded in one day, in fen"),
        "offline_count": Setting(10, _int_range(0, 999),
                                 "how many offline sales may wait for the host, 0 to 999"),
        "offline_amount": Setting(100_000, _int_range(0, 99_999_999_999),
                                  "how much offline sales waiting for the host may add up "
                                  "to, in fen"),
    },
    "settlement": {
        "mode": Setting("T1", lambda v: v in ("T1", "D0"),
                        "T1 (paid the next business day) or D0 (real time, 实时到账)"),
        "card_rate": Setting("0.60%", _rate, _RATE),
        "qr_rate": Setting("0.38%", _rate, _RATE),
        "d0_rate": Setting("0%", _rate, _RATE + ", added to the rate in D0 mode"),
        "d0_fixed": Setting(0, _int_range(0, 100_000),
                            "fen per transaction added in D0 mode, 0 to 100000"),
        "tc_upload": Setting(False, lambda v: isinstance(v, bool),
                             "true or false (upload chip TCs after a balanced settlement)"),
        "upload_tries": Setting(3, _int_range(1, 10), "sends of one upload message, 1 to 10"),
        "auto_time": Setting("", _text(r"|(?:[01]\d|2[0-3]):[0-5]\d"),
                             "HH:MM (24-hour local time) or \"\" for no auto-settlement"),
        "warn_open_hours": Setting(24, _int_range(0, 720),
                                   "hours a batch may stay open before a warning, 0 = never"),
    },
    "backup": {
        "directory": Setting("", _text(r"[^\x00]{0,4096}"),
                             "a directory path (relative: under the data directory), or \"\" "
                             "for the data directory's backups/"),
        "keep_daily": Setting(7, _int_range(1, 3660),
                              "days of daily backups kept (the newest of each day), 1 to 3660"),
        "keep_upgrade": Setting(3, _int_range(1, 100),
                                "backups made before schema upgrades kept, 1 to 100"),
    },
    "operators": {
        "max_failures": Setting(5, _int_range(1, 20),
                                "wrong passwords in a row that lock an operator, 1 to 20"),
        "lock_minutes": Setting(15, _int_range(1, 1440),
                                "minutes an operator stays locked, 1 to 1440"),
        "password_days": Setting(0, _int_range(0, 3650),
                                 "days a password lasts before it must be changed, "
                                 "0 to 3650 (0 = no periodic change)"),
        "cashier_min_length": Setting(4, _int_range(4, 32),
                                      "the shortest cashier password, 4 to 32 characters"),
        "supervisor_min_length": Setting(6, _int_range(6, 64),
                                         "the shortest supervisor password, 6 to 64 "
                                         "characters"),
    },
}


#: Keys a file must spell out: a file cut short must not fall back to a laptop default
#: (mock devices, the local host) on a shop's box.
REQUIRED = (("terminal", "terminal_id"), ("terminal", "merchant_id"), ("host", "address"),
            *(("devices", role) for role in DEVICE_ROLES))


@dataclass(frozen=True)
class Config:
    """A validated posterm.toml plus where the data lives."""

    data_dir: Path
    values: dict[str, dict[str, Any]]

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.values[section]

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_NAME

    @property
    def key_path(self) -> Path:
        return self.data_dir / KEY_NAME

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_NAME

    @property
    def backup_dir(self) -> Path:
        """Where backups go: [backup] directory, relative to the data directory, or backups/."""
        return self.data_dir / (self["backup"]["directory"] or "backups")

    @property
    def fees(self):
        """The merchant's fee schedule (rates and settlement mode)."""
        from sync.fees import FeeSchedule
        s = self["settlement"]
        return FeeSchedule.from_texts(s["mode"], s["card_rate"], s["qr_rate"], s["d0_rate"],
                                      s["d0_fixed"])

    @property
    def host_address(self) -> tuple[str, int]:
        host, _, port = self["host"]["address"].rpartition(":")
        return host, int(port)


def defaults() -> dict[str, dict[str, Any]]:
    return {section: {key: s.default for key, s in keys.items()}
            for section, keys in SCHEMA.items()}


def validate(raw: dict[str, Any], *, source: str = CONFIG_NAME) -> dict[str, dict[str, Any]]:
    """Merge ``raw`` over the defaults; ConfigError names the first bad key."""
    values = defaults()
    for section, table in raw.items():
        if section not in SCHEMA:
            raise ConfigError(f"{source}: unknown section [{section}]; allowed: "
                              + ", ".join(SCHEMA))
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        for key, value in table.items():
            setting = SCHEMA[section].get(key)
            if setting is None:
                raise ConfigError(f"{source}: unknown key {section}.{key}; allowed in "
                                  f"[{section}]: " + ", ".join(SCHEMA[section]))
            if not setting.check(value):
                raise ConfigError(f"{source}: {section}.{key} = {value!r} is not allowed: "
                                  f"use {setting.allowed}")
            values[section][key] = value
    return values


def load(data_dir: Path) -> Config:
    """Read and validate ``data_dir/posterm.toml``."""
    path = data_dir / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no {CONFIG_NAME} in {data_dir}: run 'posterm init' first") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    missing = [f"{section}.{key}" for section, key in REQUIRED
               if key not in raw.get(section, {})]
    if missing:
        raise ConfigError(f"{path} is incomplete (half-written?): missing {', '.join(missing)}; "
                          "add them or run 'posterm init --force'")
    return Config(data_dir, validate(raw, source=str(path)))


def write(data_dir: Path, values: dict[str, dict[str, Any]]) -> Path:
    """Write posterm.toml atomically (temp file, fsync, rename)."""
    path = data_dir / CONFIG_NAME
    tmp = path.with_suffix(".toml.tmp")
    header = ("# posterm configuration: created by 'posterm init'. A bench or a shop changes\n"
              "# the device URLs, the host address and the merchant and terminal ids.\n\n")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(header + tomli_w.dumps(values))
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    return path


#: A setting whose name says it holds a secret is shown masked; so are credentials inside a
#: value (a URL's ``user:password@`` or a ``?password=`` parameter).
_SECRET_NAME = re.compile(r"password|passphrase|secret|token|(?:^|_)pin(?:$|_)",
                          re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(//[^/:@\s]+:)[^/@\s]+@")
_SECRET_PARAM = re.compile(r"([?&;](?:[a-z_]*(?:password|passphrase|secret|token|pin|key))=)"
                           r"[^&;\s]*", re.IGNORECASE)
MASK = "******"


@dataclass(frozen=True)
class ShownSetting:
    """One effective setting as a person may see it: secrets masked."""

    section: str
    key: str
    text: str
    default: bool          # the schema's default (not written in the file, or the same)
    masked: bool


def _text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(item.get("aid", item)) if isinstance(item, dict) else str(item)
                         for item in value)
    return str(value)


def shown_setting(section: str, key: str, value: Any) -> ShownSetting:
    """``value`` as text with its secrets masked."""
    text = _text_of(value)
    default = SCHEMA.get(section, {}).get(key)
    is_default = default is not None and default.default == value
    if _SECRET_NAME.search(key):
        return ShownSetting(section, key, MASK if text else "", is_default, bool(text))
    masked = _SECRET_PARAM.sub(rf"\g<1>{MASK}", _URL_CREDENTIALS.sub(rf"\g<1>{MASK}@", text))
    return ShownSetting(section, key, masked, is_default, masked != text)


def shown_settings(config: Config) -> list[ShownSetting]:
    """Every effective setting of ``config`` (the file's over the defaults), in the schema's
    order, secrets masked: what the cashier app's configuration view lists."""
    return [shown_setting(section, key, config.values[section][key])
            for section, keys in SCHEMA.items() for key in keys
            if key in config.values.get(section, {})]
