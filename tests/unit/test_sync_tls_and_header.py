"""TLS to the host with a CA the test makes, and the reply header's processing request."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from storage.journal import Journal
from sync import codec, frame, message
from sync.errors import HostUnreachable
from sync.link import HostLink, LinkConfig
from sync.online import KEY_MAK, META_HOST_REQUEST, META_SIGNON_REQUIRED, HostSession, SessionConfig
from sync.txntypes import TxnType

IDS = message.TerminalIds("12345678", "898110048990001")
TPDU = bytes.fromhex("6000030000")
MAK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def _cert(subject: str, issuer_key, issuer_name, key, *, ca: bool, san: str | None = None):
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "posterm test CA")])
    ca = _cert("posterm test CA", ca_key, ca_name, ca_key, ca=True)
    files = {}
    for who in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(who, ca_key, ca_name, key, ca=False, san="localhost")
        files[who] = (d / f"{who}.pem", d / f"{who}.key")
        files[who][0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[who][1].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                    serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return d / "ca.pem", files


def _host(reply_header: bytes, *, tls: ssl.SSLContext | None = None):
    """A one-connection host that answers each request as echo 0830/00, MAC'd with MAK."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def run():
        try:
            conn, _ = srv.accept()
            if tls is not None:
                conn = tls.wrap_socket(conn, server_side=True)
            with conn:
                while True:
                    head = conn.recv(2)
                    if len(head) < 2:
                        return
                    body = b""
                    while len(body) < int.from_bytes(head, "big"):
                        body += conn.recv(int.from_bytes(head, "big") - len(body))
                    req = codec.decode(frame.split_body(body).iso)
                    reply = {"t": codec.reply_mti(req["t"]), "11": req["11"], "41": req["41"],
                             "42": req["42"], "39": "00", "60": req["60"]}
                    iso = message.encode_with_mac(reply, "ecb", MAK)
                    conn.sendall(frame.wrap(iso, frame.swap_tpdu(TPDU), reply_header))
        except (OSError, ssl.SSLError):
            return
        finally:
            srv.close()

    threading.Thread(target=run, daemon=True).start()
    return srv.getsockname()[1]


def _echo_over(link_config: LinkConfig):
    doc = message.build(TxnType.ECHO, IDS, stan=1, batch=1)
    link = HostLink(link_config)
    try:
        raw = link.exchange(message.encode_with_mac(doc, "ecb", MAK),
                            lambda r: r["t"] == "0830" and r["11"] == "000001")
    finally:
        link.close()
    return codec.decode(raw)


def test_tls_with_the_test_ca_and_a_client_certificate(pki):
    ca, files = pki
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(*files["server"])
    server.load_verify_locations(ca)
    server.verify_mode = ssl.CERT_REQUIRED
    port = _host(bytes(6), tls=server)
    reply = _echo_over(LinkConfig("127.0.0.1", port, response_timeout=3, tls=True,
                                  ca_file=str(ca), client_cert=str(files["client"][0]),
                                  client_key=str(files["client"][1]), server_name="localhost"))
    assert reply["39"] == "00"


def test_tls_refuses_a_host_whose_certificate_the_ca_did_not_sign(pki):
    _, files = pki
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(*files["server"])
    port = _host(bytes(6), tls=server)
    with pytest.raises(HostUnreachable, match="not trusted"):
        _echo_over(LinkConfig("127.0.0.1", port, response_timeout=3, tls=True,
                              server_name="localhost"))


def test_a_reply_header_asking_for_sign_on_is_honoured(tmp_path):
    # Header: app type 60, version 22, then status (high nibble) + processing request 3.
    port = _host(bytes.fromhex("602203000000"))
    with Journal.open(tmp_path / "j.db", bytes(32)) as journal:
        journal.put_key(KEY_MAK, MAK)
        journal.set_meta(META_SIGNON_REQUIRED, "0")
        session = HostSession(journal, SessionConfig(IDS, LinkConfig("127.0.0.1", port,
                                                                     response_timeout=3)))
        try:
            assert session.echo()["39"] == "00"
        finally:
            session.close()
        assert journal.get_meta(META_SIGNON_REQUIRED) == "1"
        assert session.needs_sign_on()
        assert journal.get_meta(META_HOST_REQUEST) == "sign on again"
