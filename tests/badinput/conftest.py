"""Shared pieces of the bad-input suite.

Every case runs the real entry point (``run_cli``) in a copy of the minimal project, with the
provider stand-in running and the environment pointing at it with valid credentials: if any broken
input ever reached a provider, the stand-in would count the request. Each check asserts the exit
code, the message fragments, no traceback and zero provider requests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from crisiscomms.testing.standin import (
    DEFAULT_SENDGRID_KEY,
    DEFAULT_TWILIO_SID,
    DEFAULT_TWILIO_TOKEN,
    Standin,
    StandinConfig,
    standin_in_thread,
)

from ..conftest import DATA, Result, run_cli

AT = "2026-11-25T12:00+01:00"
TEMPLATE = "templates/outage/en/email_subject.txt"


@pytest.fixture(scope="module")
def module_standin() -> Iterator[Standin]:
    with standin_in_thread(StandinConfig()) as server:
        yield server


@pytest.fixture
def standin(module_standin: Standin, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Standin]:
    """The stand-in, reset, with the environment of a real send pointing at it."""
    module_standin.reset()
    monkeypatch.setenv("CRISISCOMMS_TWILIO_URL", module_standin.twilio_url)
    monkeypatch.setenv("CRISISCOMMS_SENDGRID_URL", module_standin.sendgrid_url)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", DEFAULT_TWILIO_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", DEFAULT_TWILIO_TOKEN)
    monkeypatch.setenv("SENDGRID_API_KEY", DEFAULT_SENDGRID_KEY)
    monkeypatch.setenv("CRISISCOMMS_CRASH_DIR", str(tmp_path / "crash"))
    monkeypatch.setenv("CRISISCOMMS_CACHE_DIR", str(tmp_path / "cache"))
    yield module_standin


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, standin: Standin) -> Path:
    """A copy of the minimal playbook, its templates and a 5-person audience; the working directory."""
    root = tmp_path / "project"
    shutil.copytree(DATA / "templates", root / "templates")
    (root / "playbooks").mkdir(parents=True)
    shutil.copy(DATA / "playbooks" / "minimal.yaml", root / "playbooks" / "p.yaml")
    rows = ["id,name,phone,email,locale"]
    rows += [f"r{i},Person {i},+4670{1000000 + i},person{i}@example.se,{'sv' if i % 2 else 'en'}" for i in range(5)]
    (root / "audience.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    monkeypatch.chdir(root)
    return root


def dry_run(*extra: str, audience: str = "audience.csv") -> Result:
    return run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", audience, "--at", AT, "--dry-run",
                   "--format", "json", *extra)


def validate() -> Result:
    return run_cli("validate", "playbooks/p.yaml")


def preview(*extra: str) -> Result:
    return run_cli("preview", "playbooks/p.yaml", "--notice", "outage", "--at", AT, "--format", "json", *extra)


def check(result: Result, code: int, *lines: str, standin: Standin, contains: tuple[str, ...] = ()) -> None:
    """The documented exit code; each of ``lines`` starts a line of the output (so the place printed first is
    exactly this one) and each of ``contains`` is somewhere in it; no traceback, no crash file, no request."""
    output = result.stdout + result.stderr
    assert result.code == code, f"exit {result.code}, expected {code}:\n{output[-3000:]}"
    for line in lines:
        assert ("\n" + output).find("\n" + line) >= 0, f"no line starts with {line!r}:\n{output[-3000:]}"
    for fragment in contains:
        assert fragment in output, f"{fragment!r} not in:\n{output[-3000:]}"
    assert "Traceback" not in output
    assert "internal error" not in output
    crash = Path(os.environ["CRISISCOMMS_CRASH_DIR"])
    assert not crash.exists() or not any(crash.iterdir()), "a crash traceback was written"
    assert standin.requests["twilio"] + standin.requests["sendgrid"] == 0, dict(standin.requests)
