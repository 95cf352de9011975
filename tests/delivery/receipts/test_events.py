"""The delivery-event model, the provider mappings and the merge rule."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from crisiscomms.delivery.receipts.events import (
    DeliveryEvent,
    DeliveryState,
    MalformedReceipt,
    merge,
    merge_all,
    sendgrid_event,
    twilio_event,
)

SID = "SM" + "ab" * 16
T0 = dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.UTC)


def sms(status: str, code: str | None = None) -> DeliveryEvent:
    fields = {"MessageSid": SID, "MessageStatus": status}
    if code:
        fields["ErrorCode"] = code
    return twilio_event(fields)


def mail(kind: str, seconds: int, event_id: str | None = None, **extra: object) -> DeliveryEvent:
    event = sendgrid_event({"event": kind, "timestamp": int(T0.timestamp()) + seconds,
                            "sg_event_id": event_id or f"{kind}-{seconds}", "sg_message_id": "abc.filter1",
                            "campaign": "c1", "recipient": "r1", **extra})
    assert event is not None
    return event


# -- Twilio mapping -------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "state"), [
    ("queued", "sent"), ("accepted", "sent"), ("scheduled", "sent"), ("sending", "sent"), ("sent", "sent"),
    ("delivered", "delivered"), ("undelivered", "undelivered"), ("failed", "failed"), ("read", "opened"),
    ("canceled", "failed"), ("DELIVERED", "delivered"),
])
def test_twilio_statuses_map_to_delivery_states(status: str, state: str) -> None:
    assert sms(status).state == state


def test_twilio_event_keeps_code_reason_and_a_dedupe_key() -> None:
    event = sms("undelivered", "30003")
    assert (event.channel, event.provider_id, event.code, event.event_id) == ("sms", SID, "30003", f"{SID}:undelivered:30003")
    assert event.reason == "unreachable destination handset (phone off or out of coverage)"
    assert event.occurred_at is None
    assert sms("failed", "30007").reason == "filtered by the carrier"
    assert sms("failed", "30036").reason == "validity period expired before it could be sent"
    assert sms("failed", "99999").reason is None


@pytest.mark.parametrize(("fields", "message"), [
    ({"MessageStatus": "delivered"}, "MessageSid is missing or not a Twilio message sid"),
    ({"MessageSid": "SM123", "MessageStatus": "delivered"}, "MessageSid is missing or not a Twilio message sid"),
    ({"MessageSid": "XX" + "ab" * 16, "MessageStatus": "delivered"}, "MessageSid is missing or not a Twilio message sid"),
    ({"MessageSid": SID}, "MessageStatus is missing or not a Twilio message status"),
    ({"MessageSid": SID, "MessageStatus": "exploded"}, "MessageStatus is missing or not a Twilio message status"),
    ({"MessageSid": SID, "MessageStatus": "failed", "ErrorCode": "<b>x</b>"}, "ErrorCode is not a Twilio error code"),
])
def test_malformed_twilio_callbacks_are_refused(fields: dict[str, str], message: str) -> None:
    with pytest.raises(MalformedReceipt) as caught:
        twilio_event(fields)
    assert str(caught.value) == message


# -- SendGrid mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "state"), [
    ("processed", "sent"), ("deferred", "deferred"), ("delivered", "delivered"), ("bounce", "bounced"),
    ("blocked", "bounced"), ("dropped", "dropped"), ("open", "opened"), ("click", "opened"),
])
def test_sendgrid_events_map_to_delivery_states(kind: str, state: str) -> None:
    assert mail(kind, 0).state == state


def test_sendgrid_event_keeps_custom_args_code_reason_and_time() -> None:
    event = mail("bounce", 5, "ev1", status="5.1.1", reason="550 5.1.1 no such user", type="bounce")
    assert (event.channel, event.provider_id, event.campaign, event.recipient) == ("email", "abc.filter1", "c1", "r1")
    assert (event.code, event.reason, event.event_id) == ("5.1.1", "550 5.1.1 no such user", "ev1")
    assert event.occurred_at == T0 + dt.timedelta(seconds=5)


def test_sendgrid_custom_args_may_also_come_nested() -> None:
    event = sendgrid_event({"event": "delivered", "timestamp": 1, "sg_event_id": "e",
                            "custom_args": {"campaign": "c9", "recipient": "r9"}})
    assert event is not None and (event.campaign, event.recipient) == ("c9", "r9")


@pytest.mark.parametrize("kind", ["spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe"])
def test_sendgrid_events_about_the_person_are_ignored(kind: str) -> None:
    assert sendgrid_event({"event": kind, "timestamp": 1, "sg_event_id": "x"}) is None


@pytest.mark.parametrize(("event", "message"), [
    ([1, 2], "an event is not a JSON object"),
    ({"timestamp": 1, "sg_event_id": "x"}, "event without 'event'"),
    ({"event": "teleported", "timestamp": 1, "sg_event_id": "x"}, "unknown SendGrid event type"),
    ({"event": "delivered", "timestamp": 1}, "event without 'sg_event_id'"),
    ({"event": "delivered", "sg_event_id": "x"}, "event without a numeric 'timestamp'"),
    ({"event": "delivered", "sg_event_id": "x", "timestamp": "yesterday"}, "event without a numeric 'timestamp'"),
    ({"event": "delivered", "sg_event_id": "x", "timestamp": True}, "event without a numeric 'timestamp'"),
    ({"event": "delivered", "sg_event_id": "x", "timestamp": 10**20}, "'timestamp' is out of range"),
    ({"event": "delivered", "sg_event_id": {"a": 1}, "timestamp": 1}, "'sg_event_id' is not a string"),
])
def test_malformed_sendgrid_events_are_refused(event: object, message: str) -> None:
    with pytest.raises(MalformedReceipt) as caught:
        sendgrid_event(event)
    assert str(caught.value) == message


# -- the merge rule -------------------------------------------------------------------------------


def final_of(events: list[DeliveryEvent]) -> DeliveryEvent | None:
    return merge_all(None, events)


@pytest.mark.parametrize(("events", "expected"), [
    # Twilio: no timestamps; rank decides, then the fixed tie order.
    (["queued", "sent", "delivered"], "delivered"),
    (["sent", "undelivered"], "undelivered"),
    (["sending", "sent", "failed"], "failed"),
    (["delivered", "read"], "read"),
    (["undelivered", "delivered"], "delivered"),
    (["failed", "undelivered"], "undelivered"),
])
def test_twilio_sequences_end_in_the_same_state_in_every_order(events: list[str], expected: str) -> None:
    built = [sms(status, "30003" if status in ("undelivered", "failed") else None) for status in events]
    for order in itertools.permutations(built + built[:1]):  # with a repeat
        result = final_of(list(order))
        assert result is not None and result.provider_status == expected


@pytest.mark.parametrize(("events", "expected"), [
    ([("processed", 0), ("deferred", 10), ("deferred", 20), ("delivered", 30)], ("delivered", 30)),
    ([("processed", 0), ("deferred", 10), ("bounce", 40)], ("bounce", 40)),
    ([("processed", 0), ("delivered", 10), ("bounce", 20)], ("bounce", 20)),  # a bounce after "delivered"
    ([("processed", 0), ("bounce", 10), ("delivered", 20)], ("delivered", 20)),
    ([("delivered", 10), ("bounce", 10)], ("delivered", 10)),  # same second: delivery wins the tie
    ([("delivered", 10), ("open", 20), ("bounce", 30)], ("open", 20)),  # an open is never overturned
    ([("dropped", 0), ("processed", 5)], ("dropped", 0)),
    ([("deferred", 10), ("deferred", 20)], ("deferred", 20)),
])
def test_sendgrid_sequences_end_in_the_same_state_in_every_order(
        events: list[tuple[str, int]], expected: tuple[str, int]) -> None:
    built = [mail(kind, seconds) for kind, seconds in events]
    for order in itertools.permutations(built + built[-1:]):
        result = final_of(list(order))
        assert result is not None
        assert (result.provider_status, int((result.occurred_at - T0).total_seconds())) == expected  # type: ignore[operator]


def test_merge_is_idempotent_and_keeps_the_current_on_a_tie() -> None:
    event = sms("delivered")
    assert merge(event, event) is event
    assert merge(None, event) is event
    assert merge(sms("delivered"), sms("sent")).state is DeliveryState.DELIVERED


def test_equal_rank_and_time_is_decided_by_code_not_arrival() -> None:
    a, b = sms("failed", "30003"), sms("failed", "30007")
    assert merge(a, b) == merge(b, a) == b


def test_every_pair_of_states_merges_the_same_way_round() -> None:
    built = [sms(s) for s in ("queued", "delivered", "undelivered", "failed", "read", "canceled")]
    built += [mail(k, s) for k in ("processed", "deferred", "delivered", "bounce", "dropped", "open") for s in (0, 9)]
    for a, b in itertools.product(built, repeat=2):
        if a.channel == b.channel:
            assert merge(a, b) == merge(b, a)


def test_an_event_round_trips_through_its_record() -> None:
    for event in (sms("undelivered", "30003"), mail("bounce", 7, "ev7", status="5.1.1", reason="no such user")):
        record = event.to_record()
        assert all(value is None or isinstance(value, str) for value in record.values())
        assert DeliveryEvent.from_record(record) == event


@pytest.mark.parametrize("record", [
    {}, {"channel": "fax", "state": "sent", "provider_status": "x", "event_id": "e"},
    {"channel": "sms", "state": "teleported", "provider_status": "x", "event_id": "e"},
    {"channel": "sms", "state": "sent", "provider_status": "x", "event_id": "e", "occurred_at": "noon"},
])
def test_a_broken_record_is_refused(record: dict[str, str]) -> None:
    with pytest.raises(MalformedReceipt, match="not a stored receipt"):
        DeliveryEvent.from_record(record)
