"""Senders of one campaign on a PostgreSQL ledger: leases, rounds, and the plan handed out in chunks.

* A **lease** per sender, keyed by (campaign, token). Acquiring one first *reaps* the campaign's dead
  leases (no heartbeat for :data:`~.base.STALE_AFTER_SECONDS` by the server's clock, or a holder on this host
  that is gone): they are deleted and their rows in flight become uncertain. Acquiring runs under an advisory
  lock per campaign, so of two machines asking at once exactly one wins (without ``join``).
* A **round** of sending starts when a sender acquires with no other live sender; joiners take its round.
* The plan is cut into **chunks** of ``limit`` rows per round (``claim_chunks``); a sender claims the next
  chunk that nobody live holds with ``SELECT … FOR UPDATE SKIP LOCKED``, so two senders never claim one row,
  and a dead sender's chunk returns to the pool (its rows still in flight first made uncertain).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from .base import (
    STALE_AFTER_SECONDS,
    Claim,
    ClaimPolicy,
    Existing,
    Holder,
    Lease,
    LeaseGrant,
    LeaseLost,
    PlanRow,
    now_iso,
)
from .claiming import sort_claims
from .liveness import holder_is_gone
from .queries import lease_from, opt, plan_row

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

CAMPAIGN_LOCK = 0x6C656173  # "leas": with hashtext(campaign), the advisory lock of a campaign's leases
_STAMP = "YYYY-MM-DD\"T\"HH24:MI:SS.MS\"+00:00\""
_LEASE_COLUMNS = (f"campaign, host, pid, process_start, operator, plan, "
                  f"to_char(started_at AT TIME ZONE 'UTC', '{_STAMP}'), "
                  f"to_char(heartbeat_at AT TIME ZONE 'UTC', '{_STAMP}'), "
                  "heartbeat_at < clock_timestamp() - make_interval(secs => %s), token, round")
_FRESH = "l.heartbeat_at >= clock_timestamp() - make_interval(secs => %s)"


@dataclass(frozen=True)
class LeaseFacts:
    token: str
    round: str
    dead: bool


# -- leases ----------------------------------------------------------------------------------------------------


async def all_leases(connection: Connection, campaign: str | None) -> list[tuple[Lease, LeaseFacts]]:
    if campaign is None:
        cursor = await connection.execute(f"SELECT {_LEASE_COLUMNS} FROM leases ORDER BY started_at",
                                          (STALE_AFTER_SECONDS,))
    else:
        cursor = await connection.execute(f"SELECT {_LEASE_COLUMNS} FROM leases WHERE campaign = %s "
                                          "ORDER BY started_at", (STALE_AFTER_SECONDS, campaign))
    found = []
    for values in await cursor.fetchall():
        lease = lease_from(values[:8])
        found.append((lease, LeaseFacts(str(values[9]), str(values[10]),
                                        bool(values[8]) or holder_is_gone(lease.holder))))
    return found


async def live_leases(connection: Connection, campaign: str) -> list[Lease]:
    return [lease for lease, facts in await all_leases(connection, campaign) if not facts.dead]


async def acquire(connection: Connection, campaign: str, holder: Holder, *,
                  join: bool) -> tuple[LeaseGrant | None, Lease | None]:
    """(the grant, None), or (None, the live lease that refuses this sender) — dead leases are reaped either way."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (CAMPAIGN_LOCK, campaign))
        found = [(lease, facts) for lease, facts in await all_leases(connection, campaign)
                 if facts.token != holder.token]
        dead = [lease for lease, facts in found if facts.dead]
        await _reap(connection, campaign, [facts.token for _, facts in found if facts.dead])
        live = [(lease, facts) for lease, facts in found if not facts.dead]
        if live and not join:
            return None, live[0][0]
        other_plan = next((lease for lease, _ in live if lease.holder.plan != holder.plan), None)
        if other_plan is not None:
            return None, other_plan
        if live:
            round_id = live[0][1].round
        else:
            round_id = uuid.uuid4().hex  # a new round of sending: the chunks of earlier rounds are history
            await connection.execute("DELETE FROM claim_chunks WHERE campaign = %s", (campaign,))
        cursor = await connection.execute(
            "INSERT INTO leases (campaign, token, host, pid, process_start, operator, plan, round, started_at, "
            "heartbeat_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, clock_timestamp(), clock_timestamp()) "
            "ON CONFLICT (campaign, token) DO UPDATE SET operator = EXCLUDED.operator, plan = EXCLUDED.plan, "
            "round = EXCLUDED.round, started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at "
            f"RETURNING to_char(started_at AT TIME ZONE 'UTC', '{_STAMP}')",
            (campaign, holder.token, holder.host, holder.pid, holder.process_start, holder.operator, holder.plan,
             round_id))
        stamp = str((await cursor.fetchall())[0][0])
    return LeaseGrant(Lease(campaign, holder, stamp, stamp), dead[0] if dead else None), None


async def _reap(connection: Connection, campaign: str, tokens: Sequence[str]) -> None:
    if not tokens:
        return
    await connection.execute("DELETE FROM leases WHERE campaign = %s AND token = ANY(%s)", (campaign, list(tokens)))
    await connection.execute("UPDATE messages SET state = 'uncertain', updated_at = %s WHERE campaign = %s "
                             "AND state = 'in_flight' AND holder = ANY(%s)", (now_iso(), campaign, list(tokens)))


async def reap_dead(connection: Connection, campaign: str) -> None:
    """Delete the campaign's dead leases (their rows in flight become uncertain), if there are any."""
    if not any(facts.dead for _, facts in await all_leases(connection, campaign)):
        return
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (CAMPAIGN_LOCK, campaign))
        await _reap(connection, campaign, [facts.token for _, facts in await all_leases(connection, campaign)
                                           if facts.dead])


async def release(connection: Connection, campaign: str, holder: Holder) -> None:
    """Give the lease back; chunks left with nothing pending or in flight are done (never handed out again)."""
    await connection.execute(
        "UPDATE claim_chunks c SET done = true WHERE c.campaign = %s AND c.holder = %s AND NOT EXISTS ("
        "SELECT 1 FROM messages m WHERE m.campaign = c.campaign AND m.holder = c.holder AND m.plan = c.plan "
        "AND m.seq BETWEEN c.first_seq AND c.last_seq AND m.state IN ('pending', 'in_flight'))",
        (campaign, holder.token))
    await connection.execute("DELETE FROM leases WHERE campaign = %s AND token = %s", (campaign, holder.token))


async def orphans_to_uncertain(connection: Connection, campaign: str) -> int:
    """Rows in flight of senders no longer live may have been sent: uncertain. A live co-sender's rows stay."""
    live = [lease.holder.token for lease in await live_leases(connection, campaign)]
    cursor = await connection.execute(
        "UPDATE messages SET state = 'uncertain', updated_at = %s WHERE campaign = %s AND state = 'in_flight' "
        "AND (holder IS NULL OR NOT (holder = ANY(%s)))", (now_iso(), campaign, live))
    return cursor.rowcount


def lease_lost(campaign: str) -> LeaseLost:
    return LeaseLost(f"this send lost its hold on campaign {campaign} (another sender took it over, believing this "
                     "one dead); it stopped at once. Nothing was sent twice; see crisiscomms report.")


async def _require_lease(connection: Connection, campaign: str, holder: Holder) -> str:
    """This sender's round; the lease row stays locked (shared) until the transaction ends, so it cannot be reaped."""
    cursor = await connection.execute("SELECT round FROM leases WHERE campaign = %s AND token = %s FOR SHARE",
                                      (campaign, holder.token))
    found = await cursor.fetchall()
    if not found:
        raise lease_lost(campaign)
    return str(found[0][0])


# -- claims ----------------------------------------------------------------------------------------------------


async def claim_next_chunk(connection: Connection, campaign: str, plan: int, holder: Holder, policy: ClaimPolicy,
                           limit: int) -> tuple[list[Claim], int | None]:
    """The next chunk of the round with something to send, its delivery rows pending for this sender."""
    await reap_dead(connection, campaign)
    while True:
        async with connection.transaction():
            round_id = await _require_lease(connection, campaign, holder)
            await _cut_into_chunks(connection, campaign, round_id, plan, max(1, limit))
            chunk = await _next_free_chunk(connection, campaign, round_id, plan)
            if chunk is None:
                return [], None
            number, first_seq, last_seq, previous = chunk
            if previous is not None:  # taken over from a sender that is gone: what it had in flight may have left
                await connection.execute(
                    "UPDATE messages SET state = 'uncertain', updated_at = %s WHERE campaign = %s AND holder = %s "
                    "AND state = 'in_flight' AND plan = %s AND seq BETWEEN %s AND %s",
                    (now_iso(), campaign, previous, plan, first_seq, last_seq))
            await connection.execute("UPDATE claim_chunks SET holder = %s WHERE campaign = %s AND round = %s "
                                     "AND plan = %s AND chunk = %s", (holder.token, campaign, round_id, plan, number))
            claims = await _claim_rows(connection, campaign, plan, holder, policy, (first_seq, last_seq))
            if claims:
                return claims, last_seq


async def _cut_into_chunks(connection: Connection, campaign: str, round_id: str, plan: int, limit: int) -> None:
    await connection.execute(
        "INSERT INTO claim_chunks (campaign, round, chunk, plan, first_seq, last_seq) "
        "SELECT %(campaign)s, %(round)s, g, %(plan)s, g * %(limit)s, g * %(limit)s + %(limit)s - 1 "
        "FROM generate_series(0, (SELECT COALESCE(MAX(seq), 0) FROM plan_rows WHERE plan = %(plan)s) / %(limit)s) g "
        "WHERE NOT EXISTS (SELECT 1 FROM claim_chunks WHERE campaign = %(campaign)s AND round = %(round)s "
        "AND plan = %(plan)s) "
        "ON CONFLICT DO NOTHING", {"campaign": campaign, "round": round_id, "plan": plan, "limit": limit})


async def _next_free_chunk(connection: Connection, campaign: str, round_id: str,
                           plan: int) -> tuple[int, int, int, str | None] | None:
    cursor = await connection.execute(
        "SELECT chunk, first_seq, last_seq, holder FROM claim_chunks c WHERE c.campaign = %s AND c.round = %s "
        "AND c.plan = %s AND NOT c.done AND (c.holder IS NULL OR NOT EXISTS (SELECT 1 FROM leases l "
        f"WHERE l.campaign = c.campaign AND l.token = c.holder AND {_FRESH})) ORDER BY chunk LIMIT 1 "
        "FOR UPDATE SKIP LOCKED", (campaign, round_id, plan, STALE_AFTER_SECONDS))
    found = await cursor.fetchall()
    if not found:
        return None
    number, first_seq, last_seq, previous = found[0]
    return int(number), int(first_seq), int(last_seq), opt(previous)


async def _claim_rows(connection: Connection, campaign: str, plan: int, holder: Holder, policy: ClaimPolicy,
                      seqs: tuple[int, int]) -> list[Claim]:
    cursor = await connection.execute(
        "SELECT p.seq, p.channel, p.address, p.recipient_id, p.line, p.locale, p.timezone, p.not_before, p.view, "
        "m.state, m.permanent, m.text_version FROM plan_rows p LEFT JOIN messages m "
        "ON m.campaign = %s AND m.channel = p.channel AND m.address = p.address "
        "WHERE p.plan = %s AND p.seq BETWEEN %s AND %s ORDER BY p.seq",
        (campaign, plan, *seqs))
    pairs: list[tuple[PlanRow, Existing | None]] = []
    for values in await cursor.fetchall():
        state, permanent, text_version = values[9:]
        pairs.append((plan_row(values[:9]),
                      None if state is None else Existing(str(state), bool(permanent), opt(text_version))))
    claimed = sort_claims(pairs, policy)
    stamp = now_iso()
    if claimed.new:
        rows = [row for row, _ in claimed.new]
        await connection.execute(
            "INSERT INTO messages (campaign, channel, address, recipient_id, line, locale, state, not_before, "
            "updated_at, plan, seq, text_version, holder) SELECT %s, channel, address, recipient_id, line, locale, "
            "state, not_before, %s, %s, seq, %s, %s FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], "
            "%s::text[], %s::text[], %s::text[], %s::int[]) AS r(channel, address, recipient_id, line, locale, state, "
            "not_before, seq)",
            (campaign, stamp, plan, policy.text_version, holder.token, [r.channel for r in rows],
             [r.address for r in rows], [r.recipient_id for r in rows], [r.line for r in rows],
             [r.locale for r in rows], [s for _, s in claimed.new], [r.not_before for r in rows],
             [r.seq for r in rows]))
    if claimed.changed:
        rows = [row for row, _, _ in claimed.changed]
        await connection.execute(
            "UPDATE messages m SET state = r.state, recipient_id = r.recipient_id, line = r.line, locale = r.locale, "
            "not_before = r.not_before, updated_at = %s, plan = %s, seq = r.seq, text_version = %s, holder = %s, "
            "permanent = false, corrections = m.corrections + r.correction FROM unnest(%s::text[], %s::text[], "
            "%s::text[], %s::int[], %s::text[], %s::text[], %s::text[], %s::int[], %s::int[]) AS r(channel, address, "
            "recipient_id, line, locale, state, not_before, seq, correction) "
            "WHERE m.campaign = %s AND m.channel = r.channel AND m.address = r.address",
            (stamp, plan, policy.text_version, holder.token, [r.channel for r in rows], [r.address for r in rows],
             [r.recipient_id for r in rows], [r.line for r in rows], [r.locale for r in rows],
             [s for _, s, _ in claimed.changed], [r.not_before for r in rows], [r.seq for r in rows],
             [int(c) for _, _, c in claimed.changed], campaign))
    return claimed.claims


async def mark_in_flight(connection: Connection, campaign: str, holder: Holder,
                         entries: Sequence[tuple[str, str, str | None]]) -> None:
    await _require_lease(connection, campaign, holder)
    unique = {(channel, address): fingerprint for channel, address, fingerprint in entries}
    stamp = now_iso()
    await connection.execute(
        "UPDATE messages m SET state = 'in_flight', attempts = m.attempts + 1, last_attempt_at = %s, "
        "updated_at = %s, body = COALESCE(k.body, m.body) FROM unnest(%s::text[], %s::text[], %s::text[]) "
        "AS k(channel, address, body) WHERE m.campaign = %s AND m.channel = k.channel AND m.address = k.address",
        (stamp, stamp, [c for c, _ in unique], [a for _, a in unique], list(unique.values()), campaign))
