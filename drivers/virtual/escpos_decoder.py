"""ESC/POS bytes to the text lines a receipt printer would put on paper.

The virtual printer's decoder: it follows what python-escpos (and our renderer) send —
ESC @, ESC a, ESC E, ESC !, GS !, ESC t code pages, FS & / FS . Chinese mode with
GB18030 text, GS V cuts — skips images, barcodes and settings it does not render by their
declared lengths, and reports DLE EOT status queries so the caller can answer them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

__all__ = ["CODE_PAGES", "EscposDecoder", "PrintedDocument", "PrintedLine"]

log = logging.getLogger(__name__)

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
LF, CR, HT, FF = 0x0A, 0x0D, 0x09, 0x0C

#: ESC t n -> Python codec, the Epson table (the one python-escpos's profiles follow).
#: Page 1 is Katakana; python-escpos names it CP932, whose single bytes are the same.
CODE_PAGES: dict[int, str] = {
    0: "cp437", 1: "cp932", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865",
    13: "cp857", 14: "cp737", 15: "iso8859_7", 16: "cp1252", 17: "cp866", 18: "cp852",
    19: "cp858", 33: "cp775", 34: "cp855", 35: "cp861", 36: "cp862", 37: "cp864",
    38: "cp869", 39: "iso8859_2", 40: "iso8859_15", 44: "cp1125", 45: "cp1250",
    46: "cp1251", 47: "cp1253", 48: "cp1254", 49: "cp1255", 50: "cp1256", 51: "cp1257",
    52: "cp1258",
}

# Commands with a fixed number of parameter bytes that change nothing on our text
# (spacing, fonts, underline, margins, drawer kick...): prefix -> parameter count.
_SKIP: dict[bytes, int] = {
    b"\x1b ": 1, b"\x1b$": 2, b"\x1b%": 1, b"\x1b-": 1, b"\x1b2": 0, b"\x1b3": 1,
    b"\x1b<": 0, b"\x1b=": 1, b"\x1b?": 1, b"\x1bG": 1, b"\x1bL": 0, b"\x1bM": 1,
    b"\x1bR": 1, b"\x1bS": 0, b"\x1bT": 1, b"\x1bU": 1, b"\x1bV": 1, b"\x1bW": 8,
    b"\x1b\\": 2, b"\x1bc": 2, b"\x1be": 1, b"\x1bp": 3, b"\x1br": 1, b"\x1bu": 1,
    b"\x1bv": 0, b"\x1b{": 1, b"\x1bB": 2,
    b"\x1d$": 2, b"\x1d/": 1, b"\x1d:": 0, b"\x1dB": 1, b"\x1dE": 1, b"\x1dH": 1,
    b"\x1dI": 1, b"\x1dL": 2, b"\x1dP": 2, b"\x1dT": 1, b"\x1dW": 2, b"\x1d\\": 2,
    b"\x1d^": 3, b"\x1da": 1, b"\x1db": 1, b"\x1dc": 0, b"\x1df": 1, b"\x1dh": 1,
    b"\x1dr": 1, b"\x1dw": 1,
    b"\x1c!": 1, b"\x1c-": 1, b"\x1cC": 1, b"\x1cS": 2, b"\x1cW": 1, b"\x1cp": 2,
    b"\x10\x05": 1,
}

_ALIGN = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}


@dataclass(frozen=True)
class PrintedLine:
    """One line as printed, with the style it started with."""

    text: str
    align: str = "left"
    bold: bool = False
    width: int = 1  # character width multiplier (2 = double width)
    height: int = 1


@dataclass
class PrintedDocument:
    """What came out between two cuts (or an ESC @ / end of job after printed lines)."""

    lines: list[PrintedLine]
    cut: bool

    @property
    def text(self) -> str:
        """The paper as plain text, one line per printed line."""
        return "".join(line.text + "\n" for line in self.lines)


@dataclass
class _Style:
    align: str = "left"
    bold: bool = False
    width: int = 1
    height: int = 1
    code_page: int = 0
    chinese: bool = False


@dataclass
class EscposDecoder:
    """Feed it the bytes a printer receives; it collects :class:`PrintedDocument` objects.

    ``chinese_default`` is the Chinese-mode state after power-on and ESC @ (a memory switch
    on real printers). Bytes are buffered until a command is complete, so data may arrive
    in any chunks.
    """

    chinese_default: bool = False
    documents: list[PrintedDocument] = field(default_factory=list)
    skipped: int = 0  # images, barcodes and unknown commands passed over

    def __post_init__(self) -> None:
        self._buf = bytearray()
        self._style = _Style(chinese=self.chinese_default)
        self._lines: list[PrintedLine] = []
        self._chars: list[str] = []
        self._line_style: _Style | None = None
        self._qr_data = b""

    # --- public ------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[int]:
        """Decode ``data``; return the ``n`` of each DLE EOT n status query in it, in order."""
        self._buf += data
        queries: list[int] = []
        i = 0
        buf = self._buf
        while i < len(buf):
            used = self._step(buf, i, queries)
            if used is None:  # an incomplete command: wait for more bytes
                break
            i += used
        del buf[:i]
        return queries

    def finish(self) -> None:
        """End of the job (connection closed): what was printed but not cut is a document too."""
        self._end_document(cut=False)

    def take_documents(self) -> list[PrintedDocument]:
        """The documents completed so far, removed from the decoder."""
        done, self.documents = self.documents, []
        return done

    # --- text ----------------------------------------------------------------------------

    def _add_text(self, text: str) -> None:
        if self._line_style is None:
            self._line_style = replace(self._style)
        self._chars.append(text)

    def _end_line(self) -> None:
        style = self._line_style or self._style
        self._lines.append(
            PrintedLine("".join(self._chars).rstrip(), style.align, style.bold, style.width,
                        style.height)
        )
        self._chars = []
        self._line_style = None

    def _placeholder(self, text: str) -> None:
        if self._chars:
            self._end_line()
        self._lines.append(PrintedLine(text, self._style.align))
        self.skipped += 1

    def _end_document(self, *, cut: bool) -> None:
        if self._chars:
            self._end_line()
        lines = self._lines
        while lines and not lines[-1].text:  # the feed before the cutter
            lines.pop()
        if lines:
            self.documents.append(PrintedDocument(lines, cut))
        self._lines = []

    def _single_byte(self, byte: int) -> str:
        codec = CODE_PAGES.get(self._style.code_page, "cp437")
        if codec == "cp932" and byte >= 0x80 and not 0xA1 <= byte <= 0xDF:
            return "?"  # only the half-width katakana of CP932 are single bytes
        return bytes([byte]).decode(codec, errors="replace")

    # --- the parser: each step returns the bytes it used, None if it needs more -----------

    def _step(self, buf: bytearray, i: int, queries: list[int]) -> int | None:
        b = buf[i]
        if b == LF:
            self._end_line()
            return 1
        if b in (ESC, GS, FS, DLE):
            if i + 1 >= len(buf):
                return None
            handler = _COMMANDS.get(bytes(buf[i : i + 2]))
            if handler is not None:
                return handler(self, buf, i, queries)
            prefix = bytes(buf[i : i + 2])
            if prefix in _SKIP:
                n = 2 + _SKIP[prefix]
                return n if i + n <= len(buf) else None
            log.debug("unknown command %s", prefix.hex(" "))
            self.skipped += 1
            return 2
        if b == HT:
            self._add_text(" ")
            return 1
        if b == FF:
            self._end_line()
            return 1
        if b < 0x20 or b == 0x7F:
            return 1  # CR and other controls: nothing on paper
        if self._style.chinese and b >= 0x80:
            return self._gb18030(buf, i)
        self._add_text(self._single_byte(b))
        return 1

    def _gb18030(self, buf: bytearray, i: int) -> int | None:
        # GB18030: a lead byte 81-FE, then either one trail byte 40-FE (two-byte form) or
        # a digit 30-39, a byte 81-FE and a digit (four-byte form).
        if i + 1 >= len(buf):
            return None
        size = 4 if 0x30 <= buf[i + 1] <= 0x39 else 2
        if i + size > len(buf):
            return None
        self._add_text(bytes(buf[i : i + size]).decode("gb18030", errors="replace"))
        return size


# --- command handlers: (decoder, buffer, index, queries) -> bytes used or None ------------

_Handler = Callable[[EscposDecoder, bytearray, int, list[int]], int | None]


def _param(buf: bytearray, i: int, count: int) -> bytes | None:
    """The ``count`` parameter bytes after a two-byte command at ``i``, None if not all here."""
    end = i + 2 + count
    return bytes(buf[i + 2 : end]) if end <= len(buf) else None


def _init(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int:
    # A new ESC @ after printed lines starts the next job: printers without a cutter
    # (and python-escpos profiles without one) never send GS V.
    d._end_document(cut=False)
    d._style = _Style(chinese=d.chinese_default)
    return 2


def _align(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 1)
    if p is None:
        return None
    d._style.align = _ALIGN.get(p[0], d._style.align)
    return 3


def _bold(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 1)
    if p is None:
        return None
    d._style.bold = bool(p[0] & 1)
    return 3


def _print_mode(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 1)  # ESC ! n: bit 3 bold, bit 4 double height, bit 5 double width
    if p is None:
        return None
    d._style.bold = bool(p[0] & 0x08)
    d._style.height = 2 if p[0] & 0x10 else 1
    d._style.width = 2 if p[0] & 0x20 else 1
    return 3


def _size(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 1)  # GS ! n: high nibble width - 1, low nibble height - 1
    if p is None:
        return None
    d._style.width = (p[0] >> 4) + 1
    d._style.height = (p[0] & 0x0F) + 1
    return 3


def _code_page(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 1)
    if p is None:
        return None
    d._style.code_page = p[0]
    return 3


def _feed_lines(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 1)  # ESC d n: print the buffer and feed n lines, as n LFs
    if p is None:
        return None
    for _ in range(max(p[0], 1)):
        d._end_line()
    return 3


def _feed_dots(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 1)  # ESC J n: print the buffer and feed n dots
    if p is None:
        return None
    if d._chars:
        d._end_line()
    return 3


def _cut(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 1)  # GS V m, and GS V m n for the "feed and cut" modes 65/66/97..
    if p is None:
        return None
    used = 4 if p[0] >= 65 else 3
    if i + used > len(buf):
        return None
    d._end_document(cut=True)
    return used


def _old_cut(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int:
    d._end_document(cut=True)  # ESC i / ESC m: the obsolete one-byte cuts
    return 2


def _chinese_on(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int:
    d._style.chinese = True
    return 2


def _chinese_off(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int:
    d._style.chinese = False
    return 2


def _status(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 1)  # DLE EOT n: real-time status request; n 7 and 8 take one more byte
    if p is None:
        return None
    used = 4 if p[0] in (7, 8) else 3
    if i + used > len(buf):
        return None
    q.append(p[0])
    return used


def _realtime(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 1)  # DLE DC4 fn ...: fn 8 (clear buffer) has 7 bytes, the others 2
    if p is None:
        return None
    used = 3 + (7 if p[0] == 8 else 2)
    return used if i + used <= len(buf) else None


def _raster(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 6)  # GS v 0 m xL xH yL yH d1..dk, k = x * y
    if p is None:
        return None
    x, y = p[2] | p[3] << 8, p[4] | p[5] << 8
    used = 8 + x * y
    if i + used > len(buf):
        return None
    d._placeholder(f"[image {x * 8}x{y}]")
    return used


def _column_image(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 3)  # ESC * m nL nH: n columns of 1 (8-dot) or 3 (24-dot) bytes
    if p is None:
        return None
    used = 5 + (p[1] | p[2] << 8) * (1 if p[0] in (0, 1) else 3)
    if i + used > len(buf):
        return None
    d.skipped += 1
    return used


def _define_image(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 2)  # GS * x y: x * y * 8 bytes of a downloaded image
    if p is None:
        return None
    used = 4 + p[0] * p[1] * 8
    if i + used > len(buf):
        return None
    d.skipped += 1
    return used


def _paren(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    # GS ( fn pL pH ..., ESC ( fn pL pH ...: p bytes of parameters. For GS ( k (2D codes)
    # cn 49 is QR: fn 80 stores the data, fn 81 prints it.
    p = _param(buf, i, 3)
    if p is None:
        return None
    size = p[1] | p[2] << 8
    used = 5 + size
    if i + used > len(buf):
        return None
    body = bytes(buf[i + 5 : i + used])
    if buf[i] == GS and p[0] == ord("k") and len(body) >= 2 and body[0] == 49:
        if body[1] == 80:
            d._qr_data = body[3:]
        elif body[1] == 81:
            d._placeholder(f"[qr {d._qr_data.decode('latin-1')}]")
            return used
    d.skipped += 1
    return used


def _graphics_long(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 5)  # GS 8 L p1 p2 p3 p4 ...: a 32-bit length
    if p is None:
        return None
    used = 7 + int.from_bytes(p[1:5], "little")
    if i + used > len(buf):
        return None
    d.skipped += 1
    return used


def _barcode(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    p = _param(buf, i, 1)  # GS k m: m 0-6 NUL-terminated data, m 65-79 a length byte first
    if p is None:
        return None
    if p[0] <= 6:
        end = buf.find(0, i + 3)
        if end < 0:
            return None
        data, used = bytes(buf[i + 3 : end]), end + 1 - i
    else:
        if i + 4 > len(buf):
            return None
        used = 4 + buf[i + 3]
        if i + used > len(buf):
            return None
        data = bytes(buf[i + 4 : i + used])
    d._placeholder(f"[barcode {data.decode('latin-1')}]")
    return used


def _tab_stops(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    end = buf.find(0, i + 2)  # ESC D n1 ... NUL
    return None if end < 0 else end + 1 - i


def _user_chars(d: EscposDecoder, buf: bytearray, i: int, q: list[int]) -> int | None:
    # FS 2 c1 c2 d1..d72: one user-defined Chinese character (24x24 dots).
    return 76 if i + 76 <= len(buf) else None


_COMMANDS: dict[bytes, _Handler] = {
    b"\x1b@": _init,
    b"\x1ba": _align,
    b"\x1bE": _bold,
    b"\x1b!": _print_mode,
    b"\x1bt": _code_page,
    b"\x1bd": _feed_lines,
    b"\x1bJ": _feed_dots,
    b"\x1bi": _old_cut,
    b"\x1bm": _old_cut,
    b"\x1b*": _column_image,
    b"\x1b(": _paren,
    b"\x1bD": _tab_stops,
    b"\x1d!": _size,
    b"\x1dV": _cut,
    b"\x1dv": _raster,
    b"\x1d*": _define_image,
    b"\x1d(": _paren,
    b"\x1d8": _graphics_long,
    b"\x1dk": _barcode,
    b"\x1c&": _chinese_on,
    b"\x1c.": _chinese_off,
    b"\x1c2": _user_chars,
    b"\x10\x04": _status,
    b"\x10\x14": _realtime,
}
