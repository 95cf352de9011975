"""Both ledger backends behind one fixture, and the few raw writes the tests need on each."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from crisiscomms.ledger import LedgerLocation, open_ledger
from crisiscomms.ledger.base import Ledger
from crisiscomms.ledger.postgres import PostgresLedger
from crisiscomms.ledger.sqlite import SqliteLedger

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def ledger_location(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerLocation:
    """A fresh ledger of the backend the test is parametrized with ("sqlite" or "postgres")."""
    if request.param == "postgres":
        return LedgerLocation(request.getfixturevalue("pg_url"), "--ledger")
    return LedgerLocation(str(tmp_path / "ledger.sqlite"), "--ledger")


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerLocation:
    return ledger_location(request, tmp_path)


@pytest.fixture
def ledger(location: LedgerLocation) -> Iterator[Ledger]:
    opened = open_ledger(location)
    try:
        yield opened
    finally:
        opened.close()


def sql(ledger: Ledger, statement: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    """Run one statement (written with ? placeholders) on either backend; its rows."""
    if isinstance(ledger, SqliteLedger):
        with ledger._transaction():
            return ledger.db.execute(statement, params).fetchall()
    assert isinstance(ledger, PostgresLedger)
    found: list[tuple[Any, ...]] = []

    async def work(connection: Any) -> None:
        cursor = await connection.execute(statement.replace("?", "%s"), params)
        if cursor.description is not None:
            found.extend(await cursor.fetchall())

    ledger._call(work)
    return found


def age_leases(ledger: Ledger) -> None:
    """Every lease's heartbeat long ago: its holder looks dead."""
    sql(ledger, "UPDATE leases SET heartbeat_at = '2026-01-01T00:00:00+00:00'")
