"""``receipts serve --workers N``: one listening socket, N worker processes that verify, one writer.

A status callback costs the server about 150–200 µs of CPU (HTTP, the SDK's HMAC), all under one interpreter
lock: one process reaches one core, and Twilio sends one callback per message and status. The worker
processes share the socket (bound once, here, before they start), the kernel hands each connection to one of
them, and each reads and verifies its requests with its own :class:`~.server.ReceiptServer`.

What they verified they hand to this process, the one writer: a ledger takes one writer best (SQLite has
one write lock, and two processes waiting on it sleep in its busy handler), and one writer keeps the group
commits large. Each worker's group commit (:mod:`.group_commit`) sends its events over its pipe and waits,
in its writer thread, for the counts; this process applies each group in one ledger transaction, in the
order they arrive, and answers (an error: the worker answers 503 and the provider sends again).

The parent also supervises: it starts the workers (``fork``, before it opens the ledger: they inherit the
socket and the configuration, never a ledger connection), waits until each says it listens, forwards
SIGINT/SIGTERM, starts a worker again that died (the others go on accepting; a callback the dead one was
handling is sent again by the provider), and adds up what they counted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

from ...errors import CrisisCommsError, LedgerError, UsageError
from ...processes import can_fork, usable_cores
from .events import DeliveryEvent, ReceiptChannel
from .server import ReceiptServer, ServerConfig
from .store import AppliedCounts, AwaitingReceipt, ReceiptStore

__all__ = ["WorkerPool", "can_fork", "default_workers", "listening_socket"]

#: Seconds a worker may take to open the ledger and start listening.
READY_TIMEOUT = 60.0
#: Seconds a stopping worker may take to answer what it has and send its counts.
STOP_TIMEOUT = 15.0
#: A worker that dies this soon after its start is not started again (it would only die again).
MIN_LIFETIME = 5.0

StoreOpener = Callable[[], contextlib.AbstractContextManager[ReceiptStore]]


def default_workers() -> int:
    """The cores this process may run on (at most 8): one worker each."""
    return min(usable_cores(), 8) if can_fork() else 1


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (UsageError when it cannot be)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as error:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.setblocking(False)
    return sock


@dataclass
class _Worker:
    number: int
    process: BaseProcess
    pipe: multiprocessing.connection.Connection
    started: float
    ready: bool = False
    done: bool = False  # its counts arrived: it stopped


class WorkerPool:
    """The worker processes of one ``receipts serve`` and their writer; :meth:`run` until a signal."""

    def __init__(self, sock: socket.socket, config: ServerConfig, open_store: StoreOpener, workers: int,
                 say: Callable[[str], None]) -> None:
        self.sock, self.config, self.open_store, self.count, self.say = sock, config, open_store, workers, say
        self.stats: collections.Counter[str] = collections.Counter()
        self._context = multiprocessing.get_context("fork")
        self._workers: dict[int, _Worker] = {}
        self._stopping = False

    def run(self, on_ready: Callable[[], None]) -> collections.Counter[str]:
        """Start the workers, open the store, call ``on_ready`` once all listen, write what they verify until
        SIGINT/SIGTERM; what they counted. (The caller checks the ledger opens before it binds the socket.)"""
        previous = {signum: signal.signal(signum, self._stop_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            for number in range(self.count):
                self._workers[number] = self._start(number)
            with self.open_store() as store:
                try:
                    self._serve(store, on_ready)
                finally:
                    self._stop_all(store)
        finally:
            self._terminate()
            for worker in self._workers.values():
                _reap(worker)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return self.stats

    def _stop_signal(self, signum: int, _: Any) -> None:
        self._stopping = True

    def _start(self, number: int) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_work, args=(theirs, self.sock, self.config),
                                        name=f"crisiscomms-receipts-{number}", daemon=False)
        process.start()
        theirs.close()
        return _Worker(number, process, ours, time.monotonic())

    def _serve(self, store: ReceiptStore, on_ready: Callable[[], None]) -> None:
        announced = False
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._stopping:
            self._handle_messages(store, timeout=0.5)
            if not announced:
                if all(worker.ready for worker in self._workers.values()):
                    on_ready()
                    announced = True
                elif time.monotonic() > deadline:
                    raise CrisisCommsError(f"the receipt workers did not start within {READY_TIMEOUT:.0f} s")

    def _handle_messages(self, store: ReceiptStore, timeout: float) -> None:
        """Answer every group the workers sent; note who is ready, who stopped, who died."""
        waiting = {worker.pipe: worker for worker in self._workers.values() if not worker.done}
        for pipe in multiprocessing.connection.wait(list(waiting), timeout=timeout):
            worker = waiting[pipe]  # type: ignore[index]
            try:
                message = worker.pipe.recv()
            except (EOFError, OSError):
                self._lost(worker)
                continue
            self._handle(worker, message, store)

    def _handle(self, worker: _Worker, message: object, store: ReceiptStore) -> None:
        if message == "ready":
            worker.ready = True
        elif isinstance(message, list):
            answer = _applied(store, message)  # applied even if the worker died meanwhile: the provider resends
            try:
                worker.pipe.send(answer)
            except OSError:
                self._lost(worker)
        elif isinstance(message, collections.Counter):
            self.stats.update(message)
            worker.done = True
        elif isinstance(message, CrisisCommsError):
            raise message  # it could not start: the ledger or the socket is the problem, for all of them

    def _lost(self, worker: _Worker) -> None:
        """A worker's pipe closed without its counts: it died. Start it again, unless stopping or it just began."""
        worker.done = True
        _reap(worker)
        if self._stopping:
            return
        if time.monotonic() - worker.started < MIN_LIFETIME:
            raise CrisisCommsError(f"receipt worker {worker.number + 1} stopped right after its start (exit code "
                                   f"{worker.process.exitcode}); see the lines above. The others were stopped.")
        self.say(f"Receipt worker {worker.number + 1} stopped (exit code {worker.process.exitcode}); starting it "
                 "again. The others went on receiving; what it applied is in the ledger, its counts are not in the "
                 "totals.")
        self._workers[worker.number] = self._start(worker.number)

    def _stop_all(self, store: ReceiptStore) -> None:
        """SIGTERM to every worker; go on answering their last groups until each has sent its counts."""
        self._stopping = True
        self._terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(not worker.done for worker in self._workers.values()) and time.monotonic() < deadline:
            self._handle_messages(store, timeout=0.2)


    def _terminate(self) -> None:
        for worker in self._workers.values():
            if worker.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid or 0, signal.SIGTERM)


def _applied(store: ReceiptStore, events: list[DeliveryEvent]) -> AppliedCounts | CrisisCommsError:
    try:
        return store.apply(events)
    except CrisisCommsError as error:
        return error


def _reap(worker: _Worker) -> None:
    with contextlib.suppress(OSError):
        worker.pipe.close()
    worker.process.join(STOP_TIMEOUT)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join(STOP_TIMEOUT)


# -- a worker -------------------------------------------------------------------------------------------------


class _ToTheWriter:
    """A worker's store: each group commit goes over the pipe to the writer, which answers its counts.

    It opens a "writer" (itself), so the server's group commits wait for the answer in their thread while
    the event loop goes on reading and verifying."""

    def __init__(self, pipe: multiprocessing.connection.Connection) -> None:
        self.pipe = pipe

    def open_writer(self) -> tuple[_ToTheWriter, Callable[[], None]]:
        return self, lambda: None

    def apply(self, events: Sequence[DeliveryEvent]) -> AppliedCounts:
        try:
            self.pipe.send(list(events))
            answer = self.pipe.recv()
        except (EOFError, OSError):
            raise LedgerError("the receipts writer has stopped; the request is answered 503") from None
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, AppliedCounts)
        return answer

    def known_provider_ids(self, channel: ReceiptChannel, provider_ids: Iterable[str]) -> set[str]:
        raise NotImplementedError("a receipt worker only forwards events to the writer")

    def accepted_without_final_status(self, campaign: str | None) -> Iterable[AwaitingReceipt]:
        raise NotImplementedError("a receipt worker only forwards events to the writer")


def _work(pipe: multiprocessing.connection.Connection, sock: socket.socket, config: ServerConfig) -> None:
    """One worker process: a server on the shared socket writing through the pipe, until SIGINT/SIGTERM."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)  # the loop's handlers take over below
    server = ReceiptServer(_ToTheWriter(pipe), config)
    try:
        asyncio.run(_serve(server, sock, pipe))
    except CrisisCommsError as error:
        with contextlib.suppress(OSError):
            pipe.send(error)
        sys.exit(1)
    with contextlib.suppress(OSError):
        pipe.send(server.stats)


async def _serve(server: ReceiptServer, sock: socket.socket, pipe: multiprocessing.connection.Connection) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await server.start(sock=sock)
    pipe.send("ready")
    try:
        await stop.wait()
    finally:
        await server.stop()
