"""The :class:`~.store.ReceiptStore` on the PostgreSQL team ledger: receipts land on the delivery rows.

The same rule and the same columns as the SQLite store (:mod:`.sqlite_store`): every call is one
transaction that follows :func:`~.store.decide_batch`, keeps the winning receipt on the message row, remembers
each applied ``(channel, event_id)`` and parks events whose sid no row has yet in ``receipt_waiting``.

What a shared database adds: several receipts servers (one per operator's machine, or one behind each of
two load balancers) may apply events of the same message at the same moment. Each call therefore locks
the rows it names (``FOR UPDATE``, in key order so two calls cannot deadlock) before it reads which event
ids were applied, so the second call sees the first one's receipt and event ids, and a duplicate stays a
duplicate across machines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ...ledger.base import now_iso
from ...ledger.postgres import Connection, PostgresLedger
from .events import FINAL_STATES, DeliveryEvent, ReceiptChannel
from .store import (
    MAX_WAITING,
    AppliedCounts,
    AwaitingReceipt,
    BatchOutcome,
    Disposition,
    ReceiptRow,
    RowKey,
    decide_batch,
)

_FINAL = sorted(state.value for state in FINAL_STATES)
_ROW_COLUMNS = "campaign, channel, address, recipient_id, provider_id, receipt"


class PgReceiptStore:
    """Receipts into the PostgreSQL ledger (``receipts serve``, ``receipts pull``, ``escalate``)."""

    def __init__(self, ledger: PostgresLedger, *, max_waiting: int = MAX_WAITING) -> None:
        self.ledger = ledger
        self.max_waiting = max_waiting

    def open_writer(self) -> tuple[PgReceiptStore, Callable[[], None]]:
        """This store, for the receipts server's writer thread: the ledger's pool runs on a thread of its own
        and takes calls from any one thread, so the server's loop never waits for the database."""
        return self, lambda: None

    # -- ReceiptStore -----------------------------------------------------------------------------------------

    def apply(self, events: Sequence[DeliveryEvent]) -> AppliedCounts:
        async def work(connection: Connection) -> AppliedCounts:
            _, fresh = await self._apply_with_waiting(connection, events)
            return fresh.counts()

        return self.ledger._call(work, transaction=True)

    def known_provider_ids(self, channel: ReceiptChannel, provider_ids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(provider_ids))
        return {str(pid) for (pid,) in self.ledger._fetch(
            "SELECT DISTINCT provider_id FROM messages WHERE channel = %s AND provider_id = ANY(%s)",
            (channel, wanted))}

    def accepted_without_final_status(self, campaign: str | None) -> Iterator[AwaitingReceipt]:
        query = ("SELECT campaign, recipient_id, provider_id FROM messages WHERE channel = 'sms' "
                 "AND state = 'accepted' AND provider_id IS NOT NULL "
                 "AND (delivery_state IS NULL OR NOT delivery_state = ANY(%s))")
        params: list[object] = [_FINAL]
        if campaign is not None:
            query += " AND campaign = %s"
            params.append(campaign)
        for row_campaign, recipient, provider_id in self.ledger._fetch(query + " ORDER BY campaign, address", params):
            yield AwaitingReceipt(RowKey(str(row_campaign), "sms", str(recipient)), str(provider_id))

    # -- for the report and escalation --------------------------------------------------------------------------

    def settle(self) -> int:
        """Merge the events that waited for a sid the ledger now has; how many were applied."""
        async def work(connection: Connection) -> int:
            merged, _ = await self._apply_with_waiting(connection, ())
            return sum(1 for disposition in merged.dispositions if disposition is Disposition.APPLIED)

        return self.ledger._call(work, transaction=True)

    @property
    def waiting(self) -> int:
        return int(self.ledger._fetch("SELECT COUNT(*) FROM receipt_waiting")[0][0])

    # -- one call: lock the rows, read what was applied, decide, write ------------------------------------------

    async def _apply_with_waiting(self, connection: Connection, events: Sequence[DeliveryEvent]) -> tuple[
            BatchOutcome, BatchOutcome]:
        """The waiting events whose sid a row now has, then ``events``, over rows locked once for both (one
        locking step in key order: two calls at once wait for each other, they cannot deadlock)."""
        cursor = await connection.execute(
            "SELECT w.provider_id, w.event_id, w.record FROM receipt_waiting w WHERE EXISTS (SELECT 1 FROM messages m "
            "WHERE m.channel IN ('sms', 'voice') AND m.provider_id = w.provider_id) "
            "ORDER BY w.received_at, w.provider_id, w.event_id FOR UPDATE OF w SKIP LOCKED")
        ready = await cursor.fetchall()  # SKIP LOCKED: events another call is merging right now are its own
        waited = [DeliveryEvent.from_record(json.loads(str(record))) for _, _, record in ready]
        rows, addresses = await _locked_rows(connection, [*waited, *events])
        seen = await _seen(connection, [*waited, *events])
        merged = decide_batch(waited, rows, seen)  # the batch's rows and seen ids carry on into the next
        fresh = decide_batch(events, rows, seen)
        if fresh.parked:
            await self._park(connection, fresh.parked)
        if ready:
            async with connection.cursor() as delete:
                await delete.executemany("DELETE FROM receipt_waiting WHERE provider_id = %s AND event_id = %s",
                                         [(provider_id, event_id) for provider_id, event_id, _ in ready])
        both = BatchOutcome(applied_ids=merged.applied_ids + fresh.applied_ids,
                            changed={**merged.changed, **fresh.changed})
        await _write(connection, both, addresses, now_iso())
        return merged, fresh

    async def _park(self, connection: Connection, events: Sequence[DeliveryEvent]) -> None:
        stamp = now_iso()
        async with connection.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO receipt_waiting (provider_id, event_id, record, received_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                [(event.provider_id or "", event.event_id, json.dumps(event.to_record()), stamp) for event in events])
        cursor = await connection.execute("SELECT COUNT(*) FROM receipt_waiting")
        counted = await cursor.fetchone()
        excess = (int(counted[0]) if counted else 0) - self.max_waiting
        if excess > 0:  # the oldest go first: callbacks for messages of another tool on the same account
            await connection.execute(
                "DELETE FROM receipt_waiting WHERE (provider_id, event_id) IN (SELECT provider_id, event_id "
                "FROM receipt_waiting ORDER BY received_at LIMIT %s)", (excess,))


async def _locked_rows(connection: Connection, events: Sequence[DeliveryEvent]) -> tuple[
        dict[tuple[str, ...], ReceiptRow | None], dict[RowKey, str]]:
    """The rows the events name (SMS and calls by sid, e-mail by campaign and recipient), locked for this
    transaction in key order; a lookup without a row maps to None. Also each row's address (its key)."""
    sids: dict[str, list[str]] = {"sms": [], "voice": []}
    mail_campaigns: list[str] = []
    mail_recipients: list[str] = []
    for event in events:
        if event.channel in sids:
            sids[event.channel].append(event.provider_id or "")
        elif event.campaign and event.recipient:
            mail_campaigns.append(event.campaign)
            mail_recipients.append(event.recipient)
    cursor = await connection.execute(
        f"SELECT {_ROW_COLUMNS} FROM messages WHERE (channel = 'sms' AND provider_id = ANY(%s)) "
        f"OR (channel = 'voice' AND provider_id = ANY(%s)) "
        f"OR (channel = 'email' AND (campaign, recipient_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))) "
        f"ORDER BY campaign, channel, address FOR UPDATE",
        (sids["sms"], sids["voice"], mail_campaigns, mail_recipients))
    rows: dict[tuple[str, ...], ReceiptRow | None] = {}
    addresses: dict[RowKey, str] = {}
    for found in await cursor.fetchall():
        row, address = _row(found)
        addresses[row.key] = address
        if row.key.channel == "email":
            rows.setdefault(("email", row.key.campaign, row.key.recipient), row)
        else:
            rows.setdefault((row.key.channel, row.provider_id or ""), row)
    for channel, wanted in sids.items():
        rows.update({(channel, sid): None for sid in wanted if (channel, sid) not in rows})
    for campaign, recipient in zip(mail_campaigns, mail_recipients, strict=True):
        rows.setdefault(("email", campaign, recipient), None)
    return rows, addresses


def _row(found: tuple[Any, ...]) -> tuple[ReceiptRow, str]:
    campaign, channel, address, recipient, provider_id, receipt = found
    key = RowKey(str(campaign), channel, str(recipient))
    stored = DeliveryEvent.from_record(json.loads(str(receipt))) if receipt else None
    return ReceiptRow(key, None if provider_id is None else str(provider_id), stored), str(address)


async def _seen(connection: Connection, events: Sequence[DeliveryEvent]) -> set[tuple[str, str]]:
    """Which ``(channel, event_id)`` of the events were applied before (read after the rows are locked)."""
    cursor = await connection.execute(
        "SELECT channel, event_id FROM receipt_events WHERE (channel, event_id) IN "
        "(SELECT * FROM unnest(%s::text[], %s::text[]))",
        ([event.channel for event in events], [event.event_id for event in events]))
    return {(str(channel), str(event_id)) for channel, event_id in await cursor.fetchall()}


async def _write(connection: Connection, outcome: BatchOutcome, addresses: dict[RowKey, str], stamp: str) -> None:
    if outcome.applied_ids:
        await connection.execute(
            "INSERT INTO receipt_events (channel, event_id, applied_at) "
            "SELECT channel, event_id, %s FROM unnest(%s::text[], %s::text[]) AS e (channel, event_id) "
            "ON CONFLICT DO NOTHING",
            (stamp, [channel for channel, _ in outcome.applied_ids], [event_id for _, event_id in outcome.applied_ids]))
    if not outcome.changed:
        return
    changed = list(outcome.changed.items())
    columns: list[list[str | None]] = [
        [json.dumps(receipt.to_record()) for _, receipt in changed],
        [receipt.state.value for _, receipt in changed],
        [receipt.code for _, receipt in changed],
        [receipt.reason for _, receipt in changed],
        [receipt.occurred_at.isoformat() if receipt.occurred_at else stamp for _, receipt in changed],
        [key.campaign for key, _ in changed],
        [key.channel for key, _ in changed],
        [addresses[key] for key, _ in changed],
    ]
    await connection.execute(
        "UPDATE messages m SET receipt = u.receipt, delivery_state = u.state, delivery_code = u.code, "
        "delivery_reason = u.reason, delivery_at = u.at FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], "
        "%s::text[], %s::text[], %s::text[], %s::text[]) AS u (receipt, state, code, reason, at, campaign, channel, "
        "address) WHERE m.campaign = u.campaign AND m.channel = u.channel AND m.address = u.address", columns)
