"""Text from input files must not reach the operator's terminal as control sequences.

An ESC or BEL in an audience header, a suppression list or a playbook could retitle the terminal, clear
it or hide text when an error message or warning echoes it raw (OSC / CSI sequences).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import Result, run_cli
from .conftest import AT, make_project

OSC_TITLE = "\x1b]0;all messages sent\x07"
CLEAR = "\x1b[2J"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(tmp_path / "project")
    monkeypatch.chdir(root)
    monkeypatch.setenv("CRISISCOMMS_CACHE_DIR", str(tmp_path / "cache"))
    return root


def raw_control(result: Result) -> list[str]:
    return [repr(c) for c in sorted(set(result.stdout + result.stderr)) if c in "\x1b\x07\x9b\x9d"]


def dry_run(*extra: str, audience: str = "audience.csv") -> Result:
    return run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", audience, "--at", AT, "--dry-run",
                   *extra)


def test_playbook_control_characters_are_named_not_echoed(project: Path) -> None:
    playbook = project / "playbooks" / "p.yaml"
    playbook.write_text(playbook.read_text(encoding="utf-8").replace("name: Testbolaget", f"name: T{CLEAR}", 1),
                        encoding="utf-8")
    result = run_cli("validate", "playbooks/p.yaml")
    assert result.code == 1 and "playbooks/p.yaml:3:" in result.stdout
    assert raw_control(result) == []


@pytest.mark.parametrize("where", ["csv-header", "jsonl-key", "suppression-entry"])
def test_input_text_in_messages_is_shown_escaped(project: Path, where: str) -> None:
    if where == "csv-header":
        (project / "aud.csv").write_text(f"id,name{OSC_TITLE},mobile\nr1,A,+46701000001\n", encoding="utf-8")
        result = dry_run(audience="aud.csv")
        assert result.code == 3 and 'no "phone" or "email"' in result.stderr
    elif where == "jsonl-key":
        (project / "aud.jsonl").write_text('{"id": 1, "name\\u001b]0;x\\u0007": 2}\n', encoding="utf-8")
        result = dry_run(audience="aud.jsonl")
        assert result.code == 3 and 'no "phone" or "email"' in result.stderr
    else:
        (project / "opt-out.txt").write_text(f"{CLEAR}+4670{OSC_TITLE}\n", encoding="utf-8")
        result = dry_run("--suppress", "opt-out.txt")
        assert result.code == 0 and "is neither a phone number nor an e-mail address" in " ".join(result.stdout.split())
    assert raw_control(result) == []
