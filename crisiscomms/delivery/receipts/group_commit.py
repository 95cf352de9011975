"""Group commit: the events of many requests applied in one store call (one transaction, one fsync).

Each request's handler awaits :meth:`GroupCommit.apply`; the requests that arrive while
the store is busy form the next group. Used by the receipts server (:mod:`.server`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from .events import DeliveryEvent
from .store import AppliedCounts, ReceiptStore

__all__ = ["GroupCommit"]


class GroupCommit:
    """The events of every request that arrived while the store was busy, applied in one store call
    (one ledger transaction, one fsync); each request is answered after that call.

    Without a writer the call runs on the event loop at the end of the loop turn the first
    request arrived in. With a writer (one thread, for a store that :class:`~.store.OpensWriter`) it runs there, and
    while one group commits the loop goes on reading and verifying the requests of the next.
    """

    def __init__(self, store: ReceiptStore, writer: concurrent.futures.ThreadPoolExecutor | None = None) -> None:
        self.store = store
        self.writer = writer
        self._waiting: list[tuple[list[DeliveryEvent], asyncio.Future[AppliedCounts | None]]] = []
        self._busy = False

    async def apply(self, events: list[DeliveryEvent]) -> AppliedCounts | None:
        """The counts of the whole group for the group's first request, None for the others."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AppliedCounts | None] = loop.create_future()
        if not self._busy:
            self._busy = True
            loop.call_soon(self._commit if self.writer is None else self._start)
        self._waiting.append((events, future))
        return await future

    def _commit(self) -> None:
        waiting, self._waiting = self._waiting, []
        self._busy = False
        try:
            counts = self.store.apply(_events_of(waiting))
        except Exception as error:
            _answer(waiting, error)
            return
        _answer(waiting, counts)

    def _start(self) -> None:
        assert self.writer is not None
        waiting, self._waiting = self._waiting, []
        try:
            done = asyncio.get_running_loop().run_in_executor(self.writer, self.store.apply, _events_of(waiting))
        except RuntimeError as error:  # the writer was shut down: the server is stopping
            self._busy = False
            _answer(waiting, error)
            return
        done.add_done_callback(lambda finished: self._finished(waiting, finished))

    def _finished(self, waiting: _Waiting, finished: asyncio.Future[AppliedCounts]) -> None:
        error = asyncio.CancelledError() if finished.cancelled() else finished.exception()
        _answer(waiting, finished.result() if error is None else error)
        if self._waiting:
            self._start()
        else:
            self._busy = False


_Waiting = list[tuple[list[DeliveryEvent], "asyncio.Future[AppliedCounts | None]"]]


def _events_of(waiting: _Waiting) -> list[DeliveryEvent]:
    return [event for events, _ in waiting for event in events]


def _answer(waiting: _Waiting, outcome: AppliedCounts | BaseException) -> None:
    for index, (_, future) in enumerate(waiting):
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome if index == 0 else None)
