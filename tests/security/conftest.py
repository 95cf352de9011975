"""Shared pieces of the security suite: distinctive random credentials, a stand-in that knows them,
the minimal project, and helpers to scan everything a run leaves behind."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from crisiscomms.testing.standin import Standin, StandinConfig, standin_in_thread

from ..conftest import DATA

AT = "2026-11-25T12:00+01:00"


@dataclass(frozen=True)
class Credentials:
    sid: str
    token: str
    key: str

    @property
    def secrets(self) -> dict[str, str]:
        """Every spelling of a credential that would betray it: raw, Basic auth, Bearer, URL-encoded."""
        basic = base64.b64encode(f"{self.sid}:{self.token}".encode()).decode()
        return {"TWILIO_AUTH_TOKEN": self.token, "SENDGRID_API_KEY": self.key, "basic auth": basic,
                "basic auth (token part)": basic[len(basic) // 2:], "url-encoded key": quote(self.key, safe=""),
                "key body": self.key.split(".", 2)[-1]}

    @property
    def sid_forms(self) -> dict[str, str]:
        return {"TWILIO_ACCOUNT_SID": self.sid, "TWILIO_ACCOUNT_SID token part": self.sid[2:]}


def new_credentials() -> Credentials:
    return Credentials(sid="AC" + secrets.token_hex(16), token="tok" + secrets.token_hex(16),
                       key="SG." + secrets.token_urlsafe(16) + "." + secrets.token_urlsafe(24))


@pytest.fixture
def credentials() -> Credentials:
    return new_credentials()


@pytest.fixture
def standin(credentials: Credentials) -> Iterator[Standin]:
    config = StandinConfig(twilio_sid=credentials.sid, twilio_token=credentials.token, sendgrid_key=credentials.key)
    with standin_in_thread(config) as server:
        yield server


def environment(server: Standin, credentials: Credentials, root: Path) -> dict[str, str]:
    return {"CRISISCOMMS_TWILIO_URL": server.twilio_url, "CRISISCOMMS_SENDGRID_URL": server.sendgrid_url,
            "TWILIO_ACCOUNT_SID": credentials.sid, "TWILIO_AUTH_TOKEN": credentials.token,
            "SENDGRID_API_KEY": credentials.key, "CRISISCOMMS_CRASH_DIR": str(root / "crash"),
            "CRISISCOMMS_CACHE_DIR": str(root / "cache"),
            "XDG_STATE_HOME": str(root / "state")}  # the default ledger, inside the folder that is scanned


def make_project(root: Path, recipients: int = 20) -> Path:
    shutil.copytree(DATA / "templates", root / "templates")
    (root / "playbooks").mkdir(parents=True)
    shutil.copy(DATA / "playbooks" / "minimal.yaml", root / "playbooks" / "p.yaml")
    rows = ["id,name,phone,email,locale"]
    rows += [f"r{i},Person {i},+4670{1000000 + i},person{i}@example.se,{'sv' if i % 2 else 'en'}"
             for i in range(recipients)]
    (root / "audience.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def leaks(haystacks: dict[str, bytes], needles: dict[str, str]) -> list[str]:
    """``where: which secret`` for every secret found anywhere (bytes compared, any encoding of text)."""
    found = []
    for where, data in haystacks.items():
        for name, value in needles.items():
            if value.encode() in data or value.encode("utf-16-le") in data:
                found.append(f"{where}: {name}")
    return found


def files_under(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def run_bounded(command: Sequence[str], cwd: Path, env: dict[str, str], timeout: float = 20.0,
                memory: int | None = 2 * 1024 ** 3) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess, with an address-space cap (a bomb fails instead of swapping the CI machine)
    and a generous time guard; a run that outlives the guard fails the test."""
    preexec: Callable[[], None] | None = None
    if memory is not None:
        def preexec() -> None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SENDGRID_", "CRISISCOMMS_"))}
    full_env.update(env)
    try:
        return subprocess.run([sys.executable, "-m", "crisiscomms", *command], cwd=cwd, env=full_env,
                              capture_output=True, text=True, timeout=timeout, preexec_fn=preexec)
    except subprocess.TimeoutExpired:
        pytest.fail(f"crisiscomms {' '.join(command)[:120]} did not finish within {timeout:.0f} s")
