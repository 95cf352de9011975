"""Delivery receipts for the stand-in: signed Twilio status callbacks and signed SendGrid events.

When :class:`ReceiptsConfig` is ``enabled``, every SMS the stand-in accepts is
given a fate (delivered, undelivered with 30003, failed with 30007, by the
configured shares) and every e-mail one (delivered, maybe opened, or bounced).
Then the stand-in

* POSTs the SMS's status callbacks (``sent``, then the final status) to the
  ``StatusCallback`` URL of the message, signed with the stand-in's auth token
  exactly as Twilio signs them (``X-Twilio-Signature``);
* POSTs SendGrid events (``processed``, then ``delivered``/``open`` or
  ``bounce``), carrying the message's ``custom_args``, to ``sendgrid_events_url``,
  signed with an ECDSA P-256 key pair generated here
  (:attr:`Receipts.public_key` is what ``SENDGRID_WEBHOOK_PUBLIC_KEY`` must be);
* answers ``GET …/Messages/{Sid}.json`` with the current status (the final one
  once its delay has passed), for pull mode.

Misbehaviour on purpose: random ``delay`` before the final status, a share of
callbacks and events sent twice (``duplicate_share``; SendGrid's repeat the
same ``sg_event_id``), and a share of messages whose final status is sent
before the intermediate one (``reorder_share``). :meth:`Receipts.final_states`
is the stand-in's record of what it said last: what a receiver must end with.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import itertools
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

if TYPE_CHECKING:
    from .standin import EmailRecord, SmsRecord

__all__ = ["Receipts", "ReceiptsConfig", "SendGridSigner", "add_control_routes", "twilio_signature"]

POST_ATTEMPTS = 3


def twilio_signature(token: str, url: str, params: Mapping[str, str]) -> str:
    """``X-Twilio-Signature`` of a POST of ``params`` to ``url`` (the twilio SDK's own computation)."""
    return str(RequestValidator(token).compute_signature(url, params))


class SendGridSigner:
    """An ECDSA P-256 key pair that signs Event Webhook posts the way SendGrid does."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        der = self._key.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        #: Base64 DER, as SendGrid shows it: the value of ``SENDGRID_WEBHOOK_PUBLIC_KEY``.
        self.public_key = base64.b64encode(der).decode("ascii")

    def headers(self, payload: str, timestamp: int | None = None) -> dict[str, str]:
        """The signature and timestamp headers for ``payload``."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._key.sign((stamp + payload).encode("utf-8"), ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode("ascii"),
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
                "Content-Type": "application/json"}


@dataclass(frozen=True)
class ReceiptsConfig:
    """How receipts behave. Shares are probabilities in [0, 1] drawn from ``random.Random(seed)``."""

    enabled: bool = False
    undelivered_share: float = 0.1  # SMS undelivered, 30003 (phone off)
    failed_share: float = 0.05  # SMS failed, 30007 (carrier filtered)
    bounce_share: float = 0.1  # e-mail bounced
    open_share: float = 0.0  # delivered e-mail later opened
    delay: float = 0.0  # seconds, the most a final status waits (uniform in [0, delay])
    duplicate_share: float = 0.0
    reorder_share: float = 0.0
    sendgrid_events_url: str | None = None
    sendgrid_batch: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("undelivered_share", "failed_share", "bounce_share", "open_share", "duplicate_share",
                     "reorder_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.undelivered_share + self.failed_share > 1.0:
            raise ValueError("undelivered_share + failed_share must be at most 1")
        if self.delay < 0 or self.sendgrid_batch < 1:
            raise ValueError("delay must be >= 0 and sendgrid_batch >= 1")


@dataclass(frozen=True)
class _SmsFate:
    status: str
    code: str | None
    final_at: float


class Receipts:
    """The receipts side of one stand-in. Runs on the stand-in's event loop."""

    def __init__(self) -> None:
        self.config = ReceiptsConfig()
        self.signer = SendGridSigner()
        self._rng = random.Random(0)
        self._sms: dict[str, _SmsFate] = {}
        self._emails: dict[tuple[str, str], str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._event_ids = itertools.count(1)
        self._outbox: list[dict[str, Any]] = []
        self._flush_scheduled = False
        #: Answers to the stand-in's own posts: ``{("twilio"|"sendgrid", status): n}`` (0: no connection).
        self.answers: collections.Counter[tuple[str, int]] = collections.Counter()

    @property
    def public_key(self) -> str:
        return self.signer.public_key

    def configure(self, **changes: Any) -> ReceiptsConfig:
        self.config = dataclasses.replace(self.config, **changes)
        if "seed" in changes:
            self._rng = random.Random(self.config.seed)
        return self.config

    def reset(self) -> None:
        self._sms.clear()
        self._emails.clear()
        self.answers.clear()
        self._rng = random.Random(self.config.seed)

    # -- the record -----------------------------------------------------------

    def final_states(self) -> dict[str, Any]:
        """``{"sms": {sid: status}, "email": {(campaign, recipient): event}}``: the last word on each message."""
        return {"sms": {sid: fate.status for sid, fate in self._sms.items()}, "email": dict(self._emails)}

    def resource(self, record: SmsRecord) -> dict[str, Any]:
        """The message resource ``GET …/Messages/{Sid}.json`` answers: the current status."""
        fate = self._sms.get(record.sid)
        if fate is None or time.monotonic() < fate.final_at:
            return record.resource("sent")
        resource = record.resource(fate.status)
        resource["error_code"] = int(fate.code) if fate.code else None
        return resource

    # -- hooks (called by the stand-in's handlers) ----------------------------

    def sms_accepted(self, record: SmsRecord, token: str) -> None:
        if not self.config.enabled:
            return
        draw = self._rng.random()
        config = self.config
        if draw < config.undelivered_share:
            status, code = "undelivered", "30003"
        elif draw < config.undelivered_share + config.failed_share:
            status, code = "failed", "30007"
        else:
            status, code = "delivered", None
        delay = self._rng.uniform(0, config.delay)
        self._sms[record.sid] = _SmsFate(status, code, time.monotonic() + delay)
        if record.status_callback:
            reorder = self._rng.random() < config.reorder_share
            repeats = 2 if self._rng.random() < config.duplicate_share else 1
            self._spawn(self._callbacks(record, token, status, code, delay, reorder, repeats))

    def emails_accepted(self, records: Iterable[EmailRecord]) -> None:
        if not self.config.enabled:
            return
        for record in records:
            key = (record.custom_args.get("campaign", ""), record.custom_args.get("recipient", ""))
            bounced = self._rng.random() < self.config.bounce_share
            opened = not bounced and self._rng.random() < self.config.open_share
            final = "bounce" if bounced else "open" if opened else "delivered"
            self._emails[key] = final
            kinds = ["processed", "bounce"] if bounced else ["processed", "delivered"] + (["open"] * opened)
            events = [self._event(record, kind, offset) for offset, kind in enumerate(kinds)]
            if self._rng.random() < self.config.reorder_share:
                events.reverse()
            if self._rng.random() < self.config.duplicate_share:
                events.append(dict(events[-1]))  # SendGrid resends: the same sg_event_id
            self._outbox.extend(events)
        if self.config.sendgrid_events_url and self._outbox and not self._flush_scheduled:
            self._flush_scheduled = True
            self._spawn(self._flush_sendgrid())

    # -- lifecycle ------------------------------------------------------------

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every scheduled callback and event has been posted."""
        deadline = time.monotonic() + timeout
        while self._tasks:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self._tasks)} receipt posts still pending")
            await asyncio.wait(set(self._tasks), timeout=max(deadline - time.monotonic(), 0.01))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- internals ------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50),
                                                  timeout=aiohttp.ClientTimeout(total=10))
        return self._session

    async def _callbacks(self, record: SmsRecord, token: str, status: str, code: str | None, delay: float,
                         reorder: bool, repeats: int) -> None:
        steps = [("sent", None, 0.0), (status, code, delay)]
        if reorder:
            steps = [(status, code, 0.0), ("sent", None, delay)]
        for step_status, step_code, wait in steps:
            if wait:
                await asyncio.sleep(wait)
            for _ in range(repeats if step_status == status else 1):
                await self._post_callback(record, token, step_status, step_code)

    async def _post_callback(self, record: SmsRecord, token: str, status: str, code: str | None) -> None:
        assert record.status_callback is not None
        params = {"AccountSid": record.account_sid, "From": record.from_ or "", "MessageSid": record.sid,
                  "MessageStatus": status, "SmsSid": record.sid, "SmsStatus": status, "To": record.to,
                  "ApiVersion": "2010-04-01"}
        if code:
            params["ErrorCode"] = code
        headers = {"X-Twilio-Signature": twilio_signature(token, record.status_callback, params)}
        await self._post("twilio", record.status_callback, data=params, headers=headers)

    def _event(self, record: EmailRecord, kind: str, offset: int) -> dict[str, Any]:
        event: dict[str, Any] = {
            "email": record.to, "timestamp": int(time.time()) + offset, "event": kind,
            "sg_event_id": f"standin-{next(self._event_ids):012d}",
            "sg_message_id": f"{record.message_id}.filter0001.{record.personalization}",
            **{k: v for k, v in record.custom_args.items() if k not in ("event", "timestamp")},
        }
        if kind == "bounce":
            event.update(type="bounce", status="5.1.1", reason="550 5.1.1 The email account does not exist")
        return event

    async def _flush_sendgrid(self) -> None:
        await asyncio.sleep(self._rng.uniform(0, self.config.delay))
        self._flush_scheduled = False
        url = self.config.sendgrid_events_url
        while self._outbox and url:
            batch, self._outbox = self._outbox[:self.config.sendgrid_batch], self._outbox[self.config.sendgrid_batch:]
            payload = json.dumps(batch)
            await self._post("sendgrid", url, data=payload.encode("utf-8"), headers=self.signer.headers(payload))

    async def _post(self, provider: str, url: str, *, data: Any, headers: Mapping[str, str]) -> None:
        for attempt in range(POST_ATTEMPTS):
            try:
                async with self._client().post(url, data=data, headers=dict(headers)) as response:
                    await response.read()
                    self.answers[(provider, response.status)] += 1
                    if response.status < 500:
                        return
            except (aiohttp.ClientError, TimeoutError):
                self.answers[(provider, 0)] += 1
            await asyncio.sleep(0.05 * (attempt + 1))


# --------------------------------------------------------------------------
# Control endpoints (for a stand-in in another process)
# --------------------------------------------------------------------------


def add_control_routes(router: web.UrlDispatcher, receipts_of: Callable[[web.Request], Receipts]) -> None:
    """``GET|POST /_standin/receipts`` (record and public key | configure) and ``POST /_standin/receipts/drain``."""

    async def record(request: web.Request) -> web.Response:
        receipts = receipts_of(request)
        finals = receipts.final_states()
        return web.json_response({
            "config": dataclasses.asdict(receipts.config),
            "public_key": receipts.public_key,
            "sms": finals["sms"],
            "email": [{"campaign": c, "recipient": r, "event": e} for (c, r), e in sorted(finals["email"].items())],
            "answers": {f"{provider} {status}": n for (provider, status), n in sorted(receipts.answers.items())},
        })

    async def configure(request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("body must be a JSON object")
            config = receipts_of(request).configure(**changes)
        except (TypeError, ValueError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(dataclasses.asdict(config))

    async def drain(request: web.Request) -> web.Response:
        try:
            await receipts_of(request).drain()
        except TimeoutError as error:
            return web.json_response({"error": str(error)}, status=504)
        return web.json_response({"drained": True})

    router.add_get("/_standin/receipts", record)
    router.add_post("/_standin/receipts", configure)
    router.add_post("/_standin/receipts/drain", drain)
