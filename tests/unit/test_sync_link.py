"""The host link over real loopback sockets: matching replies, timeouts, unreachable hosts."""

from __future__ import annotations

import socket
import threading

import pytest

from sync import codec, frame, message
from sync.errors import HostTimeout, HostUnreachable
from sync.link import HostLink, LinkConfig
from sync.txntypes import TxnType

IDS = message.TerminalIds("12345678", "898110048990001")
TPDU, HEADER = bytes.fromhex("6000030000"), bytes.fromhex("602200000000")


def _serve_once(answer):
    """A one-connection TCP peer: reads one framed request, sends answer(request_fields)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def run():
        conn, _ = srv.accept()
        with conn:
            length = int.from_bytes(conn.recv(2), "big")
            body = b""
            while len(body) < length:
                body += conn.recv(length - len(body))
            request = codec.decode(frame.split_body(body).iso)
            for reply in answer(request):
                conn.sendall(reply)
            conn.recv(1)   # hold the connection until the client closes it
        srv.close()

    threading.Thread(target=run, daemon=True).start()
    return srv.getsockname()[1]


def _reply(request, **changes):
    fields = {"t": codec.reply_mti(request["t"]), "11": request["11"], "41": request["41"],
              "39": "00", **changes}
    return frame.wrap(codec.encode(fields), frame.swap_tpdu(TPDU), HEADER)


def _request():
    doc = message.build(TxnType.ECHO, IDS, stan=77, batch=1)
    return doc, codec.encode(doc)


def _accept(doc):
    return lambda r: r["t"] == codec.reply_mti(doc["t"]) and r["11"] == doc["11"]


def test_replies_that_do_not_match_are_discarded_and_the_matching_one_is_returned():
    doc, raw = _request()
    port = _serve_once(lambda req: [
        b"\x00\x05garbg",                                   # malformed
        _reply(req, **{"11": "000078"}),                     # wrong STAN
        _reply(req, t="0210"),                               # wrong MTI
        _reply(req, **{"39": "00", "37": "123456789012"}),   # the one
    ])
    link = HostLink(LinkConfig("127.0.0.1", port, TPDU, HEADER, 2, 2))
    try:
        reply = codec.decode(link.exchange(raw, _accept(doc)))
    finally:
        link.close()
    assert reply["37"] == "123456789012" and reply["11"] == "000077"


def test_no_reply_in_time_is_a_host_timeout():
    doc, raw = _request()
    port = _serve_once(lambda req: [])
    link = HostLink(LinkConfig("127.0.0.1", port, TPDU, HEADER, 2, 0.3))
    with pytest.raises(HostTimeout, match="no reply from host within 0.3 s"):
        link.exchange(raw, _accept(doc))


def test_a_closed_port_is_unreachable_and_nothing_is_sent():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    link = HostLink(LinkConfig("127.0.0.1", port, TPDU, HEADER, 1, 1))
    with pytest.raises(HostUnreachable, match=f"127.0.0.1:{port} unreachable"):
        link.exchange(_request()[1], lambda r: True)
