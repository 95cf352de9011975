"""The receipt stores on the SQLite and the PostgreSQL ledger give the same answers as the in-memory reference."""

from __future__ import annotations

import datetime as dt
import random
import threading

import pytest

from crisiscomms.delivery.receipts import store_for
from crisiscomms.delivery.receipts.events import DeliveryEvent, sendgrid_event, twilio_event
from crisiscomms.delivery.receipts.pg_store import PgReceiptStore
from crisiscomms.delivery.receipts.store import MemoryReceiptStore, RowKey
from crisiscomms.ledger import LedgerLocation, open_ledger
from crisiscomms.ledger.base import Ledger
from crisiscomms.ledger.postgres import PostgresLedger

from ...ledger.backends import ledger, location, sql
from ...ledger_rows import NewRow, seed

__all__ = ["ledger", "location"]  # the fixtures: each test runs on SQLite and on PostgreSQL

CAMPAIGN = "org/notice"
T0 = dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.UTC)


def sid(i: int) -> str:
    return f"SM{i:032x}"


def sms(i: int, status: str, minute: int, code: str = "") -> DeliveryEvent:
    fields = {"MessageSid": sid(i), "MessageStatus": status, **({"ErrorCode": code} if code else {})}
    return twilio_event(fields, occurred_at=T0 + dt.timedelta(minutes=minute))


def mail(i: int, kind: str, minute: int, event_id: str) -> DeliveryEvent:
    event = sendgrid_event({"event": kind, "sg_event_id": event_id, "sg_message_id": f"msg{i}.filter",
                            "timestamp": int((T0 + dt.timedelta(minutes=minute)).timestamp()),
                            "campaign": CAMPAIGN, "recipient": f"e{i}"})
    assert event is not None
    return event


def with_rows(ledger: Ledger, sms_count: int, email_count: int) -> Ledger:
    rows = [NewRow("sms", f"+4670100{i:04d}", f"s{i}", i, "sv") for i in range(sms_count)]
    rows += [NewRow("email", f"p{i}@example.se", f"e{i}", 100 + i, "sv") for i in range(email_count)]
    seed(ledger, CAMPAIGN, rows)
    return ledger


def record_sends(ledger: Ledger, memory: MemoryReceiptStore, sms_ids: range, email_ids: range) -> None:
    for i in sms_ids:
        sql(ledger, "UPDATE messages SET state = 'accepted', provider_id = ? WHERE address = ?",
            (sid(i), f"+4670100{i:04d}"))
        memory.record_provider_id(RowKey(CAMPAIGN, "sms", f"s{i}"), sid(i))
    for i in email_ids:
        sql(ledger, "UPDATE messages SET state = 'accepted', provider_id = ? WHERE address = ?",
            (f"msg{i}", f"p{i}@example.se"))
        memory.record_provider_id(RowKey(CAMPAIGN, "email", f"e{i}"), f"msg{i}")


def states(ledger: Ledger) -> dict[RowKey, str | None]:
    return {RowKey(CAMPAIGN, row.channel, row.recipient_id): row.delivery_state  # type: ignore[arg-type]
            for row in ledger.rows(CAMPAIGN)}


def test_shuffled_repeated_and_early_events_end_as_in_the_reference(ledger: Ledger) -> None:
    with_rows(ledger, 20, 10)
    memory = MemoryReceiptStore()
    for i in range(20):
        memory.add_row(CAMPAIGN, "sms", f"s{i}")
    for i in range(10):
        memory.add_row(CAMPAIGN, "email", f"e{i}")
    events = [sms(i, s, m, c) for i in range(20) for s, m, c in
              (("sent", 1, ""), ("delivered" if i % 3 else "undelivered", 2, "" if i % 3 else "30003"))]
    events += [mail(i, k, m, f"ev{i}{k}") for i in range(10) for k, m in
               (("processed", 1), ("delivered" if i % 4 else "bounce", 2), ("open", 5))]
    events += events[:15]  # providers resend
    random.Random(3).shuffle(events)
    store = store_for(ledger)
    early, late = events[:25], events[25:]
    assert store.apply(early) == memory.apply(early)  # some SMS events come before the send recorded the sid
    record_sends(ledger, memory, range(20), range(10))
    counts, reference = store.apply(late), memory.apply(late)
    assert counts.duplicate == reference.duplicate
    assert states(ledger) == memory.states(CAMPAIGN)
    assert store.waiting == 0
    assert {row.delivery_code for row in ledger.rows(CAMPAIGN) if row.delivery_state == "undelivered"} == {"30003"}
    awaiting = list(store.accepted_without_final_status(CAMPAIGN))
    assert awaiting == []


def test_an_event_for_another_campaign_or_message_touches_nothing(ledger: Ledger) -> None:
    with_rows(ledger, 1, 1)
    memory = MemoryReceiptStore()
    memory.add_row(CAMPAIGN, "sms", "s0")
    memory.add_row(CAMPAIGN, "email", "e0")
    record_sends(ledger, memory, range(1), range(1))
    store = store_for(ledger)
    other = sendgrid_event({"event": "bounce", "sg_event_id": "x1", "sg_message_id": "msgOTHER.filter",
                            "timestamp": int(T0.timestamp()), "campaign": CAMPAIGN, "recipient": "e0"})
    assert other is not None
    stranger = sendgrid_event({"event": "bounce", "sg_event_id": "x2", "sg_message_id": "msg0.filter",
                               "timestamp": int(T0.timestamp()), "campaign": "someone/else", "recipient": "e0"})
    assert stranger is not None
    counts = store.apply([other, stranger])
    assert (counts.unmatched, counts.applied) == (2, 0)
    assert {row.delivery_state for row in ledger.rows(CAMPAIGN)} == {None}


def test_waiting_events_are_bounded(ledger: Ledger) -> None:
    with_rows(ledger, 1, 0)
    store = store_for(ledger)
    store.max_waiting = 5
    store.apply([sms(1000 + i, "delivered", i) for i in range(12)])
    assert store.waiting == 5


def memory_with_rows(sms_count: int, email_count: int) -> MemoryReceiptStore:
    memory = MemoryReceiptStore()
    for i in range(sms_count):
        memory.add_row(CAMPAIGN, "sms", f"s{i}")
    for i in range(email_count):
        memory.add_row(CAMPAIGN, "email", f"e{i}")
    return memory


def test_one_batch_with_several_events_of_one_message_applies_them_in_order(ledger: Ledger) -> None:
    with_rows(ledger, 2, 1)
    record_sends(ledger, memory_with_rows(2, 1), range(2), range(1))
    store = store_for(ledger)
    batch = [sms(0, "sent", 1), sms(0, "delivered", 2), sms(0, "sent", 1), sms(1, "undelivered", 3, "30003"),
             sms(1, "undelivered", 3, "30003"), mail(0, "delivered", 4, "ev1"), mail(0, "delivered", 4, "ev1")]
    counts = store.apply(batch)
    assert (counts.applied, counts.duplicate, counts.unchanged) == (4, 3, 0)
    assert states(ledger) == {RowKey(CAMPAIGN, "sms", "s0"): "delivered", RowKey(CAMPAIGN, "sms", "s1"): "undelivered",
                              RowKey(CAMPAIGN, "email", "e0"): "delivered"}
    assert store.apply(batch).duplicate == 7


def test_a_writer_opened_for_another_thread_writes_the_same_ledger(ledger: Ledger) -> None:
    with_rows(ledger, 1, 0)
    record_sends(ledger, memory_with_rows(1, 0), range(1), range(0))
    outcome: list[int] = []

    def in_the_writer_thread() -> None:
        writer, close = store_for(ledger).open_writer()
        try:
            outcome.append(writer.apply([sms(0, "delivered", 1)]).applied)
        finally:
            close()

    thread = threading.Thread(target=in_the_writer_thread)
    thread.start()
    thread.join(30)
    assert outcome == [1]
    assert states(ledger) == {RowKey(CAMPAIGN, "sms", "s0"): "delivered"}


@pytest.mark.postgres
def test_two_receipt_servers_on_one_team_ledger_apply_each_event_once(pg_url: str) -> None:
    """Two machines' receipts servers get the same (resent, shuffled) events at the same moment: they wait
    for each other's row locks, never deadlock, and end as one store would, each event id applied once."""
    machines = [open_ledger(LedgerLocation(pg_url, "--ledger")) for _ in range(2)]
    try:
        first = machines[0]
        assert isinstance(first, PostgresLedger)
        with_rows(first, 40, 20)
        memory = memory_with_rows(40, 20)
        events = [sms(i, s, m, c) for i in range(40) for s, m, c in
                  (("queued", 0, ""), ("sent", 1, ""), ("delivered" if i % 3 else "undelivered", 2,
                                                         "" if i % 3 else "30003"))]
        events += [mail(i, k, m, f"ev{i}{k}") for i in range(20) for k, m in
                   (("processed", 1), ("delivered" if i % 4 else "bounce", 2), ("open", 5))]
        early = [event for event in events if event.channel == "sms" and event.state.value == "queued"]
        stores = [PgReceiptStore(machine) for machine in machines if isinstance(machine, PostgresLedger)]
        _at_once([lambda store=store: store.apply(early) for store in stores])  # sids not recorded yet: they wait
        record_sends(first, memory, range(40), range(20))
        memory.apply(events)
        shuffled = [random.Random(seed).sample(events, len(events)) for seed in (1, 2)]
        _at_once([lambda store=store, mine=mine: [store.apply(mine[i:i + 9]) for i in range(0, len(mine), 9)]
                  for store, mine in zip(stores, shuffled, strict=True)])
        assert stores[0].settle() == 0  # the waiting events were merged by the calls above
        assert states(first) == memory.states(CAMPAIGN)
        assert stores[1].waiting == 0
        assert sql(first, "SELECT COUNT(*) FROM receipt_events") == [(len(events),)]
    finally:
        for machine in machines:
            machine.close()


def _at_once(jobs: list[object]) -> None:
    """Run the callables in threads started at one barrier; their exceptions are raised here."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: object) -> None:
        barrier.wait()
        try:
            job()  # type: ignore[operator]
        except BaseException as error:  # handed back to the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
