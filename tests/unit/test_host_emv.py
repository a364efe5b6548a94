"""posterm-host verifies the chip's ARQC in field 55 and answers an ARPC, over real TCP.

The host runs as a subprocess on port 0 with a provisioned terminal; the test plays the
terminal with the shared dialect. ARQCs are built two ways: independently with pyemv from
the contract in docs/cards.md, and by the card emulator itself (the host must verify what
the card computes, and the card must accept the host's ARPC).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyemv.ac
import pyemv.kd
import pyemv.tlv
import pytest

from drivers.cardsim import CardApplet
from hal.testcards import test_card
from host.ledger import Ledger
from sync import codec, crypto, frame, message
from sync.txntypes import TxnType

ROOT = Path(__file__).resolve().parents[2]
TID, MID = "12345678", "898110048990001"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
IMK_AC = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # docs/cards.md: public test key
TPDU, HEADER = bytes.fromhex("6000030000"), bytes.fromhex("603100311003")
GOOD = "6226090000000048"        # unionpay-debit-chip
DECLINE_51 = "6226090000000113"

# The chip data a terminal sends (issue 4 item 5), before 9F26/9F36/9F10/82 are added.
TERMINAL_DATA = {
    "9F02": "000000001234", "9F03": "000000000000", "9F1A": "0156", "95": "8000048000",
    "5F2A": "0156", "9A": "260315", "9C": "00", "9F37": "1A2B3C4D", "9F27": "80",
    "9F33": "E0F8C8", "9F34": "420300", "9F35": "22", "84": "A000000333010101",
}


_STANS = iter(range(500, 1_000_000))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def ccd_iad(cvr: str = "A030000000") -> bytes:
    return bytes.fromhex("0FA501" + cvr + "00" * 8 + "0F" + "00" * 15)


def session_key(pan: str, psn: str, atc: bytes) -> bytes:
    return pyemv.kd.derive_common_sk(pyemv.kd.derive_icc_mk_a(IMK_AC, pan, psn), atc + bytes(6))


def chip_data(pan: str, *, psn: str = "01", atc: int = 7, aip: str = "1800",
              iad: bytes | None = None) -> dict[str, str]:
    """Field 55's tags with an ARQC computed here, with pyemv, from the contract."""
    iad = iad or ccd_iad()
    cvr = iad[3:8] if iad[:2] == b"\x0f\xa5" else iad[3:7]
    tags = {**TERMINAL_DATA, "82": aip, "9F36": f"{atc:04X}", "9F10": iad.hex().upper()}
    data = b"".join(bytes.fromhex(tags[t]) for t in
                    ("9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "82", "9F36"))
    arqc = pyemv.ac.generate_ac(session_key(pan, psn, atc.to_bytes(2, "big")), data + cvr)
    return {**tags, "9F26": arqc.hex().upper()}


def f55(tags: dict[str, str]) -> str:
    return pyemv.tlv.encode({t: bytes.fromhex(v) for t, v in tags.items()}).hex().upper()


class Terminal:
    """The terminal's side of one TCP connection: sign on, then MACed sales."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.ids = message.TerminalIds(TID, MID)
        self.batch, self.mak, self.stan = 1, b"", 0
        self.last_raw = b""

    def send(self, fields: dict[str, str], key: bytes | None) -> dict[str, str]:
        self.sock.sendall(frame.wrap(message.encode_with_mac(fields, "ecb", key), TPDU, HEADER))
        head = self._read(2)
        parts = frame.split_body(self._read(int.from_bytes(head, "big")))
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

    def sign_on(self) -> None:
        reply = self.send(message.build(TxnType.SIGN_ON, self.ids, stan=1, batch=self.batch,
                                        fields={"63": "001"}), None)
        assert reply["39"] == "00", reply
        keys = bytes.fromhex(reply["62"])
        self.mak = crypto.unwrap_working_key(TMK, keys[20:36], keys[36:40], "MAK")
        self.batch = int(reply["60"][2:8])

    def chip_sale(self, pan: str, icc: str | None, *, amount: int = 1234,
                  psn: str = "001") -> dict[str, str]:
        self.stan = next(_STANS)
        fields: dict[str, object] = {"2": pan, "4": amount, "14": "3012", "22": "052",
                                     "23": psn}
        if icc is not None:
            fields["55"] = icc
        request = message.build(TxnType.SALE, self.ids, stan=self.stan, batch=self.batch,
                                fields=fields)
        reply = self.send(request, self.mak)
        message.verify_mac(self.last_raw, "ecb", self.mak)
        return reply


@pytest.fixture(scope="module")
def hostdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("host") / "hostdir"
    request = {"terminal_id": TID, "merchant_id": MID, "merchant_name": "Test Shop",
               "tmk": TMK.hex().upper(), "replace": False}
    result = subprocess.run([sys.executable, "-m", "host", "provision", "--data", str(path)],
                            input=json.dumps(request), capture_output=True, text=True,
                            env=_env(), cwd=ROOT, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def host(hostdir: Path) -> Iterator[int]:
    log_path = hostdir.with_name("host.log")
    with log_path.open("a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "host", "--data", str(hostdir), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=log, text=True, env=_env(), cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    prefix = "posterm-host listening on 127.0.0.1:"
    assert line.startswith(prefix), (line, log_path.read_text())
    yield int(line[len(prefix):])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    proc.stdout.close()
    text = log_path.read_text()
    assert "ARQC failed" in text and "ARQC verified" in text and "Traceback" not in text
    assert GOOD not in text and DECLINE_51 not in text


@pytest.fixture()
def terminal(host: int) -> Iterator[Terminal]:
    term = Terminal(host)
    term.sign_on()
    yield term
    term.sock.close()


def arpc_of(reply: dict[str, str]) -> tuple[bytes, bytes]:
    """Tag 91 of the reply's field 55, split into ARPC and ARC."""
    issuer = pyemv.tlv.decode(bytes.fromhex(reply["55"]))["91"]
    assert len(issuer) == 10
    return issuer[:8], issuer[8:]


def test_a_valid_arqc_is_approved_with_an_arpc_over_it_and_the_arc(terminal: Terminal) -> None:
    tags = chip_data(GOOD)
    reply = terminal.chip_sale(GOOD, f55(tags))
    assert reply["39"] == "00" and len(reply["38"]) == 6
    arpc, arc = arpc_of(reply)
    assert arc == b"00"
    sk = session_key(GOOD, "01", bytes.fromhex(tags["9F36"]))
    assert arpc == pyemv.ac.generate_arpc_1(sk, bytes.fromhex(tags["9F26"]), b"00")


def test_a_visa_cvn10_arqc_is_verified_too(terminal: Terminal) -> None:
    visa = "4761739001010010"
    reply = terminal.chip_sale(visa, f55(chip_data(visa, iad=bytes.fromhex("06010A03A00000"))))
    assert reply["39"] == "00" and "55" in reply


@pytest.mark.parametrize("tamper", ["9F26", "9F02", "9F37", "9F36", "95", "psn"])
def test_a_tampered_arqc_or_signed_data_is_declined_05_without_an_arpc(
        terminal: Terminal, hostdir: Path, tamper: str) -> None:
    tags = chip_data(GOOD)
    psn = "001"
    if tamper == "psn":
        psn = "002"                               # another application's key
    else:
        value = bytearray(bytes.fromhex(tags[tamper]))
        value[-1] ^= 0x01
        tags[tamper] = value.hex().upper()
    reply = terminal.chip_sale(GOOD, f55(tags), psn=psn)
    assert reply["39"] == "05" and "38" not in reply and "55" not in reply
    with Ledger.open(hostdir) as ledger:
        [row] = [t for t in ledger.transactions(TID) if t["stan"] == terminal.stan]
    assert row["state"] == "declined" and row["response_code"] == "05"


def test_an_issuer_decline_with_a_valid_arqc_still_authenticates_the_issuer(
        terminal: Terminal) -> None:
    tags = chip_data(DECLINE_51)
    reply = terminal.chip_sale(DECLINE_51, f55(tags))
    assert reply["39"] == "51"
    assert arpc_of(reply)[1] == b"51"


def test_field_55_that_is_not_tlv_or_lacks_the_cryptogram_is_a_format_error(
        terminal: Terminal) -> None:
    assert terminal.chip_sale(GOOD, "9F2608AABB")["39"] == "30"
    tags = chip_data(GOOD)
    del tags["9F26"]
    assert terminal.chip_sale(GOOD, f55(tags))["39"] == "30"


def test_a_sale_without_field_55_is_answered_as_before(terminal: Terminal) -> None:
    reply = terminal.chip_sale(GOOD, None)
    assert reply["39"] == "00" and "55" not in reply


@pytest.mark.parametrize("profile", ["unionpay-debit-chip", "visa-chip", "mc-tap",
                                     "unionpay-dual-app", "declines-after-approval"])
def test_the_card_emulators_arqc_verifies_and_the_card_takes_the_hosts_arpc(
        terminal: Terminal, profile: str) -> None:
    card = test_card(profile)
    applet = CardApplet(card)
    run = _CardRun(applet)
    first = run.first_generate_ac()
    icc = {**{t: v.hex().upper() for t, v in run.terminal.items() if t in TERMINAL_DATA},
           "82": run.data["82"].hex().upper(), **{t: v.hex().upper() for t, v in first.items()}}
    reply = terminal.chip_sale(card.pan, f55(icc), psn=f"{run.data['5F34'][0]:03X}")
    assert reply["39"] == "00"
    issuer = pyemv.tlv.decode(bytes.fromhex(reply["55"]))["91"]
    second = run.second_generate_ac(issuer, reply["39"].encode())
    expected = b"\x00" if card.card_decision == "decline-after-approval" else b"\x40"
    assert second["9F27"] == expected


class _CardRun:
    """SELECT, GPO, READ RECORD and GENERATE AC on the card emulator, as a kernel would."""

    def __init__(self, applet: CardApplet) -> None:
        self.applet = applet
        self.terminal = {t: bytes.fromhex(v) for t, v in TERMINAL_DATA.items()}
        self.terminal["9F66"] = bytes.fromhex("26000080")
        fci = pyemv.tlv.decode(self._ok(self._send("00A40400", bytes.fromhex(applet.card.aid))),
                               flatten=True)
        gpo = self._ok(self._send("80A80000", b"\x83" + bytes([len(d := self._fill(
            fci.get("9F38", b"")))]) + d))
        self.data: dict[str, bytes] = {}
        if gpo[0] == 0x80:
            self.data["82"], afl = gpo[2:4], gpo[4:]
        else:
            self.data.update(pyemv.tlv.decode(gpo, flatten=True))
            afl = self.data["94"]
        for i in range(0, len(afl), 4):
            for record in range(afl[i + 1], afl[i + 2] + 1):
                body = self.applet.transceive(bytes([0, 0xB2, record, afl[i] | 4, 0]))
                self.data.update(pyemv.tlv.decode(self._ok(body), flatten=True))

    def _send(self, header: str, data: bytes) -> bytes:
        return self.applet.transceive(bytes.fromhex(header) + bytes([len(data)]) + data + b"\0")

    @staticmethod
    def _ok(response: bytes) -> bytes:
        assert response[-2:] == b"\x90\x00", response.hex()
        return response[:-2]

    def _fill(self, dol: bytes) -> bytes:
        out, i = b"", 0
        while i < len(dol):
            start = i
            i += 2 if dol[i] & 0x1F == 0x1F else 1
            out += self.terminal.get(dol[start:i].hex().upper(), b"")[:dol[i]].rjust(dol[i], b"\0")
            i += 1
        return out

    def _ac(self, p1: int, dol: bytes) -> dict[str, bytes]:
        body = self._ok(self._send(f"80AE{p1:02X}00", self._fill(dol)))
        if body[0] == 0x80:
            v = body[2:]
            return {"9F27": v[:1], "9F36": v[1:3], "9F26": v[3:11], "9F10": v[11:]}
        return pyemv.tlv.decode(body, flatten=True)

    def first_generate_ac(self) -> dict[str, bytes]:
        return self._ac(0x80, self.data["8C"])

    def second_generate_ac(self, issuer: bytes, arc: bytes) -> dict[str, bytes]:
        self.terminal.update({"91": issuer, "8A": arc})
        return self._ac(0x40, self.data["8D"])
