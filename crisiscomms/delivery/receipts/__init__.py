"""Delivery receipts: the events (``events``), where they are applied (``store``), the web server that
receives them (``server``) and the loop that fetches them (``pull``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...ledger.base import Ledger
    from .pg_store import PgReceiptStore
    from .sqlite_store import SqliteReceiptStore


def store_for(ledger: Ledger) -> SqliteReceiptStore | PgReceiptStore:
    """The receipt store on ``ledger``: receipts live in the same ledger as the sends, SQLite or PostgreSQL."""
    from ...ledger.sqlite import SqliteLedger

    if isinstance(ledger, SqliteLedger):
        from .sqlite_store import SqliteReceiptStore

        return SqliteReceiptStore(ledger)
    from ...ledger.postgres import PostgresLedger
    from .pg_store import PgReceiptStore

    if isinstance(ledger, PostgresLedger):
        return PgReceiptStore(ledger)
    raise TypeError(f"no receipt store for {type(ledger).__name__}")
