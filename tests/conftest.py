from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from crisiscomms.cli import main
from crisiscomms.testing.standin import (
    DEFAULT_SENDGRID_KEY,
    DEFAULT_TWILIO_SID,
    DEFAULT_TWILIO_TOKEN,
    Standin,
    StandinConfig,
    standin_in_thread,
)

from .pgserver import PgServer, pg_server, pg_url

__all__ = ["PgServer", "Result", "pg_server", "pg_url", "run_cli"]

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs a real PostgreSQL server (tests/pgserver.py starts one; "
                            "skipped with the reason without the server binaries)")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, input: str | None = None) -> Result:
    """Run the real entry point (with its error handler) and capture its output."""
    runner = CliRunner()
    with runner.isolation(input=input) as (out, err, _):
        try:
            main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        else:  # pragma: no cover - main always exits
            code = 0
        stdout = out.getvalue().decode()
        stderr = err.getvalue().decode()
    return Result(code, stdout, stderr)


@pytest.fixture
def in_data_dir() -> Iterator[Path]:
    previous = Path.cwd()
    os.chdir(DATA)
    try:
        yield DATA
    finally:
        os.chdir(previous)


@pytest.fixture(autouse=True)
def private_ledger_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own per-user state folder (where the default ledger lives) and no ledger override."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.delenv("CRISISCOMMS_LEDGER", raising=False)
    monkeypatch.delenv("CRISISCOMMS_OPERATOR", raising=False)
    return state


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Standin]:
    """The provider stand-in in a thread of this process, and the environment of a real send pointing at it.

    (The fault, bad-input and security suites have their own, in their conftest.)"""
    with standin_in_thread(StandinConfig()) as server:
        monkeypatch.setenv("CRISISCOMMS_TWILIO_URL", server.twilio_url)
        monkeypatch.setenv("CRISISCOMMS_SENDGRID_URL", server.sendgrid_url)
        monkeypatch.setenv("TWILIO_ACCOUNT_SID", DEFAULT_TWILIO_SID)
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", DEFAULT_TWILIO_TOKEN)
        monkeypatch.setenv("SENDGRID_API_KEY", DEFAULT_SENDGRID_KEY)
        yield server
