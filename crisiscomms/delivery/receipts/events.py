"""Delivery events: what Twilio and SendGrid say happened to a message, and how a row's state follows.

A :class:`DeliveryEvent` is one provider statement ("SM… was undelivered, code
30003"). Providers send them out of order and more than once, and an event may
arrive before the send recorded the provider id it names. The rule that keeps a
row right anyway is :func:`merge`: a row's receipt is the event with the highest
:func:`precedence` among all events seen for it. Taking a maximum is
order-independent, idempotent and associative, so reordering, repetition and
late matching cannot leave a row in a wrong state. The ledgers (SQLite,
PostgreSQL) apply the same rule: keep the receipt whose precedence is highest.

Precedence, lowest to highest:

1. ``sent`` - the provider handed the message on (Twilio queued/sending/sent,
   SendGrid processed): not final;
2. ``deferred`` - the receiving side asked to try later; the provider retries:
   not final;
3. the final states ``delivered``, ``undelivered``, ``failed``, ``bounced``,
   ``dropped``; between two of them the later provider timestamp wins
   (SendGrid can report a bounce after "delivered"); without timestamps (Twilio
   callbacks carry none) or at the same second, ``delivered`` > ``bounced`` >
   ``dropped`` > ``undelivered`` > ``failed`` (positive evidence of delivery
   wins a tie);
4. ``opened`` - the recipient opened or clicked it (SendGrid open/click, Twilio
   ``read``): proof of delivery, never overturned.

Equal precedence is broken by code and reason, so the result never depends on
arrival order.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ...errors import InputError

__all__ = [
    "FINAL_STATES",
    "NOT_REACHED_STATES",
    "DeliveryEvent",
    "DeliveryState",
    "MalformedReceipt",
    "merge",
    "merge_all",
    "precedence",
    "sendgrid_event",
    "twilio_event",
]

ReceiptChannel = Literal["sms", "email", "voice"]


class DeliveryState(enum.StrEnum):
    SENT = "sent"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    OPENED = "opened"


#: A row in one of these states has its answer: pull no longer asks about it.
FINAL_STATES = frozenset({
    DeliveryState.DELIVERED, DeliveryState.UNDELIVERED, DeliveryState.FAILED,
    DeliveryState.BOUNCED, DeliveryState.DROPPED, DeliveryState.OPENED,
})
#: The message did not reach the person: candidates for escalation.
NOT_REACHED_STATES = frozenset({
    DeliveryState.UNDELIVERED, DeliveryState.FAILED, DeliveryState.BOUNCED, DeliveryState.DROPPED,
})

_RANK = {
    DeliveryState.SENT: 0, DeliveryState.DEFERRED: 1,
    DeliveryState.DELIVERED: 2, DeliveryState.UNDELIVERED: 2, DeliveryState.FAILED: 2,
    DeliveryState.BOUNCED: 2, DeliveryState.DROPPED: 2,
    DeliveryState.OPENED: 3,
}
_TIE = {
    DeliveryState.DELIVERED: 5, DeliveryState.BOUNCED: 4, DeliveryState.DROPPED: 3,
    DeliveryState.UNDELIVERED: 2, DeliveryState.FAILED: 1,
}
_NO_TIME = dt.datetime.min.replace(tzinfo=dt.UTC)


class MalformedReceipt(InputError):
    """A receipt that cannot be read (missing fields, unknown status, wrong types)."""


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """One provider statement about one message.

    ``provider_id`` is the Twilio MessageSid or SendGrid ``sg_message_id``;
    ``campaign`` and ``recipient`` come from SendGrid's ``custom_args`` (an SMS
    event names only its sid). ``occurred_at`` is the provider's time (None when
    the provider gives none); ``event_id`` is the key duplicates share
    (``sg_event_id``; for Twilio ``sid:status:code``).
    """

    channel: ReceiptChannel
    provider_id: str | None
    state: DeliveryState
    provider_status: str
    event_id: str
    code: str | None = None
    reason: str | None = None
    occurred_at: dt.datetime | None = None
    campaign: str | None = None
    recipient: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def to_record(self) -> dict[str, str | None]:
        """Flat text columns, e.g. for a ledger row's receipt or its table of waiting events."""
        return {"channel": self.channel, "provider_id": self.provider_id, "state": str(self.state),
                "provider_status": self.provider_status, "event_id": self.event_id, "code": self.code,
                "reason": self.reason, "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
                "campaign": self.campaign, "recipient": self.recipient}

    @classmethod
    def from_record(cls, record: Mapping[str, str | None]) -> DeliveryEvent:
        """The event :meth:`to_record` wrote (raises :class:`MalformedReceipt` for anything else)."""
        try:
            channel: ReceiptChannel
            if record["channel"] == "sms":
                channel = "sms"
            elif record["channel"] == "voice":
                channel = "voice"
            elif record["channel"] == "email":
                channel = "email"
            else:
                raise ValueError(f"channel {record['channel']!r}")
            occurred = record.get("occurred_at")
            when = dt.datetime.fromisoformat(occurred) if occurred else None
            return cls(channel, record.get("provider_id"), DeliveryState(str(record["state"])),
                       str(record["provider_status"]), str(record["event_id"]), code=record.get("code"),
                       reason=record.get("reason"), occurred_at=when, campaign=record.get("campaign"),
                       recipient=record.get("recipient"))
        except (KeyError, ValueError, TypeError) as error:
            raise MalformedReceipt(f"not a stored receipt: {error}") from None


def precedence(event: DeliveryEvent) -> tuple[int, dt.datetime, int, str, str, str]:
    """The order of :func:`merge`: the highest wins (see the module docstring)."""
    when = event.occurred_at or _NO_TIME
    return (_RANK[event.state], when, _TIE.get(event.state, 0), event.code or "", event.reason or "",
            event.provider_status)


def merge(current: DeliveryEvent | None, incoming: DeliveryEvent) -> DeliveryEvent:
    """The receipt a row keeps after ``incoming``: the one of higher :func:`precedence`."""
    if current is None or precedence(incoming) > precedence(current):
        return incoming
    return current


def merge_all(current: DeliveryEvent | None, events: Iterable[DeliveryEvent]) -> DeliveryEvent | None:
    """:func:`merge` over ``events``, e.g. the events that waited for a provider id."""
    for event in events:
        current = merge(current, event)
    return current


# --------------------------------------------------------------------------
# Twilio
# --------------------------------------------------------------------------

_TWILIO_STATES = {
    "accepted": DeliveryState.SENT, "scheduled": DeliveryState.SENT, "queued": DeliveryState.SENT,
    "sending": DeliveryState.SENT, "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED, "read": DeliveryState.OPENED,
    "undelivered": DeliveryState.UNDELIVERED, "failed": DeliveryState.FAILED, "canceled": DeliveryState.FAILED,
}
#: What the common 30xxx codes mean (Twilio's error dictionary), for agents reading a report.
TWILIO_REASONS = {
    "30001": "queue overflow",
    "30002": "account suspended",
    "30003": "unreachable destination handset (phone off or out of coverage)",
    "30004": "message blocked by the recipient or carrier",
    "30005": "unknown destination handset (number not in service)",
    "30006": "landline or unreachable carrier",
    "30007": "filtered by the carrier",
    "30008": "unknown error from the carrier",
    "30034": "sender not registered for A2P 10DLC",
    "30036": "validity period expired before it could be sent",
}
_SID_CHARS = frozenset("0123456789abcdefABCDEF")


def _twilio_sid(value: str | None) -> str:
    if value is None or len(value) != 34 or value[:2] not in ("SM", "MM") or not set(value[2:]) <= _SID_CHARS:
        raise MalformedReceipt("MessageSid is missing or not a Twilio message sid")
    return value


def twilio_event(
    fields: Mapping[str, str], *, occurred_at: dt.datetime | None = None, error_message: str | None = None
) -> DeliveryEvent:
    """The event of one Twilio status callback (form fields) or fetched message resource.

    ``MessageSid`` and ``MessageStatus`` are required; ``ErrorCode`` is kept as
    the code, with its meaning as the reason. Raises :class:`MalformedReceipt`.
    """
    sid = _twilio_sid(fields.get("MessageSid"))
    status = (fields.get("MessageStatus") or "").strip().lower()
    state = _TWILIO_STATES.get(status)
    if state is None:
        raise MalformedReceipt("MessageStatus is missing or not a Twilio message status")
    code = (fields.get("ErrorCode") or "").strip() or None
    if code is not None and not (code.isdigit() and len(code) <= 6):
        raise MalformedReceipt("ErrorCode is not a Twilio error code")
    reason = TWILIO_REASONS.get(code or "") or error_message or ("canceled" if status == "canceled" else None)
    return DeliveryEvent("sms", sid, state, status, f"{sid}:{status}:{code or ''}", code=code, reason=reason,
                         occurred_at=occurred_at)


#: A call's status (Twilio's status callback of Calls): completed is the call taken, the others are not.
_CALL_STATES = {
    "queued": DeliveryState.SENT, "initiated": DeliveryState.SENT, "ringing": DeliveryState.SENT,
    "in-progress": DeliveryState.SENT, "completed": DeliveryState.DELIVERED,
    "busy": DeliveryState.UNDELIVERED, "no-answer": DeliveryState.UNDELIVERED,
    "failed": DeliveryState.FAILED, "canceled": DeliveryState.FAILED,
}
_CALL_REASONS = {"busy": "the line was busy", "no-answer": "nobody answered", "canceled": "canceled",
                 "failed": "the call could not be placed"}


def twilio_call_event(fields: Mapping[str, str], *, occurred_at: dt.datetime | None = None) -> DeliveryEvent:
    """The event of one Twilio call status callback: ``CallSid`` and ``CallStatus`` are required."""
    sid = fields.get("CallSid") or ""
    if len(sid) != 34 or not sid.startswith("CA") or not set(sid[2:]) <= _SID_CHARS:
        raise MalformedReceipt("CallSid is missing or not a Twilio call sid")
    status = (fields.get("CallStatus") or "").strip().lower()
    state = _CALL_STATES.get(status)
    if state is None:
        raise MalformedReceipt("CallStatus is missing or not a Twilio call status")
    code = (fields.get("ErrorCode") or "").strip() or None
    if code is not None and not (code.isdigit() and len(code) <= 6):
        raise MalformedReceipt("ErrorCode is not a Twilio error code")
    return DeliveryEvent("voice", sid, state, status, f"{sid}:{status}:{code or ''}", code=code,
                         reason=_CALL_REASONS.get(status), occurred_at=occurred_at)


# --------------------------------------------------------------------------
# SendGrid
# --------------------------------------------------------------------------

_SENDGRID_STATES = {
    "processed": DeliveryState.SENT, "deferred": DeliveryState.DEFERRED, "delivered": DeliveryState.DELIVERED,
    "bounce": DeliveryState.BOUNCED, "blocked": DeliveryState.BOUNCED, "dropped": DeliveryState.DROPPED,
    "open": DeliveryState.OPENED, "click": DeliveryState.OPENED,
}
#: Events about the person, not the delivery: acknowledged and ignored.
SENDGRID_IGNORED = frozenset({"spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe"})
MAX_FIELD = 1000  # characters kept of a provider's reason


def _text(event: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = event.get(name)
    if value is None or value == "":
        if required:
            raise MalformedReceipt(f"event without '{name}'")
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise MalformedReceipt(f"'{name}' is not a string")
    return str(value)[:MAX_FIELD]


def _custom_arg(event: Mapping[str, Any], name: str) -> str | None:
    nested = event.get("custom_args")
    value = event.get(name)
    if value is None and isinstance(nested, Mapping):
        value = nested.get(name)
    return value if isinstance(value, str) and value else None


def _timestamp(event: Mapping[str, Any]) -> dt.datetime:
    value = event.get("timestamp")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedReceipt("event without a numeric 'timestamp'")
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedReceipt("'timestamp' is out of range") from None


def sendgrid_event(event: object) -> DeliveryEvent | None:
    """The event of one element of a SendGrid Event Webhook array; None for events about the person
    (unsubscribe, spam report). Raises :class:`MalformedReceipt` for an element that cannot be read."""
    if not isinstance(event, Mapping):
        raise MalformedReceipt("an event is not a JSON object")
    kind = _text(event, "event", required=True) or ""
    if kind in SENDGRID_IGNORED:
        return None
    state = _SENDGRID_STATES.get(kind)
    if state is None:
        raise MalformedReceipt("unknown SendGrid event type")
    event_id = _text(event, "sg_event_id", required=True) or ""
    occurred_at = _timestamp(event)
    code = _text(event, "status") or (_text(event, "type") if kind in ("bounce", "blocked") else None)
    reason = _text(event, "reason") or _text(event, "response")
    return DeliveryEvent("email", _text(event, "sg_message_id"), state, kind, event_id, code=code, reason=reason,
                         occurred_at=occurred_at, campaign=_custom_arg(event, "campaign"),
                         recipient=_custom_arg(event, "recipient"))
