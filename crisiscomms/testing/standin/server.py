"""The stand-in server: its state and record, the routes of every provider, control endpoints and runners."""

from __future__ import annotations

import asyncio
import base64
import collections
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..standin_receipts import Receipts
from ..standin_receipts import add_control_routes as add_receipt_routes
from .common import PROVIDERS, Fault, JsonDict, Provider, StandinConfig, _Admission, _json, _SlidingWindow
from .sendgrid import EmailRecord, _read_json, _sendgrid_fault, _sendgrid_send
from .twilio_calls import CallRecord, _calls_create, _calls_fetch, _calls_list
from .twilio_common import _twilio_fault
from .twilio_messages import SmsRecord, _twilio_create, _twilio_fetch, _twilio_list, sms_segments

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
        self._calls: list[CallRecord] = []
        self._calls_by_sid: dict[str, CallRecord] = {}
        self._calls_by_to: dict[str, list[CallRecord]] = {}
        self._answers: collections.Counter[tuple[str, int]] = collections.Counter()
        self._requests: collections.Counter[str] = collections.Counter()
        self._unanswered: collections.Counter[str] = collections.Counter()
        self._runner: web.AppRunner | None = None
        self.receipts = Receipts()  # delivery receipts: see crisiscomms/testing/standin_receipts.py
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
            self._calls, self._calls_by_sid, self._calls_by_to = [], {}, {}
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
    def calls(self) -> list[CallRecord]:
        """Accepted calls, oldest first (snapshot)."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, number: str) -> list[CallRecord]:
        """Accepted calls to one number, oldest first."""
        with self._lock:
            return list(self._calls_by_to.get(number, ()))

    def call_count_by_to(self) -> collections.Counter[str]:
        """Accepted calls per recipient number."""
        with self._lock:
            return collections.Counter({to: len(calls) for to, calls in self._calls_by_to.items()})

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
                "calls": [record.to_json() for record in self._calls],
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

    def _record_call(self, fields: Mapping[str, str], account_sid: str) -> CallRecord:
        """Record one accepted call and return it."""
        record = CallRecord(
            sid=f"CA{self._ids.getrandbits(128):032x}",
            account_sid=account_sid,
            to=fields["To"],
            from_=fields["From"],
            twiml=fields.get("Twiml") or None,
            url=fields.get("Url") or None,
            status_callback=fields.get("StatusCallback") or None,
            created_at=datetime.now(UTC),
        )
        with self._lock:
            self._calls.append(record)
            self._calls_by_sid[record.sid] = record
            self._calls_by_to.setdefault(record.to, []).append(record)
        return record

    def _find_call(self, sid: str) -> CallRecord | None:
        """One accepted call by sid."""
        with self._lock:
            return self._calls_by_sid.get(sid)

    def _list_calls(self, to: str | None, from_: str | None) -> list[CallRecord]:
        """Accepted calls, newest first, optionally to / from one number."""
        with self._lock:
            found = list(self._calls_by_to.get(to, ())) if to else list(self._calls)
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
    calls = "/2010-04-01/Accounts/{sid}/Calls"
    app.router.add_post(calls + ".json", _provider_handler("twilio", _calls_create))
    app.router.add_get(calls + ".json", _provider_handler("twilio", _calls_list))
    app.router.add_get(calls + "/{csid}.json", _provider_handler("twilio", _calls_fetch))
    app.router.add_post("/v3/mail/send", _provider_handler("sendgrid", _sendgrid_send))
    app.router.add_get("/_standin/record", _control_record)
    app.router.add_get("/_standin/config", _control_get_config)
    app.router.add_post("/_standin/config", _control_set_config)
    app.router.add_post("/_standin/reset", _control_reset)
    add_receipt_routes(app.router, lambda request: request.app[_STANDIN_KEY].receipts)
    return app


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
