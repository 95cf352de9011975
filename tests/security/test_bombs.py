"""Alias bombs and oversized inputs are refused quickly.

Every run is a subprocess with an address-space cap (2 GiB) and a 20 s guard: a bomb that gets through
fails the test instead of exhausting the CI machine. Nothing here asserts how fast anything is.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crisiscomms.testing.standin import Standin

from .conftest import AT, Credentials, environment, make_project, run_bounded

MIB = 1024 * 1024


def lol_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def merge_bomb(levels: int = 8) -> str:
    lines = ["m0: &m0 {k0: 1, k1: 2, k2: 3, k3: 4}"]
    for level in range(1, levels + 1):
        keys = ", ".join(f"c{i}: *m{level - 1}" for i in range(8))
        lines.append(f"m{level}: &m{level} {{<<: *m{level - 1}, {keys}}}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def env(tmp_path: Path, credentials: Credentials, standin: Standin) -> dict[str, str]:
    return environment(standin, credentials, tmp_path)


def output(result: object) -> str:
    return str(getattr(result, "stdout", "")) + str(getattr(result, "stderr", ""))


@pytest.mark.parametrize("bomb", [lol_bomb(), lol_bomb(levels=40, width=2), merge_bomb()],
                         ids=["billion-laughs", "forty-doublings", "merge-key-bomb"])
def test_alias_bombs_are_refused(project: Path, env: dict[str, str], standin: Standin, bomb: str) -> None:
    playbook = project / "playbooks" / "p.yaml"
    playbook.write_text(playbook.read_text(encoding="utf-8") + bomb, encoding="utf-8")
    for command, code in ((["validate", "playbooks/p.yaml"], 1),
                          (["send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv",
                            "--at", AT, "--yes"], 3)):
        result = run_bounded(command, project, env)
        assert result.returncode == code, output(result)[-2000:]
        assert "refusing to expand it" in output(result)
        assert "Traceback" not in output(result)
    assert standin.requests["twilio"] + standin.requests["sendgrid"] == 0


def test_a_list_that_contains_itself_is_refused(project: Path, env: dict[str, str]) -> None:
    playbook = project / "playbooks" / "p.yaml"
    playbook.write_text(playbook.read_text(encoding="utf-8") + "loop: &self [1, *self]\n", encoding="utf-8")
    result = run_bounded(["validate", "playbooks/p.yaml"], project, env)
    assert result.returncode == 1, output(result)[-2000:]
    assert "playbooks/p.yaml:" in result.stdout and "Traceback" not in output(result)


@pytest.mark.parametrize("size", [MIB + 1, 50 * MIB])
def test_an_oversized_playbook_is_refused_before_it_is_read(project: Path, env: dict[str, str], size: int) -> None:
    playbook = project / "playbooks" / "p.yaml"
    text = playbook.read_text(encoding="utf-8")
    with playbook.open("a", encoding="utf-8") as stream:
        stream.write("#" * (size - len(text.encode()) - 1) + "\n")
    assert playbook.stat().st_size == size
    for command in (["validate", "playbooks/p.yaml"],
                    ["preview", "playbooks/p.yaml", "--notice", "outage"]):
        result = run_bounded(command, project, env)
        assert result.returncode in (1, 3), output(result)
        assert f"playbooks/p.yaml: error: the file is {size:,} bytes; a playbook may be at most 1,000,000 bytes" \
            in output(result)


@pytest.mark.parametrize(("where", "expected", "code"), [
    ("header", f"audience.csv:1: the first line is longer than {MIB} bytes.", 3),
    ("row", "", 0),
])
def test_audience_lines_over_1_mib_are_refused_without_reading_them_whole(
        project: Path, env: dict[str, str], where: str, expected: str, code: int) -> None:
    """A 64 MiB line under a 2 GiB cap: read in bounded chunks, never into memory whole."""
    with (project / "audience.csv").open("wb") as stream:
        if where == "header":
            stream.write(b"phone," + b"x" * (64 * MIB) + b"\n")
        else:
            stream.write(b"id,name,phone,email,locale\nr1,A,+46701000001,a@example.se,en\n")
            stream.write(b"r2,B," + b"9" * (64 * MIB) + b"\nr3,C,+46701000003,c@example.se,en\n")
    result = run_bounded(["send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv",
                          "--at", AT, "--dry-run", "--format", "json"], project, env, memory=512 * MIB + 1024 ** 3)
    assert result.returncode == code, output(result)[-2000:]
    if code:
        assert f"crisiscomms: {expected}" in result.stderr
    else:
        assert '"skipped": {"malformed_row": 2}' in result.stdout  # the long row, once per channel (sms, email)
    assert "Traceback" not in output(result)


def test_dev_zero_as_the_audience_is_refused(project: Path, env: dict[str, str]) -> None:
    result = run_bounded(["send", "playbooks/p.yaml", "--notice", "outage", "--audience", "/dev/zero",
                          "--at", AT, "--dry-run"], project, env)
    assert result.returncode == 3
    assert f"crisiscomms: /dev/zero:1: the first line is longer than {MIB} bytes." in result.stderr


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_an_endless_playbook_is_refused(project: Path, env: dict[str, str]) -> None:
    result = run_bounded(["validate", "/dev/zero"], project, env)
    assert result.returncode in (1, 3), output(result)[-2000:]
    assert "1,000,000 bytes" in output(result) or "not a file" in output(result)


def test_a_string_multiplication_bomb_in_a_template_is_refused_by_the_sandbox(project: Path,
                                                                              env: dict[str, str]) -> None:
    (project / "templates" / "outage" / "en" / "email_subject.txt").write_text("{{ 'x' * 10**10 }}",
                                                                              encoding="utf-8")
    result = run_bounded(["validate", "playbooks/p.yaml"], project, env)
    assert result.returncode == 1
    assert "templates/outage/en/email_subject.txt:1: error: not allowed in a template" in result.stdout
