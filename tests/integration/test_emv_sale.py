"""EMV sales through the real ``posterm`` CLI against ``posterm-host`` over TCP: chip with
the host verifying the ARQC, signature CVM, contactless over the CVM limit, no supported
application, a card declining after approval, and swipes (chip cards refused, fallback
after a chip failure) on the virtual ABECS PIN pad."""

from __future__ import annotations

import selectors
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PY, REPO, Relay, Terminal, assert_one_clean_error_line, posterm, set_config

from app.emv import tlv
from sync import codec


def _frames(relay: Relay, mti: str) -> list[dict[str, str]]:
    return [m for f in relay.frames if (m := codec.decode(f.iso))["t"] == mti]


@pytest.fixture
def relayed(terminal: Terminal) -> Iterator[tuple[Terminal, Relay]]:
    """The terminal talking to its host through a relay that records every frame."""
    relay = Relay((terminal.host.host, terminal.host.port))
    set_config(terminal.data, "host", "address", relay.address)
    try:
        yield terminal, relay
    finally:
        relay.close()


def _receipt(terminal: Terminal, rrn: str, copy: str = "merchant") -> str:
    texts = [p.read_text(encoding="utf-8") for p in (terminal.data / "receipts").glob("*.txt")
             if copy in p.name]
    found = [t for t in texts if rrn in t]
    assert len(found) == 1, texts
    return found[0]


def test_a_chip_sale_is_approved_with_a_field_55_the_host_verified(relayed):
    terminal, relay = relayed
    run = terminal.run("sale", "12.50", "--card", "unionpay-debit-chip", "--json")
    assert run.returncode == 0, str(run)
    out = run.json()
    assert (out["result"], out["entry_mode"], out["cvm"]) == ("approved", "051", "online_pin")
    request = _frames(relay, "0200")[-1]
    icc = {o.tag: o.value for o in tlv.parse(bytes.fromhex(request["55"]))}
    for tag in ("9F26", "9F27", "9F10", "9F37", "9F36", "95", "9A", "9C", "9F02", "5F2A", "82",
                "9F1A", "9F03", "9F33", "9F34", "9F35", "9F1E", "84", "9F09"):
        assert tag in icc, tag
    assert icc["9F02"].hex() == "000000001250" and icc["84"].hex().upper() == "A000000333010101"
    assert icc["9F26"].hex().upper() == out["cryptogram"] and out["cryptogram_type"] == "ARQC"
    reply = _frames(relay, "0210")[-1]
    # The host sends issuer authentication data (91 = ARPC + ARC) only for an ARQC it verified.
    issuer = {o.tag: o.value for o in tlv.parse(bytes.fromhex(reply["55"]))}
    assert len(issuer["91"]) == 10 and issuer["91"][8:] == b"00"
    slip = _receipt(terminal, out["rrn"])
    for shown in ("A000000333010101", "UnionPay Debit", "TVR", "TSI", out["tvr"], "ATC", "TC"):
        assert shown in slip, f"{shown!r} not on the slip:\n{slip}"


def test_signature_cvm_sends_no_pin_and_the_slip_asks_for_a_signature(relayed):
    terminal, relay = relayed
    run = terminal.run("sale", "88.00", "--card", "signature-cvm", "--json")
    assert run.returncode == 0, str(run)
    out = run.json()
    assert (out["cvm"], out["pin_entered"], out["entry_mode"]) == ("signature", False, "052")
    request = _frames(relay, "0200")[-1]
    assert "52" not in request
    icc = {o.tag: o.value for o in tlv.parse(bytes.fromhex(request["55"]))}
    assert icc["9F34"].hex().upper() == "1E0300"
    assert "SIGNATURE" in _receipt(terminal, out["rrn"])


def test_a_tap_over_the_contactless_cvm_limit_asks_for_the_pin(relayed):
    terminal, relay = relayed
    small = terminal.run("sale", "12.50", "--card", "qpboc-tap", "--json")
    assert small.returncode == 0, str(small)
    assert (small.json()["entry_mode"], small.json()["pin_entered"]) == ("072", False)
    big = terminal.run("sale", "350.00", "--card", "qpboc-tap", "--json")
    assert big.returncode == 0, str(big)
    assert (big.json()["entry_mode"], big.json()["pin_entered"]) == ("071", True)
    request = _frames(relay, "0200")[-1]
    assert "52" in request and "55" in request
    set_config(terminal.data, "emv", "contactless_cvm_limit", 50_000)
    raised = terminal.run("sale", "350.00", "--card", "qpboc-tap", "--json")
    assert raised.json()["pin_entered"] is False, str(raised)


def test_no_supported_application_is_one_line_and_exit_1(terminal: Terminal):
    set_config(terminal.data, "emv", "aids", [{"aid": "A00000002501", "partial": True}])
    sale = terminal.run("sale", "12.50", "--card", "unionpay-debit-chip")
    assert "no supported application" in assert_one_clean_error_line(sale, 1)
    read = terminal.run("card", "read", "--reader", "mock:", "--card", "visa-chip")
    assert read.returncode == 1, str(read)
    assert terminal.host.ledger_rows() == []


def test_a_card_that_declines_after_approval_is_reversed_with_reason_06(terminal: Terminal):
    run = terminal.run("sale", "30.00", "--card", "declines-after-approval")
    line = assert_one_clean_error_line(run, 1)
    assert line == "posterm: card declined after approval: reversed"
    row = terminal.run("txns", "--json").json()["transactions"][0]
    assert (row["state"], row["reversal"]) == ("reversed", "done")
    hosts = [r for r in terminal.host.ledger_rows() if r["mti"] == "0200"]
    assert [h["reversal_reason"] for h in hosts] == ["06"]


def test_card_read_prints_the_application_and_never_the_clear_pan(tmp_path: Path):
    run = posterm(tmp_path, "card", "read", "--reader", "mock:", "--card", "expired", "--json")
    assert run.returncode == 0, str(run)
    info = run.json()
    assert (info["aid"], info["label"], info["pan_masked"], info["expiry"], info["pan_sequence"],
            info["expired"]) == ("A000000333010101", "UnionPay Debit", "622609******0139", "2101",
                                 "001", True)
    text = posterm(tmp_path, "card", "read", "--reader", "mock:", "--card", "unionpay-dual-app",
                   "--app", "2")
    assert text.returncode == 0, str(text)
    assert "A000000333010102" in text.stdout and "CVM list" in text.stdout
    for shown in (run.stdout, text.stdout):
        assert "6226090000000139" not in shown and "6226090000000154" not in shown
        assert "D3012" not in shown.upper()


# -- swipes on the virtual ABECS PIN pad --------------------------------------------------------

class SwipingPad:
    """``python -m drivers.virtual.pinpad`` on a pty, swiping ``profile`` when asked."""

    def __init__(self, workdir: Path, profile: str) -> None:
        link = workdir / "pinpad"
        self.log = open(workdir / "pinpad.log", "w", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [PY, "-m", "drivers.virtual.pinpad", "--pin", "123456", "--swipe", profile,
             "--link", str(link)], cwd=REPO, stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            ready = sel.select(10)
        line = self.proc.stdout.readline().strip() if ready else ""
        if "virtual pinpad on" not in line:
            self.stop()
            pytest.fail(f"virtual PIN pad did not start: {line!r}")
        self.url = f"serial:{link}?baudrate=19200"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


@pytest.fixture
def swiping_pad(tmp_path: Path):
    pytest.importorskip("serial", reason="pyserial is not installed (extra 'devices')")
    pads: list[SwipingPad] = []

    def start(profile: str) -> SwipingPad:
        pad = SwipingPad(tmp_path, profile)
        pads.append(pad)
        return pad

    yield start
    for pad in pads:
        pad.stop()


def test_a_swiped_chip_card_is_told_to_insert(terminal: Terminal, swiping_pad):
    pad = swiping_pad("unionpay-debit-chip")
    set_config(terminal.data, "devices", "pinpad", pad.url)
    run = terminal.run("sale", "12.50", "--timeout", "8")
    assert "insert the card" in assert_one_clean_error_line(run, 1)
    assert terminal.host.ledger_rows() == []


def test_a_swipe_after_the_chip_failed_is_a_fallback(relayed, swiping_pad):
    terminal, relay = relayed
    pad = swiping_pad("chip-failure-fallback")
    set_config(terminal.data, "devices", "pinpad", pad.url)
    run = terminal.run("sale", "20.00", "--card", "chip-failure-fallback", "--timeout", "8",
                       "--json")
    assert run.returncode == 0, str(run)
    out = run.json()
    assert (out["result"], out["entry_mode"], out["fallback"]) == ("approved", "021", True)
    request = _frames(relay, "0200")[-1]
    assert request["22"] == "021" and "55" not in request and "35" in request
