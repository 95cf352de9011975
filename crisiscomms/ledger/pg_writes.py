"""Bulk writes of the PostgreSQL ledger: plan rows by COPY, outcomes in one statement per batch, STOP imports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from .base import Outcome, PlanRow, SkipRow

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

PLAN_LOCK = 0x706C616E  # "plan": with hashtext(plan id), held while a plan is named (two identical plans at once)


async def copy_plan_rows(connection: Connection, key: int, rows: Sequence[PlanRow], skips: Sequence[SkipRow]) -> None:
    cursor = connection.cursor()
    if rows:
        async with cursor.copy("COPY plan_rows (plan, seq, channel, address, recipient_id, line, locale, timezone, "
                               "not_before, view) FROM STDIN") as copy:
            for r in rows:
                await copy.write_row((key, r.seq, r.channel, r.address, r.recipient_id, r.line, r.locale, r.timezone,
                                      r.not_before, r.view))
    if skips:
        async with cursor.copy("COPY plan_skips (plan, line, recipient_id, channel, reason, detail) "
                               "FROM STDIN") as copy:
            for s in skips:
                await copy.write_row((key, s.line, s.recipient_id, s.channel, s.reason, s.detail))


async def finish_plan(connection: Connection, key: int, plan_id: str, summary: str, messages: int,
                      skips: int) -> None:
    """Name the plan by its hash and make it ready; the very same plan made before is kept instead."""
    await connection.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (PLAN_LOCK, plan_id))
    cursor = await connection.execute("SELECT 1 FROM plans WHERE id = %s", (plan_id,))
    if await cursor.fetchall():
        await drop_plan(connection, key)
        return
    await connection.execute("UPDATE plans SET id = %s, state = 'ready', summary = %s, messages = %s, skips = %s "
                             "WHERE key = %s", (plan_id, summary, messages, skips, key))


async def drop_plan(connection: Connection, key: int) -> None:
    await connection.execute("DELETE FROM plan_rows WHERE plan = %s", (key,))
    await connection.execute("DELETE FROM plan_skips WHERE plan = %s", (key,))
    await connection.execute("DELETE FROM plans WHERE key = %s", (key,))


async def write_outcomes(connection: Connection, outcomes: Sequence[tuple[str, Outcome]], stamp: str) -> None:
    """The attempts of a batch, and each delivery row's latest outcome (one statement each)."""
    latest = {(campaign, o.channel, o.address): o for campaign, o in outcomes}
    await connection.execute(
        "UPDATE messages m SET state = o.state, provider_id = COALESCE(o.provider_id, m.provider_id), "
        "error_code = o.code, error = o.reason, permanent = o.permanent, updated_at = %s "
        "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
        "%s::bool[]) AS o(campaign, channel, address, state, provider_id, code, reason, permanent) "
        "WHERE m.campaign = o.campaign AND m.channel = o.channel AND m.address = o.address",
        (stamp, [k[0] for k in latest], [k[1] for k in latest], [k[2] for k in latest],
         *_columns(list(latest.values()), "state", "provider_id", "code", "reason", "permanent")))
    await connection.execute(
        "INSERT INTO attempts (campaign, channel, address, attempt, at, outcome, code, reason, provider_id) "
        "SELECT campaign, channel, address, attempt, %s, outcome, code, reason, provider_id FROM unnest(%s::text[], "
        "%s::text[], %s::text[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[]) AS a(campaign, channel, "
        "address, attempt, outcome, code, reason, provider_id)",
        (stamp, [c for c, _ in outcomes],
         *_columns([o for _, o in outcomes], "channel", "address", "attempt", "outcome", "code", "reason",
                   "provider_id")))


def _columns(outcomes: Sequence[Outcome], *names: str) -> list[list[object]]:
    return [[getattr(o, name) for o in outcomes] for name in names]


async def import_stop_numbers(connection: Connection, path: str, digest: str, numbers: list[str],
                              stamp: str) -> int | None:
    """The numbers added, or None when this file (by its digest) was imported before."""
    cursor = await connection.execute(
        "INSERT INTO stop_imports (digest, path, imported_at, numbers) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT DO NOTHING RETURNING digest", (digest, path, stamp, len(numbers)))
    if not await cursor.fetchall():
        return None
    cursor = await connection.execute(
        "INSERT INTO stop_list (address, source, added_at) SELECT DISTINCT a, %s, %s FROM unnest(%s::text[]) AS a "
        "ON CONFLICT DO NOTHING", (f"imported from {path}", stamp, numbers))
    return cursor.rowcount
