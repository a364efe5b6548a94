"""Labels in the cashier's two languages: a table of key -> (Chinese, English), read in the
configured language ('zh' or 'en') or with it first and the other beside it."""

from __future__ import annotations


def say_in(table: dict[str, tuple[str, str]], key: str, language: str) -> str:
    """The label in the configured language."""
    zh, en = table[key]
    return zh if language == "zh" else en


def both_in(table: dict[str, tuple[str, str]], key: str, language: str) -> str:
    """'消费 Sale' (zh) or 'Sale 消费' (en): the configured language first."""
    zh, en = table[key]
    return f"{zh} {en}" if language == "zh" else f"{en} {zh}"
