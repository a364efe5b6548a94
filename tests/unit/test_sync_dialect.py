"""The dialect's encoding rules (PROTOCOL.md) checked byte by byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import codec, frame, message
from sync.errors import MessageError
from sync.txntypes import TxnType, identify

IDS = message.TerminalIds("12345678", "898110048990001")

# A UnionPay sale request MAC block as published in a public worked MAC example; the
# 8-byte MAC is appended here so it decodes as a whole message.
PUBLIC_0200 = bytes.fromhex(
    "0200302004C020C0981100000000000000005100183402100006324392260009942820D13121011200843931"
    "36363838303134303030303030303030303030303031313536ACF46E73838A82F92600000000000000000822"
    "000001") + bytes(8)


def test_a_published_unionpay_sale_decodes_field_by_field():
    fields = codec.decode(PUBLIC_0200)
    assert fields["t"] == "0200"
    assert fields["4"] == "000000000051"
    assert fields["11"] == "001834"
    assert fields["35"] == "4392260009942820=131210112008439"
    assert fields["41"] == "16688014"
    assert fields["49"] == "156"
    assert fields["52"] == "ACF46E73838A82F9"
    assert fields["53"] == "2600000000000000"
    assert fields["60"] == "22000001"


def test_fixed_numeric_fields_are_bcd_right_aligned_and_zero_padded():
    raw = codec.encode({"t": "0200", "3": "0", "4": 51, "22": "51"})
    # MTI 02 00, bitmap, then F3 000000, F4 000000000051, F22 n3 as 2 bytes 0x0051.
    assert raw[:2] == b"\x02\x00"
    assert raw[10:13] == bytes(3)
    assert raw[13:19] == bytes.fromhex("000000000051")
    assert raw[19:21] == bytes.fromhex("0051")


def test_variable_numeric_length_counts_digits_and_odd_count_is_right_padded():
    pan19 = "6212345678901234567"
    raw = codec.encode({"t": "0200", "2": pan19})
    assert raw[10] == 0x19                     # BCD length: 19 digits
    assert raw[11:21] == bytes.fromhex(pan19 + "0")
    assert codec.decode(codec.encode({"t": "0200", "2": pan19, "64": "00" * 8}))["2"] == pan19


def test_track2_separator_travels_as_nibble_d_and_odd_length_pads_with_f():
    track = "6226090000000048=281220100000"      # 29 characters
    raw = codec.encode({"t": "0200", "35": track})
    assert raw[10] == 0x29
    assert raw[11:] == bytes.fromhex(track.replace("=", "D") + "F")
    assert codec.decode(codec.encode({"t": "0200", "35": track, "64": "00" * 8}))["35"] == track


def test_field60_is_type_code_batch_and_network_code():
    doc = message.build(TxnType.SALE, IDS, stan=7, batch=42)
    assert doc["60"] == "22000042000"
    assert doc["3"] == "000000" and doc["25"] == "00" and doc["11"] == "000007"
    raw = codec.encode(doc)
    assert bytes.fromhex("0011" + "22000042000" + "0") in raw    # LLL = 11 digits, padded


def test_identify_finds_the_table_row_of_a_request():
    for txn in (TxnType.SALE, TxnType.SIGN_ON, TxnType.ECHO, TxnType.BALANCE):
        doc = message.build(txn, IDS, stan=1, batch=1)
        assert identify(codec.decode(codec.encode({**doc, "64": "00" * 8}))) is txn


def test_a_value_that_does_not_fit_is_a_message_error():
    with pytest.raises(MessageError):
        codec.encode({"t": "0200", "4": "12ab"})
    with pytest.raises(MessageError):
        codec.encode({"t": "0200", "41": "TOO-LONG-ID"})
    with pytest.raises(MessageError):
        codec.encode({"t": "0200", "99": "1"})


def test_reply_mti_is_request_plus_ten():
    assert codec.reply_mti("0200") == "0210"
    assert codec.reply_mti("0800") == "0810"
    assert codec.reply_mti("0400") == "0410"


def test_framing_is_detected_with_or_without_length_tpdu_and_header():
    iso = codec.encode({**message.build(TxnType.ECHO, IDS, stan=3, batch=1), "64": "00" * 8})
    tpdu, header = bytes.fromhex("6000030000"), bytes.fromhex("602200000000")
    wire = frame.wrap(iso, tpdu, header)
    assert wire[:2] == (len(wire) - 2).to_bytes(2, "big")
    first = frame.candidates(wire)[0]
    assert (first.tpdu, first.header, first.iso) == (tpdu, header, iso)
    first = frame.candidates(wire[2:])[0]
    assert (first.tpdu, first.header, first.iso) == (tpdu, header, iso)
    only = frame.candidates(iso)
    assert only[-1].iso == iso and only[-1].tpdu is None
    assert frame.swap_tpdu(bytes.fromhex("6000030011")) == bytes.fromhex("6000110003")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_ever_raise_our_message_error(data):
    try:
        codec.decode(data)
    except MessageError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(PUBLIC_0200) - 1))
def test_every_truncation_of_a_real_message_is_a_message_error(cut):
    with pytest.raises(MessageError):
        codec.decode(PUBLIC_0200[:cut])
