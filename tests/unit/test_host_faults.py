"""posterm-host's fault knobs, seen from the terminal's side of a real TCP connection.

The host runs as a subprocess with a control port; each test adds its rules over that port
and the autouse fixture clears them. The client is the terminal's own link
(``sync.link.HostLink``) and dialect (``sync.message`` / ``codec`` / ``crypto``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from host import control
from host.faults import Fault, FaultSpecError, FaultTable, parse_rule
from host.ledger import Ledger
from sync import codec, crypto, message
from sync.errors import HostTimeout, MacError
from sync.link import HostLink, LinkConfig
from sync.txntypes import TxnType

ROOT = Path(__file__).resolve().parents[2]
TID, MID = "12345678", "898110048990001"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TPDU, HEADER = bytes.fromhex("6000030000"), bytes.fromhex("602200000000")
IDS = message.TerminalIds(TID, MID)
GOOD = "6226090000000048"        # unionpay-debit-chip
SWIPE = "6250940000000019"       # unionpay-credit-swipe
VISA = "4761739001010010"        # visa-chip
SHORT = 0.3                      # s: how long a client waits for a reply that never comes


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def run_host(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "host", *args], input=stdin, check=False,
                          capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=30)


class RunningHost:
    """posterm-host on free ports with a control port; its log in a file beside HOSTDIR."""

    def __init__(self, hostdir: Path, *extra: str):
        self.log = hostdir.with_name(hostdir.name + ".log")
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "host", "--data", str(hostdir), "--listen", "127.0.0.1:0",
                 "--control", "127.0.0.1:0", *extra],
                stdout=subprocess.PIPE, stderr=log, text=True, env=_env(), cwd=ROOT)
        assert self.proc.stdout is not None
        self.port = self._port("posterm-host listening on 127.0.0.1:")
        self.control_port = self._port("posterm-host control on 127.0.0.1:")

    def _port(self, prefix: str) -> int:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith(prefix), (line, self.log.read_text())
        return int(line[len(prefix):])

    def control(self, line: str):
        return control.send("127.0.0.1", self.control_port, line)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()


class Client:
    """The terminal's side: HostLink over TCP, requests built and MACed by the dialect."""

    def __init__(self, port: int, timeout: float = SHORT):
        self.link = HostLink(LinkConfig("127.0.0.1", port, TPDU, HEADER, connect_timeout=2,
                                        response_timeout=timeout))
        self.mak: bytes | None = None
        self.batch = 1

    def close(self) -> None:
        self.link.close()

    def exchange(self, fields: dict[str, str],
                 accept: Callable[[dict[str, str]], bool] | None = None) -> bytes:
        """The raw ISO reply; the default accept is the terminal's: reply MTI, STAN, TID."""
        key = None if fields["t"] == "0800" else self.mak
        raw = message.encode_with_mac(fields, "ecb", key)
        sent = codec.decode(codec.encode(fields))
        accept = accept or (lambda r: r["t"] == codec.reply_mti(sent["t"])
                            and r.get("11") == sent["11"] and r.get("41") == sent["41"])
        return self.link.exchange(raw, accept)

    def sign_on(self) -> None:
        reply = codec.decode(self.exchange(
            message.build(TxnType.SIGN_ON, IDS, stan=1, batch=1, fields={"63": "001"})))
        assert reply["39"] == "00", reply
        keys = bytes.fromhex(reply["62"])
        self.mak = crypto.unwrap_working_key(TMK, keys[20:36], keys[36:40], "MAK")
        self.batch = int(reply["60"][2:8])

    def sale_fields(self, stan: int, pan: str = GOOD, amount: int = 1234) -> dict[str, str]:
        return message.build(TxnType.SALE, IDS, stan=stan, batch=self.batch, fields={
            "2": pan, "4": amount, "14": "3012", "22": "052", "23": "001"})

    def sale(self, stan: int, pan: str = GOOD, amount: int = 1234) -> bytes:
        return self.exchange(self.sale_fields(stan, pan, amount))

    def echo(self, stan: int) -> bytes:
        return self.exchange(message.build(TxnType.ECHO, IDS, stan=stan, batch=self.batch))

    def mac_ok(self, raw: bytes) -> bool:
        assert self.mak is not None
        try:
            message.verify_mac(raw, "ecb", self.mak)
        except MacError:
            return False
        return True


def provision(hostdir: Path) -> None:
    request = {"terminal_id": TID, "merchant_id": MID, "merchant_name": "Fault Shop",
               "tmk": TMK.hex().upper()}
    result = run_host("provision", "--data", str(hostdir), stdin=json.dumps(request))
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def hostdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "hostdir"
    provision(path)
    return path


@pytest.fixture(scope="module")
def host(hostdir: Path) -> Iterator[RunningHost]:
    running = RunningHost(hostdir, "--seed", "1")
    yield running
    assert running.stop() == 0
    log = running.log.read_text()
    assert "Traceback" not in log
    assert "fault corrupt-mac (rule " in log and "card 622609******0048" in log
    for pan in (GOOD, SWIPE, VISA):
        assert pan not in log


@pytest.fixture(autouse=True)
def no_rules_left(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "host" in request.fixturenames:
        request.getfixturevalue("host").control("fault clear")


@pytest.fixture()
def client(host: RunningHost) -> Iterator[Client]:
    term = Client(host.port)
    term.sign_on()
    yield term
    term.close()


_stans = iter(range(100, 1_000_000))


def next_stan() -> int:
    return next(_stans)


def recorded(hostdir: Path, stan: int) -> list[dict]:
    with Ledger.open(hostdir) as ledger:
        return [t for t in ledger.transactions(TID) if t["stan"] == stan]


# -- each fault kind, observed by the terminal ---------------------------------------------

def test_drop_gives_no_reply_though_the_host_approved_and_recorded_the_sale(
        host: RunningHost, client: Client, hostdir: Path) -> None:
    host.control("fault add drop:mti=0200")
    before = host.control("stats")
    stan = next_stan()
    with pytest.raises(HostTimeout, match="no reply"):
        client.sale(stan)
    [row] = recorded(hostdir, stan)
    assert (row["state"], row["response_code"]) == ("approved", "00")
    assert client.mac_ok(client.echo(next_stan()))        # matched by MTI: 0820 untouched
    after = host.control("stats")
    assert after["faults"]["drop"] == before["faults"]["drop"] + 1
    assert after["messages"] == before["messages"] + 2


def test_delay_holds_the_reply_for_at_least_the_delay(host: RunningHost) -> None:
    term = Client(host.port, timeout=5)
    try:
        term.sign_on()
        host.control("fault add delay:mti=0200:ms=400")
        started = time.monotonic()
        reply = term.sale(next_stan())
        assert time.monotonic() - started >= 0.4
        assert codec.decode(reply)["39"] == "00" and term.mac_ok(reply)
        started = time.monotonic()
        term.echo(next_stan())
        assert time.monotonic() - started < 0.4
    finally:
        term.close()


def test_corrupt_mac_by_pan_fails_the_terminals_mac_check_for_that_card_only(
        host: RunningHost, client: Client) -> None:
    host.control(f"fault add corrupt-mac:card={GOOD}")
    reply = client.sale(next_stan(), GOOD)
    assert codec.decode(reply)["39"] == "00"
    with pytest.raises(MacError):
        message.verify_mac(reply, "ecb", client.mak)  # type: ignore[arg-type]
    assert client.mac_ok(client.sale(next_stan(), SWIPE))
    assert client.mac_ok(client.echo(next_stan()))


def test_close_closes_the_connection_without_a_reply_after_recording(
        host: RunningHost, client: Client, hostdir: Path) -> None:
    host.control("fault add close:mti=0200")
    stan = next_stan()
    with pytest.raises(HostTimeout, match="connection lost"):
        client.sale(stan)
    [row] = recorded(hostdir, stan)
    assert row["state"] == "approved"
    assert client.mac_ok(client.echo(next_stan()))       # the link reconnects


def test_duplicate_sends_two_identical_replies(host: RunningHost, client: Client) -> None:
    host.control("fault add duplicate:mti=0820")
    stan = next_stan()
    seen: list[dict[str, str]] = []

    def second(reply: dict[str, str]) -> bool:
        seen.append(reply)
        return len(seen) == 2

    raw = client.exchange(message.build(TxnType.ECHO, IDS, stan=stan, batch=client.batch),
                          accept=second)
    assert seen[0] == seen[1] and seen[0]["11"] == f"{stan:06d}"
    assert client.mac_ok(raw)


def test_wrong_stan_reply_is_discarded_by_the_link_which_times_out(
        host: RunningHost, client: Client, hostdir: Path) -> None:
    host.control("fault add wrong-stan:mti=0200")
    stan = next_stan()
    seen: list[dict[str, str]] = []

    def terminal_accept(reply: dict[str, str]) -> bool:
        seen.append(reply)
        return reply["t"] == "0210" and reply["11"] == f"{stan:06d}"

    with pytest.raises(HostTimeout, match="no reply"):
        client.exchange(client.sale_fields(stan), accept=terminal_accept)
    [reply] = seen
    assert reply["11"] == f"{stan + 1:06d}" and reply["39"] == "00"
    [row] = recorded(hostdir, stan)
    assert row["state"] == "approved"


# -- matching, expiry, rate ----------------------------------------------------------------

def test_card_by_test_card_profile_name_and_count_expiry(host: RunningHost,
                                                         client: Client) -> None:
    added = host.control("fault add corrupt-mac:card=visa-chip:count=2")
    assert added["rule"] == "corrupt-mac:card=visa-chip:count=2"
    assert not client.mac_ok(client.sale(next_stan(), VISA))
    assert client.mac_ok(client.sale(next_stan(), GOOD))     # another card: untouched
    [rule] = host.control("fault list")
    assert (rule["id"], rule["left"]) == (added["id"], 1)
    assert not client.mac_ok(client.sale(next_stan(), VISA))
    assert host.control("fault list") == []                   # used up
    assert client.mac_ok(client.sale(next_stan(), VISA))


def test_first_matching_rule_acts_and_a_sign_on_reply_has_no_mac_to_corrupt(
        host: RunningHost, client: Client) -> None:
    host.control("fault add corrupt-mac:count=1")
    host.control("fault add duplicate:mti=0820:count=1")
    client.sign_on()                                   # 0810 has no MAC: not a match
    assert [r["left"] for r in host.control("fault list")] == [1, 1]
    assert not client.mac_ok(client.echo(next_stan()))   # corrupt-mac first, duplicate waits
    [left] = host.control("fault list")
    assert left["fault"] == "duplicate"


def _corruption_pattern(hostdir: Path, seed: str, n: int = 16) -> tuple[list[bool], dict]:
    running = RunningHost(hostdir, "--seed", seed, "--fault", "corrupt-mac:mti=0820:rate=0.5")
    try:
        term = Client(running.port)
        term.sign_on()
        pattern = [term.mac_ok(term.echo(next_stan())) for _ in range(n)]
        term.close()
        stats = running.control("stats")
    finally:
        assert running.stop() == 0
    return pattern, stats


def test_rate_half_with_a_seed_gives_a_reproducible_pattern(hostdir: Path) -> None:
    first, stats = _corruption_pattern(hostdir, "7")
    again, _ = _corruption_pattern(hostdir, "7")
    assert first == again
    assert True in first and False in first
    assert stats["seed"] == 7 and stats["faults"]["corrupt-mac"] == first.count(False)
    assert stats["messages"] == 17                         # the sign-on and 16 echoes


def test_fault_table_draws_are_a_function_of_the_seed() -> None:
    def picks(seed: int) -> list[bool]:
        table = FaultTable(seed=seed)
        table.add(parse_rule("drop:rate=0.5"))
        return [table.pick("0200", GOOD, has_mac=True) is not None for _ in range(64)]

    assert picks(7) == picks(7)
    assert picks(7) != picks(8)
    assert 16 < sum(picks(7)) < 48


# -- the control port and its CLI ----------------------------------------------------------

def test_control_line_protocol_answers_one_line_per_command(host: RunningHost) -> None:
    commands = ["fault add drop:mti=0500:rate=0.25", "fault list", "stats", "fault add nope",
                "fault clear", "fault list", "frobnicate"]
    with socket.create_connection(("127.0.0.1", host.control_port), timeout=5) as sock:
        sock.sendall("".join(c + "\n" for c in commands).encode())
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    lines = data.decode().splitlines()
    assert len(lines) == len(commands)
    added = json.loads(lines[0].removeprefix("ok "))
    assert added["rule"] == "drop:mti=0500:rate=0.25"
    [listed] = json.loads(lines[1].removeprefix("ok "))
    assert (listed["id"], listed["fault"], listed["mti"], listed["rate"]) == \
        (added["id"], "drop", "0500", 0.25)
    stats = json.loads(lines[2].removeprefix("ok "))
    assert set(stats["faults"]) == {f.label for f in Fault} and stats["seed"] == 1
    assert lines[3].startswith("error unknown fault 'nope'")
    assert json.loads(lines[4].removeprefix("ok ")) == {"cleared": 1}
    assert lines[5] == "ok []"
    assert lines[6].startswith("error unknown command")


def test_cli_client_adds_lists_and_clears_rules_on_a_running_host(host: RunningHost) -> None:
    at = ["fault", "--control", f"127.0.0.1:{host.control_port}"]
    added = run_host(*at, "add", "corrupt-mac:card=unionpay-debit-chip:count=1")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("rule ") and \
        added.stdout.rstrip().endswith(": corrupt-mac:card=unionpay-debit-chip:count=1")
    listed = run_host(*at, "list")
    assert "corrupt-mac:card=unionpay-debit-chip:count=1  (1 left)" in listed.stdout
    stats = json.loads(run_host(*at, "stats").stdout)
    assert {"messages", "faults", "rules", "seed"} <= set(stats) and stats["rules"] == 1
    assert run_host(*at, "clear").stdout == "1 rule(s) cleared\n"
    assert run_host(*at, "list").stdout == "no fault rules\n"


def test_rules_from_flags_are_live_at_start(hostdir: Path) -> None:
    running = RunningHost(hostdir, "--fault", "drop:mti=0200:rate=0.05",
                          "--fault", f"corrupt-mac:card={GOOD}:count=1",
                          "--fault", "delay:mti=0200:ms=3000", "--seed", "5")
    try:
        rules = [r["rule"] for r in running.control("fault list")]
    finally:
        assert running.stop() == 0
    assert rules == ["drop:mti=0200:rate=0.05", "corrupt-mac:card=622609******0048:count=1",
                     "delay:mti=0200:ms=3000"]


# -- rule text -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("drop", (Fault.DROP, None, None, 1.0, None, 0)),
    ("drop:any:rate=0.05", (Fault.DROP, None, None, 0.05, None, 0)),
    ("delay:mti=0200:ms=3000", (Fault.DELAY, None, "0200", 1.0, None, 3000)),
    ("delay:mti=0200:delay_ms=10", (Fault.DELAY, None, "0200", 1.0, None, 10)),
    (f"corrupt-mac:card={GOOD}:count=1", (Fault.CORRUPT_MAC, GOOD, None, 1.0, 1, 0)),
    ("close:card=host-silent:mti=0400", (Fault.CLOSE, "6226090000000147", "0400", 1.0, None, 0)),
    ("duplicate:mti=0500:rate=1", (Fault.DUPLICATE, None, "0500", 1.0, None, 0)),
    ("wrong-stan:rate=0:count=3", (Fault.WRONG_STAN, None, None, 0.0, 3, 0)),
])
def test_rule_text_parses(text: str, expected: tuple) -> None:
    rule = parse_rule(text)
    assert (rule.fault, rule.card, rule.mti, rule.rate, rule.count, rule.delay_ms) == expected


@pytest.mark.parametrize("text, says", [
    ("", "empty fault rule"),
    ("explode", "unknown fault 'explode'"),
    ("drop:mti=210", "mti=210 is not a request MTI"),
    ("drop:mti=0210", "mti=0210 is not a request MTI"),
    ("drop:card=nobody", "card=nobody is neither a PAN"),
    ("drop:rate=1.5", "rate=1.5 is not a number from 0 to 1"),
    ("drop:rate=half", "rate=half is not a number"),
    ("drop:count=0", "count=0 is not a whole number of at least 1"),
    ("delay:mti=0200", "delay needs ms="),
    ("delay:ms=-5", "ms=-5 is not a whole number"),
    ("drop:ms=5", "ms= is only for delay"),
    ("drop:mti", "'mti' is not KEY=VALUE"),
    ("drop:colour=red", "unknown option 'colour'"),
    ("drop:mti=0200:mti=0400", "mti given twice"),
    ("drop:any:mti=0200", "'any' cannot be combined"),
])
def test_bad_rule_text_is_one_line_naming_the_problem(text: str, says: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_rule(text)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_bad_fault_flag_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    result = run_host("--data", str(tmp_path), "--fault", "drop:rate=2")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "posterm-host: --fault: fault rule 'drop:rate=2': rate=2 is not a number from 0 to 1"]
    assert not (tmp_path / "host.db").exists()              # refused before opening anything


@pytest.mark.parametrize("args, code, says", [
    (["add", "drop:mti=02x0"], 2, "mti=02x0 is not a request MTI"),
    (["add"], 2, "fault add needs a rule"),
    (["list", "extra"], 2, "takes no argument"),
])
def test_cli_client_errors_are_one_line(host: RunningHost, args: list[str], code: int,
                                        says: str) -> None:
    result = run_host("fault", "--control", f"127.0.0.1:{host.control_port}", *args)
    assert result.returncode == code and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and says in result.stderr


def test_control_port_must_be_loopback_and_reachable() -> None:
    remote = run_host("fault", "--control", "192.0.2.1:9999", "list")
    assert remote.returncode == 2 and "loopback only" in remote.stderr
    with socket.socket() as sock:                   # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gone = run_host("fault", "--control", f"127.0.0.1:{port}", "stats")
    assert gone.returncode == 1 and len(gone.stderr.splitlines()) == 1
    assert "cannot reach the control port" in gone.stderr
