"""Pull mode against the stand-in: statuses fetched by sid, rate-limited, resumable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from crisiscomms.channels.base import ProviderRejected
from crisiscomms.channels.http import make_http_client
from crisiscomms.channels.sms import twilio_client
from crisiscomms.delivery.receipts.pull import PullProgress, PullResult, pull_receipts
from crisiscomms.delivery.receipts.store import MemoryReceiptStore, RowKey
from crisiscomms.testing.standin import DEFAULT_TWILIO_SID, DEFAULT_TWILIO_TOKEN, Standin, run_standin


def environ(standin: Standin, token: str = DEFAULT_TWILIO_TOKEN) -> dict[str, str]:
    return {"TWILIO_ACCOUNT_SID": DEFAULT_TWILIO_SID, "TWILIO_AUTH_TOKEN": token,
            "CRISISCOMMS_TWILIO_URL": standin.twilio_url}


Scenario = Callable[[Standin, Any, MemoryReceiptStore, list[RowKey]], Awaitable[None]]


def run(scenario: Scenario, *, count: int = 20, **receipts: Any) -> None:
    async def main() -> None:
        async with run_standin() as standin, make_http_client() as http:
            standin.receipts.configure(enabled=True, undelivered_share=0.2, failed_share=0.1, seed=3, **receipts)
            client, _, _ = twilio_client(http, environ(standin))
            store = MemoryReceiptStore()
            keys = []
            for index in range(count):
                created = await client.messages.create_async(to=f"+4670123{index:04d}", from_="+46700000000",
                                                            body="Storm warning")
                keys.append(store.add_row("c1", "sms", f"r{index}", created.sid))
            store.add_row("c1", "sms", "never-accepted")
            await scenario(standin, client, store, keys)

    asyncio.run(main())


def expected(standin: Standin, store: MemoryReceiptStore, keys: list[RowKey]) -> dict[RowKey, str]:
    finals = standin.receipts.final_states()["sms"]
    return {key: finals[store.rows[key].provider_id] for key in keys}  # type: ignore[index]


def test_pull_ends_with_the_stand_ins_final_states() -> None:
    async def scenario(standin: Standin, client: Any, store: MemoryReceiptStore, keys: list[RowKey]) -> None:
        seen: list[PullProgress] = []
        result = await pull_receipts(store, client, rate=1000, on_progress=seen.append)
        states = store.states()
        assert {key: states[key] for key in keys} == expected(standin, store, keys)
        assert set(expected(standin, store, keys).values()) == {"delivered", "undelivered", "failed"}
        assert (result.asked, result.final, result.still_open, result.counts.applied) == (20, 20, 0, 20)
        assert [p.done for p in seen] == list(range(21)) and seen[-1].total == 20
        undelivered = [store.receipt(k) for k in keys if states[k] == "undelivered"]
        assert {(r.code, r.reason) for r in undelivered if r} == {
            ("30003", "unreachable destination handset (phone off or out of coverage)")}
        again = await pull_receipts(store, client, rate=1000)
        assert again.asked == 0  # nothing left without a final status

    run(scenario)


def test_a_message_still_on_its_way_stays_open_and_is_asked_again() -> None:
    async def scenario(standin: Standin, client: Any, store: MemoryReceiptStore, keys: list[RowKey]) -> None:
        first = await pull_receipts(store, client, rate=1000)
        assert (first.asked, first.final) == (5, 0)
        assert set(store.states("c1").values()) == {"sent", None}
        await asyncio.sleep(3.1)
        second = await pull_receipts(store, client, rate=1000)
        assert (second.asked, second.final) == (5, 5)
        assert {key: store.states()[key] for key in keys} == expected(standin, store, keys)

    # Final statuses wait uniformly (seeded) up to the delay: at 3 s the first pull comes before them even on
    # a loaded machine (at 0.5 s it did not always).
    run(scenario, count=5, delay=3.0)


def test_pull_is_rate_limited() -> None:
    async def scenario(standin: Standin, client: Any, store: MemoryReceiptStore, keys: list[RowKey]) -> None:
        started = time.monotonic()
        result = await pull_receipts(store, client, rate=25, concurrency=10)
        assert result.asked == 10
        assert time.monotonic() - started >= 9 / 25 - 0.02

    run(scenario, count=10)


def test_a_stopped_pull_keeps_what_it_applied_and_the_next_one_resumes() -> None:
    async def scenario(standin: Standin, client: Any, store: MemoryReceiptStore, keys: list[RowKey]) -> None:
        stop = asyncio.Event()

        def progress(update: PullProgress) -> None:
            if update.done == 4:
                stop.set()

        first = await pull_receipts(store, client, rate=1000, concurrency=1, on_progress=progress, stop=stop)
        assert (first.asked, first.stopped) == (4, True)
        assert sum(1 for key in keys if store.states()[key] is not None) == 4
        second = await pull_receipts(store, client, rate=1000)
        assert (second.asked, second.stopped) == (6, False)
        assert {key: store.states()[key] for key in keys} == expected(standin, store, keys)

    run(scenario, count=10)


def test_unknown_sids_and_server_errors_are_counted_not_fatal() -> None:
    async def scenario(standin: Standin, client: Any, store: MemoryReceiptStore, keys: list[RowKey]) -> None:
        store.add_row("c1", "sms", "ghost", "SM" + "00" * 16)
        result = await pull_receipts(store, client, rate=1000)
        assert result.problems["not_found"] == 1
        standin.configure(fail_500_rate=1.0)
        store.add_row("c1", "sms", "ghost2", "SM" + "11" * 16)
        failed = await pull_receipts(store, client, rate=1000, retry_pause=0.01)
        assert failed.problems["lookup_failed"] == 2  # both still-open sids, after 3 attempts each
        assert isinstance(failed, PullResult)

    run(scenario, count=2)


def test_bad_credentials_stop_the_pull() -> None:
    async def scenario(standin: Standin, client: Any, store: MemoryReceiptStore, keys: list[RowKey]) -> None:
        standin.configure(twilio_token="rotated")
        with pytest.raises(ProviderRejected) as caught:
            await pull_receipts(store, client, rate=1000)
        assert str(caught.value) == ("Twilio refused the credentials (HTTP 401): check TWILIO_ACCOUNT_SID and "
                                     "TWILIO_AUTH_TOKEN")
        assert DEFAULT_TWILIO_TOKEN not in str(caught.value)

    run(scenario, count=2)


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        asyncio.run(pull_receipts(MemoryReceiptStore(), None, rate=0))
