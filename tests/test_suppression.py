"""Tests of crisiscomms.suppression: list and CSV formats, problems, appending STOPs."""

from __future__ import annotations

from pathlib import Path

import pytest

from crisiscomms.errors import AudienceError
from crisiscomms.suppression import Suppression, append_suppressed_phone, load_suppression


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_plain_list(tmp_path: Path) -> None:
    path = write(
        tmp_path / "stop.txt",
        "\ufeff# opted out by phone\n070-123 45 67\n\n+46 8 123 456 78   # a fixed line\n"
        "  Anna@Example.org\nnot a number\nbo@\n",
    )
    suppression = load_suppression([path], "SE")
    assert len(suppression) == 3
    assert suppression.contains("sms", "+46701234567")
    assert suppression.contains("sms", "0046 70 123 45 67")
    assert suppression.contains("sms", "+46812345678")  # not mobile, still suppressed
    assert not suppression.contains("sms", "+46701234568")
    assert suppression.contains("email", "anna@example.org")
    assert suppression.contains("email", "ANNA@EXAMPLE.ORG")
    assert not suppression.contains("email", "bo@example.org")
    assert suppression.problems == [
        f'{path}:6: "not a number" is neither a phone number nor an e-mail address',
        f'{path}:7: "bo@" is neither a phone number nor an e-mail address',
    ]
    assert suppression.sources == [path]


def test_csv_lists(tmp_path: Path) -> None:
    semicolon = write(
        tmp_path / "optout.csv",
        "Namn;Phone;E-mail;Email\nAnna;070-123 45 67;x;anna@example.org\nBo;;;\nCia;garbage;;\n",
    )
    addresses = write(tmp_path / "addresses.csv", "date,address\n2024-01-01,0701234568\n2024-01-02,Bo@Example.org\n")
    suppression = load_suppression([semicolon, addresses], "SE")
    assert len(suppression) == 4
    assert suppression.contains("sms", "+46701234567")
    assert suppression.contains("sms", "+46701234568")
    assert suppression.contains("email", "anna@example.org")
    assert suppression.contains("email", "bo@example.org")
    # "E-mail" is not an address column: its "x" is never looked at.
    assert suppression.problems == [f'{semicolon}:4: "garbage" is neither a phone number nor an e-mail address']


def test_undecodable_line_is_a_problem_not_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "stop.txt", b"0701234567\n07\xff01234568\nbo@example.org\n")
    suppression = load_suppression([path], "SE")
    assert len(suppression) == 2
    assert suppression.problems == [f"{path}:2: not valid UTF-8 (byte 0xff); line skipped"]


def test_unreadable_files_raise(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    with pytest.raises(AudienceError) as caught:
        load_suppression([missing], "SE")
    assert str(caught.value) == f"{missing}: the suppression list does not exist."
    assert len(load_suppression([missing], "SE", missing_ok=True)) == 0
    with pytest.raises(AudienceError) as caught:
        load_suppression([tmp_path], "SE")
    assert str(caught.value) == f"{tmp_path}: is a directory, not a suppression list."


def test_add_and_channels() -> None:
    suppression = Suppression("SE")
    suppression.add_phone("+46701234567")
    assert suppression.contains("sms", "070-123 45 67")
    assert not suppression.contains("email", "+46701234567")
    assert suppression.add_entry("Anna@Example.org")
    assert not suppression.add_entry("nobody")
    assert len(suppression) == 2
    with pytest.raises(ValueError, match="has no address"):
        suppression.contains("banner", "x")


def test_append_suppressed_phone(tmp_path: Path) -> None:
    path = tmp_path / "state" / "stop" / "replied-stop.txt"
    append_suppressed_phone(path, "+46701234567")
    append_suppressed_phone(path, "+46701234568")
    assert path.read_text() == "+46701234567\n+46701234568\n"
    suppression = load_suppression([path], "SE")
    assert suppression.contains("sms", "+46701234567") and suppression.contains("sms", "+46701234568")
    with pytest.raises(ValueError, match=r"not an E\.164 number"):
        append_suppressed_phone(path, "070-123 45 67")


def test_append_to_a_file_without_final_newline_and_to_a_csv(tmp_path: Path) -> None:
    plain = write(tmp_path / "stop.txt", "+46701234567")
    append_suppressed_phone(plain, "+46701234568")
    assert plain.read_text() == "+46701234567\n+46701234568\n"
    table = write(tmp_path / "stop.csv", "email,phone\nanna@example.org,\n")
    append_suppressed_phone(table, "+46701234569")
    suppression = load_suppression([table], "SE")
    assert suppression.contains("sms", "+46701234569")
    assert suppression.contains("email", "anna@example.org")
    assert suppression.problems == []
