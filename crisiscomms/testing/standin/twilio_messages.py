"""The Twilio Messages API stand-in: ``POST|GET .../Messages.json`` and ``GET .../Messages/{sid}.json``."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING

from aiohttp import web

from .common import _E164, TWILIO_API_VERSION, JsonDict, _json
from .twilio_common import _create_resource, _list_answer, _not_found, _read_resource

if TYPE_CHECKING:
    from .server import Standin

MAX_SMS_BODY = 1600

_SHORT_CODE = re.compile(r"^\d{3,8}$")
_ALPHA_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-f]{32}$")
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ "
    "!\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")



@dataclass(frozen=True, slots=True)
class SmsRecord:
    """One SMS the Twilio stand-in accepted."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    num_segments: int
    status_callback: str | None
    created_at: datetime

    @property
    def initial_status(self) -> str:
        """``accepted`` when a Messaging Service picks the sender, else ``queued``."""
        return "accepted" if self.from_ is None else "queued"

    def resource(self, status: str | None = None) -> JsonDict:
        """The Twilio message resource for this SMS, as the API renders it."""
        status = status or self.initial_status
        stamp = format_datetime(self.created_at)
        uri = f"/{TWILIO_API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": TWILIO_API_VERSION,
            "body": self.body,
            "date_created": stamp,
            "date_sent": stamp if status in ("sent", "delivered") else None,
            "date_updated": stamp,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": status,
            "subresource_uris": {
                "media": f"{uri}/Media.json",
                "feedback": f"{uri}/Feedback.json",
            },
            "to": self.to,
            "uri": f"{uri}.json",
        }

    def to_json(self) -> JsonDict:
        """The record as a JSON-ready mapping."""
        return {
            "sid": self.sid,
            "to": self.to,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "body": self.body,
            "num_segments": self.num_segments,
            "status_callback": self.status_callback,
            "created_at": self.created_at.isoformat(),
        }


def sms_segments(body: str) -> int:
    """How many SMS segments ``body`` needs (GSM-7 or UCS-2 encoding)."""
    septets = 0
    for char in body:
        if char in _GSM_BASIC:
            septets += 1
        elif char in _GSM_EXTENDED:
            septets += 2
        else:
            units = len(body.encode("utf-16-le")) // 2
            return 1 if units <= 70 else math.ceil(units / 67)
    return 1 if septets <= 160 else math.ceil(septets / 153)


def _sms_problem(fields: Mapping[str, str], opted_out: AbstractSet[str]) -> tuple[int, str] | None:
    """Twilio's (error code, message) for an unacceptable send, else ``None``."""
    to, sender = fields.get("To", ""), fields.get("From", "")
    service, body = fields.get("MessagingServiceSid", ""), fields.get("Body", "")
    if not to:
        return 21604, "A 'To' phone number is required."
    if not sender and not service:
        return 21603, "A 'From' phone number is required."
    if not body:
        return 21602, "Message body is required."
    if not _E164.match(to):
        return 21211, f"The 'To' number {to} is not a valid phone number."
    if sender and not _plausible_sender(sender):
        message = f"The 'From' number {sender} is not a valid phone number, shortcode, or alphanumeric sender ID."
        return 21212, message
    if service and not _SERVICE_SID.match(service):
        return 21701, f"The Messaging Service Sid {service} is invalid."
    if len(body) > MAX_SMS_BODY:
        return 21617, "The concatenated message body exceeds the 1600 character limit."
    if to in opted_out:
        return 21610, "Attempt to send to unsubscribed recipient"
    return None


def _plausible_sender(sender: str) -> bool:
    """An E.164 number, a short code or an alphanumeric sender ID."""
    return bool(_E164.match(sender) or _SHORT_CODE.match(sender) or _ALPHA_SENDER.match(sender))


async def _twilio_create(standin: Standin, request: web.Request) -> web.Response | None:
    """``POST .../Messages.json``: validate, record, answer 201 (or not at all)."""
    def record_with_receipts(fields: Mapping[str, str], sid: str) -> SmsRecord:
        record = standin._record_sms(fields, sid)
        standin.receipts.sms_accepted(record, standin.config.twilio_token)  # delivery receipts, if configured
        return record

    return await _create_resource(standin, request, lambda fields: _sms_problem(fields, standin.config.opted_out),
                                  record_with_receipts, lambda record: record.resource())


async def _twilio_fetch(standin: Standin, request: web.Request) -> web.Response | None:
    """``GET .../Messages/{sid}.json``: one accepted message."""

    def answer() -> web.Response:
        record = standin._find_sms(request.match_info["msid"])
        return _json(200, standin.receipts.resource(record)) if record is not None else _not_found(request)

    return await _read_resource(standin, request, answer)


async def _twilio_list(standin: Standin, request: web.Request) -> web.Response | None:
    """``GET .../Messages.json``: accepted messages, filtered by To/From/DateSent."""
    return await _read_resource(standin, request, lambda: _list_answer(
        request, "messages", "DateSent", standin._list_sms, lambda record: record.resource("sent")))
