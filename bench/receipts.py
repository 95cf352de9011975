"""Receipt ingest benchmark: signed receipts per second into a ReceiptStore (bounded: about 30 s).

    python bench/receipts.py [--seconds 4] [--concurrency 64] [--store MODULE:FACTORY] [--send-rate N]

The figures, each measured for at most ``--seconds``:

* ``store``: ``ReceiptStore.apply`` alone, one event per call (the ceiling the store sets
  without group commits: one transaction and fsync per event);
* ``twilio``: signed status callbacks POSTed to ``/twilio/status`` of a running
  ``ReceiptServer`` (one event per request, as Twilio sends them; ``X-Twilio-Signature``
  checked with the SDK's RequestValidator), ``--concurrency`` keep-alive connections with
  one request in flight each, sent by a lean asyncio-streams client;
* ``twilio-aiohttp``: the same with an aiohttp client (which costs about 4× the lean
  client's CPU per request, CPU the server shares on a small machine);
* ``aiohttp-floor``: the same lean client against an aiohttp handler that only reads the
  body and answers ok (nothing verified or stored): what any aiohttp receiver reaches here;
  the twilio figures are also given as a share of it;

  the clients of these three take turns (three slices each, from one client process), so
  that on a shared, noisy machine their ratios compare like with like;
* ``sendgrid``: signed Event Webhook posts of 100 events each to ``/sendgrid/events``
  (ECDSA P-256 checked with the SDK's EventWebhook);
* with ``--store sqlite``, ``twilio-workers``: the whole command, ``crisiscomms receipts serve --workers
  N`` in a process of its own on a new ledger, the lean client at ``--concurrency`` connections, and
  ``twilio-workers-M`` the same at ``--many`` connections; each checks that the ledger holds every callback
  answered 200.

Every event names a different accepted message, so each one is really applied (no
duplicates). Signatures are computed before the clock starts: the figure is the
server's, not the client's. The server runs on its own event loop in a thread (with the
SQLite store, its group commits run in the server's writer thread); the client in another
process (so it does not compete for the server's interpreter lock). The client's CPU per
request is reported (``client_cpu_us_per_request``).

``--store`` names a factory ``f(sids: list[str], campaign: str) -> ReceiptStore`` whose store
already has an accepted SMS row for each sid and an e-mail row for recipients
``r0..r{n-1}`` of ``campaign`` (default: the in-memory store; ``sqlite``: a new SQLite
ledger). ``--send-rate`` (SMS/s measured by ``bench/run.py``) adds the ratio of ingest to
send rate.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import importlib
import json
import multiprocessing
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crisiscomms.delivery.receipts.events import twilio_event
from crisiscomms.delivery.receipts.server import TWILIO_PATH, ReceiptServer, ServerConfig
from crisiscomms.delivery.receipts.store import MemoryReceiptStore, ReceiptStore
from crisiscomms.testing.standin_receipts import SendGridSigner, twilio_signature

TOKEN = "bench-twilio-auth-token"
CAMPAIGN = "bench"
EVENTS_PER_POST = 100
POOL = 20_000  # distinct messages prepared per figure
TWILIO_POOL = 40_000  # one callback each per Twilio figure: enough for 4 s at 10,000/s


def memory_store(sids: list[str], campaign: str) -> ReceiptStore:
    store = MemoryReceiptStore()
    for index, sid in enumerate(sids):
        store.add_row(campaign, "sms", f"s{index}", sid)
    for index in range(len(sids)):
        store.add_row(campaign, "email", f"r{index}", f"M{index}")
    return store


class _SqliteStoreInItsThread:
    """The SQLite-ledger store, opened on first use by the thread that uses it (SQLite connections stay
    in their thread; the server runs on its own)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._store: Any = None

    def _open(self) -> Any:
        if self._store is None:
            from crisiscomms.delivery.receipts.sqlite_store import SqliteReceiptStore
            from crisiscomms.ledger.sqlite import SqliteLedger

            self._store = SqliteReceiptStore(SqliteLedger.open(self.path))
        return self._store

    def apply(self, events: Any) -> Any:
        return self._open().apply(events)

    def known_provider_ids(self, channel: Any, provider_ids: Any) -> Any:
        return self._open().known_provider_ids(channel, provider_ids)

    def accepted_without_final_status(self, campaign: Any) -> Any:
        return self._open().accepted_without_final_status(campaign)

    def open_writer(self) -> Any:
        """As the real store: the receipts server's writer thread opens its own connection."""
        from crisiscomms.delivery.receipts.sqlite_store import SqliteReceiptStore
        from crisiscomms.ledger.sqlite import SqliteLedger

        ledger = SqliteLedger.open(self.path)
        return SqliteReceiptStore(ledger), ledger.close


def sqlite_store(sids: list[str], campaign: str) -> ReceiptStore:
    """A fresh SQLite ledger (synchronous=FULL, as in production) with an accepted row per message."""
    import tempfile

    from crisiscomms.ledger.base import CampaignInfo, Holder, now_iso
    from crisiscomms.ledger.sqlite import SqliteLedger

    folder = tempfile.mkdtemp(prefix="receipts-bench-")
    atexit.register(shutil.rmtree, folder, True)  # the ledgers are large: none is left behind
    path = Path(folder) / "ledger.sqlite"
    ledger = SqliteLedger.open(path)
    ledger.ensure_campaign(CampaignInfo(campaign, "n", "bench", "bench.yaml"))
    ledger.acquire_lease(campaign, Holder("bench", 1, "bench"))
    stamp = now_iso()
    rows = [(campaign, "sms", f"+4670{index:07d}", f"s{index}", sid) for index, sid in enumerate(sids)]
    rows += [(campaign, "email", f"r{index}@example.se", f"r{index}", f"M{index}") for index in range(len(sids))]
    with ledger._transaction():
        ledger.db.executemany(
            "INSERT INTO messages (campaign, channel, address, recipient_id, line, locale, state, provider_id, "
            "updated_at) VALUES (?, ?, ?, ?, 0, 'sv', 'accepted', ?, ?)", [(*row, stamp) for row in rows])
    ledger.close()
    return _SqliteStoreInItsThread(path)


def load_factory(spec: str | None) -> Callable[[list[str], str], ReceiptStore]:
    if not spec:
        return memory_store
    if spec == "sqlite":
        return sqlite_store
    module, _, name = spec.partition(":")
    factory: Callable[[list[str], str], ReceiptStore] = getattr(importlib.import_module(module), name)
    return factory


def sids(count: int, prefix: int) -> list[str]:
    return [f"SM{prefix:02x}{index:030x}" for index in range(count)]


class FloorServer(ReceiptServer):
    """The floor under ``/twilio/status``: aiohttp reading the body and answering ok, nothing verified,
    parsed or stored (what any aiohttp receiver costs here, measured the same way)."""

    def routes(self) -> Any:
        return {"/twilio/status": {"POST": self._floor}}  # the same low-level aiohttp server and dispatch

    async def _floor(self, request: web.BaseRequest) -> web.Response:
        await request.read()
        self.stats["twilio.events.applied"] += 1
        return web.Response(text="ok\n")


class ServerThread:
    """A ReceiptServer on its own event loop in a daemon thread."""

    def __init__(self, store: ReceiptStore, signer: SendGridSigner,
                 server_class: type[ReceiptServer] = ReceiptServer) -> None:
        self.server = server_class(store, ServerConfig.from_environ(
            "http://127.0.0.1:1", {"TWILIO_AUTH_TOKEN": TOKEN, "SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_key}))
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        await self.server.start()
        self.server.config = type(self.server.config)(**{**self.server.config.__dict__,
                                                         "public_url": self.server.url})
        self._ready.set()
        await self._stop.wait()
        await self.server.stop()

    def __enter__(self) -> ReceiptServer:
        self._thread.start()
        self._ready.wait(10)
        return self.server

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def bench_store(factory: Callable[[list[str], str], ReceiptStore], seconds: float) -> dict[str, Any]:
    pool = sids(POOL, 1)
    store = factory(pool, CAMPAIGN)
    events = [twilio_event({"MessageSid": sid, "MessageStatus": "delivered"}) for sid in pool]
    started = time.perf_counter()
    done = 0
    for event in events:
        store.apply([event])
        done += 1
        if done % 1000 == 0 and time.perf_counter() - started > seconds:
            break
    elapsed = time.perf_counter() - started
    return {"events": done, "seconds": round(elapsed, 2), "per_second": round(done / elapsed)}


async def post_all(url: str, bodies: list[tuple[bytes, dict[str, str]]], concurrency: int,
                   seconds: float) -> tuple[int, float, dict[int, int]]:
    statuses: dict[int, int] = {}
    position = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def worker() -> None:
            nonlocal position
            while position < len(bodies) and time.perf_counter() < deadline:
                body, headers = bodies[position]
                position += 1
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return sum(statuses.values()), time.perf_counter() - started, statuses


async def post_all_lean(url: str, bodies: list[tuple[bytes, dict[str, str]]], concurrency: int,
                        seconds: float) -> tuple[int, float, dict[int, int]]:
    """As :func:`post_all` (``concurrency`` keep-alive HTTP/1.1 connections, one request in flight on each,
    no pipelining), with requests prepared as bytes and answers read with asyncio streams: a client that
    costs the CPU both share far less than aiohttp's."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    wire = [_request_bytes(parts.path, f"{host}:{port}", body, headers) for body, headers in bodies]
    statuses: dict[int, int] = {}
    position = 0
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal position
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while position < len(wire) and time.perf_counter() < deadline:
                request = wire[position]
                position += 1
                writer.write(request)
                status = await _read_response(reader)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return sum(statuses.values()), time.perf_counter() - started, statuses


def _request_bytes(path: str, host: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


CLIENTS = {"aiohttp": post_all, "lean": post_all_lean}


def _client_process(url: str, bodies: list[tuple[bytes, dict[str, str]]], concurrency: int, seconds: float,
                    results: Any, client: str) -> None:
    started = time.process_time()
    outcome = asyncio.run(CLIENTS[client](url, bodies, concurrency, seconds))
    results.put((*outcome, time.process_time() - started))


def post_from_another_process(url: str, bodies: list[tuple[bytes, dict[str, str]]], concurrency: int,
                              seconds: float, client: str = "aiohttp") -> tuple[int, float, dict[int, int], float]:
    """The client in its own process, so that it does not share the server's interpreter lock; the last
    figure is the CPU seconds the client process used."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    process = context.Process(target=_client_process, args=(url, bodies, concurrency, seconds, results, client))
    process.start()
    outcome: tuple[int, float, dict[int, int], float] = results.get(timeout=seconds + 30)
    process.join(10)
    return outcome


#: The three Twilio figures: (name, client, server). Their clients take turns in short slices, so that
#: on a shared machine each figure sees the same load and their ratios hold within one run.
TWILIO_FIGURES = (("twilio", "lean", "receipts"), ("twilio-aiohttp", "aiohttp", "receipts"),
                  ("aiohttp-floor", "lean", "floor"))
#: Which :data:`TWILIO_POOL`-sized share of the signed callbacks each figure sends: the two receipt
#: figures distinct messages, the floor (which stores nothing) the first figure's again.
SHARES = {"twilio": 0, "twilio-aiohttp": 1, "aiohttp-floor": 0}
SLICES = 3


def signed_callbacks(url: str, pool: list[str]) -> list[tuple[bytes, dict[str, str]]]:
    bodies = []
    for sid in pool:
        params = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": "AC" + "0" * 32}
        bodies.append((urlencode(params).encode(), {"X-Twilio-Signature": twilio_signature(TOKEN, url, params),
                                                    "Content-Type": "application/x-www-form-urlencoded"}))
    return bodies


async def take_turns(targets: list[tuple[str, str, str, int]], bodies: list[tuple[bytes, dict[str, str]]],
                     concurrency: int, seconds: float) -> dict[str, list[Any]]:
    """Each target (name, client, url, share of ``bodies``) ``seconds`` in all, in :data:`SLICES` turns;
    per target: requests, seconds, statuses, client CPU seconds."""
    share = TWILIO_POOL
    done: dict[str, list[Any]] = {name: [0, 0.0, {}, 0.0] for name, *_ in targets}
    for _ in range(SLICES):
        for name, client, url, index in targets:
            tally = done[name]
            mine = bodies[index * share + tally[0]:(index + 1) * share]
            started = time.process_time()
            requests, elapsed, statuses = await CLIENTS[client](url, mine, concurrency, seconds / SLICES)
            tally[0] += requests
            tally[1] += elapsed
            tally[3] += time.process_time() - started
            for status, count in statuses.items():
                tally[2][status] = tally[2].get(status, 0) + count
    return done


def _turns_process(targets: list[tuple[str, str, str, int]], bodies: list[tuple[bytes, dict[str, str]]],
                   concurrency: int, seconds: float, results: Any) -> None:
    results.put(asyncio.run(take_turns(targets, bodies, concurrency, seconds)))


def bench_twilio(factory: Callable[[list[str], str], ReceiptStore], seconds: float,
                 concurrency: int) -> dict[str, dict[str, Any]]:
    """The :data:`TWILIO_FIGURES`, their clients taking turns from one other process."""
    pool = sids(TWILIO_POOL * 2, 2)
    signer = SendGridSigner()
    with ServerThread(factory(pool, CAMPAIGN), signer) as server, \
            ServerThread(MemoryReceiptStore(), signer, FloorServer) as floor:
        url = server.url + TWILIO_PATH  # the floor checks no signature: it gets the same bodies
        urls = {"receipts": url, "floor": floor.url + TWILIO_PATH}
        targets = [(name, client, urls[kind], SHARES[name]) for name, client, kind in TWILIO_FIGURES]
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        process = context.Process(target=_turns_process,
                                  args=(targets, signed_callbacks(url, pool), concurrency, seconds, results))
        process.start()
        done: dict[str, list[Any]] = results.get(timeout=3 * seconds + 60)
        process.join(10)
        applied = server.stats["twilio.events.applied"]
    answered = sum(done[name][2].get(200, 0) for name, _, kind in TWILIO_FIGURES if kind == "receipts")
    if applied != answered:
        raise SystemExit(f"twilio: {answered} callbacks answered 200 but {applied} applied")
    return {name: {"client": client, "requests": done[name][0], "seconds": round(done[name][1], 2),
                   "statuses": done[name][2], "client_cpu_us_per_request": round(
                       done[name][3] / max(done[name][0], 1) * 1e6),
                   "per_second": round(done[name][2].get(200, 0) / done[name][1])}
            for name, client, _ in TWILIO_FIGURES}


def bench_sendgrid(factory: Callable[[list[str], str], ReceiptStore], seconds: float,
                   concurrency: int) -> dict[str, Any]:
    signer = SendGridSigner()
    now = int(time.time())
    with ServerThread(factory(sids(POOL, 3), CAMPAIGN), signer) as server:
        bodies = []
        for start in range(0, POOL, EVENTS_PER_POST):
            events = [{"event": "delivered", "sg_event_id": f"e{i}", "sg_message_id": f"M{i}.filter0001.0",
                       "timestamp": now, "email": f"p{i}@example.org", "campaign": CAMPAIGN, "recipient": f"r{i}"}
                      for i in range(start, start + EVENTS_PER_POST)]
            payload = json.dumps(events)
            bodies.append((payload.encode(), signer.headers(payload, now)))
        posts, elapsed, statuses, _ = post_from_another_process(server.url + "/sendgrid/events", bodies,
                                                             max(concurrency // 8, 2), seconds)
        applied = server.stats["sendgrid.events.applied"]
    return {"posts": posts, "seconds": round(elapsed, 2), "statuses": statuses, "applied": applied,
            "per_second": round(applied / elapsed)}


def bench_twilio_workers(seconds: float, concurrency: int, workers: int) -> dict[str, Any]:
    """The whole command, ``crisiscomms receipts serve --workers N``, on a new SQLite ledger: the lean client
    from another process, and what the ledger holds afterwards (every answered callback must be there)."""
    import os
    import signal
    import socket
    import sqlite3
    import subprocess

    pool = sids(TWILIO_POOL, 4)
    store = sqlite_store(pool, CAMPAIGN)
    path = store.path  # type: ignore[attr-defined]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}{TWILIO_PATH}"
    server = subprocess.Popen([sys.executable, "-m", "crisiscomms", "receipts", "serve", "--listen",
                               f"127.0.0.1:{port}", "--ledger", str(path), "--workers", str(workers)],
                              env={**os.environ, "TWILIO_AUTH_TOKEN": TOKEN}, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        requests, elapsed, statuses, client_cpu = post_from_another_process(url, signed_callbacks(url, pool),
                                                                            concurrency, seconds, client="lean")
    finally:
        server.send_signal(signal.SIGINT)
        _, log = server.communicate(timeout=60)
    with contextlib.closing(sqlite3.connect(path)) as ledger:
        (delivered,), = ledger.execute("SELECT COUNT(*) FROM messages WHERE delivery_state = 'delivered'")
    if delivered != statuses.get(200, 0):
        raise SystemExit(f"twilio-workers: {statuses.get(200, 0)} callbacks answered 200 but the ledger holds "
                         f"{delivered} deliveries\n{log[-2000:]}")
    return {"client": "lean", "workers": workers, "requests": requests, "seconds": round(elapsed, 2),
            "statuses": statuses, "client_cpu_us_per_request": round(client_cpu / max(requests, 1) * 1e6),
            "in_ledger": delivered, "per_second": round(statuses.get(200, 0) / elapsed)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="the most each figure runs (default 4, at most 4)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--store", help="MODULE:FACTORY building the ReceiptStore (default: in memory)")
    parser.add_argument("--send-rate", type=float, help="SMS per second of a real send, for the ratio")
    parser.add_argument("--workers", type=int, default=2,
                        help="with --store sqlite: receipts serve --workers N as a whole command too (default 2)")
    parser.add_argument("--many", type=int, default=256,
                        help="connections of the whole command's second figure (default 256: Twilio's fleet keeps "
                             "rate x round trip callbacks in flight, 5,000/s x 50 ms = 250)")
    args = parser.parse_args(argv)
    seconds = min(max(args.seconds, 0.5), 4.0)  # five figures and their set-up take about 30 s in all
    factory = load_factory(args.store)
    results = {"store": bench_store(factory, seconds), **bench_twilio(factory, seconds, args.concurrency),
               "sendgrid": bench_sendgrid(factory, seconds, args.concurrency)}
    if args.store == "sqlite" and args.workers > 0:
        results["twilio-workers"] = bench_twilio_workers(seconds, args.concurrency, args.workers)
        results[f"twilio-workers-{args.many}"] = bench_twilio_workers(seconds, args.many, args.workers)
    print(f"{'figure':<14} {'receipts/s':>11}  details")
    for name, figure in results.items():
        details = ", ".join(f"{key} {value}" for key, value in figure.items() if key != "per_second")
        ratio = f", {figure['per_second'] / args.send_rate:.1f}× the send rate" if args.send_rate else ""
        if name.startswith("twilio"):
            ratio += f", {figure['per_second'] / results['aiohttp-floor']['per_second']:.2f}× the aiohttp floor"
        print(f"{name:<14} {figure['per_second']:>11,}  {details}{ratio}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
