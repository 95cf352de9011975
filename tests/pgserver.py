"""The PostgreSQL fixtures: the session's throwaway cluster and a fresh database per test.

The cluster itself is :mod:`crisiscomms.testing.pgcluster` (the benchmarks start one too). Without the
server binaries the PostgreSQL tests are skipped with the reason, never faked.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from crisiscomms.testing.pgcluster import PgServer, running_server

__all__ = ["PgServer", "pg_server", "pg_url", "running_server"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL cluster (the test is skipped, with the reason, without one)."""
    with running_server() as server:
        if isinstance(server, str):
            pytest.skip(server)
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty database for this test: its URL (no password; PGPASSWORD holds it)."""
    name = f"t_{secrets.token_hex(6)}"
    pg_server.execute(f'CREATE DATABASE "{name}"')
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "5")
    return pg_server.url(name)
