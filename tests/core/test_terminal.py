"""The escaping rule for names and messages printed to a terminal."""

from __future__ import annotations

import os

import pytest
from pannier.terminal import escape_name, escape_text


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("plain/name.txt", "plain/name.txt"),
        ("with space", "with space"),
        ("caf\u00e9 \u65e5\u672c \U0001f600", "caf\u00e9 \u65e5\u672c \U0001f600"),
        ("esc\x1b[2J", "esc\\x1b[2J"),
        ("nul\x00", "nul\\x00"),
        ("nl\ntab\tcr\r", "nl\\x0atab\\x09cr\\x0d"),
        ("del\x7f", "del\\x7f"),
        ("c1\u0085\u009b", "c1\\u0085\\u009b"),
        ("nbsp\u00a0", "nbsp\\u00a0"),
        ("rlo\u202egnp.exe", "rlo\\u202egnp.exe"),
        ("ls\u2028", "ls\\u2028"),
        ("tag\U000e0041", "tag\\U000e0041"),
        (os.fsdecode(b"bad\xff\xc3"), "bad\\xff\\xc3"),
        ("back\\slash", "back\\\\slash"),
        ("looks\\x1bescaped", "looks\\\\x1bescaped"),
    ],
)
def test_escape_name(name: str, shown: str) -> None:
    assert escape_name(name) == shown
    assert escape_name(name).isprintable()


def test_different_names_print_differently() -> None:
    names = ["a\x1b", "a\\x1b", os.fsdecode(b"a\x1b"), os.fsdecode(b"a\xc2\x9b"), "a\u009b"]
    shown = [escape_name(n) for n in set(names)]
    assert len(set(shown)) == len(set(names))


def test_escape_text_keeps_backslashes_and_optionally_newlines() -> None:
    assert escape_text("C:\\dir \x1b[2J") == "C:\\dir \\x1b[2J"
    assert escape_text("two\nlines") == "two\\x0alines"
    assert escape_text("two\nlines\r", keep_newlines=True) == "two\nlines\\x0d"
    assert escape_text(os.fsdecode(b"\xff")) == "\\xff"
    message = "ok: nothing to escape"
    assert escape_text(message) is message
