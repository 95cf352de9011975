"""The receipts web server: Twilio status callbacks and SendGrid's Event Webhook, verified, into a store.

``POST /twilio/status``
    form fields (``MessageSid``, ``MessageStatus``, ``ErrorCode``) signed with
    ``X-Twilio-Signature``, checked by the twilio SDK's ``RequestValidator``
    against ``public_url`` + the request's path and query (the URL Twilio
    called, which behind a proxy is not the one this server sees) and
    ``TWILIO_AUTH_TOKEN``. Twilio's signature has no timestamp, so a captured
    callback can be replayed: the replay carries the same (MessageSid, status,
    code) as the original, is counted as a duplicate and changes nothing, and it
    can only ever say what Twilio already said about that one message.
``POST /sendgrid/events``
    a JSON array signed with ECDSA P-256 (``X-Twilio-Email-Event-Webhook-Signature``
    over ``X-Twilio-Email-Event-Webhook-Timestamp`` + body), checked by the
    sendgrid SDK's ``EventWebhook`` against ``SENDGRID_WEBHOOK_PUBLIC_KEY``. A
    timestamp more than :data:`MAX_CLOCK_SKEW` seconds from this server's clock
    (either way) is stale; a replay inside that window repeats ``sg_event_id``s
    and is applied once.
``GET /health``
    ``ok``, for a load balancer.

Refused requests change nothing: unsigned, forged or stale 403; larger than
:data:`MAX_TWILIO_BYTES` / :data:`MAX_SENDGRID_BYTES` 413; signed but
unreadable 400; an endpoint whose secret is not configured 403. Each is counted
(:attr:`ReceiptServer.stats`) and logged (at most one line per reason and
second, never a body, signature or secret). A store failure answers 503, so the
provider retries later.

The events of the requests that arrive while the store is busy are applied together
(one transaction, one fsync). A store that can open a writer for another thread (the
SQLite ledger) gets one: its commits run there while the event loop goes on reading and
verifying the next requests.
"""

from __future__ import annotations

import asyncio
import binascii
import collections
import concurrent.futures
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse, urlsplit

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator, add_port, compare, get_signature_algorithm, remove_port

from ...errors import CrisisCommsError, UsageError
from ...safetext import visible
from .events import DeliveryEvent, MalformedReceipt, sendgrid_event, twilio_call_event, twilio_event
from .form import Form, parse_form
from .group_commit import GroupCommit
from .store import AppliedCounts, OpensWriter, ReceiptStore

__all__ = [
    "MAX_CLOCK_SKEW",
    "MAX_SENDGRID_BYTES",
    "MAX_TWILIO_BYTES",
    "ReceiptServer",
    "ServerConfig",
]

log = logging.getLogger(__name__)

TOKEN_VARIABLE = "TWILIO_AUTH_TOKEN"
PUBLIC_KEY_VARIABLE = "SENDGRID_WEBHOOK_PUBLIC_KEY"
SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_PATH = "/twilio/status"
TWILIO_CALL_PATH = "/twilio/call-status"  # providers.voice.status_callback
SENDGRID_PATH = "/sendgrid/events"

#: A status callback is a handful of short form fields; 16 KiB is generous.
MAX_TWILIO_BYTES = 16 * 1024
#: SendGrid batches events (typically up to ~1,000 per post, about 1 KiB each).
MAX_SENDGRID_BYTES = 4 * 1024 * 1024
#: Seconds a SendGrid signature timestamp may lie in the past (or the future) of this server's clock.
MAX_CLOCK_SKEW = 300.0


@dataclass(frozen=True)
class ServerConfig:
    """What the server verifies with. Build it with :meth:`from_environ`; secrets never appear in its repr."""

    public_url: str
    twilio_token: str | None = field(default=None, repr=False)
    sendgrid_key: EventWebhook | None = field(default=None, repr=False)
    max_twilio_bytes: int = MAX_TWILIO_BYTES
    max_sendgrid_bytes: int = MAX_SENDGRID_BYTES
    max_clock_skew: float = MAX_CLOCK_SKEW
    clock: Callable[[], float] = time.time

    @classmethod
    def from_environ(cls, public_url: str, environ: Mapping[str, str] = os.environ) -> ServerConfig:
        """``TWILIO_AUTH_TOKEN`` and ``SENDGRID_WEBHOOK_PUBLIC_KEY`` (at least one) from ``environ``."""
        token = (environ.get(TOKEN_VARIABLE) or "").strip() or None
        key_text = "".join((environ.get(PUBLIC_KEY_VARIABLE) or "").split()) or None
        if token is None and key_text is None:
            raise UsageError(f"receipts serve needs {TOKEN_VARIABLE} (Twilio status callbacks) and/or "
                             f"{PUBLIC_KEY_VARIABLE} (SendGrid's signed Event Webhook) in the environment")
        return cls(check_public_url(public_url), token, _public_key(key_text) if key_text else None)

    @property
    def endpoints(self) -> list[str]:
        """The endpoints that can accept anything with this configuration."""
        return [path for path, on in ((TWILIO_PATH, self.twilio_token), (TWILIO_CALL_PATH, self.twilio_token),
                                      (SENDGRID_PATH, self.sendgrid_key)) if on]


def check_public_url(value: str) -> str:
    """``https://host[:port][/prefix]`` without a trailing slash, query or fragment."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise UsageError(f"--public-url '{value}' must be the http(s) address Twilio and SendGrid call, "
                         f"such as https://receipts.example.org (no query)")
    return value.strip().rstrip("/")


def _public_key(text: str) -> EventWebhook:
    try:
        hook = EventWebhook(text)
    except (ValueError, TypeError):
        hook = None
    if hook is not None and isinstance(hook.public_key, ec.EllipticCurvePublicKey) \
            and isinstance(hook.public_key.curve, ec.SECP256R1):
        return hook
    raise UsageError(f"{PUBLIC_KEY_VARIABLE} is not an ECDSA public key (copy the verification key "
                     f"shown under Mail Settings → Event Webhook → Signature verification)")


class _Refused(Exception):
    """A request that changes nothing: its status, its kind (counted) and what was wrong (logged).

    The reason text starts with the kind: ``"forged: the signature does not match ..."``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kind = reason.partition(":")[0].replace(" ", "_")


class _TwilioVerifier:
    """The twilio SDK's :class:`RequestValidator` for one configuration, one HMAC per genuine callback.

    ``RequestValidator.validate`` computes the signature of two spellings of the URL,
    with and without the default port (Twilio signs either), and accepts a match with
    either. One of the two is the URL as configured (``urlparse(url).geturl()``, the
    spelling of the SDK's ``add_port``/``remove_port`` when there is nothing to add or
    remove), and that is the one Twilio signs when it calls the public URL: it is checked
    first with the SDK's own ``compute_signature`` and ``compare``. Only when it does not
    match does ``validate`` run in full, so exactly the requests ``validate`` accepts
    are accepted.
    """

    def __init__(self, config: ServerConfig, token: str) -> None:
        self.config = config
        self._validator = RequestValidator(token)
        self._spellings: dict[str, str] = {}

    def valid(self, path_qs: str, params: Form, signature: str, settings: str | None) -> bool:
        url = self.config.public_url + path_qs
        algorithm = get_signature_algorithm(settings)
        try:
            expected = self._validator.compute_signature(self._as_configured(url), params, algorithm)
        except ValueError:  # an algorithm this SDK does not know: validate logs it and refuses
            expected = None
        if expected is not None and compare(expected, signature):
            return True
        return bool(self._validator.validate(url, params, signature, algorithm))

    def _as_configured(self, url: str) -> str:
        spelling = self._spellings.get(url)
        if spelling is None:
            parsed = urlparse(url)
            spelling = str(add_port(parsed) if parsed.port else remove_port(parsed))
            if len(self._spellings) >= _SPELLINGS_KEPT:  # one path in practice; a flood of others cannot grow it
                self._spellings.clear()
            self._spellings[url] = spelling
        return spelling


_SPELLINGS_KEPT = 64


class _ThrottledLog:
    """At most one log line per reason and second; the count says how many were folded in."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}
        self._folded: collections.Counter[str] = collections.Counter()

    def refused(self, kind: str, reason: str, request: web.BaseRequest, status: int) -> None:
        """Log one refusal, unless one of the same ``kind`` was logged less than a second ago."""
        now = self._clock()
        if now - self._last.get(kind, -2.0) < 1.0:
            self._folded[kind] += 1
            return
        self._last[kind] = now
        folded, self._folded[kind] = self._folded[kind], 0
        more = f" (+{folded} more in the last second)" if folded else ""
        log.warning("receipts: refused %s %s from %s with %d: %s%s", visible(request.method),
                    visible(request.path[:200]), request.remote or "?", status, reason, more)


class ReceiptServer:
    """The aiohttp application around one :class:`ReceiptStore`; :meth:`start` binds it."""

    def __init__(self, store: ReceiptStore, config: ServerConfig) -> None:
        self.store = store
        self._group = GroupCommit(store)
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._close_writer: Callable[[], None] | None = None
        self.config = config
        self.stats: collections.Counter[str] = collections.Counter()
        self._log = _ThrottledLog()
        self._verifier: _TwilioVerifier | None = None
        self._runner: web.ServerRunner | None = None
        self.host, self.port = "127.0.0.1", 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def routes(self) -> dict[str, dict[str, Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]]]:
        """Path → method → handler: every endpoint this server answers."""
        return {TWILIO_PATH: {"POST": self._twilio}, TWILIO_CALL_PATH: {"POST": self._twilio_calls},
                SENDGRID_PATH: {"POST": self._sendgrid}, "/health": {"GET": _health, "HEAD": _health}}

    def handler(self) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
        """The one request handler of aiohttp's low-level server: a lookup of path and method, then the endpoint.

        A handful of fixed endpoints need no router, application or middleware: thousands of callbacks a
        second on one core are worth the microseconds those cost per request."""
        routes = self.routes()

        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            methods = routes.get(request.path)
            if methods is None:
                return web.Response(status=404, text="not found\n")
            endpoint = methods.get(request.method)
            if endpoint is None:
                return web.Response(status=405, text="method not allowed\n", headers={"Allow": ", ".join(methods)})
            return await endpoint(request)

        return handle

    async def start(self, host: str = "127.0.0.1", port: int = 0, *, sock: socket.socket | None = None) -> None:
        """Listen on ``host:port``, or accept on ``sock``, a listening socket several worker processes share."""
        if isinstance(self.store, OpensWriter) and self._writer is None:
            await self._start_writer(self.store)
        runner = web.ServerRunner(web.Server(self.handler(), access_log=None), shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024) if sock is None else web.SockSite(runner, sock)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
        self._runner = runner
        bound = runner.addresses[0]
        self.host, self.port = (host if sock is None else str(bound[0])), int(bound[1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self._stop_writer()

    async def _start_writer(self, store: OpensWriter) -> None:
        """Open the store's writer in a thread of its own; group commits run there from now on."""
        writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="receipts-writer")
        try:
            writer_store, close = await asyncio.get_running_loop().run_in_executor(writer, store.open_writer)
        except BaseException:
            writer.shutdown(wait=False)
            raise
        self._writer, self._close_writer = writer, close
        self._group = GroupCommit(writer_store, writer)

    async def _stop_writer(self) -> None:
        writer, close = self._writer, self._close_writer
        self._writer = self._close_writer = None
        if writer is None or close is None:
            return
        self._group = GroupCommit(self.store)
        try:
            await asyncio.get_running_loop().run_in_executor(writer, close)
        finally:
            writer.shutdown(wait=True)

    # -- handlers -------------------------------------------------------------

    async def _twilio(self, request: web.BaseRequest) -> web.Response:
        return await self._handle("twilio", request, self._twilio_events)

    async def _twilio_calls(self, request: web.BaseRequest) -> web.Response:
        return await self._handle("twilio", request, self._twilio_call_events)

    async def _sendgrid(self, request: web.BaseRequest) -> web.Response:
        return await self._handle("sendgrid", request, self._sendgrid_events)

    async def _handle(self, provider: str, request: web.BaseRequest,
                      read: Callable[[web.BaseRequest], Awaitable[list[DeliveryEvent]]]) -> web.Response:
        self.stats[f"{provider}.requests"] += 1
        try:
            events = await read(request)
        except _Refused as refused:
            kind = f"{provider}.refused.{refused.kind}"
            self.stats[kind] += 1
            self._log.refused(kind, refused.reason, request, refused.status)
            return web.Response(status=refused.status, text=_STATUS_TEXT[refused.status])
        try:
            counts = await self._group.apply(events)
        except CrisisCommsError as error:
            self.stats[f"{provider}.store_failed"] += 1
            log.error("receipts: could not apply %d %s event(s): %s", len(events), provider, error)
            return web.Response(status=503, text="try again later\n")
        self._count(provider, counts)
        return web.Response(status=200, text="ok\n")

    def _count(self, provider: str, counts: AppliedCounts | None) -> None:
        self.stats[f"{provider}.accepted"] += 1
        if counts is not None:  # the group's counts come with its first request
            for name, value in counts.as_dict().items():
                if value:
                    self.stats[f"{provider}.events.{name}"] += value

    async def _twilio_events(self, request: web.BaseRequest) -> list[DeliveryEvent]:
        params = await self._verified_twilio_form(request)
        try:
            return [twilio_event(params.first_values())]
        except MalformedReceipt as error:
            raise _Refused(400, f"malformed: {error}") from None

    async def _twilio_call_events(self, request: web.BaseRequest) -> list[DeliveryEvent]:
        params = await self._verified_twilio_form(request)
        try:
            return [twilio_call_event(params.first_values())]
        except MalformedReceipt as error:
            raise _Refused(400, f"malformed: {error}") from None

    async def _verified_twilio_form(self, request: web.BaseRequest) -> Form:
        verifier = self._twilio_verifier()
        body = await _bounded_body(request, self.config.max_twilio_bytes)
        if verifier is None:
            raise _Refused(403, f"not configured: {TOKEN_VARIABLE} is not set")
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise _Refused(403, f"unsigned: no {SIGNATURE_HEADER} header")
        params = _form(body)
        if not verifier.valid(request.path_qs, params, signature, request.headers.get(SIGNATURE_SETTINGS_HEADER)):
            raise _Refused(403, "forged: the signature does not match (check --public-url and TWILIO_AUTH_TOKEN)")
        return params

    def _twilio_verifier(self) -> _TwilioVerifier | None:
        """The verifier of the current :attr:`config` (built once per configuration, not per request)."""
        verifier = self._verifier
        if verifier is None or verifier.config is not self.config:
            token = self.config.twilio_token
            verifier = self._verifier = None if token is None else _TwilioVerifier(self.config, token)
        return verifier

    async def _sendgrid_events(self, request: web.BaseRequest) -> list[DeliveryEvent]:
        key = self.config.sendgrid_key
        body = await _bounded_body(request, self.config.max_sendgrid_bytes)
        if key is None:
            raise _Refused(403, f"not configured: {PUBLIC_KEY_VARIABLE} is not set")
        signature = request.headers.get(SENDGRID_SIGNATURE_HEADER)
        stamp = request.headers.get(SENDGRID_TIMESTAMP_HEADER)
        if not signature or not stamp:
            raise _Refused(403, "unsigned: no signature or timestamp header")
        self._check_fresh(stamp)
        payload = _utf8(body)
        if not _verified(key, payload, signature, stamp):
            raise _Refused(403, "forged: the signature does not match SENDGRID_WEBHOOK_PUBLIC_KEY")
        return self._parse_sendgrid(payload)

    def _check_fresh(self, stamp: str) -> None:
        if not stamp.isdigit() or len(stamp) > 12:
            raise _Refused(403, "unsigned: the timestamp header is not a Unix time")
        if abs(self.config.clock() - int(stamp)) > self.config.max_clock_skew:
            raise _Refused(403, f"stale: the signature timestamp is more than {self.config.max_clock_skew:.0f} s "
                                f"from this server's clock")

    def _parse_sendgrid(self, payload: str) -> list[DeliveryEvent]:
        try:
            items = json.loads(payload)
        except ValueError:
            raise _Refused(400, "malformed: the body is not JSON") from None
        if not isinstance(items, list):
            raise _Refused(400, "malformed: the body is not a JSON array of events")
        events: list[DeliveryEvent] = []
        for item in items:
            try:
                event = sendgrid_event(item)
            except MalformedReceipt:
                self.stats["sendgrid.events.malformed"] += 1
                continue
            if event is None:
                self.stats["sendgrid.events.ignored"] += 1
            else:
                events.append(event)
        return events


_STATUS_TEXT = {400: "unreadable receipt\n", 403: "forbidden\n", 413: "request too large\n"}


async def _health(_: web.BaseRequest) -> web.Response:
    return web.Response(text="ok\n")


async def _bounded_body(request: web.BaseRequest, limit: int) -> bytes:
    """The body, or 413 once it is longer than ``limit`` bytes (the rest is never read)."""
    if request.content_length is not None and request.content_length > limit:
        raise _Refused(413, f"oversized: {request.content_length} bytes, the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"oversized: more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(400, "malformed: the body is not UTF-8") from None


def _form(body: bytes) -> Form:
    try:
        return parse_form(_utf8(body))
    except (UnicodeDecodeError, ValueError):
        raise _Refused(400, "malformed: the body is not a form") from None


def _verified(key: EventWebhook, payload: str, signature: str, stamp: str) -> bool:
    try:
        return bool(key.verify_signature(payload, signature, stamp))
    except (binascii.Error, ValueError, TypeError):
        return False
