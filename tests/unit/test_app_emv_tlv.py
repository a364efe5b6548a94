"""BER-TLV, the data object lists, and the response parsers fed random and cut data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.emv import dol, responses, tlv
from app.emv.errors import CardError, TlvError

PPSE_FCI = tlv.encode("6F", tlv.encode("84", b"2PAY.SYS.DDF01"), tlv.encode("A5", tlv.encode(
    "BF0C",
    tlv.encode("61", tlv.encode("4F", bytes.fromhex("A0000003330101")), tlv.encode("87", b"\x01")),
    tlv.encode("61", tlv.encode("4F", bytes.fromhex("A0000000031010")), tlv.encode("87", b"\x02")),
)))


def test_parse_keeps_repeated_entries_in_order():
    objects = tlv.parse(PPSE_FCI)
    entries = tlv.find_all(objects, "61")
    assert [tlv.value(list(e.children), "4F").hex().upper() for e in entries] == [
        "A0000003330101", "A0000000031010"]
    fci = responses.parse_fci(PPSE_FCI)
    assert [e.priority for e in fci.entries] == [1, 2]


def test_long_lengths_padding_and_multi_byte_tags():
    long_value = b"x" * 200
    built = tlv.encode("9F4B", long_value) + b"\x00\x00" + tlv.encode("5F2A", b"\x01\x56")
    assert built[:4] == bytes.fromhex("9F4B81C8")
    objects = tlv.parse(built)
    assert [(o.tag, o.value) for o in objects] == [("9F4B", long_value), ("5F2A", b"\x01\x56")]
    assert tlv.parse(tlv.encode("70", tlv.encode("5A", b"\x12" * 300)))[0].children[0].tag == "5A"


@pytest.mark.parametrize("data", ["9F", "9F02", "9F0206000000", "6F05840101", "5A80", "5A84000000"])
def test_cut_or_malformed_data_is_a_tlv_error(data):
    with pytest.raises(TlvError):
        tlv.parse(bytes.fromhex(data))


def test_tlv_error_is_the_card_read_error():
    assert issubclass(TlvError, CardError)


def test_a_tlv_never_shows_its_value_in_repr():
    assert "4761" not in repr(tlv.parse(bytes.fromhex("5A084761739001010010"))[0])


def test_dol_pads_and_cuts_by_format():
    values = {"9F02": bytes.fromhex("000000001250"), "5A": bytes.fromhex("4761739001010010"),
              "50": b"VISA", "9F37": b"\x01\x02\x03\x04"}
    # n: cut on the left, padded on the left; cn: padded with FF; b/ans: cut/padded on the right.
    filled = dol.fill(bytes.fromhex("9F0204" "9F0208" "5A0A" "5002" "9F3706" "9F1A02" "7002"),
                      values)
    assert filled.hex().upper() == ("00001250" "0000000000001250" "4761739001010010FFFF"
                                    "5649" "010203040000" "0000" "0000")


def test_gpo_and_generate_ac_formats():
    fmt1 = responses.parse_gpo(bytes.fromhex("800A1800" "08010100" "10010200"))
    assert (fmt1.format, fmt1.aip.hex(), [(e.sfi, e.first, e.last, e.oda_records) for e in fmt1.afl]) \
        == (1, "1800", [(1, 1, 1, 0), (2, 1, 2, 0)])
    fmt2 = responses.parse_gpo(bytes.fromhex("770A" "82021C00" "940408010101"))
    assert (fmt2.format, fmt2.aip.hex(), fmt2.afl[0].oda_records) == (2, "1c00", 1)
    ac1 = responses.parse_generate_ac(bytes.fromhex("8012" "80" "0001" "1122334455667788"
                                                    "06010A03A00000"))
    assert (ac1.kind, ac1.atc.hex(), ac1.iad.hex()) == ("ARQC", "0001", "06010a03a00000")
    ac2 = responses.parse_generate_ac(bytes.fromhex("7718" "9F270140" "9F36020002"
                                                    "9F26081122334455667788" "9F100100"))
    assert (ac2.kind, ac2.format) == ("TC", 2)


@pytest.mark.parametrize("afl", ["0801", "00010100", "08000000", "08020100", "08010103",
                                 "F8010100"])
def test_a_bad_afl_is_a_card_data_error(afl):
    with pytest.raises(TlvError):
        responses.parse_afl(bytes.fromhex(afl))


# -- property tests: whatever the card sends, only our own parse error comes out ----------

PARSERS = [
    tlv.parse, tlv.parse_dol, responses.parse_fci, responses.parse_directory_record,
    responses.parse_gpo, responses.parse_generate_ac, responses.parse_afl,
    lambda data: responses.parse_record(data, 1), lambda data: responses.parse_record(data, 11),
    lambda data: dol.fill(data, {"9F02": b"\x00" * 6}),
]

#: Valid answers of every kind, to cut and to flip.
VALID = [
    PPSE_FCI,
    bytes.fromhex("800A1800" "08010100" "10010200"),
    bytes.fromhex("770A" "82021C00" "940408010101"),
    bytes.fromhex("8012" "80" "0001" "1122334455667788" "06010A03A00000"),
    bytes.fromhex("7718" "9F270140" "9F36020002" "9F26081122334455667788" "9F100100"),
    bytes.fromhex("7012" "5A084761739001010010" "5F2403301231" "5F340101"),
    bytes.fromhex("7010" "610E" "4F07A0000003330101" "5003414243"),
]


def _only_tlv_errors(data: bytes) -> None:
    for parse in PARSERS:
        try:
            parse(data)
        except TlvError:
            pass


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_tlv_error(data):
    _only_tlv_errors(data)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_cut_and_corrupted_answers_raise_only_tlv_error(valid, draw):
    cut = draw.draw(st.integers(0, len(valid)))
    _only_tlv_errors(valid[:cut])
    position = draw.draw(st.integers(0, len(valid) - 1))
    flipped = bytearray(valid)
    flipped[position] ^= draw.draw(st.integers(1, 255))
    _only_tlv_errors(bytes(flipped))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["5A", "9F02", "50", "DF8101", "5F2A"]),
                          st.binary(max_size=300)), max_size=6))
def test_encode_then_parse_round_trips_in_order(items):
    built = tlv.encode_all(items)
    assert [(o.tag, o.value) for o in tlv.parse(built)] == items
    wrapped = tlv.parse(tlv.encode("70", built))
    assert [(o.tag, o.value) for o in wrapped[0].children] == items
