"""The Twilio Calls API stand-in: ``POST|GET .../Calls.json`` and ``GET .../Calls/{sid}.json``.

A call is validated like Twilio validates a create (``To``, ``From``, and a
``Url`` or inline ``Twiml`` of at most :data:`MAX_TWIML` characters), recorded
with its TwiML, and answered ``201`` with status ``queued``; the shared gate
applies the same faults as to Messages (latency, the rate cap with 429,
random 429/500, accepted-but-unanswered). Lists filter by ``To``, ``From``,
``Status`` and ``StartTime``/``StartTime<``/``StartTime>`` (on the creation
time, as the stand-in never rings anyone), newest first, in Twilio's pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING

from aiohttp import web

from .common import _E164, TWILIO_API_VERSION, JsonDict, _json
from .twilio_common import _create_resource, _list_answer, _not_found, _read_resource

if TYPE_CHECKING:
    from .server import Standin

#: Characters Twilio accepts in the ``Twiml`` parameter.
MAX_TWIML = 4000


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call the Twilio stand-in accepted."""

    sid: str
    account_sid: str
    to: str
    from_: str
    twiml: str | None
    url: str | None
    status_callback: str | None
    created_at: datetime

    def resource(self, status: str = "queued") -> JsonDict:
        """The Twilio call resource, as the API renders it."""
        stamp = format_datetime(self.created_at)
        uri = f"/{TWILIO_API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        return {
            "account_sid": self.account_sid, "annotation": None, "answered_by": None,
            "api_version": TWILIO_API_VERSION, "caller_name": None, "date_created": stamp, "date_updated": stamp,
            "direction": "outbound-api", "duration": None, "end_time": None, "forwarded_from": None,
            "from": self.from_, "from_formatted": self.from_, "group_sid": None, "parent_call_sid": None,
            "phone_number_sid": None, "price": None, "price_unit": "USD", "queue_time": "0", "sid": self.sid,
            "start_time": None, "status": status, "subresource_uris": {
                "notifications": f"{uri}/Notifications.json", "recordings": f"{uri}/Recordings.json"},
            "to": self.to, "to_formatted": self.to, "trunk_sid": None, "uri": f"{uri}.json",
        }

    def to_json(self) -> JsonDict:
        """The record as a JSON-ready mapping."""
        return {"sid": self.sid, "to": self.to, "from": self.from_, "twiml": self.twiml, "url": self.url,
                "status_callback": self.status_callback, "created_at": self.created_at.isoformat()}


def _call_problem(fields: Mapping[str, str]) -> tuple[int, str] | None:
    """Twilio's (error code, message) for an unacceptable call, else ``None``."""
    to, sender = fields.get("To", ""), fields.get("From", "")
    twiml, url = fields.get("Twiml", ""), fields.get("Url", "")
    if not to:
        return 21201, "No 'To' number is specified"
    if not sender:
        return 21213, "No 'From' number is specified"
    if not twiml and not url:
        return 21205, "Either a 'Url' or 'Twiml' parameter is required"
    if not _E164.match(to):
        return 21211, f"Invalid 'To' Phone Number: {to}"
    if not _E164.match(sender):
        return 21212, f"Invalid 'From' Phone Number: {sender}"
    if len(twiml) > MAX_TWIML:
        return 20001, f"Twiml is {len(twiml)} characters; the maximum is {MAX_TWIML}"
    return None


async def _calls_create(standin: Standin, request: web.Request) -> web.Response | None:
    """``POST .../Calls.json``: validate, record, answer 201 (or not at all)."""
    return await _create_resource(standin, request, _call_problem, standin._record_call,
                                  lambda record: record.resource())


async def _calls_fetch(standin: Standin, request: web.Request) -> web.Response | None:
    """``GET .../Calls/{sid}.json``: one accepted call."""

    def answer() -> web.Response:
        record = standin._find_call(request.match_info["csid"])
        return _json(200, record.resource()) if record is not None else _not_found(request)

    return await _read_resource(standin, request, answer)


async def _calls_list(standin: Standin, request: web.Request) -> web.Response | None:
    """``GET .../Calls.json``: accepted calls, filtered by To/From/Status/StartTime."""

    def find(to: str | None, from_: str | None) -> list[CallRecord]:
        if request.query.get("Status") not in (None, "", "queued"):
            return []  # every stand-in call stays queued
        return standin._list_calls(to, from_)

    return await _read_resource(standin, request, lambda: _list_answer(
        request, "calls", "StartTime", find, lambda record: record.resource()))
