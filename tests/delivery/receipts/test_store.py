"""The matching rule (decide) and the in-memory ReceiptStore."""

from __future__ import annotations

import itertools

import pytest

from crisiscomms.delivery.receipts.events import DeliveryEvent, sendgrid_event, twilio_event
from crisiscomms.delivery.receipts.store import (
    AppliedCounts,
    AwaitingReceipt,
    Disposition,
    MemoryReceiptStore,
    ReceiptRow,
    RowKey,
    decide,
)

SID = "SM" + "01" * 16
OTHER_SID = "SM" + "02" * 16


def sms(status: str, sid: str = SID, code: str | None = None) -> DeliveryEvent:
    return twilio_event({"MessageSid": sid, "MessageStatus": status, **({"ErrorCode": code} if code else {})})


def mail(kind: str, event_id: str, *, campaign: str = "c1", recipient: str = "r1",
         message_id: str | None = "X1.filter0001", at: int = 100) -> DeliveryEvent:
    event = sendgrid_event({"event": kind, "timestamp": at, "sg_event_id": event_id, "sg_message_id": message_id,
                            "campaign": campaign, "recipient": recipient})
    assert event is not None
    return event


SMS_ROW = ReceiptRow(RowKey("c1", "sms", "r1"), SID)
MAIL_ROW = ReceiptRow(RowKey("c1", "email", "r1"), "X1")


# -- decide: the pure rule ------------------------------------------------------------------------


@pytest.mark.parametrize(("event", "row", "seen", "disposition"), [
    (sms("delivered"), SMS_ROW, True, Disposition.DUPLICATE),
    (sms("delivered"), None, False, Disposition.WAITING),
    (mail("delivered", "e"), None, False, Disposition.UNMATCHED),
    (mail("delivered", "e", message_id="X2.filter"), MAIL_ROW, False, Disposition.UNMATCHED),
    (mail("delivered", "e", message_id=None), MAIL_ROW, False, Disposition.UNMATCHED),
    (mail("delivered", "e", message_id="X1"), MAIL_ROW, False, Disposition.APPLIED),
    (mail("delivered", "e"), ReceiptRow(MAIL_ROW.key, None), False, Disposition.APPLIED),
    (sms("delivered"), SMS_ROW, False, Disposition.APPLIED),
    (sms("sent"), ReceiptRow(SMS_ROW.key, SID, sms("delivered")), False, Disposition.UNCHANGED),
    (sms("delivered"), ReceiptRow(SMS_ROW.key, SID, sms("delivered")), False, Disposition.UNCHANGED),
    (sms("undelivered", code="30003"), ReceiptRow(SMS_ROW.key, SID, sms("sent")), False, Disposition.APPLIED),
])
def test_decide(event: DeliveryEvent, row: ReceiptRow | None, seen: bool, disposition: Disposition) -> None:
    got, receipt = decide(event, row, seen=seen)
    assert got is disposition
    assert (receipt is event) == (disposition is Disposition.APPLIED)


# -- the in-memory store --------------------------------------------------------------------------


def test_applied_events_set_the_row_and_count() -> None:
    store = MemoryReceiptStore()
    key = store.add_row("c1", "sms", "r1", SID)
    counts = store.apply([sms("sent"), sms("delivered"), sms("delivered"), sms("sent", sid=OTHER_SID)])
    assert counts == AppliedCounts(applied=2, duplicate=1, waiting=1)
    assert store.states() == {key: "delivered"}
    assert counts.total == 4 and counts.as_dict()["waiting"] == 1


def test_an_event_before_the_sid_waits_and_is_applied_when_the_send_records_it() -> None:
    store = MemoryReceiptStore()
    key = store.add_row("c1", "sms", "r1")
    assert store.apply([sms("undelivered", code="30003"), sms("sent")]) == AppliedCounts(waiting=2)
    assert store.states() == {key: None} and store.waiting == 2
    assert store.record_provider_id(key, SID) == 1  # "sent" is merged too, but does not change the state
    receipt = store.receipt(key)
    assert receipt is not None and (receipt.state, receipt.code) == ("undelivered", "30003")
    assert store.waiting == 0
    assert store.apply([sms("undelivered", code="30003")]) == AppliedCounts(duplicate=1)


def test_a_repeated_waiting_event_is_kept_once() -> None:
    store = MemoryReceiptStore()
    store.apply([sms("delivered"), sms("delivered")])
    assert store.waiting == 1


def test_waiting_events_are_bounded_oldest_dropped_first() -> None:
    store = MemoryReceiptStore(max_waiting=2)
    sids = [f"SM{index:032x}" for index in range(3)]
    store.apply([sms("delivered", sid=sid) for sid in sids])
    assert (store.waiting, store.dropped_waiting) == (2, 1)
    first = store.add_row("c1", "sms", "r0", sids[0])
    last = store.add_row("c1", "sms", "r2", sids[2])
    assert store.states() == {first: None, last: "delivered"}


def test_every_order_of_events_and_of_the_sid_arriving_ends_in_the_same_state() -> None:
    events = [sms("queued"), sms("sent"), sms("undelivered", code="30003"), sms("sent")]
    for order in itertools.permutations(range(len(events) + 1)):
        store = MemoryReceiptStore()
        key = store.add_row("c1", "sms", "r1")
        for step in order:
            if step == len(events):
                store.record_provider_id(key, SID)
            else:
                store.apply([events[step]])
        receipt = store.receipt(key)
        assert receipt is not None and (receipt.state, receipt.code) == ("undelivered", "30003"), order


def test_email_events_touch_only_the_row_their_custom_args_name() -> None:
    store = MemoryReceiptStore()
    mine = store.add_row("c1", "email", "r1", "X1")
    other = store.add_row("c2", "email", "r1", "X9")
    counts = store.apply([
        mail("delivered", "e1"),
        mail("bounce", "e2", campaign="c3"),  # no such campaign
        mail("bounce", "e3", recipient="r2"),  # no such recipient
        mail("bounce", "e4", campaign="c2"),  # names c2, but it is another message
        mail("delivered", "e1"),  # SendGrid resends
    ])
    assert counts == AppliedCounts(applied=1, duplicate=1, unmatched=3)
    assert store.states() == {mine: "delivered", other: None}


def test_accepted_without_final_status_lists_sms_to_pull() -> None:
    store = MemoryReceiptStore()
    done = store.add_row("c1", "sms", "r1", SID)
    open_ = store.add_row("c1", "sms", "r2", OTHER_SID)
    store.add_row("c1", "sms", "r3")  # never accepted
    store.add_row("c1", "email", "r1", "X1")
    store.add_row("c2", "sms", "r1", "SM" + "03" * 16)
    store.apply([sms("delivered"), sms("sent", sid=OTHER_SID)])
    assert list(store.accepted_without_final_status("c1")) == [AwaitingReceipt(open_, OTHER_SID)]
    assert len(list(store.accepted_without_final_status(None))) == 2
    assert store.known_provider_ids("sms", [SID, "SMnope"]) == {SID}
    assert store.known_provider_ids("email", ["X1", "X2"]) == {"X1"}
    assert done in store.rows
