"""``posterm iso decode`` and ``posterm iso mac`` on the frames the terminal and the host
really exchanged (recorded by the relay during the day)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import DAY_SALES, Captured, Day, Run, posterm_cmd

from storage.journal import Journal
from storage.keyfile import load_key_file

HEX_UPPER = re.compile(r"[0-9A-F]+")
BINARY_FIELDS = ("52", "55", "62", "64")
FORMS = ("full", "no-length", "iso-only")


def _form(frame: Captured, form: str) -> bytes:
    return {"full": frame.raw, "no-length": frame.body, "iso-only": frame.iso}[form]


@pytest.fixture(scope="module")
def decoded(day: Day) -> dict[bytes, Run]:
    """``posterm iso decode HEX --json`` of every captured frame in every form, run once each
    (a few processes at a time: each is a whole ``posterm`` start)."""
    inputs = sorted({_form(f, form) for f in day.frames for form in FORMS})
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = pool.map(lambda data: posterm_cmd("iso", "decode", data.hex(), "--json"), inputs)
        return dict(zip(inputs, runs))


def _decode(decoded: dict[bytes, Run], data: bytes) -> dict:
    run = decoded[data]
    assert run.returncode == 0, str(run)
    assert "Traceback" not in run.stdout + run.stderr
    return run.json()


def _sale_request(day: Day, decoded: dict[bytes, Run], card: str) -> Captured:
    stan = day.sales[card].json()["stan"]
    frames = [f for f in day.frames if f.direction == "request"
              and f.iso[:2] == b"\x02\x00" and _decode(decoded, f.raw)["fields"]["11"] == stan]
    assert len(frames) == 1, f"captured 0200 frames with STAN {stan}: {len(frames)}"
    return frames[0]


def _mak(day: Day) -> bytes:
    journal = Journal.open(day.data / "posterm.db", load_key_file(day.data / "posterm.key"))
    try:
        mak = journal.get_key("mak")
    finally:
        journal.close()
    assert mak is not None and len(mak) in (8, 16)
    return mak


def test_relay_captured_every_exchange_of_the_day(day: Day):
    mtis = [(f.direction, f.iso[:2].hex()) for f in day.frames]
    answered = sum(1 for *_, code, _ in DAY_SALES if code != 3)
    assert mtis.count(("request", "0800")) == 1 and mtis.count(("reply", "0810")) == 1
    assert mtis.count(("request", "0200")) == len(DAY_SALES)
    assert mtis.count(("reply", "0210")) == answered
    assert mtis.count(("request", "0400")) == 1 and mtis.count(("reply", "0410")) == 1
    for f in day.frames:        # every frame is whole: its prefix is the length of the rest
        assert int.from_bytes(f.raw[:2], "big") == len(f.raw) - 2


@pytest.mark.parametrize("form", ["full", "no-length", "iso-only"])
def test_iso_decode_reads_every_captured_frame(day: Day, decoded: dict, form: str):
    assert len(day.frames) >= 4
    requests: dict[str, dict] = {}
    for frame in day.frames:
        doc = _decode(decoded, _form(frame, form))
        full = frame.body
        if form == "iso-only":
            assert doc["tpdu"] is None and doc["header"] is None, doc
        else:
            assert doc["tpdu"] == full[:5].hex().upper(), doc
            assert doc["header"] == full[5:11].hex().upper(), doc
        assert doc["mti"] == frame.iso[:2].hex(), doc
        fields = doc["fields"]
        assert re.fullmatch(r"\d{6}", fields["11"]), doc
        assert fields["41"] == "12345678", doc
        for key in BINARY_FIELDS:
            if key in fields:
                assert HEX_UPPER.fullmatch(fields[key]), (key, fields[key])
        if "64" in fields:
            assert fields["64"] == frame.iso[-8:].hex().upper()
        if frame.direction == "request":
            assert doc["mti"] in ("0800", "0200", "0400"), doc
            requests[fields["11"]] = doc
        else:
            assert doc["mti"] in ("0810", "0210", "0410"), doc
            assert re.fullmatch(r"[0-9A-Z]{2}", fields["39"]), doc
            request = requests[fields["11"]]           # the reply echoes the request's STAN
            assert int(doc["mti"]) == int(request["mti"]) + 10
            if form != "iso-only":                     # the host swaps the NIIs
                t = request["tpdu"]
                assert doc["tpdu"] == t[:2] + t[6:10] + t[2:6], (request["tpdu"], doc["tpdu"])
                assert doc["header"] == request["header"]


@pytest.mark.parametrize("card", [c for c, *_ in DAY_SALES if c != "host-silent"])
def test_decoded_sale_request_and_reply_carry_stan_amount_and_outcome(day: Day, decoded: dict,
                                                                     card: str):
    out = day.sales[card].json()
    req = _decode(decoded, _sale_request(day, decoded, card).raw)
    assert req["mti"] == "0200"
    assert req["fields"]["11"] == out["stan"]
    assert req["fields"]["4"] == f"{out['amount']:012d}"
    assert req["fields"]["3"] == "000000"
    assert "64" in req["fields"]
    replies = [d for d in (_decode(decoded, f.raw) for f in day.frames if f.direction == "reply")
               if d["mti"] == "0210" and d["fields"]["11"] == out["stan"]]
    assert len(replies) == 1, replies
    rep = replies[0]["fields"]
    assert rep["39"] == out["response_code"]
    assert rep["4"] == f"{out['amount']:012d}"
    assert rep["37"] == out["rrn"]
    if out["auth_code"]:
        assert rep["38"] == out["auth_code"]


def test_iso_decode_of_sign_on_reply_shows_the_keys_as_upper_hex(day: Day, decoded: dict):
    reply = next(f for f in day.frames if f.iso[:2] == b"\x08\x10")
    doc = _decode(decoded, reply.raw)
    assert doc["fields"]["39"] == "00"
    assert HEX_UPPER.fullmatch(doc["fields"]["62"]) and len(doc["fields"]["62"]) >= 80


@pytest.mark.parametrize("form", ["full", "no-length", "iso-only"])
def test_iso_mac_reproduces_field_64_of_the_sale_request(day: Day, decoded: dict, form: str):
    frame = _sale_request(day, decoded, "unionpay-debit-chip")
    run = posterm_cmd("iso", "mac", _form(frame, form).hex().upper(), "--key",
                      _mak(day).hex().upper(), "--json")
    assert run.returncode == 0, str(run)
    out = run.json()
    assert out["matches"] is True, out
    assert out["mac"] == frame.iso[-8:].hex().upper()
    assert out["field64"] == out["mac"]


def test_iso_mac_verifies_the_hosts_sale_reply_with_the_same_key(day: Day, decoded: dict):
    stan = day.sales["unionpay-debit-chip"].json()["stan"]
    reply = next(f for f in day.frames if f.direction == "reply" and f.iso[:2] == b"\x02\x10"
                 and _decode(decoded, f.raw)["fields"]["11"] == stan)
    run = posterm_cmd("iso", "mac", reply.raw.hex(), "--key", _mak(day).hex(), "--json")
    assert run.returncode == 0, str(run)
    assert run.json()["matches"] is True


def test_iso_mac_with_a_wrong_key_does_not_match_and_exits_1(day: Day, decoded: dict):
    frame = _sale_request(day, decoded, "unionpay-debit-chip")
    mak = bytearray(_mak(day))
    mak[0] ^= 0x01 << 1          # change a key bit (not the DES parity bit)
    run = posterm_cmd("iso", "mac", frame.raw.hex(), "--key", bytes(mak).hex(), "--json")
    assert run.returncode == 1, str(run)
    assert "Traceback" not in run.stdout + run.stderr
    out = run.json()
    assert out["matches"] is False, out
    assert out["field64"] == frame.iso[-8:].hex().upper()
    assert out["mac"] != out["field64"]
