"""Pull mode: ask Twilio for the status of every accepted SMS that has no final status yet.

For operators who cannot expose a web server to Twilio. Each message is
fetched by its sid (``GET …/Messages/{Sid}.json`` through the SDK's
``fetch_async`` over the shared httpx client), at most ``rate`` requests per
second and ``concurrency`` at a time, and its status is applied to the store at
once: stopping (Ctrl-C, a crash, bad credentials) keeps everything fetched so
far, and the next pull asks only about what is still open.

Answers: 200 applied; 404 counted as ``not_found`` (the message was deleted or
belongs to another account); 429 waits (``Retry-After``) and asks again; 5xx
and transport errors are retried :data:`ATTEMPTS` times, then counted as
``lookup_failed`` (the next pull asks again); 401/403/20003 stop the pull with
:class:`~crisiscomms.channels.base.ProviderRejected`.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from twilio.base.exceptions import TwilioException

from ...channels.base import ProviderRejected
from ...channels.sms import capture_response, mask_phone, parse_retry_after
from .events import FINAL_STATES, DeliveryEvent, MalformedReceipt, twilio_event
from .store import AppliedCounts, AwaitingReceipt, ReceiptStore

__all__ = ["ATTEMPTS", "PullProgress", "PullResult", "pull_receipts"]

log = logging.getLogger(__name__)

ATTEMPTS = 3
DEFAULT_RATE = 10.0
DEFAULT_CONCURRENCY = 5
RETRY_PAUSE = 1.0  # seconds before retrying a 5xx or transport error (doubles each time)


@dataclass
class PullResult:
    """What one pull did."""

    asked: int = 0
    counts: AppliedCounts = field(default_factory=AppliedCounts)
    final: int = 0  # of the messages asked about, how many now have a final status
    problems: collections.Counter[str] = field(default_factory=collections.Counter)
    states: collections.Counter[str] = field(default_factory=collections.Counter)  # what Twilio answered
    stopped: bool = False

    @property
    def still_open(self) -> int:
        return self.asked - self.final


@dataclass(frozen=True)
class PullProgress:
    done: int
    total: int
    result: PullResult


ProgressCallback = Callable[[PullProgress], None]


class _Pacer:
    """Starts at most ``rate`` requests per second; a 429 pushes every later start back."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        at = max(now, self._next)
        self._next = at + self._interval
        if at > now:
            await asyncio.sleep(at - now)

    def pause(self, seconds: float) -> None:
        self._next = max(self._next, asyncio.get_running_loop().time() + seconds)


class _Retry(Exception):
    def __init__(self, problem: str, wait: float | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.wait = wait


async def pull_receipts(
    store: ReceiptStore,
    client: Any,
    *,
    campaign: str | None = None,
    rate: float = DEFAULT_RATE,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_progress: ProgressCallback | None = None,
    stop: asyncio.Event | None = None,
    retry_pause: float = RETRY_PAUSE,
) -> PullResult:
    """Fetch and apply the status of every SMS ``store`` lists as accepted without a final status.

    ``client`` is a ``twilio.rest.Client`` over an async HTTP client
    (:func:`crisiscomms.channels.sms.twilio_client`). Setting ``stop`` lets the
    requests in flight finish and starts no more.
    """
    if not rate > 0 or concurrency < 1:
        raise ValueError("rate must be > 0 and concurrency >= 1")
    awaiting = list(store.accepted_without_final_status(campaign))
    result = PullResult()
    pacer = _Pacer(rate)
    queue: asyncio.Queue[AwaitingReceipt] = asyncio.Queue()
    for item in awaiting:
        queue.put_nowait(item)
    stop = stop or asyncio.Event()

    def report() -> None:
        if on_progress is not None:
            on_progress(PullProgress(result.asked, len(awaiting), result))

    async def worker() -> None:
        while not stop.is_set() and not queue.empty():
            item = queue.get_nowait()
            event = await _fetch_with_retries(client, item, pacer, result, retry_pause)
            result.asked += 1
            if event is not None:
                result.counts = result.counts + store.apply([event])
                result.final += event.state in FINAL_STATES
                result.states[event.state.value] += 1
            report()

    report()
    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, max(len(awaiting), 1)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    result.stopped = stop.is_set() and result.asked < len(awaiting)
    return result


async def _fetch_with_retries(client: Any, item: AwaitingReceipt, pacer: _Pacer, result: PullResult,
                              retry_pause: float) -> DeliveryEvent | None:
    for attempt in range(1, ATTEMPTS + 1):
        await pacer.wait()
        try:
            return await _fetch(client, item.provider_id)
        except _Retry as retry:
            if retry.problem == "not_found":
                result.problems["not_found"] += 1
                return None
            if retry.problem == "rate_limited":
                pacer.pause(retry.wait if retry.wait is not None else retry_pause)
                continue  # a 429 was never processed: wait, then ask again
            if attempt == ATTEMPTS:
                result.problems["lookup_failed"] += 1
                log.info("pull: giving up on %s for now: %s", item.provider_id, retry.problem)
                return None
            await asyncio.sleep(retry_pause * 2 ** (attempt - 1))
    result.problems["lookup_failed"] += 1
    return None


async def _fetch(client: Any, sid: str) -> DeliveryEvent | None:
    with capture_response() as capture:
        try:
            message = await client.messages(sid).fetch_async()
        except TwilioException as error:
            status = _as_int(getattr(error, "status", None)) or (capture.response.status_code
                                                                  if capture.response is not None else None)
            code = _as_int(getattr(error, "code", None))
            if status in (401, 403) or code == 20003:
                raise ProviderRejected(f"Twilio refused the credentials (HTTP {status}): check TWILIO_ACCOUNT_SID "
                                       f"and TWILIO_AUTH_TOKEN") from None
            if status == 404:
                raise _Retry("not_found", None) from None
            if status == 429 or code == 20429:
                raise _Retry("rate_limited", parse_retry_after(capture.header("Retry-After"))) from None
            raise _Retry(f"HTTP {status}", None) from None
        except httpx.HTTPError as error:
            raise _Retry(type(error).__name__, None) from None
    return _event_of(sid, message)


def _event_of(sid: str, message: Any) -> DeliveryEvent | None:
    status = str(getattr(message, "status", "") or "")
    code = getattr(message, "error_code", None)
    updated = getattr(message, "date_updated", None)
    fields = {"MessageSid": sid, "MessageStatus": status}
    if code:
        fields["ErrorCode"] = str(code)
    try:
        return twilio_event(fields, occurred_at=updated if isinstance(updated, dt.datetime) else None,
                            error_message=str(getattr(message, "error_message", "") or "")[:1000] or None)
    except MalformedReceipt as error:
        log.warning("pull: unreadable status of a message to %s: %s",
                    mask_phone(str(getattr(message, "to", "") or "")), error)
        return None


def _as_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
