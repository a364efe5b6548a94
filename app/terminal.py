"""The terminal's parts for one command: config, journal, devices and the host session.

Opened lazily so a command touches only what it needs (``posterm txns`` opens no device
and no socket).
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Self

from app import config as config_mod
from app.config import Config
from app.errors import ConfigError
from app.receipt import MerchantInfo, reversal_failed_slip
from hal.errors import DeviceError, DeviceUnavailable
from hal.registry import DeviceContext, Devices, open_devices
from storage.journal import Journal, TransactionRecord
from storage.keyfile import load_key_file
from sync.link import LinkConfig
from sync.message import TerminalIds
from sync.online import HostSession, SessionConfig

log = logging.getLogger(__name__)


class Terminal:
    """Everything one posterm command works with, closed together by :meth:`close`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.config: Config = config_mod.load(data_dir)
        self._opened: list = []
        #: False: the journal opens without its quick_check (seconds for a million rows),
        #: for a command that reads every transaction row itself (reconcile).
        self.journal_check = True

    @cached_property
    def journal(self) -> Journal:
        from app.backup import upgrade_guard
        root_key = load_key_file(self.config.key_path)
        with upgrade_guard(self.config, root_key):   # an older schema: backed up, then migrated
            journal = Journal.open(self.config.db_path, root_key, check=self.journal_check)
        self._opened.append(journal)
        if not journal.root_key_matches:
            raise ConfigError(f"{self.config.key_path} is not the key this journal was made "
                              "with: restore the matching key file")
        return journal

    @cached_property
    def devices(self) -> Devices:
        devices = open_devices(dict(self.config["devices"]),
                               DeviceContext(data_dir=self.data_dir,
                                             language=self.config["terminal"]["language"]))
        self._opened.append(devices)
        return devices

    @cached_property
    def session(self) -> HostSession:
        t, h = self.config["terminal"], self.config["host"]
        host, port = self.config.host_address
        session = HostSession(self.journal, SessionConfig(
            ids=TerminalIds(t["terminal_id"], t["merchant_id"]),
            link=LinkConfig(host=host, port=port, tpdu=bytes.fromhex(h["tpdu"]),
                            header=bytes.fromhex(h["header"]),
                            connect_timeout=float(h["connect_timeout"]),
                            response_timeout=float(h["response_timeout"]),
                            tls=h["tls"], ca_file=h["ca_file"] or None,
                            client_cert=h["client_cert"] or None,
                            client_key=h["client_key"] or None,
                            server_name=h["server_name"] or None),
            operator=t["operator"], mac_algorithm=h["mac_algorithm"], currency=t["currency"],
            reversal_tries=h["reversal_tries"], reversal_backoff=float(h["reversal_backoff"]),
            on_reversal_failed=self._print_reversal_failed))
        self._opened.append(session)
        return session

    def _print_reversal_failed(self, record: TransactionRecord, problem: str) -> None:
        """Print the "reversal failed — handle manually" slip; a printer fault is logged."""
        try:
            printer = self.devices.printer
            if printer is None:
                raise DeviceUnavailable("no printer configured")
            width = int(printer.info().get("width", 32))
            printer.print_document(reversal_failed_slip(record, self.merchant, problem,
                                                         width=width))
        except DeviceError as exc:
            log.error("reversal-failed slip for STAN %06d not printed: %s", record.stan, exc)

    @property
    def merchant(self) -> MerchantInfo:
        t = self.config["terminal"]
        return MerchantInfo(t["merchant_name"], t["merchant_id"], t["terminal_id"])

    @property
    def language(self) -> str:
        return self.config["terminal"]["language"]

    def close(self) -> None:
        for part in reversed(self._opened):
            try:
                part.close()
            except Exception as exc:  # noqa: BLE001 - closing must not hide the outcome
                log.warning("closing %s failed: %s", type(part).__name__, exc)
        self._opened.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
