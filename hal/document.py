"""A printable document (receipt, report, slip) as lines, independent of any printer.

The app builds a :class:`Document`; a printer driver renders it (ESC/POS, a preview file).
:meth:`Document.plain_text` is how the paper reads, used for previews and tests.
Column widths follow the receipt printers' rule: a CJK (East Asian wide/fullwidth)
character takes two columns, everything else one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["ALIGNMENTS", "Document", "Line", "text_width", "wrap"]

ALIGNMENTS = ("left", "center", "right")


@lru_cache(maxsize=4096)
def char_width(ch: str) -> int:
    """Columns one character takes on a receipt printer: 2 for CJK wide/fullwidth, 0 for combining."""
    if ch.isascii():
        return 1
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def text_width(text: str) -> int:
    """Columns ``text`` takes on paper (CJK characters count as 2)."""
    if text.isascii():
        return len(text)
    return sum(char_width(ch) for ch in text)


def wrap(text: str, width: int) -> list[str]:
    """Split ``text`` into pieces of at most ``width`` columns (hard wrap, as the printer does).

    Embedded newlines start a new piece; an empty text gives one empty piece.
    """
    if width < 2:
        raise ValueError(f"width must be at least 2 columns, not {width}")
    pieces: list[str] = []
    for segment in text.split("\n"):
        if segment.isascii():      # one column a character: plain slicing
            pieces += [segment[i:i + width] for i in range(0, len(segment), width)] or [""]
            continue
        current, used = "", 0
        for ch in segment:
            w = char_width(ch)
            if used + w > width:
                pieces.append(current)
                current, used = "", 0
            current += ch
            used += w
        pieces.append(current)
    return pieces


@dataclass(frozen=True)
class Line:
    """One line of a document; ``rule`` makes it a full-width separator and ignores ``text``."""

    text: str = ""
    align: str = "left"  # left | center | right
    bold: bool = False
    double: bool = False  # double width and height: half as many columns per line
    rule: bool = False  # a full-width separator line

    def __post_init__(self) -> None:
        if self.align not in ALIGNMENTS:
            raise ValueError(f"align must be one of {', '.join(ALIGNMENTS)}, not {self.align!r}")


@dataclass(frozen=True)
class Document:
    """A titled sequence of lines; the title names the document (file names, logs) and is not printed."""

    title: str
    lines: tuple[Line, ...]
    cut: bool = True

    def __post_init__(self) -> None:
        # Accept any iterable of lines (a list is the natural thing to build) but store a tuple.
        object.__setattr__(self, "lines", tuple(self.lines))
        for line in self.lines:
            if not isinstance(line, Line):
                raise TypeError(f"Document lines must be Line objects, not {type(line).__name__}")

    def plain_text(self, width: int) -> str:
        """How the paper would read at ``width`` columns: aligned, wrapped, rules as dashes.

        Double-size lines wrap at half the width; they are aligned by their plain width so
        that the preview stays readable.
        """
        out: list[str] = []
        for line in self.lines:
            if line.rule:
                out.append("-" * width)
                continue
            columns = width // 2 if line.double else width
            for piece in wrap(line.text, columns):
                pad = width - text_width(piece)
                if line.align == "center":
                    piece = " " * (pad // 2) + piece
                elif line.align == "right":
                    piece = " " * pad + piece
                out.append(piece.rstrip())
        return "\n".join(out) + "\n"
