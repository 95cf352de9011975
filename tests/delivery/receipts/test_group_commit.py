"""Group commit: requests that arrive while the store is busy are applied together, in the writer thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Sequence

from crisiscomms.delivery.receipts.events import DeliveryEvent, twilio_event
from crisiscomms.delivery.receipts.group_commit import GroupCommit
from crisiscomms.delivery.receipts.store import AppliedCounts
from crisiscomms.errors import LedgerError


def event(i: int) -> DeliveryEvent:
    return twilio_event({"MessageSid": f"SM{i:032x}", "MessageStatus": "delivered"})


class SlowStore:
    """Applies nothing; records each group and the thread it ran in, and holds the first until released."""

    def __init__(self, fail: bool = False) -> None:
        self.groups: list[list[str]] = []
        self.threads: set[str] = set()
        self.release = threading.Event()
        self.fail = fail

    def apply(self, events: Sequence[DeliveryEvent]) -> AppliedCounts:
        if not self.groups:
            self.release.wait(10)
        self.groups.append([e.provider_id or "" for e in events])
        self.threads.add(threading.current_thread().name)
        if self.fail:
            raise LedgerError("cannot write the ledger x.sqlite: disk I/O error")
        return AppliedCounts(applied=len(events))


def test_requests_arriving_during_a_commit_form_the_next_group_in_the_writer_thread() -> None:
    store = SlowStore()

    async def main() -> list[AppliedCounts | None]:
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="writer") as writer:
            group = GroupCommit(store, writer)  # type: ignore[arg-type]
            first = asyncio.ensure_future(group.apply([event(0)]))
            await asyncio.sleep(0.05)  # the first group is committing (held)
            later = [asyncio.ensure_future(group.apply([event(i)])) for i in (1, 2, 3)]
            await asyncio.sleep(0.05)
            store.release.set()
            return await asyncio.gather(first, *later)

    answers = asyncio.run(main())
    assert store.groups == [[f"SM{0:032x}"], [f"SM{i:032x}" for i in (1, 2, 3)]]
    assert store.threads == {"writer_0"}
    assert answers[0] == AppliedCounts(applied=1)
    assert answers[1:] == [AppliedCounts(applied=3), None, None]  # a group's counts come with its first request


def test_a_failed_group_answers_every_request_of_it_with_the_error() -> None:
    store = SlowStore(fail=True)
    store.release.set()

    async def main() -> list[BaseException | AppliedCounts | None]:
        with concurrent.futures.ThreadPoolExecutor(1) as writer:
            group = GroupCommit(store, writer)  # type: ignore[arg-type]
            return await asyncio.gather(*(group.apply([event(i)]) for i in range(3)), return_exceptions=True)

    answers = asyncio.run(main())
    assert all(isinstance(answer, LedgerError) for answer in answers)
    assert [str(a) for a in answers] == ["cannot write the ledger x.sqlite: disk I/O error"] * 3
    assert store.groups == [[f"SM{i:032x}" for i in range(3)]]
