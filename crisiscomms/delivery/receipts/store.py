"""Where receipts go: the small :class:`ReceiptStore` interface, the pure rule, an in-memory store.

The ledger implements :class:`ReceiptStore`; the server and the pull loop only
ever talk to that interface. :func:`decide` is the whole matching and merging
rule as a pure function, so every implementation (memory, SQLite, PostgreSQL)
gives the same answer for the same events:

* an event whose ``event_id`` was applied before is a **duplicate**: nothing changes;
* an SMS event finds its row by the message sid; when no row has that sid yet
  (the send's answer is still on its way), the event **waits**: the store keeps
  it and merges it when the send records the sid (:meth:`MemoryReceiptStore.record_provider_id`);
* an e-mail event finds its row by the ``campaign`` and ``recipient`` of its
  custom_args; no such row, no custom_args, or a row whose recorded SendGrid
  message id is not the prefix of the event's ``sg_message_id`` (another message)
  is **unmatched**: an event can only touch the row it names;
* otherwise the row keeps :func:`~.events.merge` of its receipt and the event:
  **applied** when that changed it, **unchanged** when the row already had a
  receipt of higher precedence.

Implementing it on a ledger (SQLite, PostgreSQL), as :class:`MemoryReceiptStore` does:

* keep the winning receipt on the message row (:meth:`DeliveryEvent.to_record` gives
  flat text columns; :meth:`DeliveryEvent.from_record` rebuilds it for :func:`decide`);
* a table of applied ``(channel, event_id)`` with a unique key (the duplicate check;
  SendGrid retries failed posts for hours, so rows older than a week may be pruned);
* a table of waiting events keyed by sid, bounded (:data:`MAX_WAITING`, oldest
  dropped): callbacks for other messages of the same Twilio account land there too;
* when a send records an SMS sid (accepted, or found by reconciling), merge that sid's
  waiting events into the row in the same transaction and delete them;
* one transaction per :meth:`ReceiptStore.apply` call; events of one call are decided in
  order, each seeing the row as the previous one left it.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .events import FINAL_STATES, DeliveryEvent, ReceiptChannel, merge

__all__ = [
    "AppliedCounts",
    "AwaitingReceipt",
    "BatchOutcome",
    "Disposition",
    "MemoryReceiptStore",
    "OpensWriter",
    "ReceiptRow",
    "ReceiptStore",
    "RowKey",
    "decide",
    "decide_batch",
    "row_lookup",
]


@dataclass(frozen=True, slots=True)
class RowKey:
    """One message row: a campaign, a channel and a recipient id."""

    campaign: str
    channel: ReceiptChannel
    recipient: str


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    """What :func:`decide` needs to know of a row."""

    key: RowKey
    provider_id: str | None
    receipt: DeliveryEvent | None = None


@dataclass(frozen=True, slots=True)
class AwaitingReceipt:
    """An accepted SMS without a final status: what pull asks Twilio about."""

    key: RowKey
    provider_id: str


class Disposition(enum.StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    DUPLICATE = "duplicate"
    WAITING = "waiting"
    UNMATCHED = "unmatched"


@dataclass
class AppliedCounts:
    """What happened to the events of one :meth:`ReceiptStore.apply` call."""

    applied: int = 0
    unchanged: int = 0
    duplicate: int = 0
    waiting: int = 0
    unmatched: int = 0

    def add(self, disposition: Disposition, count: int = 1) -> None:
        setattr(self, disposition.value, getattr(self, disposition.value) + count)

    def __add__(self, other: AppliedCounts) -> AppliedCounts:
        return AppliedCounts(*(getattr(self, d.value) + getattr(other, d.value) for d in Disposition))

    @property
    def total(self) -> int:
        return sum(getattr(self, d.value) for d in Disposition)

    def as_dict(self) -> dict[str, int]:
        return {d.value: getattr(self, d.value) for d in Disposition}


class ReceiptStore(Protocol):
    """Where delivery events are applied (the ledger; :class:`MemoryReceiptStore` in tests).

    Implementations follow :func:`decide` event by event, in order, within one
    transaction per call: either all events of a call are applied or none is
    (the server then answers 503 and the provider retries).
    """

    def apply(self, events: Sequence[DeliveryEvent]) -> AppliedCounts:
        """Apply ``events`` (see :func:`decide`); how many went which way."""
        ...

    def known_provider_ids(self, channel: ReceiptChannel, provider_ids: Iterable[str]) -> set[str]:
        """Which of ``provider_ids`` a row of ``channel`` has recorded."""
        ...

    def accepted_without_final_status(self, campaign: str | None) -> Iterable[AwaitingReceipt]:
        """Accepted SMS (with a sid) whose receipt is missing or not final; every campaign when None."""
        ...


@runtime_checkable
class OpensWriter(Protocol):
    """A store whose writes may run in a thread of their own (the receipts server then commits one group
    there while the event loop reads the next): :meth:`open_writer` is called in that thread."""

    def open_writer(self) -> tuple[ReceiptStore, Callable[[], None]]:
        """A store for the calling thread, writing where this one writes, and how to close it (in that thread)."""
        ...


def decide(event: DeliveryEvent, row: ReceiptRow | None, *, seen: bool) -> tuple[Disposition, DeliveryEvent | None]:
    """The rule for one event: its disposition, and the row's new receipt when it changes.

    ``row`` is the row the event names (by sid for SMS, by custom_args for
    e-mail), None when there is none; ``seen`` whether its ``event_id`` was
    applied before.
    """
    if seen:
        return Disposition.DUPLICATE, None
    if row is None:
        by_sid = event.channel in ("sms", "voice") and event.provider_id
        return (Disposition.WAITING if by_sid else Disposition.UNMATCHED), None
    if event.channel == "email" and not _same_email(row.provider_id, event.provider_id):
        return Disposition.UNMATCHED, None
    merged = merge(row.receipt, event)
    if merged is row.receipt:
        return Disposition.UNCHANGED, None
    return Disposition.APPLIED, merged


@dataclass
class BatchOutcome:
    """What :func:`decide_batch` made of a batch: for the store to write in its transaction."""

    dispositions: list[Disposition] = field(default_factory=list)
    applied_ids: list[tuple[str, str]] = field(default_factory=list)  # (channel, event_id) to remember
    changed: dict[RowKey, DeliveryEvent] = field(default_factory=dict)  # the rows' new receipts
    parked: list[DeliveryEvent] = field(default_factory=list)  # events whose sid no row has yet

    def counts(self) -> AppliedCounts:
        tally = collections.Counter(self.dispositions)
        return AppliedCounts(*(tally[disposition] for disposition in Disposition))


def row_lookup(event: DeliveryEvent) -> tuple[str, ...] | None:
    """How a batch finds an event's row: ``(channel, sid)`` for SMS and calls, ``("email", campaign,
    recipient)`` for e-mail (its custom_args); None when the event names no row."""
    if event.channel in ("sms", "voice"):
        return (event.channel, event.provider_id or "")
    if event.campaign and event.recipient:
        return ("email", event.campaign, event.recipient)
    return None


def decide_batch(events: Sequence[DeliveryEvent], rows: dict[tuple[str, ...], ReceiptRow | None],
                 seen: set[tuple[str, str]],
                 find_row: Callable[[DeliveryEvent], ReceiptRow | None] = lambda event: None) -> BatchOutcome:
    """:func:`decide` for each event in order, as one store call applies them.

    ``rows`` holds the rows the batch names, by :func:`row_lookup` (None: no such row), as the store read
    them up front; a lookup it lacks is asked of ``find_row`` once. ``seen`` holds the ``(channel,
    event_id)`` applied before. Both are kept up to date as the batch goes on, so a later event of the same
    message sees what an earlier one did; the store writes the outcome at the end, in the same transaction.
    """
    outcome = BatchOutcome()
    for event in events:
        lookup = row_lookup(event)
        if lookup is not None and lookup not in rows:
            rows[lookup] = find_row(event)
        row = rows.get(lookup) if lookup is not None else None
        disposition, receipt = decide(event, row, seen=(event.channel, event.event_id) in seen)
        outcome.dispositions.append(disposition)
        if disposition is Disposition.WAITING:
            outcome.parked.append(event)
            continue
        if disposition in (Disposition.APPLIED, Disposition.UNCHANGED):
            seen.add((event.channel, event.event_id))
            outcome.applied_ids.append((event.channel, event.event_id))
        if receipt is not None and row is not None and lookup is not None:
            rows[lookup] = ReceiptRow(row.key, row.provider_id, receipt)
            outcome.changed[row.key] = receipt
    return outcome


def _same_email(recorded: str | None, named: str | None) -> bool:
    """SendGrid's ``sg_message_id`` starts with the ``X-Message-Id`` the send recorded."""
    if recorded is None:
        return True  # the send's answer is not in yet: the custom_args name the row
    return named is not None and (named == recorded or named.startswith(recorded + "."))


# --------------------------------------------------------------------------
# In memory
# --------------------------------------------------------------------------

#: Events kept for sids no row has (yet) at most; the oldest are dropped first.
MAX_WAITING = 100_000


@dataclass
class MemoryReceiptStore:
    """A :class:`ReceiptStore` in memory: the reference the ledger-backed stores are tested against."""

    max_waiting: int = MAX_WAITING
    rows: dict[RowKey, ReceiptRow] = field(default_factory=dict)
    dropped_waiting: int = 0
    _by_sid: dict[str, RowKey] = field(default_factory=dict)
    _seen: set[tuple[str, str]] = field(default_factory=set)
    _waiting: collections.OrderedDict[str, list[DeliveryEvent]] = field(default_factory=collections.OrderedDict)
    _waiting_count: int = 0

    # -- what a send does -----------------------------------------------------

    def add_row(self, campaign: str, channel: ReceiptChannel, recipient: str, provider_id: str | None = None) -> RowKey:
        """A planned message (provider id None) or an accepted one."""
        key = RowKey(campaign, channel, recipient)
        self.rows[key] = ReceiptRow(key, None)
        if provider_id is not None:
            self.record_provider_id(key, provider_id)
        return key

    def record_provider_id(self, key: RowKey, provider_id: str) -> int:
        """The send was accepted with ``provider_id``: events that waited for it are merged now.

        Returns how many waiting events were applied."""
        row = self.rows[key]
        self.rows[key] = ReceiptRow(key, provider_id, row.receipt)
        if key.channel not in ("sms", "voice"):
            return 0
        self._by_sid[provider_id] = key
        waiting = self._waiting.pop(provider_id, [])
        self._waiting_count -= len(waiting)
        return self.apply(waiting).applied

    # -- ReceiptStore ---------------------------------------------------------

    def apply(self, events: Sequence[DeliveryEvent]) -> AppliedCounts:
        counts = AppliedCounts()
        for event in events:
            row = self._row_for(event)
            disposition, receipt = decide(event, row, seen=(event.channel, event.event_id) in self._seen)
            counts.add(disposition)
            if disposition is Disposition.WAITING:
                self._park(event)
            elif disposition in (Disposition.APPLIED, Disposition.UNCHANGED):
                self._seen.add((event.channel, event.event_id))
            if receipt is not None and row is not None:
                self.rows[row.key] = ReceiptRow(row.key, row.provider_id, receipt)
        return counts

    def known_provider_ids(self, channel: ReceiptChannel, provider_ids: Iterable[str]) -> set[str]:
        if channel == "sms":
            return {sid for sid in provider_ids if sid in self._by_sid}
        recorded = {row.provider_id for row in self.rows.values() if row.key.channel == channel}
        return {pid for pid in provider_ids if pid in recorded}

    def accepted_without_final_status(self, campaign: str | None) -> Iterator[AwaitingReceipt]:
        for row in list(self.rows.values()):
            if row.key.channel != "sms" or row.provider_id is None:
                continue
            if campaign is not None and row.key.campaign != campaign:
                continue
            if row.receipt is None or row.receipt.state not in FINAL_STATES:
                yield AwaitingReceipt(row.key, row.provider_id)

    # -- reading --------------------------------------------------------------

    def receipt(self, key: RowKey) -> DeliveryEvent | None:
        return self.rows[key].receipt

    def states(self, campaign: str | None = None) -> dict[RowKey, str | None]:
        """Every row's delivery state (None: no receipt yet)."""
        return {key: row.receipt.state.value if row.receipt else None
                for key, row in self.rows.items() if campaign is None or key.campaign == campaign}

    @property
    def waiting(self) -> int:
        return self._waiting_count

    # -- internals ------------------------------------------------------------

    def _row_for(self, event: DeliveryEvent) -> ReceiptRow | None:
        if event.channel in ("sms", "voice"):
            key = self._by_sid.get(event.provider_id or "")
        elif event.campaign and event.recipient:
            key = RowKey(event.campaign, "email", event.recipient)
        else:
            key = None
        return self.rows.get(key) if key is not None else None

    def _park(self, event: DeliveryEvent) -> None:
        sid = event.provider_id or ""
        parked = self._waiting.setdefault(sid, [])
        if any(p.event_id == event.event_id for p in parked):
            return
        parked.append(event)
        self._waiting_count += 1
        while self._waiting_count > self.max_waiting:
            _, oldest = self._waiting.popitem(last=False)
            self._waiting_count -= len(oldest)
            self.dropped_waiting += len(oldest)
