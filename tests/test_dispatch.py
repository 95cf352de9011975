"""The dispatcher with a scripted channel: retries, batching, abort, rate adaptation, the ledger kept in step."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from crisiscomms.channels.base import Message, Outcome, ProviderRejected, SendResult
from crisiscomms.content import Personalised
from crisiscomms.dispatch import AdaptiveRate, Dispatcher, DispatchSettings, backoff_delay
from crisiscomms.ledger.sqlite import SqliteLedger as Ledger
from crisiscomms.plan import PlannedMessage
from crisiscomms.render import EmailContent

from .ledger_rows import HOLDER, NewRow, seed

CAMPAIGN = "c1"


class ScriptedChannel:
    """Answers each address from a script (a list of outcomes, one per attempt); default: accepted."""

    name: ClassVar[str] = "email"
    max_batch: ClassVar[int] = 1000

    def __init__(self, script: dict[str, list[SendResult]] | None = None, *, reject_all: bool = False) -> None:
        self.script = script or {}
        self.reject_all = reject_all
        self.requests: list[list[str]] = []

    async def send(self, batch: Sequence[Message]) -> list[SendResult]:
        self.requests.append([m.address for m in batch])
        if self.reject_all:
            raise ProviderRejected("SENDGRID_API_KEY was rejected")
        await asyncio.sleep(0)
        return [self._answer(m.address) for m in batch]

    def _answer(self, address: str) -> SendResult:
        answers = self.script.get(address)
        if answers:
            return answers.pop(0)
        return SendResult(Outcome.ACCEPTED, provider_id=f"id-{address}")

    async def find_sent(self, message: Message, since: dt.datetime) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


def items(count: int, *, same_content: bool = True) -> list[PlannedMessage]:
    shared = EmailContent("Subject", "text\n", "<p>html</p>\n")
    return [PlannedMessage(f"r{i}", i + 2, "email", f"p{i}@example.se", "sv", "Europe/Stockholm",
                           (lambda shared=shared: shared) if same_content else
                           (lambda i=i: EmailContent(f"S{i}", "t\n", "h\n")))
            for i in range(count)]


def run(ledger: Ledger, channel: ScriptedChannel, planned: list[PlannedMessage],
        **settings: object) -> Counter[tuple[str, str]]:
    seed(ledger, CAMPAIGN, [NewRow(i.channel, i.address, i.recipient_id, i.line, i.locale, None) for i in planned])
    dispatch_settings = DispatchSettings(base_backoff=0.001, max_backoff=0.01, **settings)  # type: ignore[arg-type]

    async def go() -> Counter[tuple[str, str]]:
        dispatcher = Dispatcher(ledger, CAMPAIGN, {"email": channel}, dispatch_settings, holder=HOLDER)
        result = await dispatcher.run(planned)
        if result.aborted:
            raise result.aborted
        return result.counts

    return asyncio.run(go())


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.open(tmp_path / "ledger.sqlite")


def states(ledger: Ledger) -> Counter[str]:
    return Counter(row.state for row in ledger.rows(CAMPAIGN))


def test_identical_content_shares_requests_of_at_most_1000(ledger: Ledger) -> None:
    channel = ScriptedChannel()
    counts = run(ledger, channel, items(2500))
    assert sorted(len(r) for r in channel.requests) == [500, 1000, 1000]
    assert counts[("email", "accepted")] == 2500
    assert states(ledger) == {"accepted": 2500}


def test_different_content_is_never_batched_and_memory_stays_bounded(ledger: Ledger) -> None:
    channel = ScriptedChannel()
    run(ledger, channel, items(50, same_content=False))
    assert all(len(r) == 1 for r in channel.requests)


def personalised_items(count: int, groups: int) -> list[PlannedMessage]:
    """E-mails of ``groups`` shared renderings, interleaved (as readers of many languages arrive)."""
    shared = [EmailContent(f"Subject {g}", "Hello ^k,\n", "<p>Hello ^h</p>\n") for g in range(groups)]

    def content(i: int) -> EmailContent:
        return EmailContent.substituted(Personalised(shared[i % groups], (("^k", f"N{i}"), ("^h", f"N{i}")), "^"))

    return [PlannedMessage(f"r{i}", i + 2, "email", f"p{i}@example.se", "sv", "Europe/Stockholm",
                           (lambda i=i: content(i))) for i in range(count)]


def test_personalised_emails_of_one_shared_rendering_fill_requests_even_when_interleaved(ledger: Ledger) -> None:
    channel = ScriptedChannel()
    counts = run(ledger, channel, personalised_items(12_000, groups=12))
    assert sorted(len(r) for r in channel.requests) == [1000] * 12
    assert counts[("email", "accepted")] == 12_000
    assert Counter(a for r in channel.requests for a in r) == Counter(f"p{i}@example.se" for i in range(12_000))


def test_batch_sizes_cap_the_messages_per_request(ledger: Ledger) -> None:
    channel = ScriptedChannel()
    run(ledger, channel, personalised_items(100, groups=2), batch_sizes={"email": 7})
    assert max(len(r) for r in channel.requests) == 7 and sum(len(r) for r in channel.requests) == 100


def test_retry_then_accept_records_every_attempt(ledger: Ledger) -> None:
    retry = SendResult(Outcome.RETRY, code="429", reason="too many", retry_after=0.001)
    channel = ScriptedChannel({"p0@example.se": [retry, retry]})
    run(ledger, channel, items(3))
    assert states(ledger) == {"accepted": 3}
    attempts = ledger.db.execute("SELECT outcome FROM attempts WHERE address = 'p0@example.se' ORDER BY rowid")
    assert [a for (a,) in attempts] == ["retry", "retry", "accepted"]
    (row,) = [r for r in ledger.rows(CAMPAIGN) if r.address == "p0@example.se"]
    assert row.attempts == 3


def test_retries_give_up_after_max_attempts_as_retryable_failure(ledger: Ledger) -> None:
    retry = SendResult(Outcome.RETRY, code="429", reason="too many")
    channel = ScriptedChannel({"p0@example.se": [retry] * 10})
    run(ledger, channel, items(1), max_attempts=3)
    (row,) = ledger.rows(CAMPAIGN)
    assert (row.state, row.permanent, row.attempts) == ("failed", False, 3)


def test_rejected_is_permanent_and_uncertain_is_not_retried(ledger: Ledger) -> None:
    channel = ScriptedChannel({
        "p0@example.se": [SendResult(Outcome.REJECTED, code="400", reason="bad address")],
        "p1@example.se": [SendResult(Outcome.UNCERTAIN, reason="timeout after sending")],
    })
    run(ledger, channel, items(3, same_content=False))
    rows = {r.address: r for r in ledger.rows(CAMPAIGN)}
    assert (rows["p0@example.se"].state, rows["p0@example.se"].permanent) == ("failed", True)
    assert rows["p0@example.se"].error == "bad address"
    assert (rows["p1@example.se"].state, rows["p1@example.se"].attempts) == ("uncertain", 1)
    assert rows["p2@example.se"].state == "accepted"


def test_provider_rejection_stops_after_the_first_request(ledger: Ledger) -> None:
    channel = ScriptedChannel(reject_all=True)
    with pytest.raises(ProviderRejected):
        run(ledger, channel, items(40, same_content=False))
    assert len(channel.requests) == 1  # the canary went alone
    assert states(ledger) == {"pending": 40}  # refused unprocessed: nothing is in flight or uncertain


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    for attempt in range(1, 8):
        delay = backoff_delay(attempt, 0.5, 30.0, None)
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert backoff_delay(1, 0.5, 30.0, 7.0) == 7.0


def test_adaptive_rate_backs_off_once_per_congestion_and_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("crisiscomms.dispatch.time.monotonic", lambda: clock[0])
    rate = AdaptiveRate(ceiling=100.0)
    for _ in range(80):
        rate.succeeded()
    for _ in range(50):  # fifty requests saw the same 429: one back-off, not fifty
        rate.throttled(retry_after=0.5)
    assert rate.rate == pytest.approx(80 * 0.7)
    assert rate.paused_until == 1000.5
    for _ in range(20):  # a quiet second at a time: +10% each, up to the ceiling
        clock[0] += 1.0
        rate._recover(clock[0])
    assert rate.rate == 100.0


def test_adaptive_rate_without_ceiling_keeps_what_it_learned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the rate measured during the pause was ~0, so it was lifted at once and 429s came back."""
    clock = [50.0]
    monkeypatch.setattr("crisiscomms.dispatch.time.monotonic", lambda: clock[0])
    rate = AdaptiveRate(ceiling=None)
    assert rate.rate is None
    for _ in range(200):
        rate.succeeded()
    rate.throttled(retry_after=1.0)
    assert rate.rate == pytest.approx(140.0)
    clock[0] += 1.5  # the pause is over; almost nothing went through meanwhile
    rate._recover(clock[0])
    assert rate.rate == pytest.approx(154.0)  # grows 10%, is not lifted


def test_joined_senders_each_take_their_share_of_the_campaigns_rate() -> None:
    rate = AdaptiveRate(ceiling=100.0)
    rate.share_with(2)  # a second sender joined
    assert (rate.ceiling, rate.rate) == (50.0, 50.0)
    rate.share_with(4)
    assert (rate.ceiling, rate.rate) == (25.0, 25.0)
    rate.share_with(1)  # the others finished: this one may use all of it again at once
    assert (rate.ceiling, rate.rate) == (100.0, 100.0)


def test_a_throttled_share_stays_throttled_in_proportion() -> None:
    rate = AdaptiveRate(ceiling=100.0)
    rate.rate = 40.0  # backed off after a 429
    rate.share_with(2)
    assert (rate.ceiling, rate.rate) == (50.0, 20.0)
    unlimited = AdaptiveRate(ceiling=None)
    unlimited.share_with(3)  # no limit given: nothing to share
    assert (unlimited.ceiling, unlimited.rate) == (None, None)


def test_the_dispatcher_asks_how_many_senders_share_the_campaign(ledger: Ledger) -> None:
    work = items(4)
    seed(ledger, CAMPAIGN, [NewRow(i.channel, i.address, i.recipient_id, i.line, i.locale) for i in work])
    channel = ScriptedChannel()
    dispatcher = Dispatcher(ledger, CAMPAIGN, {"email": channel}, DispatchSettings(rates={"email": 80.0}),
                            holder=HOLDER, senders=lambda: 4)
    asyncio.run(dispatcher.run(work))
    assert dispatcher.rates["email"].ceiling == 20.0


def test_an_unexpected_error_in_a_worker_ends_the_run_instead_of_hanging(ledger: Ledger) -> None:
    class Broken(ScriptedChannel):
        async def send(self, batch: Sequence[Message]) -> list[SendResult]:
            raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        run(ledger, Broken(), items(30, same_content=False))


def test_after_the_first_request_the_channel_runs_at_full_concurrency(ledger: Ledger) -> None:
    """Regression: workers that queued behind the first request ("canary") then went one at a time."""

    class Slow(ScriptedChannel):
        name: ClassVar[str] = "email"
        max_batch: ClassVar[int] = 1

        def __init__(self) -> None:
            super().__init__()
            self.in_flight = self.most_in_flight = 0

        async def send(self, batch: Sequence[Message]) -> list[SendResult]:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            await asyncio.sleep(0.01)
            self.in_flight -= 1
            return [SendResult(Outcome.ACCEPTED) for _ in batch]

    channel = Slow()
    run(ledger, channel, items(400, same_content=False), concurrency={"email": 40})
    assert channel.most_in_flight == 40


def test_group_commit_survives_a_waiter_cancelled_before_the_commit(ledger: Ledger) -> None:
    """Regression (seen on Ctrl-C in CI): setting the result of a cancelled waiter raised InvalidStateError."""
    from crisiscomms.dispatch import _GroupCommit

    seed(ledger, CAMPAIGN, [NewRow("sms", "+46701000001", "r1", 2, "sv", None),
                          NewRow("sms", "+46701000002", "r2", 3, "sv", None)])

    async def scenario() -> None:
        commit = _GroupCommit(ledger, CAMPAIGN, HOLDER)
        loop = asyncio.get_running_loop()
        cancelled, waiting = loop.create_future(), loop.create_future()
        cancelled.cancel()  # its worker was cancelled by Ctrl-C while the commit was pending
        commit._waiting = [([("sms", "+46701000001", None)], cancelled), ([("sms", "+46701000002", None)], waiting)]
        commit._commit()
        assert waiting.done() and waiting.exception() is None

    asyncio.run(scenario())
    assert states(ledger) == {"in_flight": 2}


def test_a_stop_lets_requests_in_flight_finish_and_records_them(ledger: Ledger) -> None:
    class Slow(ScriptedChannel):
        max_batch: ClassVar[int] = 1

        async def send(self, batch: Sequence[Message]) -> list[SendResult]:
            await asyncio.sleep(0.05)
            return [SendResult(Outcome.ACCEPTED) for _ in batch]

    planned = items(40, same_content=False)
    seed(ledger, CAMPAIGN, [NewRow(i.channel, i.address, i.recipient_id, i.line, i.locale, None) for i in planned])

    async def go() -> None:
        stop = asyncio.Event()
        dispatcher = Dispatcher(ledger, CAMPAIGN, {"email": Slow()}, DispatchSettings(concurrency={"email": 5}),
                                holder=HOLDER, stop=stop)
        asyncio.get_running_loop().call_later(0.12, stop.set)
        result = await dispatcher.run(planned)
        assert result.interrupted

    asyncio.run(go())
    assert "in_flight" not in states(ledger)  # every request that left got its answer recorded


def test_outcomes_reach_the_ledger_while_every_worker_waits_out_a_back_off(ledger: Ledger) -> None:
    """The accepted answer is written on the flush timer, not only when the next outcome comes in."""
    from crisiscomms.dispatch import FLUSH_SECONDS

    retry = SendResult(Outcome.RETRY, code="429", retry_after=1.5)
    channel = ScriptedChannel({"p1@example.se": [retry]})
    planned = items(2, same_content=False)
    seed(ledger, CAMPAIGN, [NewRow(i.channel, i.address, i.recipient_id, i.line, i.locale) for i in planned])
    seen: list[str] = []

    async def go() -> None:
        dispatcher = Dispatcher(ledger, CAMPAIGN, {"email": channel},
                                DispatchSettings(concurrency={"email": 1}, base_backoff=1.5, max_backoff=1.5),
                                holder=HOLDER)
        task = asyncio.create_task(dispatcher.run(planned))
        await asyncio.sleep(FLUSH_SECONDS * 4)  # p0 accepted, p1 waiting for its retry
        reader = Ledger.open(ledger.path)
        seen.extend(r.state for r in reader.rows(CAMPAIGN) if r.address == "p0@example.se")
        reader.close()
        await task

    asyncio.run(go())
    assert seen == ["accepted"]
