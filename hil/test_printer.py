"""The receipt printer through the ESC/POS driver: against the bench's printer or the virtual one.

On a real bench the tests that need to read the paper back or change the printer's state
(paper, cover, power) are skipped with the reason.
"""

from __future__ import annotations

import time

import pytest

from drivers.escpos_printer import connect
from hal.device_url import split_url
from hal.document import Document, Line
from hal.errors import DeviceError, PrinterFault
from hal.registry import DeviceContext, open_device
from hil.bench import Bench
from hil.printer_fixtures import VirtualPrinterProcess

SLIP = Document(
    "sale-000012-merchant",
    (
        Line("银联POS签购单", align="center", bold=True),
        Line("POS SALES SLIP", align="center"),
        Line(rule=True),
        Line("商户名称 MERCHANT NAME"),
        Line("测试商户", align="right"),
        Line("卡号 CARD NO   622609******0048"),
        Line("金额 AMOUNT:"),
        Line("RMB ¥12.50", align="right", bold=True, double=True),
        Line("本人确认以上交易，同意将其记入本卡账户"),
    ),
)
WORDS = ("银联POS签购单", "POS SALES SLIP", "测试商户", "622609******0048", "RMB ¥12.50",
         "本人确认以上交易，")


@pytest.fixture
def context(tmp_path):
    return DeviceContext(data_dir=tmp_path)


def test_a_ready_printer_reports_online_with_paper_and_cover_closed(printer_url, context):
    with open_device("printer", printer_url, context=context) as printer:
        status = printer.status()
    assert (status.online, status.paper_out, status.cover_open) == (True, False, False)


def test_a_slip_in_chinese_and_english_prints_every_word(
    printer_url, context, bench: Bench, request: pytest.FixtureRequest
):
    with open_device("printer", printer_url, context=context) as printer:
        printer.print_document(SLIP)
    if not bench.virtual:
        return  # a real printer: the bench engineer reads the paper
    paper: VirtualPrinterProcess = request.getfixturevalue("virtual_printer")
    (text,) = paper.documents(at_least=1)
    for word in WORDS:
        assert word in text
    assert "-" * 32 + "\n" in text  # a 32-column rule: the default 58 mm model


def test_paper_out_shows_in_status_and_refuses_printing_until_paper_is_back(
    virtual_printer, context
):
    printer = open_device("printer", virtual_printer.url, context=context)
    printer.print_document(SLIP)
    virtual_printer.set_paper(out=True)
    assert printer.status().paper_out
    with pytest.raises(PrinterFault, match="(?i)paper out"):
        printer.print_document(SLIP)
    virtual_printer.set_paper(out=False)
    assert not printer.status().paper_out
    printer.print_document(SLIP)
    assert len(virtual_printer.documents(at_least=2)) == 2  # nothing sent while out
    printer.close()


def test_cover_open_refuses_printing(virtual_printer, context):
    with open_device("printer", virtual_printer.url, context=context) as printer:
        virtual_printer.set_cover(open=True)
        assert printer.status().cover_open
        with pytest.raises(PrinterFault, match="(?i)cover open"):
            printer.print_document(SLIP)


def test_a_printer_switched_off_and_on_again_prints_with_the_same_object(
    virtual_printer, context
):
    printer = open_device("printer", virtual_printer.url, context=context)
    printer.print_document(SLIP)
    virtual_printer.documents(at_least=1)  # filed before the power goes
    virtual_printer.stop()
    assert not printer.status().online
    with pytest.raises(DeviceError, match="(?i)printer not reachable") as caught:
        printer.print_document(SLIP)
    assert "\n" not in str(caught.value)
    virtual_printer.start()  # same port
    assert printer.status().online
    printer.print_document(SLIP)
    texts = virtual_printer.documents(at_least=2)
    assert len(texts) == 2 and all("622609******0048" in t for t in texts)
    printer.close()


def test_a_printer_that_drops_the_connection_while_idle_is_reconnected(virtual_printer, context):
    printer = open_device("printer", virtual_printer.url, context=context)
    printer.print_document(SLIP)
    virtual_printer.documents(at_least=1)  # filed before the power goes
    virtual_printer.stop()
    virtual_printer.start()  # the old connection is dead; nobody asked for status meanwhile
    printer.print_document(SLIP)
    assert len(virtual_printer.documents(at_least=2)) == 2
    printer.close()


def test_a_printer_that_never_answers_status_still_prints(virtual_printer, context):
    virtual_printer.start(answers_status=False)
    with open_device("printer", virtual_printer.url, context=context) as printer:
        assert printer.status().online  # reachable; paper and cover unknown
        started = time.monotonic()
        printer.print_document(SLIP)
        printer.print_document(SLIP)
        assert time.monotonic() - started < 0.5  # it waited for an answer once, not each time
        assert printer.info()["answers_status"] is False
    assert len(virtual_printer.documents(at_least=2)) == 2


def test_a_model_without_chinese_characters_prints_question_marks(virtual_printer, context):
    # Driver options the registry does not take yet are passed to the driver directly.
    url = split_url(f"{virtual_printer.url}?model=tm-t20ii")
    with connect("printer", url, context) as printer:
        assert printer.info()["width"] == 48
        printer.print_document(SLIP)
    (text,) = virtual_printer.documents(at_least=1)
    assert "POS SALES SLIP" in text and "622609******0048" in text
    assert "??POS???" in text  # 银联POS签购单: one "?" per ideograph
    assert "-" * 48 in text
    assert "银" not in text


def test_the_width_option_makes_80_mm_lines(virtual_printer, context):
    with connect("printer", split_url(f"{virtual_printer.url}?width=48"), context) as printer:
        assert printer.info()["model"] == "generic-80"
        printer.print_document(Document("rule", (Line(rule=True), Line("x"))))
    (text,) = virtual_printer.documents(at_least=1)
    assert text == "-" * 48 + "\nx\n"


def test_a_serial_printer_prints_and_reports_paper_out(
    serial_printer_url, virtual_printer, context
):
    with open_device("printer", serial_printer_url, context=context) as printer:
        printer.print_document(SLIP)
        virtual_printer.set_paper(out=True)
        assert printer.status().paper_out
        with pytest.raises(PrinterFault, match="(?i)paper out"):
            printer.print_document(SLIP)
    (text,) = virtual_printer.documents(at_least=1)
    assert all(word in text for word in WORDS)


def test_a_file_url_receives_the_escpos_bytes(tmp_path, context):
    path = tmp_path / "lp0"
    with open_device("printer", f"file:{path}", context=context) as printer:
        assert printer.status().online  # a file does not answer DLE EOT
        printer.print_document(SLIP)
    data = path.read_bytes()
    assert data.startswith(b"\x1b@")  # ESC @
    assert b"\x1c&" + "银联".encode("gb18030") in data  # FS & Chinese mode, GB18030 text
    assert b"622609******0048" in data
    assert b"\x1dV" in data  # GS V: cut


def test_a_file_url_in_a_missing_folder_is_a_printer_fault(tmp_path, context):
    printer = open_device("printer", f"file:{tmp_path}/no/such/dir/lp0", context=context)
    assert not printer.status().online
    with pytest.raises(PrinterFault, match="(?i)printer not reachable"):
        printer.print_document(SLIP)
