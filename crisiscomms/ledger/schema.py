"""The SQLite ledger's schema, its version (``PRAGMA user_version``) and its migrations.

Version 1 (crisiscomms 0.1) had campaigns, messages and attempts and no version
number; version 2 adds frozen plans, leases, the STOP list and the columns that
tie a delivery row to the plan and text it was sent with; version 3 adds
delivery receipts (the state a provider reported, the events applied, the
events waiting for their message). Opening an older ledger migrates it in one
transaction; a newer one is refused.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from ..errors import LedgerError
from .base import SCHEMA_VERSION

V1_TABLES = """
CREATE TABLE IF NOT EXISTS campaigns (
    campaign TEXT PRIMARY KEY,
    notice TEXT NOT NULL,
    playbook TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    campaign TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    locale TEXT NOT NULL,
    state TEXT NOT NULL,
    permanent INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    provider_id TEXT,
    error_code TEXT,
    error TEXT,
    not_before TEXT,
    body TEXT, -- SMS: fingerprint of the text sent, to reconcile by body
    last_attempt_at TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (campaign, channel, address)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attempts (
    campaign TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    code TEXT,
    reason TEXT,
    provider_id TEXT
);
CREATE INDEX IF NOT EXISTS messages_state ON messages (campaign, state);
"""

V2_COLUMNS = (
    ("campaigns", "organisation", "TEXT"),
    ("campaigns", "exercise", "INTEGER NOT NULL DEFAULT 0"),
    ("messages", "plan", "INTEGER"),  # the plan whose row it was last claimed from
    ("messages", "seq", "INTEGER"),
    ("messages", "text_version", "TEXT"),  # the text it was (or will be) sent with
    ("messages", "holder", "TEXT"),  # the lease token of the sender that claimed it
    ("messages", "corrections", "INTEGER NOT NULL DEFAULT 0"),  # times re-sent as a correction (--resend-to-all)
)

V3_COLUMNS = (
    ("messages", "delivery_state", "TEXT"),  # delivered, undelivered, failed, bounced, dropped, deferred, opened
    ("messages", "delivery_code", "TEXT"),
    ("messages", "delivery_reason", "TEXT"),
    ("messages", "delivery_at", "TEXT"),
    ("messages", "receipt", "TEXT"),  # the winning receipt event (JSON), merged with the next ones
)

V3_TABLES = """
CREATE TABLE IF NOT EXISTS receipt_events (
    channel TEXT NOT NULL,
    event_id TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (channel, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS receipt_waiting (
    provider_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    record TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (provider_id, event_id)
) WITHOUT ROWID;
"""

V2_TABLES = """
CREATE TABLE IF NOT EXISTS plans (
    key INTEGER PRIMARY KEY,
    id TEXT UNIQUE, -- the content hash; NULL while the plan is being written
    state TEXT NOT NULL, -- writing | ready
    campaign TEXT NOT NULL,
    notice TEXT NOT NULL,
    organisation TEXT NOT NULL,
    text_version TEXT NOT NULL,
    at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    planned_by TEXT NOT NULL,
    channels TEXT NOT NULL,
    approval_required INTEGER NOT NULL DEFAULT 0,
    approved_by TEXT,
    approved_at TEXT,
    messages INTEGER NOT NULL DEFAULT 0,
    skips INTEGER NOT NULL DEFAULT 0,
    snapshot TEXT NOT NULL, -- playbook and templates as planned (JSON)
    summary TEXT, -- the plan summary and samples (JSON)
    exercise INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS plans_campaign ON plans (campaign, created_at);
CREATE TABLE IF NOT EXISTS plan_rows (
    plan INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    locale TEXT NOT NULL,
    timezone TEXT NOT NULL,
    not_before TEXT,
    view TEXT NOT NULL,
    PRIMARY KEY (plan, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS plan_skips (
    plan INTEGER NOT NULL,
    line INTEGER NOT NULL,
    recipient_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS plan_skips_plan ON plan_skips (plan);
CREATE TABLE IF NOT EXISTS leases (
    campaign TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    process_start TEXT,
    operator TEXT NOT NULL,
    plan TEXT,
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stop_list (
    address TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    added_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS text_choices (
    campaign TEXT NOT NULL,
    text_version TEXT NOT NULL,
    choice TEXT NOT NULL, -- continue | resend
    operator TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (campaign, text_version)
);
CREATE TABLE IF NOT EXISTS stop_imports (
    digest TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    numbers INTEGER NOT NULL
);
"""


def schema_version(connection: sqlite3.Connection) -> int:
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version == 0 and connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'").fetchone():
        return 1  # crisiscomms 0.1 did not number its schema
    return version


def migrate(connection: sqlite3.Connection, path: Path) -> None:
    """Bring the ledger to :data:`SCHEMA_VERSION` (creating it when new); refuse a newer one."""
    version = schema_version(connection)
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger {path} has schema version {version}, newer than this crisiscomms knows "
            f"(up to {SCHEMA_VERSION}). Nothing was sent. Upgrade crisiscomms, or use another ledger.")
    if version == SCHEMA_VERSION:
        return
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statement in _statements(V1_TABLES + V2_TABLES + V3_TABLES):
            connection.execute(statement)
        for table, column, kind in (*V2_COLUMNS, *V3_COLUMNS):
            if not _has_column(connection, table, column):
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        connection.execute("CREATE INDEX IF NOT EXISTS messages_plan ON messages (campaign, plan)")
        connection.execute("CREATE INDEX IF NOT EXISTS messages_provider ON messages (channel, provider_id)")
        connection.execute("CREATE INDEX IF NOT EXISTS messages_recipient "
                           "ON messages (campaign, channel, recipient_id)")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already (a full disk)
            connection.execute("ROLLBACK")
        raise


def _has_column(connection: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in connection.execute(f"PRAGMA table_info({table})"))


def _statements(script: str) -> list[str]:
    lines = [line.split("--")[0] for line in script.splitlines()]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]
