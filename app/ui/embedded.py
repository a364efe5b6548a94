"""The embedded default: ``posterm`` on a fresh machine comes up ready for a sale.

With no ``posterm.toml`` in the data directory, a terminal is initialised on mock devices
(``posterm init``'s defaults) and provisioned on the bundled host simulator, whose data
lives under ``DATA/bundled-host``. Whenever that folder holds a host, the app starts
``posterm-host`` on a free loopback port for as long as it runs, and points the terminal's
``host.address`` at it. A data directory made by ``posterm init`` for another host is left
as it is. The host is started and the terminal provisioned exactly as ``posterm demo`` and
``posterm init`` do it (app.demo.start_host, app.provision.init).
"""

from __future__ import annotations

import logging
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from app import config as config_mod

log = logging.getLogger(__name__)

BUNDLED_HOST_DIR = "bundled-host"
HOST_DB = "host.db"


@dataclass
class BundledHost:
    """A ``posterm-host`` process the app started; :meth:`stop` ends it (SIGTERM)."""

    proc: subprocess.Popen
    address: str
    data: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass
class Startup:
    """What :func:`prepare` did: the host it started (or None) and, on a first start, the
    supervisor password it chose (shown to the cashier once, never stored in clear)."""

    host: BundledHost | None = None
    first_start: bool = False
    supervisor_password: str | None = None


def bundled_host_dir(data_dir: Path) -> Path:
    return data_dir / BUNDLED_HOST_DIR


def start_bundled_host(data_dir: Path) -> BundledHost:
    """``posterm-host --data DATA/bundled-host --listen 127.0.0.1:0`` in the background."""
    from app.demo import start_host
    host_dir = bundled_host_dir(data_dir)
    host_dir.mkdir(parents=True, exist_ok=True)
    proc, address = start_host(host_dir, quiet=True)
    log.info("bundled host simulator listening on %s (data %s)", address, host_dir)
    return BundledHost(proc, address, host_dir)


def prepare(data_dir: Path) -> Startup:
    """Initialise a fresh data directory on the bundled host, and start that host when the
    terminal uses it; a terminal set up for another host is left alone."""
    fresh = not (data_dir / config_mod.CONFIG_NAME).exists()
    if not fresh and not (bundled_host_dir(data_dir) / HOST_DB).exists():
        return Startup()
    host = start_bundled_host(data_dir)
    try:
        if fresh:
            from app.provision import init
            password = secrets.token_urlsafe(9)
            init(data_dir, host=host.address, host_data=host.data, force=False,
                 supervisor_password=password, supervisor_must_change=True)
            return Startup(host, first_start=True, supervisor_password=password)
        values = config_mod.load(data_dir).values
        if values["host"]["address"] != host.address:
            values["host"]["address"] = host.address
            config_mod.write(data_dir, values)
        return Startup(host)
    except BaseException:
        host.stop()
        raise
