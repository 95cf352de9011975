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
from collections.abc import Callable, Iterable, Iterator, Sequence

from ...ledger.base import now_iso
from ...ledger.sqlite import SqliteLedger
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

_FINAL = tuple(sorted(state.value for state in FINAL_STATES))


class SqliteReceiptStore:
    """Receipts into one SQLite ledger (used by ``receipts serve`` and ``receipts pull``)."""

    def __init__(self, ledger: SqliteLedger, *, max_waiting: int = MAX_WAITING) -> None:
        self.ledger = ledger
        self.max_waiting = max_waiting
        self._addresses: dict[RowKey, str] = {}

    def open_writer(self) -> tuple[SqliteReceiptStore, Callable[[], None]]:
        """The same ledger opened again for the calling thread (a SQLite connection stays in its thread):
        the receipts server's writer thread. WAL and the busy timeout keep the two connections apart."""
        ledger = SqliteLedger.open(self.ledger.path, create=False)
        return SqliteReceiptStore(ledger, max_waiting=self.max_waiting), ledger.close

    # -- ReceiptStore -----------------------------------------------------------------------------------------

    def apply(self, events: Sequence[DeliveryEvent]) -> AppliedCounts:
        counts = AppliedCounts()
        with self.ledger._transaction():
            self._merge_waiting()
            for disposition in self._apply_all(events, waiting=False):
                counts.add(disposition)
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

    # -- the rule, event after event, with one query per kind and batch ---------------------------------------

    def _apply_all(self, events: Sequence[DeliveryEvent], *, waiting: bool) -> list[Disposition]:
        """:func:`~.store.decide_batch` over the rows and applied event ids the batch names (e-mail rows read
        as the batch meets them), written at the end in the same transaction."""
        outcome = decide_batch(events, self._rows_by_sid(events), self._seen(events), self._email_row)
        if not waiting:
            for event in outcome.parked:
                self._park(event)
        self._write(outcome, now_iso())
        return outcome.dispositions

    def _rows_by_sid(self, events: Sequence[DeliveryEvent]) -> dict[tuple[str, ...], ReceiptRow | None]:
        """The SMS and call rows the events name by sid (None: no row has that sid yet)."""
        rows: dict[tuple[str, ...], ReceiptRow | None] = {}
        for channel in ("sms", "voice"):
            sids = list(dict.fromkeys(e.provider_id or "" for e in events if e.channel == channel))
            for chunk in _chunks(sids):
                for found in self.ledger.db.execute(
                        f"SELECT campaign, address, recipient_id, provider_id, receipt FROM messages "
                        f"WHERE channel = ? AND provider_id IN ({_marks(chunk)}) ORDER BY campaign DESC, address DESC",
                        (channel, *chunk)):
                    rows[(channel, str(found[3]))] = self._row(channel, found)  # DESC: as LIMIT 1, the first wins
            rows.update({(channel, sid): None for sid in sids if (channel, sid) not in rows})
        return rows

    def _email_row(self, event: DeliveryEvent) -> ReceiptRow | None:
        found = self.ledger.db.execute(
            "SELECT campaign, address, recipient_id, provider_id, receipt FROM messages "
            "INDEXED BY messages_recipient "  # SQLite would walk every e-mail row of the campaign
            "WHERE campaign = ? AND channel = 'email' AND recipient_id = ? LIMIT 1",
            (event.campaign, event.recipient)).fetchone()
        return None if found is None else self._row(event.channel, found)

    def _row(self, channel: ReceiptChannel, found: tuple[object, ...]) -> ReceiptRow:
        campaign, address, recipient, provider_id, receipt = found
        key = RowKey(str(campaign), channel, str(recipient))
        self._addresses[key] = str(address)
        stored = DeliveryEvent.from_record(json.loads(str(receipt))) if receipt else None
        return ReceiptRow(key, None if provider_id is None else str(provider_id), stored)

    def _seen(self, events: Sequence[DeliveryEvent]) -> set[tuple[str, str]]:
        """Which ``(channel, event_id)`` of the events were applied before."""
        seen: set[tuple[str, str]] = set()
        for channel in ("sms", "voice", "email"):
            ids = list(dict.fromkeys(e.event_id for e in events if e.channel == channel))
            for chunk in _chunks(ids):
                seen.update((channel, str(event_id)) for (event_id,) in self.ledger.db.execute(
                    f"SELECT event_id FROM receipt_events WHERE channel = ? AND event_id IN ({_marks(chunk)})",
                    (channel, *chunk)))
        return seen

    def _write(self, outcome: BatchOutcome, stamp: str) -> None:
        db = self.ledger.db
        db.executemany("INSERT OR IGNORE INTO receipt_events (channel, event_id, applied_at) VALUES (?, ?, ?)",
                       [(channel, event_id, stamp) for channel, event_id in outcome.applied_ids])
        db.executemany(
            "UPDATE messages SET receipt = ?, delivery_state = ?, delivery_code = ?, delivery_reason = ?, "
            "delivery_at = ? WHERE campaign = ? AND channel = ? AND address = ?",
            [(json.dumps(receipt.to_record()), str(receipt.state), receipt.code, receipt.reason,
              receipt.occurred_at.isoformat() if receipt.occurred_at else stamp, key.campaign, key.channel,
              self._addresses[key]) for key, receipt in outcome.changed.items()])

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
        # CROSS JOIN keeps the (usually empty) waiting table outside: a plain JOIN walks every SMS row of the
        # ledger in every transaction.
        ready = db.execute("SELECT w.provider_id, w.event_id, w.record FROM receipt_waiting w CROSS JOIN messages m "
                           "ON m.channel IN ('sms', 'voice') AND m.provider_id = w.provider_id "
                           "ORDER BY w.received_at").fetchall()
        if not ready:
            return 0
        events = [DeliveryEvent.from_record(json.loads(record)) for _, _, record in ready]
        dispositions = self._apply_all(events, waiting=True)
        db.executemany("DELETE FROM receipt_waiting WHERE provider_id = ? AND event_id = ?",
                       [(provider_id, event_id) for provider_id, event_id, _ in ready])
        return sum(1 for disposition in dispositions if disposition is Disposition.APPLIED)


def _chunks(values: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _marks(values: list[str]) -> str:
    return ",".join("?" for _ in values)
