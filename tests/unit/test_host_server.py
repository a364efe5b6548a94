"""posterm-host over a real TCP socket: a subprocess on port 0 with a provisioned terminal.

The test plays the terminal with the shared dialect (sync.message / codec / frame /
crypto) and builds PIN blocks by hand, the way a PIN pad would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host.ledger import Ledger
from sync import codec, crypto, frame, message
from sync.txntypes import TxnType

ROOT = Path(__file__).resolve().parents[2]
TID, MID = "12345678", "898110048990001"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TPDU = bytes.fromhex("6000030000")
HEADER = bytes.fromhex("603100311003")
IDS = message.TerminalIds(TID, MID)

GOOD = "6226090000000048"        # unionpay-debit-chip
SWIPE = "6250940000000019"       # unionpay-credit-swipe
DECLINE_51 = "6226090000000113"
WRONG_PIN = "6226090000000121"
EXPIRED = "6226090000000139"
SILENT = "6226090000000147"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def provision(hostdir: Path, terminal_id: str = TID, tmk: bytes = TMK,
              replace: bool = False) -> subprocess.CompletedProcess[str]:
    request = {"terminal_id": terminal_id, "merchant_id": MID, "merchant_name": "Test Shop",
               "tmk": tmk.hex().upper(), "replace": replace}
    return subprocess.run([sys.executable, "-m", "host", "provision", "--data", str(hostdir)],
                          input=json.dumps(request), capture_output=True, text=True,
                          env=_env(), cwd=ROOT, timeout=30)


def log_path(hostdir: Path) -> Path:
    return hostdir.with_name(hostdir.name + ".log")


def start_host(hostdir: Path, *extra: str) -> tuple[subprocess.Popen[str], int]:
    """Run posterm-host on a free port; its log goes to log_path(hostdir)."""
    with log_path(hostdir).open("a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "host", "--data", str(hostdir), "--listen", "127.0.0.1:0",
             *extra], stdout=subprocess.PIPE, stderr=log, text=True, env=_env(), cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    prefix = "posterm-host listening on 127.0.0.1:"
    assert line.startswith(prefix), (line, log_path(hostdir).read_text())
    return proc, int(line[len(prefix):])


def stop_host(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    finally:
        if proc.stdout:
            proc.stdout.close()


def pin_block(pin: str, pan: str, pik: bytes) -> bytes:
    """ISO 9564 format 0, built by hand: 0 + length + PIN + F-pad XOR 0000 + 12 PAN digits."""
    pin_field = bytes.fromhex(("0" + f"{len(pin):X}" + pin).ljust(16, "F"))
    pan_field = bytes.fromhex("0000" + pan[:-1][-12:])
    return crypto.encrypt(pik, bytes(a ^ b for a, b in zip(pin_field, pan_field)))


class Terminal:
    """A terminal's side of the link: one TCP connection for many messages."""

    def __init__(self, port: int, terminal_id: str = TID, tmk: bytes = TMK,
                 mac_algorithm: str = "ecb"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.ids = message.TerminalIds(terminal_id, MID)
        self.tmk = tmk
        self.mac_algorithm = mac_algorithm
        self.pik: bytes | None = None
        self.mak: bytes | None = None
        self.batch = 1
        self.last_raw = b""

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, iso: bytes, timeout: float = 5.0) -> dict[str, str] | None:
        self.sock.sendall(frame.wrap(iso, TPDU, HEADER))
        self.sock.settimeout(timeout)
        try:
            head = self._read(2)
        except TimeoutError:
            return None
        body = self._read(int.from_bytes(head, "big"))
        parts = frame.split_body(body)
        assert parts.tpdu == frame.swap_tpdu(TPDU)
        assert parts.header == HEADER
        self.last_raw = parts.iso
        return codec.decode(parts.iso)

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("host closed the connection")
            data += chunk
        return data

    def send(self, fields: dict[str, str], *, mak: bytes | None = None,
             timeout: float = 5.0) -> dict[str, str] | None:
        key = mak if mak is not None else self.mak
        if fields["t"] == "0800":
            key = None
        return self.send_raw(message.encode_with_mac(fields, self.mac_algorithm, key), timeout)

    def sign_on(self) -> dict[str, str]:
        reply = self.send(message.build(TxnType.SIGN_ON, self.ids, stan=1, batch=self.batch,
                                        fields={"63": "001"}))
        assert reply is not None and reply["39"] == "00", reply
        keys = bytes.fromhex(reply["62"])
        self.pik = crypto.unwrap_working_key(self.tmk, keys[:16], keys[16:20], "PIK")
        self.mak = crypto.unwrap_working_key(self.tmk, keys[20:36], keys[36:40], "MAK")
        self.batch = int(reply["60"][2:8])
        return reply

    def sale_fields(self, stan: int, pan: str = GOOD, amount: int = 1234, *,
                    pin: str | None = "123456", track: bool = False,
                    expiry: str = "3012") -> dict[str, str]:
        fields: dict[str, object] = {"4": amount, "14": expiry, "22": "051", "23": "001",
                                     "26": "12"}
        if track:
            fields.pop("14")
            fields.update({"35": f"{pan}={expiry}1010000000000", "22": "021"})
        else:
            fields["2"] = pan
        if pin is not None:
            assert self.pik is not None
            fields.update({"52": pin_block(pin, pan, self.pik).hex(),
                           "53": "2600000000000000"})
        return message.build(TxnType.SALE, self.ids, stan=stan, batch=self.batch, fields=fields)

    def sale(self, stan: int, pan: str = GOOD, amount: int = 1234, *, timeout: float = 5.0,
             **kw: object) -> dict[str, str] | None:
        return self.send(self.sale_fields(stan, pan, amount, **kw),  # type: ignore[arg-type]
                         timeout=timeout)

    def reversal(self, sale: dict[str, str], reason: str = "98") -> dict[str, str] | None:
        fields = {k: v for k, v in sale.items()
                  if k not in ("26", "35", "36", "52", "53", "64")}
        fields.update({"t": "0400", "39": reason})
        return self.send(fields)


@pytest.fixture(scope="module")
def hostdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("host") / "hostdir"   # absent: the host creates it
    result = provision(path)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def host(hostdir: Path):
    proc, port = start_host(hostdir)
    yield port
    assert stop_host(proc) == 0
    log = log_path(hostdir).read_text()
    assert " 0200 sale " in log and "Traceback" not in log
    for pan in (GOOD, SWIPE, DECLINE_51, WRONG_PIN, EXPIRED, SILENT):
        assert pan not in log


@pytest.fixture()
def terminal(host: int):
    term = Terminal(host)
    term.sign_on()
    yield term
    term.close()


_stans = iter(range(100, 1_000_000))


def next_stan() -> int:
    return next(_stans)


def recorded(hostdir: Path, stan: int) -> list[dict]:
    with Ledger.open(hostdir) as ledger:
        return [t for t in ledger.transactions(TID) if t["stan"] == stan]


def test_sign_on_delivers_pik_and_mak_whose_check_values_verify_under_the_tmk(host: int) -> None:
    term = Terminal(host)
    try:
        reply = term.sign_on()           # unwrap_working_key raises if a KCV does not match
    finally:
        term.close()
    assert reply["t"] == "0810"
    assert reply["60"] == "00000001003"
    assert len(bytes.fromhex(reply["62"])) == 40
    assert "64" not in reply
    assert term.pik != term.mak


def test_sale_with_the_right_pin_is_approved_echoed_maced_and_recorded(
        terminal: Terminal, hostdir: Path) -> None:
    stan = next_stan()
    request = terminal.sale_fields(stan, GOOD, 1234)
    reply = terminal.send(request)
    request = codec.decode(codec.encode(request))     # as on the wire (zero-padded)
    assert reply is not None
    assert reply["t"] == "0210" and reply["39"] == "00"
    assert len(reply["37"]) == 12 and reply["37"].isdigit()
    assert len(reply["38"]) == 6 and reply["38"].isdigit()
    for field in ("2", "3", "4", "11", "25", "41", "42", "49", "60"):
        assert reply[field] == request[field], field
    assert len(reply["12"]) == 6 and len(reply["13"]) == 4 and len(reply["15"]) == 4
    message.verify_mac(terminal.last_raw, "ecb", terminal.mak)
    [row] = recorded(hostdir, stan)
    assert row["state"] == "approved" and row["response_code"] == "00"
    assert (row["rrn"], row["auth_code"]) == (reply["37"], reply["38"])
    assert row["amount"] == 1234 and row["txn_type"] == "sale" and row["mti"] == "0200"
    assert row["pan_masked"] == "622609******0048"
    assert row["pan_hash"] and GOOD not in row["pan_hash"]
    assert row["settlement_date"] == reply["15"]


def test_swiped_card_is_read_from_track_2(terminal: Terminal) -> None:
    reply = terminal.sale(next_stan(), SWIPE, 500, track=True)
    assert reply is not None and reply["39"] == "00"


def test_rrns_are_unique(terminal: Terminal) -> None:
    rrns = {terminal.sale(next_stan(), GOOD, 100)["37"] for _ in range(5)}  # type: ignore[index]
    assert len(rrns) == 5


@pytest.mark.parametrize("pan, pin", [(WRONG_PIN, "654321"), (GOOD, "111111")])
def test_wrong_pin_is_declined_55_by_checking_the_pin_block(
        terminal: Terminal, hostdir: Path, pan: str, pin: str) -> None:
    stan = next_stan()
    reply = terminal.sale(stan, pan, 100, pin=pin)
    assert reply is not None and reply["39"] == "55" and "38" not in reply
    [row] = recorded(hostdir, stan)
    assert row["state"] == "declined" and row["auth_code"] is None


def test_wrong_pin_card_with_the_issuer_pin_is_approved(terminal: Terminal) -> None:
    reply = terminal.sale(next_stan(), WRONG_PIN, 100, pin="123456")
    assert reply is not None and reply["39"] == "00"


@pytest.mark.parametrize("pan, amount, expiry, code", [
    (DECLINE_51, 100, "3012", "51"),
    (EXPIRED, 100, "2101", "54"),
    (GOOD, 100, "2001", "54"),            # F14 before this month
    ("6226091234567890", 100, "3012", "14"),
    (GOOD, 0, "3012", "13"),
    (GOOD, 100_000_001, "3012", "61"),
])
def test_issuer_declines(terminal: Terminal, pan: str, amount: int, expiry: str,
                         code: str) -> None:
    reply = terminal.sale(next_stan(), pan, amount, expiry=expiry)
    assert reply is not None and reply["39"] == code
    message.verify_mac(terminal.last_raw, "ecb", terminal.mak)


def test_host_silent_card_gets_no_reply_and_its_reversal_is_answered(
        terminal: Terminal, hostdir: Path) -> None:
    stan = next_stan()
    sale = terminal.sale_fields(stan, SILENT, 777)
    assert terminal.send(sale, timeout=1.0) is None
    reply = terminal.reversal(sale, "98")
    assert reply is not None and reply["t"] == "0410" and reply["39"] == "00"
    message.verify_mac(terminal.last_raw, "ecb", terminal.mak)
    [row] = recorded(hostdir, stan)
    assert row["state"] == "reversed" and row["reversal_reason"] == "98"
    again = terminal.reversal(sale, "06")
    assert again is not None and again["39"] == "00"
    [row] = recorded(hostdir, stan)
    assert row["state"] == "reversed" and row["reversal_reason"] == "98"


def test_reversal_of_an_approved_sale_marks_it_reversed(terminal: Terminal,
                                                        hostdir: Path) -> None:
    stan = next_stan()
    sale = terminal.sale_fields(stan, GOOD, 4321)
    assert terminal.send(sale)["39"] == "00"  # type: ignore[index]
    assert terminal.reversal(sale, "06")["39"] == "00"  # type: ignore[index]
    [row] = recorded(hostdir, stan)
    assert (row["state"], row["reversal_reason"]) == ("reversed", "06")


def test_reversal_of_an_unknown_transaction_is_25(terminal: Terminal) -> None:
    sale = terminal.sale_fields(next_stan(), GOOD, 100)
    assert terminal.reversal(sale)["39"] == "25"  # type: ignore[index]


def test_bad_mac_is_answered_a0_and_not_recorded(terminal: Terminal, hostdir: Path) -> None:
    stan = next_stan()
    reply = terminal.send(terminal.sale_fields(stan, GOOD, 100), mak=bytes(16))
    assert reply is not None and reply["39"] == "A0"
    assert recorded(hostdir, stan) == []


def test_request_without_a_mac_is_answered_a0(terminal: Terminal, hostdir: Path) -> None:
    stan = next_stan()
    reply = terminal.send_raw(codec.encode(terminal.sale_fields(stan, GOOD, 100)))
    assert reply is not None and reply["39"] == "A0"
    assert recorded(hostdir, stan) == []


def test_duplicate_stan_is_94_without_a_second_record(terminal: Terminal,
                                                      hostdir: Path) -> None:
    stan = next_stan()
    assert terminal.sale(stan, GOOD, 100)["39"] == "00"  # type: ignore[index]
    assert terminal.sale(stan, GOOD, 100)["39"] == "94"  # type: ignore[index]
    assert len(recorded(hostdir, stan)) == 1


def test_unknown_terminal_is_97(host: int) -> None:
    term = Terminal(host, terminal_id="87654321")
    try:
        reply = term.send(message.build(TxnType.SIGN_ON, term.ids, stan=1, batch=1))
    finally:
        term.close()
    assert reply is not None and reply["39"] == "97"


def test_echo_test_is_00(terminal: Terminal) -> None:
    reply = terminal.send(message.build(TxnType.ECHO, terminal.ids, stan=next_stan(), batch=1))
    assert reply is not None and (reply["t"], reply["39"]) == ("0830", "00")
    message.verify_mac(terminal.last_raw, "ecb", terminal.mak)


def test_unsupported_transaction_is_40(terminal: Terminal) -> None:
    # A transfer (processing code 40xxxx) is in no row of the transaction table.
    fields = message.build(TxnType.SALE, terminal.ids, stan=next_stan(), batch=1,
                           fields={"2": GOOD, "3": "400000", "4": 100})
    assert terminal.send(fields)["39"] == "40"  # type: ignore[index]


def test_sign_on_again_replaces_the_mak(host: int) -> None:
    term = Terminal(host)
    try:
        term.sign_on()
        old = term.mak
        term.sign_on()
        reply = term.send(message.build(TxnType.ECHO, term.ids, stan=2, batch=1), mak=old)
        assert reply is not None and reply["39"] == "A0"
    finally:
        term.close()


@pytest.mark.parametrize("iso", [
    b"\x02\x00" + b"\xff" * 20,                      # bit 1: a secondary bitmap
    b"\x02\x00" + bytes.fromhex("2000000000000000") + b"\x00",   # F3 cut short
    b"\x02\x10" + bytes(8),                            # a reply MTI, not a request
])
def test_malformed_message_drops_the_connection(host: int, iso: bytes) -> None:
    term = Terminal(host)
    try:
        with pytest.raises(ConnectionError):
            term.send_raw(iso)
    finally:
        term.close()
    again = Terminal(host)                      # the host still serves others
    try:
        assert again.sign_on()["39"] == "00"
    finally:
        again.close()


def test_no_clear_pan_in_the_host_database_files(terminal: Terminal, hostdir: Path) -> None:
    pans = [GOOD, SWIPE, DECLINE_51, WRONG_PIN, SILENT]
    for pan in pans:
        terminal.sale(next_stan(), pan, 100, timeout=0.3)
    files = [p for p in hostdir.iterdir() if p.name.startswith("host.db")]
    assert any(p.name == "host.db-wal" for p in files)
    for path in files:
        data = path.read_bytes()
        for pan in pans:
            assert pan.encode() not in data, (path.name, pan)
            assert bytes.fromhex(pan) not in data, (path.name, pan)
            assert pan[:-1][-12:].encode() not in data, (path.name, pan)


def test_x919_mac_is_configurable(tmp_path: Path) -> None:
    assert provision(tmp_path).returncode == 0
    proc, port = start_host(tmp_path, "--mac", "x919")
    try:
        term = Terminal(port, mac_algorithm="x919")
        term.sign_on()
        reply = term.sale(1, GOOD, 100)
        assert reply is not None and reply["39"] == "00"
        message.verify_mac(term.last_raw, "x919", term.mak)
        forged = term.send(term.sale_fields(2, GOOD, 100), mak=bytes(16))
        assert forged is not None and forged["39"] == "A0"
        term.close()
    finally:
        assert stop_host(proc) == 0


def test_sigint_stops_the_host_cleanly(tmp_path: Path) -> None:
    proc, _ = start_host(tmp_path)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    proc.stdout.close()  # type: ignore[union-attr]
    assert "Traceback" not in log_path(tmp_path).read_text()


def test_sigterm_with_a_terminal_still_connected_exits_0(tmp_path: Path) -> None:
    assert provision(tmp_path).returncode == 0
    proc, port = start_host(tmp_path)
    term = Terminal(port)
    try:
        term.sign_on()
        started = time.monotonic()
        assert stop_host(proc) == 0
        assert time.monotonic() - started < 5
    finally:
        term.close()


def test_log_lines_never_hold_a_clear_pan() -> None:
    from host.redaction import redact
    assert redact("card 6226090000000048 stan 000001") == "card 622609******0048 stan 000001"
    assert redact("amount 000000001234 rrn 000000000001") == \
        "amount 000000001234 rrn 000000000001"
