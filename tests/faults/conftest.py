"""Shared pieces of the fault suite: a copy of the minimal project with a large audience, the
provider stand-in in a thread of the test process, and the real CLI run as a subprocess.

Every CLI run here is a subprocess with a timeout, so a hang in the product fails the test
instead of the CI job; progress is read from the stand-in's record, never from the clock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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

from ..conftest import DATA

AT = "2026-11-25T12:00+01:00"  # a Wednesday noon: the notice is critical anyway (no quiet hours)


def phone(i: int) -> str:
    return f"+4670{1000000 + i}"


def email(i: int) -> str:
    return f"person{i}@example.se"


def make_project(root: Path, recipients: int) -> Path:
    """The minimal playbook and its templates, and an audience of ``recipients`` valid people."""
    shutil.copytree(DATA / "templates", root / "templates")
    (root / "playbooks").mkdir()
    shutil.copy(DATA / "playbooks" / "minimal.yaml", root / "playbooks" / "p.yaml")
    rows = ["id,name,phone,email,locale"]
    rows += [f"r{i},Person {i},{phone(i)},{email(i)},{'sv' if i % 2 else 'en'}" for i in range(recipients)]
    (root / "audience.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def standin() -> Iterator[Standin]:
    with standin_in_thread(StandinConfig()) as server:
        yield server


def cli_env(server: Standin, crash_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: only the stand-in's URLs and credentials, wide output."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "SENDGRID_", "CRISISCOMMS_", "PYTEST_"))}
    env.update(CRISISCOMMS_TWILIO_URL=server.twilio_url, CRISISCOMMS_SENDGRID_URL=server.sendgrid_url,
               TWILIO_ACCOUNT_SID=DEFAULT_TWILIO_SID, TWILIO_AUTH_TOKEN=DEFAULT_TWILIO_TOKEN,
               SENDGRID_API_KEY=DEFAULT_SENDGRID_KEY, CRISISCOMMS_CRASH_DIR=str(crash_dir),
               CRISISCOMMS_CACHE_DIR=str(crash_dir.parent / "template-cache"), COLUMNS="160", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def send_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "crisiscomms", "send", "playbooks/p.yaml", "--notice", "outage",
            "--audience", "audience.csv", "--at", AT, "--yes", *extra]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        """stdout and stderr with Rich's line wrapping undone, for matching sentences."""
        return " ".join((self.stdout + "\n" + self.stderr).split())


def run(command: Sequence[str], cwd: Path, env: dict[str, str], timeout: float,
        preexec_fn: Callable[[], None] | None = None) -> Run:
    """Run to completion; a run that outlives ``timeout`` is killed and fails the test."""
    try:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=preexec_fn)
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout.decode(errors="replace") if isinstance(expired.stdout, bytes) else expired.stdout
        pytest.fail(f"the CLI did not finish within {timeout:.0f} s (a hang?); last output:\n{(out or '')[-1500:]}")
    return Run(done.returncode, done.stdout, done.stderr)


def start(command: Sequence[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_requests(server: Standin, provider: str, count: int, process: subprocess.Popen[str],
                      guard: float = 60.0) -> bool:
    """Wait until the stand-in has seen ``count`` requests of ``provider`` (True) or the process ended
    (False). ``guard`` only bounds a broken run; nothing is asserted about time."""
    deadline = time.monotonic() + guard
    while server.requests[provider] < count:
        if process.poll() is not None:
            return False
        if time.monotonic() > deadline:
            process.kill()
            process.communicate()
            pytest.fail(f"only {server.requests[provider]} of {count} {provider} requests within {guard:.0f} s")
        time.sleep(0.005)
    return True


def assert_exactly_once(counts: Counter[str], expected: Sequence[str], what: str) -> None:
    missing = sorted(set(expected) - set(counts))
    twice = sorted(address for address, n in counts.items() if n > 1)
    unexpected = sorted(set(counts) - set(expected))
    assert not (missing or twice or unexpected), (
        f"{what}: {len(missing)} never sent (e.g. {missing[:3]}), {len(twice)} sent more than once "
        f"(e.g. {[(a, counts[a]) for a in twice[:3]]}), {len(unexpected)} not in the audience (e.g. {unexpected[:3]})")
