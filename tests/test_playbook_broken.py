"""The corpus of broken playbooks: each gives one exact message at one exact place."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from crisiscomms.loader import load_playbook
from crisiscomms.yamlsource import MAX_FILE_BYTES

from .conftest import DATA, run_cli

BROKEN = DATA / "broken"
EXPECTED = dict(
    line.split(":", 1) for line in (BROKEN / "expected.txt").read_text(encoding="utf-8").splitlines() if line
)


def test_corpus_is_large_enough() -> None:
    assert len(EXPECTED) >= 30
    assert sorted(EXPECTED) == sorted(p.name for p in BROKEN.glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_playbook_reports_exact_place_and_message(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BROKEN)
    loaded = load_playbook(Path(name))
    errors = [d.as_text() for d in loaded.diagnostics if d.severity == "error"]
    assert errors, f"{name} produced no error"
    assert errors[0] == f"{name}:{EXPECTED[name]}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_playbook_fails_validate_without_traceback(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BROKEN)
    result = run_cli("validate", name)
    assert result.code == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert f"{name}:{EXPECTED[name]}" in result.stdout


def test_alias_bomb_is_refused_quickly() -> None:
    started = time.monotonic()
    loaded = load_playbook(BROKEN / "alias-bomb.yaml")
    assert time.monotonic() - started < 5  # a bound, not a benchmark: expansion would take hours
    assert "refusing to expand it" in loaded.diagnostics[0].message


def test_oversized_file_is_refused_without_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("version: 1\n" + "# padding\n" * (MAX_FILE_BYTES // 10 + 1), encoding="utf-8")
    loaded = load_playbook(big, shown_path="big.yaml")
    assert [d.as_text() for d in loaded.diagnostics] == [
        f"big.yaml: error: the file is {big.stat().st_size:,} bytes; a playbook may be at most "
        f"{MAX_FILE_BYTES:,} bytes"
    ]


def test_directory_and_missing_file_are_reported(tmp_path: Path) -> None:
    assert load_playbook(tmp_path, shown_path="d").diagnostics[0].as_text() == "d: error: is a directory, not a file"
    missing = load_playbook(tmp_path / "nope.yaml", shown_path="nope.yaml")
    assert missing.diagnostics[0].as_text() == "nope.yaml: error: no such file"
