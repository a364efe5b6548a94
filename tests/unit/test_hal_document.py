"""Document.plain_text: how the paper reads."""

import pytest

from hal.document import Document, Line, text_width, wrap


def test_plain_text_aligns_left_centre_and_right():
    doc = Document("t", (Line("ab"), Line("ab", align="center"), Line("ab", align="right")))
    assert doc.plain_text(10).splitlines() == ["ab", "    ab", "        ab"]


def test_cjk_characters_count_as_two_columns():
    assert text_width("签购单") == 6
    assert text_width("RMB 签") == 6
    doc = Document("t", (Line("签购单", align="center"), Line("签购单", align="right")))
    assert doc.plain_text(10).splitlines() == ["  签购单", "    签购单"]


def test_rule_is_a_full_width_line_of_dashes():
    doc = Document("t", (Line(rule=True),))
    assert doc.plain_text(32) == "-" * 32 + "\n"


def test_long_lines_wrap_at_the_width_without_splitting_a_wide_character():
    assert wrap("abcdef", 4) == ["abcd", "ef"]
    assert wrap("a签购单", 4) == ["a签", "购单"]


def test_double_lines_wrap_at_half_the_width():
    doc = Document("t", (Line("abcdefgh", double=True),))
    assert doc.plain_text(8).splitlines() == ["abcd", "efgh"]


def test_lines_given_as_a_list_are_stored_as_a_tuple():
    doc = Document("t", [Line("x")])  # type: ignore[arg-type]
    assert doc.lines == (Line("x"),)


def test_bad_alignment_is_refused():
    with pytest.raises(ValueError):
        Line("x", align="middle")
