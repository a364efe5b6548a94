"""The TCP link to the acquirer host: framing, one connection, request/reply matching."""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from sync import codec, frame
from sync.errors import HostTimeout, HostUnreachable, MessageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkConfig:
    """Where the host is and how long to wait for it."""

    host: str
    port: int
    tpdu: bytes = bytes.fromhex("6000030000")
    header: bytes = bytes.fromhex("602200000000")
    connect_timeout: float = 5.0
    response_timeout: float = 30.0
    tls: bool = False
    ca_file: str | None = None          # None: the system's trust store
    client_cert: str | None = None      # PEM with the certificate (and key, unless client_key)
    client_key: str | None = None
    server_name: str | None = None      # None: the host name or address connected to

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context for this link (server certificate always verified)."""
        context = ssl.create_default_context(cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


def _recv_exact(sock: socket.socket, size: int, deadline: float) -> bytes:
    data = b""
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("host closed the connection")
        data += chunk
    return data


class HostLink:
    """One TCP connection to the host; reconnects on the next exchange after a failure."""

    def __init__(self, config: LinkConfig) -> None:
        self.config = config
        self._sock: socket.socket | None = None
        self.last_header: bytes | None = None

    def connect(self) -> None:
        """Open the connection if it is not open; HostUnreachable if the host does not answer."""
        if self._sock is not None:
            return
        c = self.config
        try:
            sock = socket.create_connection((c.host, c.port), timeout=c.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            raise HostUnreachable(f"host {c.host}:{c.port} unreachable ({exc.strerror or exc})") \
                from None
        if c.tls:
            try:
                sock = c.ssl_context().wrap_socket(sock, server_hostname=c.server_name or c.host)
            except ssl.SSLCertVerificationError as exc:
                sock.close()
                raise HostUnreachable(f"host {c.host}:{c.port}: TLS certificate not trusted "
                                      f"({exc.verify_message})") from None
            except (ssl.SSLError, OSError) as exc:
                sock.close()
                raise HostUnreachable(f"host {c.host}:{c.port}: TLS handshake failed ({exc})") \
                    from None
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def exchange(self, iso: bytes, accept: Callable[[dict[str, str]], bool], *,
                 on_sent: Callable[[], None] | None = None) -> bytes:
        """Send one request and return the first reply that ``accept`` takes.

        Replies that are malformed or do not match (MTI, STAN, terminal id) are logged and
        discarded; the wait goes on until the response timeout. HostUnreachable means
        nothing was sent; HostTimeout means the request may have reached the host.
        """
        self.connect()
        assert self._sock is not None
        c = self.config
        try:
            self._sock.sendall(frame.wrap(iso, c.tpdu, c.header))
        except OSError as exc:
            self.close()
            raise HostTimeout(f"connection lost while sending ({exc})") from None
        if on_sent is not None:
            on_sent()
        deadline = time.monotonic() + c.response_timeout
        try:
            while True:
                length = int.from_bytes(_recv_exact(self._sock, 2, deadline), "big")
                body = _recv_exact(self._sock, length, deadline)
                try:
                    parts = frame.split_body(body)
                    fields = codec.decode(parts.iso)
                except MessageError as exc:
                    log.warning("discarded a malformed reply: %s", exc)
                    continue
                if accept(fields):
                    self.last_header = parts.header
                    return parts.iso
                log.warning("discarded a reply that does not match the request (MTI %s STAN %s)",
                            fields.get("t"), fields.get("11"))
        except TimeoutError:
            self.close()
            raise HostTimeout(f"no reply from host within {c.response_timeout:g} s") from None
        except OSError as exc:
            self.close()
            raise HostTimeout(f"connection lost while waiting for the reply ({exc})") from None
