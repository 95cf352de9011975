"""Control characters in text from files are shown as escapes; ordinary text, right-to-left included, is not."""

from __future__ import annotations

from crisiscomms.safetext import visible


def test_c0_c1_and_bidirectional_controls_are_shown_as_escapes() -> None:
    assert visible("a\x1b[2Jb\x07") == "a\\x1b[2Jb\\x07"
    assert visible("x\x9b2Jy\x85") == "x\\x9b2Jy\\x85"
    assert visible("invoice\u202efdp.exe\u2066") == "invoice\\u202efdp.exe\\u2066"


def test_ordinary_text_is_left_alone() -> None:
    text = "Åsa Öberg, Γκέτεμποργκ, مرحبا, tab\tand newline\n, 06:00\u2009–\u200924:00, ¡ñ"
    assert visible(text) == text
