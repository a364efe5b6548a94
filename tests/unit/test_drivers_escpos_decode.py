"""The virtual printer's ESC/POS decoder, fed what python-escpos (through our renderer) sends."""

from __future__ import annotations

import pytest
from escpos.constants import RT_MASK_NOPAPER, RT_MASK_ONLINE, RT_MASK_PAPER  # type: ignore[import-untyped]
from escpos.printer import Dummy  # type: ignore[import-untyped]
from PIL import Image

from app.receipt import MerchantInfo, sales_slip
from drivers.escpos_render import render
from drivers.virtual.escpos_decoder import EscposDecoder
from drivers.virtual.printer import VirtualPrinter
from hal.document import Document, Line
from storage.journal import TransactionRecord


def _record() -> TransactionRecord:
    return TransactionRecord(
        id=1, txn_type="sale", state="APPROVED", amount=123456, currency="156", stan=12,
        batch=3, terminal_id="12345678", merchant_id="898110048990001", operator="01",
        pan_masked="622609******0048", pan_hash="x", card_org="CUP", entry_mode="051",
        card_seq="001", pin_entered=True, response_code="00", rrn="000000000012",
        auth_code="123456", settlement_date="1122", created_utc="2026-11-22T00:00:00Z",
        created_local="2026-11-22T08:00:00+08:00", updated_utc="", updated_local="",
        reversal_state="CANCELLED", reversal_reason=None, receipt_state="printed",
        original_id=None, voided_by=None, advice_state=None, extra={},
    )


def _escpos(doc: Document, *, width: int = 32, encoding: str = "gb18030",
            profile: str = "default") -> bytes:
    dummy = Dummy(profile=profile)
    render(doc, dummy, width=width, encoding=encoding)
    return bytes(dummy.output)


def _decode(data: bytes, chunk: int | None = None) -> EscposDecoder:
    decoder = EscposDecoder()
    step = chunk or len(data) or 1
    for i in range(0, len(data), step):
        decoder.feed(data[i : i + step])
    decoder.finish()
    return decoder


@pytest.mark.parametrize("width", [32, 48])
def test_a_real_sales_slip_decodes_to_the_lines_of_its_preview(width):
    slip = sales_slip(_record(), MerchantInfo("测试商户", "898110048990001", "12345678"),
                      copy="merchant", width=width)
    (doc,) = _decode(_escpos(slip, width=width)).documents
    # The preview pads for alignment; the decoder gives what was sent on each line.
    expected = [line.strip() for line in slip.plain_text(width).splitlines()]
    assert [line.text.strip() for line in doc.lines] == expected
    assert doc.cut
    assert "RMB ¥1234.56" in doc.text
    assert "622609******0048" in doc.text and "银联POS签购单" in doc.text


def test_styles_are_kept_per_line():
    doc = Document("s", (Line("HEAD", align="center", bold=True), Line("金额", double=True),
                         Line("tail", align="right")))
    (printed,) = _decode(_escpos(doc)).documents
    head, amount, tail = printed.lines
    assert (head.align, head.bold, head.width) == ("center", True, 1)
    assert (amount.text, amount.width, amount.height, amount.bold) == ("金额", 2, 2, False)
    assert (tail.align, tail.bold) == ("right", False)


def test_bytes_arriving_one_at_a_time_decode_the_same():
    doc = Document("s", (Line("签购单 ¥12.50 ，。"), Line("CARD 622609******0048")))
    data = _escpos(doc)
    whole = _decode(data).documents
    assert [d.text for d in _decode(data, chunk=1).documents] == [d.text for d in whole]
    assert whole[0].text == "签购单 ¥12.50 ，。\nCARD 622609******0048\n"


def test_code_page_text_from_the_magic_encoder_decodes():
    dummy = Dummy()
    dummy.text("Café Zürich 12€\n")  # python-escpos picks code pages (ESC t n) for these
    assert b"\x1bt" in dummy.output
    (doc,) = _decode(dummy.output).documents
    assert doc.text == "Café Zürich 12€\n"


def test_each_cut_ends_a_document_and_feeds_before_it_are_dropped():
    data = _escpos(Document("a", (Line("one"),))) + _escpos(Document("b", (Line("two"),)))
    docs = _decode(data).documents
    assert [d.text for d in docs] == ["one\n", "two\n"]
    assert all(d.cut for d in docs)


def test_without_a_cutter_the_next_init_ends_the_document():
    # The POS-5890 profile has no cutter: python-escpos sends no GS V at all.
    data = _escpos(Document("a", (Line("one"),)), profile="POS-5890")
    assert b"\x1dV" not in data
    decoder = EscposDecoder()
    decoder.feed(data + data)
    assert [d.text for d in decoder.documents] == ["one\n"]  # the second is still on paper
    decoder.finish()
    assert [(d.text, d.cut) for d in decoder.documents] == [("one\n", False), ("one\n", False)]


def test_images_barcodes_and_qr_codes_are_passed_over_with_a_placeholder():
    dummy = Dummy()
    dummy.text("before\n")
    dummy.image(Image.new("1", (16, 8)))
    dummy.barcode("123456789012", "EAN13")
    dummy.qr("https://example.com/r/12", native=True)
    dummy.text("after\n")
    dummy.cut()
    (doc,) = _decode(dummy.output).documents
    assert [line.text for line in doc.lines] == [
        "before", "[image 16x8]", "[barcode 123456789012]", "[qr https://example.com/r/12]",
        "after",
    ]


def test_status_queries_are_reported_in_order_and_do_not_print():
    decoder = EscposDecoder()
    assert decoder.feed(b"\x1b@ab\x10\x04\x01c\x10\x04") == [1]
    assert decoder.feed(b"\x04\x10\x04\x07\x01d\n") == [4, 7]  # DLE EOT 7 takes one more byte
    assert decoder.documents == [] and not decoder.feed(b"")
    decoder.finish()
    assert decoder.documents[0].text == "abcd\n"


def test_unknown_commands_do_not_stop_the_text():
    decoder = EscposDecoder()
    decoder.feed(b"\x1b@\x1bZ\x1d\x99x\x1b-\x01under\x1bp\x00\x19\xfa\x10\x14\x01\x00\x05ok\n")
    decoder.finish()
    assert decoder.documents[0].text == "xunderok\n"


def test_status_answers_follow_the_escpos_bits_python_escpos_reads():
    printer = VirtualPrinter()
    assert printer.status_byte(1) & RT_MASK_ONLINE == 0  # online
    assert printer.status_byte(4) & RT_MASK_PAPER == RT_MASK_PAPER
    assert printer.status_byte(4) & RT_MASK_NOPAPER != RT_MASK_NOPAPER
    printer.command("paper out")
    assert printer.status_byte(4) & RT_MASK_NOPAPER == RT_MASK_NOPAPER  # bits 5-6: paper end
    assert printer.status_byte(1) & RT_MASK_ONLINE  # a printer without paper goes offline
    assert printer.status_byte(2) & 0x04 == 0
    printer.command("paper ok")
    printer.command("cover open")
    assert printer.status_byte(2) & 0x04  # DLE EOT 2 bit 2: cover open
    assert printer.status_byte(4) == 0x12
    assert printer.command("jam").startswith("error:")


def test_the_registry_offers_exactly_the_driver_s_printer_models():
    from drivers.escpos_printer import MODELS
    from hal.registry import PRINTER_OPTIONS
    assert set(PRINTER_OPTIONS["model"]) == set(MODELS)
