"""The PostgreSQL ledger's schema, its version table and its creation.

The tables mean what SQLite's version 3 tables mean (:mod:`.schema`), with PostgreSQL's types (booleans,
identity keys), plus what senders that *join* a campaign need: leases keyed by (campaign, token) with the
*round* of sending they belong to, and ``claim_chunks``, the plan cut into chunks of rows that one sender of a
round claims at a time. Lease times are the server's clock (``clock_timestamp()``), so machines whose clocks
differ still agree on which sender is stale. Version 2 adds the delivery receipts (``messages.receipt``,
``receipt_events``, ``receipt_waiting``), as SQLite's version 3 did.

``crisiscomms_schema`` holds the version. Creating or migrating runs under a transaction-scoped advisory lock,
so two machines opening a new database at the same moment do not collide; a newer version is refused.
"""

from __future__ import annotations

import psycopg

from ..errors import LedgerError

PG_SCHEMA_VERSION = 2
SCHEMA_LOCK = 0x63726973  # "cris": the advisory lock key taken while the schema is created or migrated

TABLES = """
CREATE TABLE IF NOT EXISTS crisiscomms_schema (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS campaigns (
    campaign text PRIMARY KEY,
    notice text NOT NULL,
    playbook text NOT NULL,
    created_at text NOT NULL,
    organisation text,
    exercise boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS plans (
    key bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text UNIQUE,
    state text NOT NULL,
    campaign text NOT NULL,
    notice text NOT NULL,
    organisation text NOT NULL,
    text_version text NOT NULL,
    at text NOT NULL,
    created_at text NOT NULL,
    planned_by text NOT NULL,
    channels text NOT NULL,
    approval_required boolean NOT NULL DEFAULT false,
    approved_by text,
    approved_at text,
    messages integer NOT NULL DEFAULT 0,
    skips integer NOT NULL DEFAULT 0,
    snapshot text NOT NULL,
    summary text,
    exercise boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS plans_campaign ON plans (campaign, created_at);
CREATE TABLE IF NOT EXISTS plan_rows (
    plan bigint NOT NULL,
    seq integer NOT NULL,
    channel text NOT NULL,
    address text NOT NULL,
    recipient_id text NOT NULL,
    line integer NOT NULL,
    locale text NOT NULL,
    timezone text NOT NULL,
    not_before text,
    view text NOT NULL,
    PRIMARY KEY (plan, seq)
);
CREATE TABLE IF NOT EXISTS plan_skips (
    n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan bigint NOT NULL,
    line integer NOT NULL,
    recipient_id text NOT NULL,
    channel text NOT NULL,
    reason text NOT NULL,
    detail text NOT NULL
);
CREATE INDEX IF NOT EXISTS plan_skips_plan ON plan_skips (plan);
CREATE TABLE IF NOT EXISTS messages (
    campaign text NOT NULL,
    channel text NOT NULL,
    address text NOT NULL,
    recipient_id text NOT NULL,
    line integer NOT NULL,
    locale text NOT NULL,
    state text NOT NULL,
    permanent boolean NOT NULL DEFAULT false,
    attempts integer NOT NULL DEFAULT 0,
    provider_id text,
    error_code text,
    error text,
    not_before text,
    body text,
    last_attempt_at text,
    updated_at text NOT NULL,
    plan bigint,
    seq integer,
    text_version text,
    holder text,
    corrections integer NOT NULL DEFAULT 0,
    delivery_state text,
    delivery_code text,
    delivery_reason text,
    delivery_at text,
    receipt text,
    PRIMARY KEY (campaign, channel, address)
);
CREATE INDEX IF NOT EXISTS messages_state ON messages (campaign, state);
CREATE INDEX IF NOT EXISTS messages_plan ON messages (campaign, plan);
CREATE INDEX IF NOT EXISTS messages_provider ON messages (channel, provider_id);
CREATE TABLE IF NOT EXISTS attempts (
    campaign text NOT NULL,
    channel text NOT NULL,
    address text NOT NULL,
    attempt integer NOT NULL,
    at text NOT NULL,
    outcome text NOT NULL,
    code text,
    reason text,
    provider_id text
);
CREATE INDEX IF NOT EXISTS attempts_campaign ON attempts (campaign, channel);
CREATE TABLE IF NOT EXISTS leases (
    campaign text NOT NULL,
    token text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    process_start text,
    operator text NOT NULL,
    plan text,
    round text NOT NULL,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    PRIMARY KEY (campaign, token)
);
CREATE TABLE IF NOT EXISTS claim_chunks (
    campaign text NOT NULL,
    round text NOT NULL,
    chunk integer NOT NULL,
    plan bigint NOT NULL,
    first_seq integer NOT NULL,
    last_seq integer NOT NULL,
    holder text,
    done boolean NOT NULL DEFAULT false,
    PRIMARY KEY (campaign, round, plan, chunk)
);
CREATE TABLE IF NOT EXISTS stop_list (
    address text PRIMARY KEY,
    source text NOT NULL,
    added_at text NOT NULL
);
CREATE TABLE IF NOT EXISTS stop_imports (
    digest text PRIMARY KEY,
    path text NOT NULL,
    imported_at text NOT NULL,
    numbers integer NOT NULL
);
CREATE TABLE IF NOT EXISTS text_choices (
    campaign text NOT NULL,
    text_version text NOT NULL,
    choice text NOT NULL,
    operator text NOT NULL,
    at text NOT NULL,
    PRIMARY KEY (campaign, text_version)
);
CREATE TABLE IF NOT EXISTS receipt_events (
    channel text NOT NULL,
    event_id text NOT NULL,
    applied_at text NOT NULL,
    PRIMARY KEY (channel, event_id)
);
CREATE TABLE IF NOT EXISTS receipt_waiting (
    provider_id text NOT NULL,
    event_id text NOT NULL,
    record text NOT NULL,
    received_at text NOT NULL,
    PRIMARY KEY (provider_id, event_id)
);
CREATE INDEX IF NOT EXISTS receipt_waiting_received ON receipt_waiting (received_at)
"""

#: What a database of an older version lacks beyond the tables above (which are created if missing).
UPGRADES = {
    2: ("ALTER TABLE messages ADD COLUMN IF NOT EXISTS receipt text",),  # the winning receipt event (JSON)
}


class SchemaTooNew(LedgerError):
    """The database was made by a newer crisiscomms."""


async def stored_version(connection: psycopg.AsyncConnection[tuple[object, ...]]) -> int | None:
    """The schema version in the database (None: no crisiscomms tables yet)."""
    cursor = await connection.execute("SELECT to_regclass('crisiscomms_schema') IS NOT NULL")
    exists = await cursor.fetchone()
    if not exists or not exists[0]:
        return None
    cursor = await connection.execute("SELECT max(version) FROM crisiscomms_schema")
    row = await cursor.fetchone()
    return None if row is None or row[0] is None else int(str(row[0]))


async def migrate(connection: psycopg.AsyncConnection[tuple[object, ...]], shown: str) -> None:
    """Create the tables (or refuse a newer schema), once, even when several machines open the database at once."""
    version = await stored_version(connection)
    if version == PG_SCHEMA_VERSION:
        return
    refuse_newer(version, shown)
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        version = await stored_version(connection)  # another machine may have created it meanwhile
        refuse_newer(version, shown)
        if version == PG_SCHEMA_VERSION:
            return
        for statement in TABLES.split(";"):
            await connection.execute(statement.strip())
        for upgrade in range((version or PG_SCHEMA_VERSION) + 1, PG_SCHEMA_VERSION + 1):
            for statement in UPGRADES.get(upgrade, ()):
                await connection.execute(statement)
        await connection.execute("DELETE FROM crisiscomms_schema")
        await connection.execute("INSERT INTO crisiscomms_schema (version) VALUES (%s)", (PG_SCHEMA_VERSION,))


def refuse_newer(version: int | None, shown: str) -> None:
    if version is not None and version > PG_SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the ledger {shown} has schema version {version}, newer than this crisiscomms knows "
            f"(up to {PG_SCHEMA_VERSION}). Nothing was sent. Upgrade crisiscomms, or use another ledger.")
