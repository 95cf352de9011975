"""The :class:`~.store.ReceiptStore` on the SQLite ledger: receipts land on the delivery rows.

Every call is one transaction and follows :func:`~.store.decide` event by event:
the winning receipt is kept on the message row (``receipt`` as JSON, and
``delivery_state``/``delivery_code``/``delivery_reason``/``delivery_at`` for the
report), each applied ``(channel, event_id)`` is remembered so a resent event
changes nothing, and an SMS event whose sid no row has yet (the send's answer is
still on its way) waits in ``receipt_waiting`` — at most :data:`~.store.MAX_WAITING`,
oldest dropped — until a later call finds the row and merges it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence

from ...ledger.base import now_iso
from ...ledger.sqlite import SqliteLedger
from .events import FINAL_STATES, DeliveryEvent, ReceiptChannel
from .store import MAX_WAITING, AppliedCounts, AwaitingReceipt, Disposition, ReceiptRow, RowKey, decide

_FINAL = tuple(sorted(state.value for state in FINAL_STATES))


class SqliteReceiptStore:
    """Receipts into one SQLite ledger (used by ``receipts serve`` and ``receipts pull``)."""

    def __init__(self, ledger: SqliteLedger, *, max_waiting: int = MAX_WAITING) -> None:
        self.ledger = ledger
        self.max_waiting = max_waiting
        self._addresses: dict[RowKey, str] = {}

    # -- ReceiptStore -----------------------------------------------------------------------------------------

    def apply(self, events: Sequence[DeliveryEvent]) -> AppliedCounts:
        counts = AppliedCounts()
        with self.ledger._transaction():
            self._merge_waiting()
            for event in events:
                counts.add(self._apply_one(event, waiting=False))
        return counts

    def known_provider_ids(self, channel: ReceiptChannel, provider_ids: Iterable[str]) -> set[str]:
        wanted = list(provider_ids)
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" for _ in chunk)
            found.update(str(pid) for (pid,) in self.ledger.db.execute(
                f"SELECT provider_id FROM messages WHERE channel = ? AND provider_id IN ({marks})", (channel, *chunk)))
        return found

    def accepted_without_final_status(self, campaign: str | None) -> Iterator[AwaitingReceipt]:
        marks = ",".join("?" for _ in _FINAL)
        query = (f"SELECT campaign, recipient_id, provider_id FROM messages WHERE channel = 'sms' "
                 f"AND state = 'accepted' AND provider_id IS NOT NULL "
                 f"AND (delivery_state IS NULL OR delivery_state NOT IN ({marks}))")
        params: list[str] = list(_FINAL)
        if campaign is not None:
            query += " AND campaign = ?"
            params.append(campaign)
        for row_campaign, recipient, provider_id in self.ledger.db.execute(query, params).fetchall():
            yield AwaitingReceipt(RowKey(str(row_campaign), "sms", str(recipient)), str(provider_id))

    # -- for the report and escalation --------------------------------------------------------------------------

    def settle(self) -> int:
        """Merge the events that waited for a sid the ledger now has; how many were applied."""
        with self.ledger._transaction():
            return self._merge_waiting()

    @property
    def waiting(self) -> int:
        return int(self.ledger.db.execute("SELECT COUNT(*) FROM receipt_waiting").fetchone()[0])

    # -- the rule, event by event ---------------------------------------------------------------------------

    def _apply_one(self, event: DeliveryEvent, *, waiting: bool) -> Disposition:
        row = self._row_for(event)
        seen = self.ledger.db.execute("SELECT 1 FROM receipt_events WHERE channel = ? AND event_id = ?",
                                      (event.channel, event.event_id)).fetchone() is not None
        disposition, receipt = decide(event, row, seen=seen)
        if disposition is Disposition.WAITING:
            if not waiting:
                self._park(event)
            return disposition
        if disposition in (Disposition.APPLIED, Disposition.UNCHANGED):
            self.ledger.db.execute("INSERT OR IGNORE INTO receipt_events (channel, event_id, applied_at) "
                                   "VALUES (?, ?, ?)", (event.channel, event.event_id, now_iso()))
        if receipt is not None and row is not None:
            self._store(row.key, receipt)
        return disposition

    def _row_for(self, event: DeliveryEvent) -> ReceiptRow | None:
        db = self.ledger.db
        if event.channel in ("sms", "voice"):
            found = db.execute("SELECT campaign, address, recipient_id, provider_id, receipt FROM messages "
                               "WHERE channel = ? AND provider_id = ? LIMIT 1",
                               (event.channel, event.provider_id or "")).fetchone()
        elif event.campaign and event.recipient:
            found = db.execute("SELECT campaign, address, recipient_id, provider_id, receipt FROM messages "
                               "INDEXED BY messages_recipient "  # SQLite would walk every e-mail row of the campaign
                               "WHERE campaign = ? AND channel = 'email' AND recipient_id = ? LIMIT 1",
                               (event.campaign, event.recipient)).fetchone()
        else:
            found = None
        if found is None:
            return None
        campaign, address, recipient, provider_id, receipt = found
        key = RowKey(str(campaign), event.channel, str(recipient))
        self._addresses[key] = str(address)
        stored = DeliveryEvent.from_record(json.loads(receipt)) if receipt else None
        return ReceiptRow(key, None if provider_id is None else str(provider_id), stored)

    def _store(self, key: RowKey, receipt: DeliveryEvent) -> None:
        self.ledger.db.execute(
            "UPDATE messages SET receipt = ?, delivery_state = ?, delivery_code = ?, delivery_reason = ?, "
            "delivery_at = ? WHERE campaign = ? AND channel = ? AND address = ?",
            (json.dumps(receipt.to_record()), receipt.state.value, receipt.code, receipt.reason,
             receipt.occurred_at.isoformat() if receipt.occurred_at else now_iso(), key.campaign, key.channel,
             self._addresses[key]))

    def _park(self, event: DeliveryEvent) -> None:
        db = self.ledger.db
        db.execute("INSERT OR IGNORE INTO receipt_waiting (provider_id, event_id, record, received_at) "
                   "VALUES (?, ?, ?, ?)", (event.provider_id or "", event.event_id, json.dumps(event.to_record()),
                                          now_iso()))
        excess = self.waiting - self.max_waiting
        if excess > 0:  # the oldest go first: callbacks for messages of another tool on the same account
            db.execute("DELETE FROM receipt_waiting WHERE (provider_id, event_id) IN (SELECT provider_id, event_id "
                       "FROM receipt_waiting ORDER BY received_at LIMIT ?)", (excess,))

    def _merge_waiting(self) -> int:
        db = self.ledger.db
        ready = db.execute("SELECT w.provider_id, w.event_id, w.record FROM receipt_waiting w JOIN messages m "
                           "ON m.channel IN ('sms', 'voice') AND m.provider_id = w.provider_id "
                           "ORDER BY w.received_at").fetchall()
        applied = 0
        for provider_id, event_id, record in ready:
            event = DeliveryEvent.from_record(json.loads(record))
            if self._apply_one(event, waiting=True) is Disposition.APPLIED:
                applied += 1
            db.execute("DELETE FROM receipt_waiting WHERE provider_id = ? AND event_id = ?", (provider_id, event_id))
        return applied
