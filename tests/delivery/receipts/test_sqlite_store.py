"""The receipt store on the SQLite ledger gives the same answers as the in-memory reference."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from crisiscomms.delivery.receipts.events import DeliveryEvent, sendgrid_event, twilio_event
from crisiscomms.delivery.receipts.sqlite_store import SqliteReceiptStore
from crisiscomms.delivery.receipts.store import MemoryReceiptStore, RowKey
from crisiscomms.ledger.sqlite import SqliteLedger

from ...ledger_rows import NewRow, seed

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


def ledger_with_rows(tmp_path: Path, sms_count: int, email_count: int) -> SqliteLedger:
    ledger = SqliteLedger.open(tmp_path / "ledger.sqlite")
    rows = [NewRow("sms", f"+4670100{i:04d}", f"s{i}", i, "sv") for i in range(sms_count)]
    rows += [NewRow("email", f"p{i}@example.se", f"e{i}", 100 + i, "sv") for i in range(email_count)]
    seed(ledger, CAMPAIGN, rows)
    return ledger


def record_sends(ledger: SqliteLedger, memory: MemoryReceiptStore, sms_ids: range, email_ids: range) -> None:
    with ledger._transaction():
        for i in sms_ids:
            ledger.db.execute("UPDATE messages SET state = 'accepted', provider_id = ? WHERE address = ?",
                              (sid(i), f"+4670100{i:04d}"))
            memory.record_provider_id(RowKey(CAMPAIGN, "sms", f"s{i}"), sid(i))
        for i in email_ids:
            ledger.db.execute("UPDATE messages SET state = 'accepted', provider_id = ? WHERE address = ?",
                              (f"msg{i}", f"p{i}@example.se"))
            memory.record_provider_id(RowKey(CAMPAIGN, "email", f"e{i}"), f"msg{i}")


def states(ledger: SqliteLedger) -> dict[RowKey, str | None]:
    return {RowKey(CAMPAIGN, row.channel, row.recipient_id): row.delivery_state  # type: ignore[arg-type]
            for row in ledger.rows(CAMPAIGN)}


def test_shuffled_repeated_and_early_events_end_as_in_the_reference(tmp_path: Path) -> None:
    ledger = ledger_with_rows(tmp_path, 20, 10)
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
    store = SqliteReceiptStore(ledger)
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


def test_an_event_for_another_campaign_or_message_touches_nothing(tmp_path: Path) -> None:
    ledger = ledger_with_rows(tmp_path, 1, 1)
    memory = MemoryReceiptStore()
    memory.add_row(CAMPAIGN, "sms", "s0")
    memory.add_row(CAMPAIGN, "email", "e0")
    record_sends(ledger, memory, range(1), range(1))
    store = SqliteReceiptStore(ledger)
    other = sendgrid_event({"event": "bounce", "sg_event_id": "x1", "sg_message_id": "msgOTHER.filter",
                            "timestamp": int(T0.timestamp()), "campaign": CAMPAIGN, "recipient": "e0"})
    assert other is not None
    stranger = sendgrid_event({"event": "bounce", "sg_event_id": "x2", "sg_message_id": "msg0.filter",
                               "timestamp": int(T0.timestamp()), "campaign": "someone/else", "recipient": "e0"})
    assert stranger is not None
    counts = store.apply([other, stranger])
    assert (counts.unmatched, counts.applied) == (2, 0)
    assert {row.delivery_state for row in ledger.rows(CAMPAIGN)} == {None}


def test_waiting_events_are_bounded(tmp_path: Path) -> None:
    ledger = ledger_with_rows(tmp_path, 1, 0)
    store = SqliteReceiptStore(ledger, max_waiting=5)
    store.apply([sms(1000 + i, "delivered", i) for i in range(12)])
    assert store.waiting == 5


def memory_with_rows(sms_count: int, email_count: int) -> MemoryReceiptStore:
    memory = MemoryReceiptStore()
    for i in range(sms_count):
        memory.add_row(CAMPAIGN, "sms", f"s{i}")
    for i in range(email_count):
        memory.add_row(CAMPAIGN, "email", f"e{i}")
    return memory


def test_one_batch_with_several_events_of_one_message_applies_them_in_order(tmp_path: Path) -> None:
    ledger = ledger_with_rows(tmp_path, 2, 1)
    record_sends(ledger, memory_with_rows(2, 1), range(2), range(1))
    store = SqliteReceiptStore(ledger)
    batch = [sms(0, "sent", 1), sms(0, "delivered", 2), sms(0, "sent", 1), sms(1, "undelivered", 3, "30003"),
             sms(1, "undelivered", 3, "30003"), mail(0, "delivered", 4, "ev1"), mail(0, "delivered", 4, "ev1")]
    counts = store.apply(batch)
    assert (counts.applied, counts.duplicate, counts.unchanged) == (4, 3, 0)
    assert states(ledger) == {RowKey(CAMPAIGN, "sms", "s0"): "delivered", RowKey(CAMPAIGN, "sms", "s1"): "undelivered",
                              RowKey(CAMPAIGN, "email", "e0"): "delivered"}
    assert store.apply(batch).duplicate == 7


def test_a_writer_opened_for_another_thread_writes_the_same_ledger(tmp_path: Path) -> None:
    import threading

    ledger = ledger_with_rows(tmp_path, 1, 0)
    record_sends(ledger, memory_with_rows(1, 0), range(1), range(0))
    outcome: list[int] = []

    def in_the_writer_thread() -> None:
        writer, close = SqliteReceiptStore(ledger).open_writer()
        try:
            outcome.append(writer.apply([sms(0, "delivered", 1)]).applied)
        finally:
            close()

    thread = threading.Thread(target=in_the_writer_thread)
    thread.start()
    thread.join(30)
    assert outcome == [1]
    assert states(ledger) == {RowKey(CAMPAIGN, "sms", "s0"): "delivered"}
