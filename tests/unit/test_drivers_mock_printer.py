"""Mock printer: ESC/POS through python-escpos, a plain-text preview per document."""

import subprocess
import sys
from pathlib import Path

import pytest

from hal.document import Document, Line
from hal.errors import PrinterFault
from hal.registry import DeviceContext, open_device

DOC = Document(
    "Sale merchant copy",
    (
        Line("POSTERM TEST SHOP", align="center", bold=True),
        Line("签购单", align="center", double=True),
        Line(rule=True),
        Line("CARD 622609******0048"),
        Line("AMOUNT RMB 12.34", align="right"),
    ),
)


@pytest.fixture
def context(tmp_path):
    return DeviceContext(data_dir=tmp_path)


def test_preview_file_holds_the_lines_and_bytes_hold_init_and_cut(context):
    printer = open_device("printer", "mock:", context=context)
    printer.print_document(DOC)
    previews = list((context.data_dir / "receipts").glob("*.txt"))
    assert previews == [printer.last_preview]
    assert previews[0].name.endswith("-sale-merchant-copy.txt")
    text = previews[0].read_text(encoding="utf-8")
    for line in ("POSTERM TEST SHOP", "签购单", "-" * 32, "CARD 622609******0048"):
        assert line in text
    assert text.splitlines()[-1] == " " * 16 + "AMOUNT RMB 12.34"
    data = printer.last_bytes
    assert data.startswith(b"\x1b@")  # ESC @
    assert b"\x1dV" in data  # GS V: cut
    assert b"POSTERM TEST SHOP" in data
    # Chinese mode (FS &), then the GB18030 bytes
    assert b"\x1c&" + "签购单".encode("gb18030") in data


def test_document_without_cut_is_not_cut(context):
    printer = open_device("printer", "mock:", context=context)
    printer.print_document(Document("slip", (Line("x"),), cut=False))
    assert b"\x1dV" not in printer.last_bytes


def test_width_option_sets_the_paper_width(context):
    printer = open_device("printer", "mock:?width=48", context=context)
    printer.print_document(Document("r", (Line(rule=True),)))
    assert printer.last_preview.read_text() == "-" * 48 + "\n"


def test_paper_out_raises_printer_fault_and_shows_in_status(context):
    printer = open_device("printer", "mock:?paper=out", context=context)
    assert printer.status().paper_out
    with pytest.raises(PrinterFault, match="paper out"):
        printer.print_document(DOC)
    assert not (context.data_dir / "receipts").exists()


def test_cover_open_raises_printer_fault(context):
    printer = open_device("printer", "mock:?cover=open", context=context)
    assert printer.status().cover_open
    with pytest.raises(PrinterFault):
        printer.print_document(DOC)


def test_closed_printer_is_offline_and_refuses_to_print(context):
    printer = open_device("printer", "mock:", context=context)
    printer.close()
    assert not printer.status().online
    with pytest.raises(PrinterFault):
        printer.print_document(DOC)


def test_two_processes_printing_in_the_same_second_never_overwrite_a_preview(context):
    # Each posterm command is its own process, counting previews from 1: a reprint right
    # after the sale must add a preview, not replace the sale's.
    script = ("import sys; from pathlib import Path; from hal.document import Document, Line; "
              "from hal.registry import DeviceContext, open_device; "
              "p = open_device('printer', 'mock:', context=DeviceContext(Path(sys.argv[1]))); "
              "[p.print_document(Document('sale-000002-merchant', (Line('x'),))) "
              "for _ in range(2)]")
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script, str(context.data_dir)], check=True,
                       cwd=Path(__file__).resolve().parents[2])
    previews = list((context.data_dir / "receipts").glob("*sale-000002-merchant.txt"))
    assert len(previews) == 4
