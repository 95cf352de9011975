"""A local stand-in for the Twilio Messages API and the SendGrid v3 mail API.

One aiohttp server on 127.0.0.1 answers both providers (their paths do not
collide), so ``twilio_url`` and ``sendgrid_url`` are the same base URL. The
server records every accepted SMS and e-mail delivery, counts its answers by
provider and status, and can misbehave on purpose: latency, a per-second rate
cap, random 429 and 500 answers, and "unanswered" requests that are accepted
and recorded but whose connection is closed before any response is written.

Ways to run it:

* ``async with run_standin(config) as standin:`` in the test's event loop;
* ``with standin_in_thread(config) as standin:`` for synchronous tests or
  clients in another process (own event loop in a daemon thread);
* ``python -m crisiscomms.testing.standin --port 0 ...``, which prints the
  base URL as its first line on stdout and dumps the record as JSON when it
  gets SIGTERM or SIGINT.

Control endpoints: ``GET /_standin/record``, ``GET|POST /_standin/config``
and ``POST /_standin/reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import dataclasses
import json
import math
import random
import re
import signal
import sys
import threading
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from collections.abc import Set as AbstractSet
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any, Literal, cast
from urllib.parse import urlencode

from aiohttp import web

from .standin_receipts import Receipts
from .standin_receipts import add_control_routes as add_receipt_routes

Provider = Literal["twilio", "sendgrid"]
PROVIDERS: tuple[Provider, ...] = ("twilio", "sendgrid")

DEFAULT_TWILIO_SID = "AC" + "5a" * 16
DEFAULT_TWILIO_TOKEN = "standin-twilio-auth-token"
DEFAULT_SENDGRID_KEY = "SG.standin.sendgrid-api-key"

MAX_SMS_BODY = 1600
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CATEGORIES = 10
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
TWILIO_API_VERSION = "2010-04-01"

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_SHORT_CODE = re.compile(r"^\d{3,8}$")
_ALPHA_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-f]{32}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ "
    "!\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")

_SENDGRID_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"

Fault = Literal["429", "500", "unanswered"]
JsonDict = dict[str, Any]
SendGridError = dict[str, str | None]


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


@dataclass
class StandinConfig:
    """How the stand-in behaves; may be changed between test phases.

    Rates are probabilities in ``[0, 1]`` drawn from ``random.Random(seed)``
    once per authenticated request, so a run is reproducible for a given
    order of requests. ``rate_cap`` is requests per second allowed per
    provider (``None``: unlimited); ``twilio_rate_cap`` and
    ``sendgrid_rate_cap`` override it for one provider.
    """

    twilio_sid: str = DEFAULT_TWILIO_SID
    twilio_token: str = DEFAULT_TWILIO_TOKEN
    sendgrid_key: str = DEFAULT_SENDGRID_KEY
    latency: float = 0.0
    rate_cap: float | None = None
    twilio_rate_cap: float | None = None
    sendgrid_rate_cap: float | None = None
    fail_429_rate: float = 0.0
    fail_500_rate: float = 0.0
    unanswered_rate: float = 0.0
    seed: int = 0
    opted_out: AbstractSet[str] = frozenset()

    def __post_init__(self) -> None:
        """Validate the numbers and freeze the opted-out set."""
        self.opted_out = frozenset(self.opted_out)
        if self.latency < 0:
            raise ValueError("latency must be >= 0")
        for name in ("rate_cap", "twilio_rate_cap", "sendgrid_rate_cap"):
            cap = getattr(self, name)
            if cap is not None and cap <= 0:
                raise ValueError(f"{name} must be > 0 or None")
        for name in ("fail_429_rate", "fail_500_rate", "unanswered_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.fail_429_rate + self.fail_500_rate + self.unanswered_rate > 1.0:
            raise ValueError("fault rates must add up to at most 1")

    def cap_for(self, provider: Provider) -> float | None:
        """The effective rate cap (requests per second) of one provider."""
        specific = self.twilio_rate_cap if provider == "twilio" else self.sendgrid_rate_cap
        return specific if specific is not None else self.rate_cap

    def to_json(self) -> JsonDict:
        """The configuration as a JSON-ready mapping."""
        data = dataclasses.asdict(self)
        data["opted_out"] = sorted(self.opted_out)
        return data

    def with_changes(self, changes: Mapping[str, Any]) -> StandinConfig:
        """A validated copy with ``changes`` applied (unknown names raise)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        updates = dict(changes)
        if "opted_out" in updates:
            updates["opted_out"] = frozenset(updates["opted_out"])
        try:
            return dataclasses.replace(self, **updates)
        except TypeError as error:
            raise ValueError(str(error)) from error


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class EmailRecord:
    """One recipient of one personalization the SendGrid stand-in accepted."""

    to: str
    kind: Literal["to", "cc", "bcc"]
    subject: str | None
    message_id: str
    custom_args: Mapping[str, str]
    categories: tuple[str, ...]
    from_email: str
    personalization: int
    created_at: datetime

    def to_json(self) -> JsonDict:
        """The record as a JSON-ready mapping."""
        return {
            "to": self.to,
            "kind": self.kind,
            "subject": self.subject,
            "message_id": self.message_id,
            "custom_args": dict(self.custom_args),
            "categories": list(self.categories),
            "from_email": self.from_email,
            "personalization": self.personalization,
            "created_at": self.created_at.isoformat(),
        }


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


class _SlidingWindow:
    """Admits at most ``cap`` events in any one-second window (bounded memory)."""

    def __init__(self) -> None:
        self._times: collections.deque[float] = collections.deque()

    def take(self, cap: float | None, now: float) -> float | None:
        """Admit one event (``None``) or return when the window next frees up."""
        if cap is None:
            return None
        times = self._times
        while times and times[0] <= now - 1.0:
            times.popleft()
        if len(times) < cap:
            times.append(now)
            return None
        return times[0] + 1.0

    def clear(self) -> None:
        """Forget every admitted event."""
        self._times.clear()


@dataclass(slots=True)
class _Admission:
    """The verdict of the shared gate: an early answer, or go on (maybe unanswered)."""

    response: web.Response | None = None
    unanswered: bool = False


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


def _json(status: int, body: object, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response."""
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


def _twilio_error(status: int, code: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """A Twilio REST error body (``code``, ``message``, ``more_info``, ``status``)."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return _json(status, body, headers)


def _sendgrid_error(message: str, field_name: str | None = None, help_anchor: str | None = None) -> SendGridError:
    """One entry of a SendGrid ``errors`` list."""
    help_url = f"{_SENDGRID_HELP}#message.{help_anchor}" if help_anchor else None
    return {"message": message, "field": field_name, "help": help_url}


def _sendgrid_errors(
    status: int,
    errors: Sequence[SendGridError],
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A SendGrid error response."""
    return _json(status, {"errors": list(errors)}, headers)


def _twilio_fault(status: int, reset_at: float | None, cap: float | None) -> web.Response:
    """Twilio's answer to a request refused by the gate (401, 429 or 500)."""
    del reset_at, cap
    if status == 401:
        return _twilio_error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
    if status == 429:
        return _twilio_error(429, 20429, "Too Many Requests", {"Retry-After": "1"})
    return _twilio_error(500, 20500, "Internal Server Error")


def _sendgrid_fault(status: int, reset_at: float | None, cap: float | None) -> web.Response:
    """SendGrid's answer to a request refused by the gate (401, 429 or 500)."""
    if status == 401:
        message = "The provided authorization grant is invalid, expired, or revoked"
        return _sendgrid_errors(401, [_sendgrid_error(message)])
    if status == 429:
        headers = {
            "X-RateLimit-Limit": str(int(cap)) if cap is not None else "600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(math.ceil(reset_at or time.time() + 1.0)),
        }
        return _json(429, {"errors": [{"message": "too many requests"}]}, headers)
    message = "An internal server error occurred. Please try again later."
    return _sendgrid_errors(500, [_sendgrid_error(message)])


_FAULT_ANSWERS = {"twilio": _twilio_fault, "sendgrid": _sendgrid_fault}


# --------------------------------------------------------------------------
# The stand-in
# --------------------------------------------------------------------------


class Standin:
    """The server state: configuration, record, counters, and the aiohttp runner.

    Handlers run on the server's event loop; every read and write of the
    record goes through one lock, so tests may read it from another thread.
    Properties return snapshots (copies), not live views.
    """

    def __init__(self, config: StandinConfig | None = None) -> None:
        """Create a stopped stand-in; :meth:`start` binds it."""
        self.config = config or StandinConfig()
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)
        self._ids = random.Random()
        self._windows = {provider: _SlidingWindow() for provider in PROVIDERS}
        self._sms: list[SmsRecord] = []
        self._sms_by_sid: dict[str, SmsRecord] = {}
        self._sms_by_to: dict[str, list[SmsRecord]] = {}
        self._emails: list[EmailRecord] = []
        self._answers: collections.Counter[tuple[str, int]] = collections.Counter()
        self._requests: collections.Counter[str] = collections.Counter()
        self._unanswered: collections.Counter[str] = collections.Counter()
        self._runner: web.AppRunner | None = None
        self.receipts = Receipts()  # delivery receipts: see standin_receipts.py
        self.host = "127.0.0.1"
        self.port = 0

    # -- addresses ---------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.host}:{self.port}"

    @property
    def twilio_url(self) -> str:
        """Base URL for the Twilio client (it appends ``/2010-04-01/...``)."""
        return self.url

    @property
    def sendgrid_url(self) -> str:
        """Base URL for the SendGrid client (it appends ``/v3/mail/send``)."""
        return self.url

    # -- lifecycle ---------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind and serve on ``host:port`` (port 0: a free port, see :attr:`port`)."""
        runner = web.AppRunner(_build_app(self), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.host, self.port = host, int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop serving and close every connection."""
        runner, self._runner = self._runner, None
        await self.receipts.aclose()
        if runner is not None:
            await runner.cleanup()

    # -- configuration -----------------------------------------------------

    def configure(self, **changes: Any) -> StandinConfig:
        """Apply configuration changes (validated); a new ``seed`` re-seeds faults."""
        with self._lock:
            self.config = self.config.with_changes(changes)
            if "seed" in changes:
                self._rng = random.Random(self.config.seed)
            return self.config

    def reset(self) -> None:
        """Clear the record, counters and rate windows; re-seed the fault generator."""
        with self._lock:
            self._sms, self._emails = [], []
            self._sms_by_sid, self._sms_by_to = {}, {}
            self._answers.clear()
            self._requests.clear()
            self._unanswered.clear()
            for window in self._windows.values():
                window.clear()
            self._rng = random.Random(self.config.seed)
            self.receipts.reset()

    # -- reading the record ------------------------------------------------

    @property
    def sms(self) -> list[SmsRecord]:
        """Accepted SMS, oldest first (snapshot)."""
        with self._lock:
            return list(self._sms)

    @property
    def emails(self) -> list[EmailRecord]:
        """Accepted e-mail deliveries, one per recipient, oldest first (snapshot)."""
        with self._lock:
            return list(self._emails)

    @property
    def answers(self) -> collections.Counter[tuple[str, int]]:
        """Answers sent, keyed by ``(provider, status)`` (unanswered ones excluded)."""
        with self._lock:
            return collections.Counter(self._answers)

    @property
    def requests(self) -> collections.Counter[str]:
        """Requests received per provider (answered or not)."""
        with self._lock:
            return collections.Counter(self._requests)

    @property
    def unanswered(self) -> collections.Counter[str]:
        """Requests accepted and recorded whose connection was then dropped."""
        with self._lock:
            return collections.Counter(self._unanswered)

    def sms_count_by_to(self) -> collections.Counter[str]:
        """Accepted SMS per recipient number."""
        with self._lock:
            return collections.Counter({to: len(msgs) for to, msgs in self._sms_by_to.items()})

    def email_count_by_to(self) -> collections.Counter[str]:
        """Accepted e-mail deliveries per recipient address (as sent)."""
        with self._lock:
            return collections.Counter(record.to for record in self._emails)

    def sms_to(self, number: str) -> list[SmsRecord]:
        """Accepted SMS to one number, oldest first."""
        with self._lock:
            return list(self._sms_by_to.get(number, ()))

    def emails_to(self, address: str) -> list[EmailRecord]:
        """Accepted e-mail deliveries to one address (case-insensitive)."""
        wanted = address.lower()
        with self._lock:
            return [record for record in self._emails if record.to.lower() == wanted]

    def snapshot(self) -> JsonDict:
        """The whole record, counters and configuration as a JSON-ready mapping."""
        with self._lock:
            return {
                "url": self.url,
                "config": self.config.to_json(),
                "sms": [record.to_json() for record in self._sms],
                "emails": [record.to_json() for record in self._emails],
                "answers": _nest_counts(self._answers),
                "requests": dict(self._requests),
                "unanswered": dict(self._unanswered),
            }

    # -- used by the handlers ----------------------------------------------

    async def _admit(self, provider: Provider, authorized: bool) -> _Admission:
        """Shared gate: count, wait, authenticate, rate-limit, inject faults."""
        config = self.config
        with self._lock:
            self._requests[provider] += 1
        if config.latency > 0:
            await asyncio.sleep(config.latency)
        answer = _FAULT_ANSWERS[provider]
        if not authorized:
            return _Admission(answer(401, None, None))
        cap = config.cap_for(provider)
        with self._lock:
            free_at = self._windows[provider].take(cap, time.monotonic())
            fault = None if free_at is not None else self._draw_fault(config)
        if free_at is not None:
            reset_at = time.time() + (free_at - time.monotonic())
            return _Admission(answer(429, reset_at, cap))
        if fault == "429":
            return _Admission(answer(429, None, cap))
        if fault == "500":
            return _Admission(answer(500, None, cap))
        return _Admission(unanswered=fault == "unanswered")

    def _draw_fault(self, config: StandinConfig) -> Fault | None:
        """Draw this request's injected fault, if any (caller holds the lock)."""
        if not (config.fail_429_rate or config.fail_500_rate or config.unanswered_rate):
            return None
        draw = self._rng.random()
        if draw < config.fail_429_rate:
            return "429"
        draw -= config.fail_429_rate
        if draw < config.fail_500_rate:
            return "500"
        draw -= config.fail_500_rate
        return "unanswered" if draw < config.unanswered_rate else None

    def _note_answer(self, provider: Provider, status: int) -> None:
        """Count one answer."""
        with self._lock:
            self._answers[(provider, status)] += 1

    def _note_unanswered(self, provider: Provider) -> None:
        """Count one dropped connection."""
        with self._lock:
            self._unanswered[provider] += 1

    def _record_sms(self, fields: Mapping[str, str], account_sid: str) -> SmsRecord:
        """Record one accepted SMS and return it."""
        body = fields["Body"]
        record = SmsRecord(
            sid=f"SM{self._ids.getrandbits(128):032x}",
            account_sid=account_sid,
            to=fields["To"],
            from_=fields.get("From") or None,
            messaging_service_sid=fields.get("MessagingServiceSid") or None,
            body=body,
            num_segments=sms_segments(body),
            status_callback=fields.get("StatusCallback") or None,
            created_at=datetime.now(UTC),
        )
        with self._lock:
            self._sms.append(record)
            self._sms_by_sid[record.sid] = record
            self._sms_by_to.setdefault(record.to, []).append(record)
        return record

    def _find_sms(self, sid: str) -> SmsRecord | None:
        """One accepted SMS by sid."""
        with self._lock:
            return self._sms_by_sid.get(sid)

    def _list_sms(self, to: str | None, from_: str | None) -> list[SmsRecord]:
        """Accepted SMS, newest first, optionally to / from one number."""
        with self._lock:
            found = list(self._sms_by_to.get(to, ())) if to else list(self._sms)
        if from_:
            found = [record for record in found if record.from_ == from_]
        found.reverse()
        return found

    def _new_message_id(self) -> str:
        """A SendGrid-like ``X-Message-Id`` (22 URL-safe characters)."""
        raw = self._ids.getrandbits(128).to_bytes(16, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def _record_emails(self, records: Iterable[EmailRecord]) -> None:
        """Record accepted e-mail deliveries."""
        with self._lock:
            self._emails.extend(records)


def _nest_counts(counts: Mapping[tuple[str, int], int]) -> dict[str, dict[str, int]]:
    """``{(provider, status): n}`` as ``{provider: {"status": n}}`` for JSON."""
    nested: dict[str, dict[str, int]] = {}
    for (provider, status), count in sorted(counts.items()):
        nested.setdefault(provider, {})[str(status)] = count
    return nested


# --------------------------------------------------------------------------
# Routing
# --------------------------------------------------------------------------

_STANDIN_KEY = web.AppKey("standin", Standin)
_ProviderImpl = Callable[[Standin, web.Request], Awaitable[web.Response | None]]
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _provider_handler(provider: Provider, impl: _ProviderImpl) -> _Handler:
    """Wrap a provider handler: count its answer, or drop the connection on ``None``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        standin = request.app[_STANDIN_KEY]
        response = await impl(standin, request)
        if response is not None:
            standin._note_answer(provider, response.status)
            return response
        standin._note_unanswered(provider)
        _drop_connection(request)
        return web.Response(status=204)  # never reaches the client

    return handler


def _drop_connection(request: web.Request) -> None:
    """Close the connection so the client sees a disconnect and no response."""
    transport = request.transport
    if transport is not None:
        transport.close()


def _build_app(standin: Standin) -> web.Application:
    """The aiohttp application serving both providers and the control endpoints."""
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app[_STANDIN_KEY] = standin
    messages = "/2010-04-01/Accounts/{sid}/Messages"
    app.router.add_post(messages + ".json", _provider_handler("twilio", _twilio_create))
    app.router.add_get(messages + ".json", _provider_handler("twilio", _twilio_list))
    app.router.add_get(messages + "/{msid}.json", _provider_handler("twilio", _twilio_fetch))
    app.router.add_post("/v3/mail/send", _provider_handler("sendgrid", _sendgrid_send))
    app.router.add_get("/_standin/record", _control_record)
    app.router.add_get("/_standin/config", _control_get_config)
    app.router.add_post("/_standin/config", _control_set_config)
    app.router.add_post("/_standin/reset", _control_reset)
    add_receipt_routes(app.router, lambda request: request.app[_STANDIN_KEY].receipts)
    return app


# --------------------------------------------------------------------------
# Twilio
# --------------------------------------------------------------------------


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an HTTP Basic ``Authorization`` header."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def _twilio_authorized(request: web.Request, config: StandinConfig) -> bool:
    """Whether the request's HTTP Basic credentials are the configured ones."""
    credentials = _basic_credentials(request.headers.get("Authorization"))
    return credentials == (config.twilio_sid, config.twilio_token)


async def _twilio_gate(standin: Standin, request: web.Request) -> _Admission:
    """Run the shared gate, then check that the path names the caller's account."""
    admission = await standin._admit("twilio", _twilio_authorized(request, standin.config))
    if admission.response is None and request.match_info["sid"] != standin.config.twilio_sid:
        message = f"The requested resource {request.path} was not found"
        return _Admission(_twilio_error(404, 20404, message))
    return admission


def _form_fields(form: Mapping[str, object]) -> dict[str, str]:
    """The text fields of a form body."""
    return {key: value for key, value in form.items() if isinstance(value, str)}


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
    fields = _form_fields(await request.post())
    admission = await _twilio_gate(standin, request)
    if admission.response is not None:
        return admission.response
    problem = _sms_problem(fields, standin.config.opted_out)
    if problem is not None:
        return _twilio_error(400, *problem)
    record = standin._record_sms(fields, request.match_info["sid"])
    standin.receipts.sms_accepted(record, standin.config.twilio_token)
    if admission.unanswered:
        return None
    return _json(201, record.resource())


async def _twilio_fetch(standin: Standin, request: web.Request) -> web.Response | None:
    """``GET .../Messages/{sid}.json``: one accepted message."""
    admission = await _twilio_gate(standin, request)
    if admission.response is not None:
        return admission.response
    if admission.unanswered:
        return None
    record = standin._find_sms(request.match_info["msid"])
    if record is None:
        return _twilio_error(404, 20404, f"The requested resource {request.path} was not found")
    return _json(200, standin.receipts.resource(record))


class _QueryError(ValueError):
    """A list query parameter Twilio would reject."""


def _parse_when(value: str) -> date | datetime:
    """``YYYY-MM-DD`` as a date, or an ISO 8601 timestamp as an aware datetime."""
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise _QueryError(f"Invalid date value {value!r}") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _date_filters(query: Mapping[str, str]) -> list[tuple[str, date | datetime]]:
    """``DateSent``, ``DateSent<``/``<=``, ``DateSent>``/``>=`` as (op, bound).

    ``DateSent`` selects a whole day even when given a timestamp; the ``<``
    and ``>`` forms compare with the day, or with the instant if one is given.
    """
    ops = {
        "DateSent": "=",
        "DateSent<": "<",
        "DateSent<=": "<",
        "DateSent>": ">",
        "DateSent>=": ">",
    }
    filters: list[tuple[str, date | datetime]] = []
    for key, op in ops.items():
        if query.get(key):
            bound = _parse_when(query[key])
            if op == "=" and isinstance(bound, datetime):
                bound = bound.astimezone(UTC).date()
            filters.append((op, bound))
    return filters


def _compare(moment: datetime, bound: date | datetime) -> int:
    """-1, 0 or 1 as ``moment`` is before, at or after ``bound`` (day or instant)."""
    if isinstance(bound, datetime):
        return (moment > bound) - (moment < bound)
    day = moment.date()
    return (day > bound) - (day < bound)


def _matches(record: SmsRecord, filters: Sequence[tuple[str, date | datetime]]) -> bool:
    """Whether a message was sent on / before / after every bound (inclusive)."""
    for op, bound in filters:
        order = _compare(record.created_at, bound)
        if (op == "=" and order != 0) or (op == "<" and order > 0) or (op == ">" and order < 0):
            return False
    return True


def _paging(query: Mapping[str, str]) -> tuple[int, int]:
    """``(page, page_size)`` from ``Page`` and ``PageSize``."""
    try:
        page = int(query.get("Page", "0"))
        size = int(query.get("PageSize", str(DEFAULT_PAGE_SIZE)))
    except ValueError as error:
        raise _QueryError("Page and PageSize must be integers") from error
    if page < 0 or not 1 <= size <= MAX_PAGE_SIZE:
        raise _QueryError(f"PageSize must be within [1, {MAX_PAGE_SIZE}] and Page >= 0")
    return page, size


def _page_body(request: web.Request, found: Sequence[SmsRecord], page: int, size: int) -> JsonDict:
    """A Twilio list page of messages, with ``*_page_uri`` links."""
    params = {key: value for key, value in request.query.items() if key not in ("Page", "PageSize")}

    def link(number: int) -> str:
        return f"{request.path}?{urlencode({**params, 'PageSize': size, 'Page': number})}"

    start = page * size
    chunk = found[start : start + size]
    return {
        "end": start + max(len(chunk) - 1, 0),
        "first_page_uri": link(0),
        "messages": [record.resource("sent") for record in chunk],
        "next_page_uri": link(page + 1) if start + size < len(found) else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": link(page - 1) if page > 0 else None,
        "start": start,
        "uri": link(page),
    }


async def _twilio_list(standin: Standin, request: web.Request) -> web.Response | None:
    """``GET .../Messages.json``: accepted messages, filtered by To/From/DateSent."""
    admission = await _twilio_gate(standin, request)
    if admission.response is not None:
        return admission.response
    if admission.unanswered:
        return None
    query = request.query
    try:
        filters = _date_filters(query)
        page, size = _paging(query)
    except _QueryError as error:
        return _twilio_error(400, 20001, str(error))
    found = standin._list_sms(query.get("To"), query.get("From"))
    if filters:
        found = [record for record in found if _matches(record, filters)]
    return _json(200, _page_body(request, found, page, size))


# --------------------------------------------------------------------------
# SendGrid
# --------------------------------------------------------------------------


def _address(value: object) -> str | None:
    """The e-mail of an ``{"email": ...}`` object if it looks valid."""
    if isinstance(value, dict):
        email = value.get("email")
        if isinstance(email, str) and _EMAIL.match(email):
            return email
    return None


def _from_problems(payload: JsonDict) -> list[SendGridError]:
    """Errors about ``from``."""
    sender = payload.get("from")
    if not isinstance(sender, dict) or "email" not in sender:
        message = (
            "The from object must be provided for every email send. It is an object "
            "that requires the email parameter, but may also contain a name "
            "parameter."
        )
        return [_sendgrid_error(message, "from", "from")]
    if _address(sender) is None:
        return [_sendgrid_error("The from email does not contain a valid address.", "from.email", "from")]
    return []


def _subject_problems(payload: JsonDict) -> list[SendGridError]:
    """Errors about ``subject`` (top level, or one in every personalization)."""
    if payload.get("template_id") or _nonempty_str(payload.get("subject")):
        return []
    personalizations = payload.get("personalizations")
    if (
        isinstance(personalizations, list)
        and personalizations
        and all(isinstance(p, dict) and _nonempty_str(p.get("subject")) for p in personalizations)
    ):
        return []
    message = (
        "The subject is required. You can get around this requirement if you use a "
        "template with a subject defined or if every personalization has a subject "
        "defined."
    )
    return [_sendgrid_error(message, "subject", "subject")]


def _content_problems(payload: JsonDict) -> list[SendGridError]:
    """Errors about ``content`` (required unless a template is used)."""
    content = payload.get("content")
    if payload.get("template_id") and content is None:
        return []
    if not isinstance(content, list) or not content:
        message = (
            "Unless a valid template_id is provided, the content parameter is "
            "required. There must be at least one defined content block."
        )
        return [_sendgrid_error(message, "content", "content")]
    return [
        _sendgrid_error(
            "The content value must be a string at least one character in length.",
            f"content.{index}.value",
            "content.value",
        )
        for index, block in enumerate(content)
        if not isinstance(block, dict) or not _nonempty_str(block.get("type")) or not _nonempty_str(block.get("value"))
    ]


def _category_problems(payload: JsonDict) -> list[SendGridError]:
    """Errors about ``categories`` (at most 10 strings)."""
    categories = payload.get("categories")
    if categories is None:
        return []
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        return [_sendgrid_error("Categories must be a list of strings.", "categories", "categories")]
    if len(categories) > MAX_CATEGORIES:
        message = f"Too many categories on this request. The maximum is {MAX_CATEGORIES}."
        return [_sendgrid_error(message, "categories", "categories")]
    return []


def _custom_args_problems(value: object, where: str) -> list[SendGridError]:
    """Errors about a ``custom_args`` object (string values only)."""
    if value is None:
        return []
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return []
    message = "Custom args must be an object whose values are strings."
    return [_sendgrid_error(message, where, "custom_args")]


def _recipients(
    personalization: JsonDict,
) -> Iterator[tuple[Literal["to", "cc", "bcc"], int, object]]:
    """(kind, index, address object) for each to/cc/bcc entry."""
    kinds: tuple[Literal["to", "cc", "bcc"], ...] = ("to", "cc", "bcc")
    for kind in kinds:
        entries = personalization.get(kind)
        if isinstance(entries, list):
            for index, entry in enumerate(entries):
                yield kind, index, entry


def _one_personalization_problems(
    index: int, personalization: object, seen: set[str]
) -> tuple[list[SendGridError], int]:
    """Errors in one personalization, and its recipient count; fills ``seen``."""
    where = f"personalizations.{index}"
    to = personalization.get("to") if isinstance(personalization, dict) else None
    if not isinstance(personalization, dict) or not isinstance(to, list) or not to:
        message = (
            "The to array is required for all personalization objects, and must "
            "have at least one email object with a valid email address."
        )
        return [_sendgrid_error(message, f"{where}.to", "personalizations.to")], 0
    errors = _custom_args_problems(personalization.get("custom_args"), f"{where}.custom_args")
    count = 0
    for kind, position, entry in _recipients(personalization):
        count += 1
        email = _address(entry)
        if email is None:
            field_name = f"{where}.{kind}.{position}.email"
            errors.append(
                _sendgrid_error(
                    "Does not contain a valid address.",
                    field_name,
                    "personalizations.to",
                )
            )
        elif email.lower() in seen:
            message = (
                "Each email address in the personalization block should be unique "
                "between to, cc, and bcc. We found the first duplicate instance of "
                f"[{email}] in the {where}.{kind} field."
            )
            errors.append(_sendgrid_error(message, f"{where}.{kind}", "personalizations"))
        else:
            seen.add(email.lower())
    return errors, count


def _personalization_problems(payload: JsonDict) -> list[SendGridError]:
    """Errors about ``personalizations``: presence, limits, addresses, duplicates."""
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        message = "The personalizations field is required and must have at least one personalization."
        return [_sendgrid_error(message, "personalizations", "personalizations")]
    if len(personalizations) > MAX_PERSONALIZATIONS:
        message = (
            "The personalizations field must have at most "
            f"{MAX_PERSONALIZATIONS} items; this request has {len(personalizations)}."
        )
        return [_sendgrid_error(message, "personalizations", "personalizations")]
    errors: list[SendGridError] = []
    seen: set[str] = set()
    total = 0
    for index, personalization in enumerate(personalizations):
        found, count = _one_personalization_problems(index, personalization, seen)
        errors.extend(found)
        total += count
    if total > MAX_RECIPIENTS:
        message = (
            "The total number of recipients must be no more than "
            f"{MAX_RECIPIENTS}. This includes all recipients defined within the to, "
            "cc, and bcc parameters, across each object that you include in the "
            "personalizations array."
        )
        errors.insert(0, _sendgrid_error(message, "personalizations", "personalizations"))
    return errors


def _mail_problems(payload: JsonDict) -> list[SendGridError]:
    """Every validation error SendGrid would report for this mail body."""
    return [
        *_from_problems(payload),
        *_personalization_problems(payload),
        *_subject_problems(payload),
        *_content_problems(payload),
        *_category_problems(payload),
        *_custom_args_problems(payload.get("custom_args"), "custom_args"),
    ]


def _nonempty_str(value: object) -> bool:
    """A string with at least one character."""
    return isinstance(value, str) and bool(value)


def _sandboxed(payload: JsonDict) -> bool:
    """``mail_settings.sandbox_mode.enable``: validate only, deliver nothing."""
    settings = payload.get("mail_settings")
    sandbox = settings.get("sandbox_mode") if isinstance(settings, dict) else None
    return isinstance(sandbox, dict) and sandbox.get("enable") is True


def _email_records(payload: JsonDict, message_id: str) -> list[EmailRecord]:
    """One record per recipient of every personalization of a valid mail body."""
    now = datetime.now(UTC)
    sender = cast(str, payload["from"]["email"])
    categories = tuple(payload.get("categories") or ())
    top_args: dict[str, str] = payload.get("custom_args") or {}
    records = []
    for index, personalization in enumerate(payload["personalizations"]):
        subject = personalization.get("subject") or payload.get("subject")
        custom_args = {**top_args, **(personalization.get("custom_args") or {})}
        for kind, _position, entry in _recipients(personalization):
            records.append(
                EmailRecord(
                    to=_address(entry) or "",
                    kind=kind,
                    subject=subject,
                    message_id=message_id,
                    custom_args=custom_args,
                    categories=categories,
                    from_email=sender,
                    personalization=index,
                    created_at=now,
                )
            )
    return records


async def _read_json(request: web.Request) -> JsonDict | None:
    """The request body as a JSON object, or ``None``."""
    try:
        payload = await request.json(loads=json.loads)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


async def _sendgrid_send(standin: Standin, request: web.Request) -> web.Response | None:
    """``POST /v3/mail/send``: validate, record each recipient, answer 202."""
    payload = await _read_json(request)
    authorized = request.headers.get("Authorization") == f"Bearer {standin.config.sendgrid_key}"
    admission = await standin._admit("sendgrid", authorized)
    if admission.response is not None:
        return admission.response
    if payload is None:
        return _sendgrid_errors(400, [_sendgrid_error("Bad Request")])
    problems = _mail_problems(payload)
    if problems:
        return _sendgrid_errors(400, problems)
    if _sandboxed(payload):
        return web.Response(status=200)
    message_id = standin._new_message_id()
    records = _email_records(payload, message_id)
    standin._record_emails(records)
    standin.receipts.emails_accepted(records)
    if admission.unanswered:
        return None
    return web.Response(status=202, headers={"X-Message-Id": message_id})


# --------------------------------------------------------------------------
# Control endpoints
# --------------------------------------------------------------------------


async def _control_record(request: web.Request) -> web.Response:
    """``GET /_standin/record``: the whole record as JSON."""
    return _json(200, request.app[_STANDIN_KEY].snapshot())


async def _control_get_config(request: web.Request) -> web.Response:
    """``GET /_standin/config``: the current configuration."""
    return _json(200, request.app[_STANDIN_KEY].config.to_json())


async def _control_set_config(request: web.Request) -> web.Response:
    """``POST /_standin/config``: apply a JSON object of configuration changes."""
    standin = request.app[_STANDIN_KEY]
    changes = await _read_json(request)
    if changes is None:
        return _json(400, {"error": "body must be a JSON object"})
    try:
        config = standin.configure(**changes)
    except (TypeError, ValueError) as error:
        return _json(400, {"error": str(error)})
    return _json(200, config.to_json())


async def _control_reset(request: web.Request) -> web.Response:
    """``POST /_standin/reset``: clear the record and counters."""
    request.app[_STANDIN_KEY].reset()
    return _json(200, {"reset": True})


# --------------------------------------------------------------------------
# Runners
# --------------------------------------------------------------------------


@asynccontextmanager
async def run_standin(
    config: StandinConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[Standin]:
    """Serve a stand-in in the current event loop for the duration of the block."""
    standin = Standin(config)
    await standin.start(host, port)
    try:
        yield standin
    finally:
        await standin.stop()


class _LoopThread:
    """A daemon thread running one stand-in on its own event loop."""

    def __init__(self, standin: Standin, host: str, port: int) -> None:
        """Prepare (but do not start) the thread."""
        self._standin, self._host, self._port = standin, host, port
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="crisiscomms-standin", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread and wait until the server listens (or failed to)."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the stand-in did not start in time")
        if self._error is not None:
            raise self._error
        if not self._standin.port:
            raise RuntimeError("the stand-in thread ended before it could listen")

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to shut the server down and wait for the thread."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout)

    def _run(self) -> None:
        """Thread body."""
        asyncio.run(self._main())

    async def _main(self) -> None:
        """Start, wait for the stop signal, stop."""
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            await self._standin.start(self._host, self._port)
        except OSError as error:  # e.g. the port is taken; re-raised by start()
            self._error = error
            return
        finally:
            self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._standin.stop()


@contextmanager
def standin_in_thread(
    config: StandinConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[Standin]:
    """Serve a stand-in from a daemon thread for the duration of the block."""
    standin = Standin(config)
    thread = _LoopThread(standin, host, port)
    thread.start()
    try:
        yield standin
    finally:
        thread.stop()


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m crisiscomms.testing.standin",
        description="Serve a local Twilio + SendGrid stand-in; print its URL first.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--rate-cap", type=float, default=None, help="requests/s per provider")
    parser.add_argument("--twilio-rate-cap", type=float, default=None)
    parser.add_argument("--sendgrid-rate-cap", type=float, default=None)
    parser.add_argument("--fail-429-rate", type=float, default=0.0)
    parser.add_argument("--fail-500-rate", type=float, default=0.0)
    parser.add_argument("--unanswered-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--opted-out", action="append", default=[], metavar="NUMBER")
    parser.add_argument("--twilio-sid", default=DEFAULT_TWILIO_SID)
    parser.add_argument("--twilio-token", default=DEFAULT_TWILIO_TOKEN)
    parser.add_argument("--sendgrid-key", default=DEFAULT_SENDGRID_KEY)
    parser.add_argument("--dump", default=None, metavar="PATH", help="write the record here on exit")
    return parser


def _config_from_args(args: argparse.Namespace) -> StandinConfig:
    """A configuration from parsed options."""
    return StandinConfig(
        twilio_sid=args.twilio_sid,
        twilio_token=args.twilio_token,
        sendgrid_key=args.sendgrid_key,
        latency=args.latency,
        rate_cap=args.rate_cap,
        twilio_rate_cap=args.twilio_rate_cap,
        sendgrid_rate_cap=args.sendgrid_rate_cap,
        fail_429_rate=args.fail_429_rate,
        fail_500_rate=args.fail_500_rate,
        unanswered_rate=args.unanswered_rate,
        seed=args.seed,
        opted_out=frozenset(args.opted_out),
    )


async def _serve(config: StandinConfig, host: str, port: int) -> str:
    """Serve until SIGTERM/SIGINT; return the final record as JSON text."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with run_standin(config, host=host, port=port) as standin:
        print(standin.url, flush=True)
        await stop.wait()
        return json.dumps(standin.snapshot())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m crisiscomms.testing.standin``."""
    args = _parser().parse_args(argv)
    try:
        config = _config_from_args(args)
    except ValueError as error:
        print(f"standin: {error}", file=sys.stderr)
        return 2
    record = asyncio.run(_serve(config, args.host, args.port))
    if args.dump is None:
        print(record, flush=True)
    else:
        with open(args.dump, "w", encoding="utf-8") as out:
            out.write(record + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
