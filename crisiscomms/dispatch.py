"""The asyncio fan-out: bounded concurrency per channel, adaptive rate limits,
retries with back-off and jitter, and the ledger kept in step.

The dispatcher takes planned messages (already in the ledger as pending) and
gives each to its channel. Before a request leaves, its row is marked in
flight; the mark is group-committed for every message that reached that
point in the same turn of the event loop, so a thousand messages a second do
not mean a thousand fsyncs. Outcomes are written in batches.

Per answer: accepted → done; rejected → failed for good (and a STOP reply
suppresses the number); retry (429, connection refused) → again after a
back-off, slower if the provider throttles; uncertain (timeout after sending,
reset, 5xx) → left for reconciliation, never blindly resent.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .channels.base import BodyFingerprint, Channel, Message, Outcome, ProviderRejected, SendResult
from .content import request_key
from .ledger.base import Holder, Ledger
from .ledger.base import Outcome as LedgerOutcome
from .plan import PlannedMessage
from .render import SmsContent

DEFAULT_CONCURRENCY = {"sms": 100, "email": 8, "voice": 20, "banner": 1, "cap": 1}
MAX_ATTEMPTS = 6
BASE_BACKOFF = 0.5
MAX_BACKOFF = 30.0
FLUSH_SECONDS = 0.25  # outcomes are written at least this often
SETTLE_SECONDS = 60.0  # how long a stopped run waits for the answers of requests in flight


@dataclass(frozen=True)
class DispatchSettings:
    concurrency: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CONCURRENCY))
    rates: dict[str, float | None] = field(default_factory=dict)  # messages per second, per channel
    max_attempts: int = MAX_ATTEMPTS
    base_backoff: float = BASE_BACKOFF
    max_backoff: float = MAX_BACKOFF
    batch_sizes: dict[str, int] = field(default_factory=dict)  # messages per request at most, below the channel's


ProgressCallback = Callable[[str, str, int], None]  # channel, state, count
SendersCallback = Callable[[], int]  # how many senders share the campaign now (joined senders)
SuppressCallback = Callable[[str], None]  # an E.164 number that replied STOP


@dataclass
class DispatchResult:
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, state) → n
    aborted: ProviderRejected | None = None
    interrupted: bool = False


class AdaptiveRate:
    """Spaces requests to a rate that backs off when the provider throttles and recovers after.

    ``ceiling`` is the configured limit (None: only concurrency bounds it). A
    429 is a congestion signal: the rate drops to 70% of what actually got
    through in the last second (once per second, however many requests saw the
    same 429) and the channel pauses until ``Retry-After``. Every second
    without a 429 the rate grows by 10%, up to the ceiling (with no ceiling it
    keeps probing upwards, and the next 429 brings it down again).
    """

    DECREASE = 0.7
    INCREASE = 1.1
    WINDOW = 1.0

    def __init__(self, ceiling: float | None) -> None:
        self.configured = ceiling  # the limit given for the campaign (all its senders together)
        self.senders = 1
        self.ceiling = ceiling  # this sender's share of it
        self.rate = ceiling
        self.paused_until = 0.0
        self._next_slot = 0.0
        self._last_change = 0.0
        self._done: deque[float] = deque()

    async def acquire(self) -> None:
        now = time.monotonic()
        self._recover(now)
        start = max(now, self.paused_until)
        if self.rate:
            start = max(start, self._next_slot)
            self._next_slot = start + 1.0 / self.rate
        if start > now:
            await asyncio.sleep(start - now)

    def throttled(self, retry_after: float | None) -> None:
        now = time.monotonic()
        self.paused_until = max(self.paused_until, now + (retry_after if retry_after is not None else 1.0))
        if now - self._last_change < self.WINDOW:
            return  # the same congestion as the last 429
        self._last_change = now
        through = self.observed_rate(now)
        current = min(self.rate, through) if self.rate and through else (self.rate or through or 10.0)
        self.rate = max(1.0, current * self.DECREASE)

    def share_with(self, senders: int) -> None:
        """Joined senders of one campaign share its configured limit: each takes ``1/senders`` of it."""
        senders = max(1, senders)
        if self.configured is None or senders == self.senders:
            return
        ratio, self.senders = self.senders / senders, senders
        self.ceiling = self.configured / senders
        self.rate = min(self.ceiling, (self.rate or self.ceiling) * ratio)

    def succeeded(self) -> None:
        self._done.append(time.monotonic())

    def _recover(self, now: float) -> None:
        if self.rate is None or now - self._last_change < self.WINDOW or now < self.paused_until:
            return
        self._last_change = now
        grown = self.rate * self.INCREASE
        self.rate = min(grown, self.ceiling) if self.ceiling is not None else grown

    def observed_rate(self, now: float | None = None) -> float:
        """Accepted requests in the last second."""
        now = time.monotonic() if now is None else now
        while self._done and now - self._done[0] > self.WINDOW:
            self._done.popleft()
        return float(len(self._done))


class _GroupCommit:
    """Marks rows in flight: one ledger transaction for all who asked in this turn of the loop."""

    def __init__(self, ledger: Ledger, campaign: str, holder: Holder) -> None:
        self.ledger, self.campaign, self.holder = ledger, campaign, holder
        self._waiting: list[tuple[Sequence[tuple[str, str, str | None]], asyncio.Future[None]]] = []

    async def mark(self, keys: Sequence[tuple[str, str, str | None]]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._waiting:
            asyncio.get_running_loop().call_soon(self._commit)
        self._waiting.append((keys, future))
        await future

    def _commit(self) -> None:
        waiting, self._waiting = self._waiting, []
        try:
            self.ledger.mark_in_flight(self.campaign, self.holder, [key for keys, _ in waiting for key in keys])
        except Exception as error:
            for _, future in waiting:
                if not future.done():  # a waiter cancelled by Ctrl-C is gone
                    future.set_exception(error)
            return
        for _, future in waiting:
            if not future.done():  # cancelled meanwhile: its rows stay in flight, i.e. uncertain next run
                future.set_result(None)


@dataclass
class _Work:
    item: PlannedMessage
    message: Message
    attempt: int = 0


class _Grouper:
    """Gathers messages with the same request content (identical content, or one shared rendering of
    personalised e-mails: :func:`request_key`) into batches of up to ``limit`` (one request each).

    Holds at most ``4 × limit`` messages' worth: past that the biggest group goes out as it is, so
    memory stays flat when every message is different. A personalised e-mail counts an eighth: it is a
    small reference to its shared rendering (its own text is built only if read), and readers of a
    dozen languages and time zones arrive interleaved, so full requests need many held at once.
    """

    LIGHT = 0.125  # the weight of a message whose request content is shared with others by construction

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._groups: dict[object, list[_Work]] = {}
        self._held = 0.0

    def add(self, work: _Work) -> list[list[_Work]]:
        if self.limit <= 1:
            return [[work]]
        key = request_key(work.message.body)
        group = self._groups.setdefault(key, [])
        group.append(work)
        self._held += self._weight(work.message.body, key)
        if len(group) >= self.limit:
            return [self._take(key)]
        if self._held > 4 * self.limit:
            return [self._take(max(self._groups, key=lambda k: len(self._groups[k])))]
        return []

    def _weight(self, body: object, key: object) -> float:
        return 1.0 if key is body else self.LIGHT

    def _take(self, key: object) -> list[_Work]:
        group = self._groups.pop(key)
        self._held -= sum(self._weight(w.message.body, key) for w in group)
        return group

    def drain(self) -> list[list[_Work]]:
        batches = list(self._groups.values())
        self._groups.clear()
        self._held = 0.0
        return batches


class Dispatcher:
    def __init__(self, ledger: Ledger, campaign: str, channels: dict[str, Channel], settings: DispatchSettings,
                 *, holder: Holder, on_progress: ProgressCallback | None = None,
                 on_suppress: SuppressCallback | None = None, stop: asyncio.Event | None = None,
                 senders: SendersCallback | None = None) -> None:
        self.ledger, self.campaign, self.channels, self.settings = ledger, campaign, channels, settings
        self.senders = senders or (lambda: 1)
        self.on_progress = on_progress or (lambda channel, state, count: None)
        self.on_suppress = on_suppress or (lambda number: None)
        self.stop = stop or asyncio.Event()
        self.result = DispatchResult()
        self.rates = {name: AdaptiveRate(settings.rates.get(name)) for name in channels}
        self._queues: dict[str, asyncio.Queue[list[_Work] | None]] = {}
        self._commit = _GroupCommit(ledger, campaign, holder)
        self._retry_tasks: set[asyncio.Task[None]] = set()
        self._proven = {name: asyncio.Event() for name in channels}
        self._crash: Exception | None = None
        self._active = 0  # batches whose requests are on their way
        self._canary = {name: asyncio.Lock() for name in channels}

    async def run(self, items: Iterable[PlannedMessage]) -> DispatchResult:
        """Send every item; returns when all are settled, or stopped, or the provider refused the run."""
        self._share_rates()
        workers: list[asyncio.Task[None]] = [asyncio.create_task(self._flush_on_a_timer())]
        for name in self.channels:
            self._queues[name] = asyncio.Queue(maxsize=2 * self._concurrency(name))
            workers.extend(asyncio.create_task(self._worker(name)) for _ in range(self._concurrency(name)))
        try:
            await self._feed(items)
            await self._settle_all()
            await self._let_in_flight_finish()
        finally:
            for task in list(self._retry_tasks):
                task.cancel()
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, *self._retry_tasks, return_exceptions=True)
            self.ledger.flush()
        if self._crash is not None:
            raise self._crash
        self.result.interrupted = self.stop.is_set() and self.result.aborted is None
        return self.result

    async def _flush_on_a_timer(self) -> None:
        """Outcomes reach the ledger within a flush interval, also while every worker waits out a back-off."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self._share_rates()
            try:
                self.ledger.flush()
            except Exception as error:
                self._crash = self._crash or error
                self.stop.set()
                return

    def _share_rates(self) -> None:
        """Rate limits are the campaign's: with joined senders each takes its share (the lease's heartbeat
        counts them)."""
        senders = self.senders()
        for rate in self.rates.values():
            rate.share_with(senders)

    async def _let_in_flight_finish(self) -> None:
        """After a stop (Ctrl-C), the requests already on their way get their answers recorded."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while self._active and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def _concurrency(self, name: str) -> int:
        return max(1, self.settings.concurrency.get(name, DEFAULT_CONCURRENCY.get(name, 4)))

    async def _feed(self, items: Iterable[PlannedMessage]) -> None:
        groupers = {name: _Grouper(min(channel.max_batch, self.settings.batch_sizes.get(name, channel.max_batch)))
                    for name, channel in self.channels.items()}
        for count, item in enumerate(items, start=1):
            if self.stop.is_set():
                return
            for batch in groupers[item.channel].add(_Work(item, to_message(item, self.campaign))):
                await self._queues[item.channel].put(batch)
            if count % 64 == 0 or count == 1:
                await asyncio.sleep(0)  # the first request leaves at once; the workers run while the plan streams
        for name, grouper in groupers.items():
            for batch in grouper.drain():
                await self._queues[name].put(batch)

    async def _settle_all(self) -> None:
        """Wait until every queued message and every scheduled retry is done (or the run stops)."""
        while not self.stop.is_set():
            await asyncio.gather(*(queue.join() for queue in self._queues.values()))
            if not self._retry_tasks:
                return
            await asyncio.wait(set(self._retry_tasks), return_when=asyncio.FIRST_COMPLETED)

    async def _worker(self, name: str) -> None:
        queue = self._queues[name]
        channel = self.channels[name]
        while True:
            batch = await queue.get()
            try:
                if batch is None:
                    return
                if self.stop.is_set():
                    self._release(batch)
                else:
                    self._active += 1
                    try:
                        await self._send(name, channel, batch)
                    finally:
                        self._active -= 1
            except Exception as error:
                self._crash = self._crash or error  # a bug: stop the run rather than hang with a dead worker
                self.stop.set()
            finally:
                queue.task_done()

    async def _send(self, name: str, channel: Channel, batch: list[_Work]) -> None:
        if not self._proven[name].is_set():
            async with self._canary[name]:  # the first request goes alone: bad credentials stop the run there
                if self.stop.is_set():
                    self._release(batch)
                    return
                if not self._proven[name].is_set():  # the others waited here: only one goes alone
                    await self._send_now(name, channel, batch)
                    if self.result.aborted is None:
                        self._proven[name].set()
                    return
        await self._send_now(name, channel, batch)

    async def _send_now(self, name: str, channel: Channel, batch: list[_Work]) -> None:
        await self.rates[name].acquire()
        keys = [(w.item.channel, w.item.address) for w in batch]
        await self._commit.mark([(*key, _fingerprint(w.item)) for key, w in zip(keys, batch, strict=True)])
        for work in batch:
            work.attempt += 1
        try:
            results = await channel.send([w.message for w in batch])
        except ProviderRejected as error:
            self.ledger.set_state(self.campaign, keys, "pending")  # refused unprocessed: never sent
            self.result.aborted = self.result.aborted or error
            self.stop.set()
            return
        for work, result in zip(batch, results, strict=True):
            self._settle(name, work, result)

    def _settle(self, name: str, work: _Work, result: SendResult) -> None:
        item = work.item
        rate = self.rates[name]
        if result.outcome is Outcome.ACCEPTED:
            rate.succeeded()
            self._record(work, "accepted", result)
        elif result.outcome is Outcome.REJECTED:
            self._record(work, "failed", result, permanent=True)
            if result.suppress and name == "sms":
                self.on_suppress(item.address)
        elif result.outcome is Outcome.UNCERTAIN:
            self._record(work, "uncertain", result)
        else:
            if result.retry_after is not None or result.code in {"429", "20429"}:
                rate.throttled(result.retry_after)
            if work.attempt >= self.settings.max_attempts or self.stop.is_set():
                self._record(work, "failed", result)
            else:
                self._record(work, "pending", result, counted=False)
                self._schedule_retry(name, work, result.retry_after)

    def _record(self, work: _Work, state: str, result: SendResult, *, permanent: bool = False,
                counted: bool = True) -> None:
        item = work.item
        self.ledger.record(self.campaign, LedgerOutcome(
            channel=item.channel, address=item.address, state=state, attempt=work.attempt,
            outcome=result.outcome.value, provider_id=result.provider_id, code=result.code,
            reason=result.reason, permanent=permanent))
        if counted:
            self.result.counts[(item.channel, state)] += 1
            self.on_progress(item.channel, state, 1)

    def _schedule_retry(self, name: str, work: _Work, retry_after: float | None) -> None:
        delay = backoff_delay(work.attempt, self.settings.base_backoff, self.settings.max_backoff, retry_after)
        task = asyncio.create_task(self._retry_later(name, work, delay))
        self._retry_tasks.add(task)
        task.add_done_callback(self._retry_tasks.discard)

    async def _retry_later(self, name: str, work: _Work, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.stop.is_set():
            self._release([work])
        else:
            await self._queues[name].put([work])

    def _release(self, batch: list[_Work]) -> None:
        """Messages not sent because the run is stopping: they stay pending for the next run."""
        for work in batch:
            self.result.counts[(work.item.channel, "not_sent")] += 1


def _fingerprint(item: PlannedMessage) -> str | None:
    return BodyFingerprint.of(item.content.text).digest if isinstance(item.content, SmsContent) else None


def backoff_delay(attempt: int, base: float, ceiling: float, retry_after: float | None) -> float:
    """Exponential back-off with full jitter; never earlier than the provider asked."""
    exponential = min(ceiling, base * (2 ** max(0, attempt - 1)))
    delay = random.uniform(exponential / 2, exponential)
    return max(delay, retry_after or 0.0)


def to_message(item: PlannedMessage, campaign: str) -> Message:
    return Message(key=f"{item.channel}:{item.address}", recipient_id=item.recipient_id, address=item.address,
                   locale=item.locale, body=item.content,
                   custom_args={"campaign": campaign, "recipient": item.recipient_id})

