"""The team ledger (PostgreSQL): one sender against two joined senders, and the ledger's cost per message.

Two parts, both in ``bench/run.py``'s table (``--only team``):

* **Joined senders.** A throwaway PostgreSQL cluster with PostgreSQL's durable defaults (fsync, synchronous
  commit: ``crisiscomms.testing.pgcluster.running_server(durable=True)``) holds the team ledger. A plan of N SMS
  is made into it, then sent against the stand-in (50 ms latency) by one sender, and, into a second database, by
  two senders in two working folders (two per-user state folders: two operators' machines), the second started
  with ``send --plan ID --join`` once the first has had its first requests accepted. Each sender is capped by
  its own ``--concurrency`` (requests in flight at 50 ms each: the cap of one host's connections), so the cap,
  not the CPU, is the limit. ``--sms-rate`` is not used as the cap: a rate given per channel is the campaign's
  and is shared by its senders by design. The rate is the stand-in's own: accepted SMS between the first and the
  last, over both senders; every number must be accepted exactly once.
* **Ledger cost per message.** The same dispatch-shaped loop over the ``Ledger`` interface on SQLite (a file
  in the work folder, WAL + ``synchronous=FULL``) and on the durable PostgreSQL cluster: write a plan of M rows,
  then per claimed batch of 100: ``claim_batch`` → ``mark_in_flight`` → ``record`` each outcome → ``flush`` (one
  commit per batch, as the sender's group commit). No provider: the figures are the ledger's time alone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import (
    AT,
    LATENCY,
    NOTICE,
    PLAYBOOK,
    Context,
    Figure,
    Standin,
    _check,
    audience,
    cli_env,
    console,
    fresh_dir,
    run,
    span_rate,
)

from crisiscomms.ledger import LedgerLocation, open_ledger
from crisiscomms.ledger.base import CampaignInfo, ClaimPolicy, Holder, Ledger, NewPlan, Outcome, PlanRow
from crisiscomms.ledger.liveness import process_start, this_host
from crisiscomms.testing.pgcluster import PgServer, running_server

PER_SENDER_CONCURRENCY = 5  # 5 requests in flight at 50 ms: 100 SMS/s per sender at most
JOIN_AFTER = 20  # the second sender starts once the stand-in has accepted this many of the first's
TARGET_RATIO = 1.7
BATCH = 100  # the shared ledger's claim batch (crisiscomms.campaign.send.SHARED_CLAIM_BATCH)


def bench_team(ctx: Context) -> list[Figure]:
    with running_server(durable=True) as server:
        if isinstance(server, str):
            return [Figure("team", "team ledger (PostgreSQL)", None, "", note=f"skipped: {server}")]
        console.log(f"PostgreSQL {server.host}:{server.port} (durable defaults)")
        return _joined_senders(ctx, server) + _ledger_cost(ctx, server)


# --------------------------------------------------------------------------- one sender vs two joined senders


def _joined_senders(ctx: Context, server: PgServer) -> list[Figure]:
    count = ctx.size(3_000, 800)
    path, _ = audience(ctx, count, clean=True)
    results: dict[int, dict[str, Any]] = {}
    with Standin(ctx, "team", latency=LATENCY) as standin:
        for senders in (1, 2):
            standin.reset()
            database = f"team_{senders}"
            server.execute(f"CREATE DATABASE {database}")
            env = {**cli_env(standin.url), "CRISISCOMMS_LEDGER": server.url(database), "PGPASSWORD": server.password}
            results[senders] = _send_with(ctx, standin, path, env, senders)
            if senders == 2:
                results[senders].update(_overlap(standin.record()["sms"], _holders(server, database)))
    one, two = results[1], results[2]
    ratio = two["rate"] / one["rate"] if one["rate"] and two["rate"] else None
    both = two.get("overlap_rate")
    steady = both / one["rate"] if both and one["rate"] else None
    exactly_once = one["exactly_once"] and two["exactly_once"]
    cap = PER_SENDER_CONCURRENCY / LATENCY
    ctx.details["team"] = {"count": count, "concurrency": PER_SENDER_CONCURRENCY, "results": results}
    return [
        Figure("team", f"{count:,} SMS, one sender (--concurrency {PER_SENDER_CONCURRENCY}, ≤ {cap:.0f}/s)",
               one["rate"], "SMS/s", note=f"span {one['span']:.1f} s; {one['verdict']}"),
        Figure("team", f"{count:,} SMS, two joined senders (same cap each)", two["rate"], "SMS/s",
               note=f"span {two['span']:.1f} s; {two['verdict']}; the second joined after {JOIN_AFTER} accepted"),
        Figure("team", "  two over one, first to last SMS (the join's start-up included)", ratio, "×",
               note="same stand-in, same run"),
        Figure("team", "  two over one, while both send", steady, "×", f"≥ {TARGET_RATIO}",
               steady is not None and steady >= TARGET_RATIO and exactly_once,
               note=f"{two.get('overlap_count', 0):,} SMS in the {two.get('overlap_span', 0):.1f} s both had "
                    "requests accepted (SIDs matched to each sender's ledger rows); pass also needs every SMS "
                    "exactly once in both runs"),
    ]


def _send_with(ctx: Context, standin: Standin, path: Path, env: dict[str, str], senders: int) -> dict[str, Any]:
    folders = [fresh_dir(ctx, f"team-{senders}-{n}") for n in range(senders)]
    argv = [ctx.crisiscomms, "plan", str(PLAYBOOK), "--notice", NOTICE, "--audience", str(path), "--at", AT,
            "--channels", "sms", "--format", "json"]
    ctx.note_command("team", argv)
    planned = run(argv, cwd=folders[0], env=env)
    _check(planned, "crisiscomms plan into the team ledger")
    plan_id = json.loads(planned.stdout)["plan"]
    send = [ctx.crisiscomms, "send", "--plan", plan_id, "--yes", "--concurrency", str(PER_SENDER_CONCURRENCY)]
    ctx.note_command("team", send)
    with _started(send, folders[0], env) as first:
        if senders == 2:
            _wait_for_accepted(standin, JOIN_AFTER, first)
            ctx.note_command("team", [*send, "--join"])
            with _started([*send, "--join"], folders[1], env) as second:
                _finished(second, "the joined sender")
        _finished(first, "the first sender")
    record = standin.record()["sms"]
    rate, span = span_rate(record)
    per_number = Counter(r["to"] for r in record)
    exactly_once = len(per_number) == int(json.loads(planned.stdout)["planned"]["sms"]) \
        and set(per_number.values()) == {1}
    twice = sum(1 for n in per_number.values() if n > 1)
    verdict = f"{len(per_number):,} numbers, each once" if exactly_once else f"NOT exactly once ({twice} twice)"
    return {"rate": rate, "span": span, "accepted": len(record), "exactly_once": exactly_once, "verdict": verdict}


def _holders(server: PgServer, database: str) -> dict[str, str]:
    """SMS SID → the sender (lease holder) whose claimed row it was, from the team ledger itself."""
    import psycopg

    with psycopg.connect(server.admin_conninfo(database)) as connection:
        rows = connection.execute("SELECT provider_id, holder FROM messages WHERE state = 'accepted'").fetchall()
    return {str(sid): str(holder) for sid, holder in rows}


def _overlap(record: list[dict[str, Any]], holders: dict[str, str]) -> dict[str, float]:
    """The rate over the window in which both senders had requests accepted (from the later one's first to the
    earlier one's last accepted SMS)."""
    times: dict[str, list[float]] = {}
    for sms in record:
        stamp = dt.datetime.fromisoformat(sms["created_at"]).timestamp()
        times.setdefault(holders.get(sms["sid"], "?"), []).append(stamp)
    if len(times) != 2 or "?" in times:
        return {}
    start = max(min(stamps) for stamps in times.values())
    end = min(max(stamps) for stamps in times.values())
    inside = sum(1 for stamps in times.values() for stamp in stamps if start <= stamp <= end)
    span = end - start
    return {"overlap_rate": (inside - 1) / span, "overlap_span": span, "overlap_count": inside} if span > 0 else {}


@contextmanager
def _started(argv: list[str], cwd: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """A sender in its own working folder with its own per-user state (another operator's machine)."""
    process = subprocess.Popen(argv, cwd=cwd, env={**env, "XDG_STATE_HOME": str(cwd / ".state")},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)


def _finished(process: subprocess.Popen[str], who: str) -> None:
    out, err = process.communicate(timeout=900)
    if process.returncode != 0:
        raise RuntimeError(f"{who} exited {process.returncode}:\n{(err or out)[-2000:]}")


def _wait_for_accepted(standin: Standin, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while len(standin.record()["sms"]) < count:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the first sender had {count} SMS accepted neither before it ended nor in time")
        time.sleep(0.05)


# --------------------------------------------------------------------------- the ledger's time per message


def _ledger_cost(ctx: Context, server: PgServer) -> list[Figure]:
    count = ctx.size(20_000, 2_000)
    server.execute("CREATE DATABASE ledger_cost")
    backends: dict[str, Callable[[], Ledger]] = {
        "SQLite": lambda: open_ledger(LedgerLocation(str(fresh_dir(ctx, "cost") / "ledger.sqlite"), "bench")),
        "PostgreSQL": lambda: _open_pg(server),
    }
    timings = {name: _time_ledger(opener, count) for name, opener in backends.items()}
    ctx.details["team_ledger"] = {"count": count, "timings": timings}
    sqlite, pg = timings["SQLite"], timings["PostgreSQL"]
    return [
        Figure("team", f"ledger per message, SQLite (plan of {count:,}; claim, in flight, outcome, commit / 100)",
               sqlite["per_message_us"], "µs", note=f"plan written at {sqlite['plan_rows_per_s']:,.0f} rows/s"),
        Figure("team", "ledger per message, PostgreSQL (durable, loopback)", pg["per_message_us"], "µs",
               note=f"plan written at {pg['plan_rows_per_s']:,.0f} rows/s"),
        Figure("team", "  PostgreSQL over SQLite", pg["per_message_us"] / sqlite["per_message_us"], "×",
               note=f"at 100 SMS/s per sender: {pg['per_message_us'] * 100 / 1e3:.0f} ms of each second in the "
                    "ledger on PostgreSQL"),
    ]


def _open_pg(server: PgServer) -> Ledger:
    os.environ["PGPASSWORD"] = server.password  # as an operator's environment gives it (never in the URL shown)
    return open_ledger(LedgerLocation(server.url("ledger_cost"), "bench"))


def _time_ledger(opener: Callable[[], Ledger], count: int) -> dict[str, float]:
    ledger = opener()
    try:
        campaign = "bench/team-ledger"
        holder = Holder(this_host(), os.getpid(), "bench", process_start(os.getpid()))
        started = time.perf_counter()
        writer = ledger.plan_writer(NewPlan(CampaignInfo(campaign, "team-ledger", "bench", "bench"), "v1", AT,
                                            "bench", ("sms",), False, "{}"))
        for first in range(0, count, 5_000):
            writer.add([_row(seq) for seq in range(first, min(count, first + 5_000))], [])
        plan_id = writer.finish("b" * 16, "{}")
        planned = time.perf_counter() - started
        ledger.acquire_lease(campaign, holder)
        policy = ClaimPolicy("2026-12-02T09:00:00+00:00", "v1")
        started, sent, after = time.perf_counter(), 0, -1
        while True:
            claims, cursor = ledger.claim_batch(campaign, plan_id, holder, policy, after_seq=after, limit=BATCH)
            if not claims:
                break
            ledger.mark_in_flight(campaign, holder, [(c.row.channel, c.row.address, None) for c in claims])
            for claim in claims:
                ledger.record(campaign, Outcome(claim.row.channel, claim.row.address, "accepted", 1, "accepted",
                                                provider_id=f"SM{claim.row.seq:032d}"))
            ledger.flush()
            sent += len(claims)
            if cursor is None:
                break
            after = cursor
        seconds = time.perf_counter() - started
        ledger.release_lease(campaign, holder)
        if sent != count:
            raise RuntimeError(f"the ledger loop reached {sent} of {count} rows")
        return {"per_message_us": seconds / count * 1e6, "plan_rows_per_s": count / planned, "seconds": seconds}
    finally:
        ledger.close()


def _row(seq: int) -> PlanRow:
    return PlanRow(seq, "sms", f"+4670{seq:07d}", f"c-{seq}", seq + 2, "sv", "Europe/Stockholm", None, "{}")


# --------------------------------------------------------------------------- docs/benchmarks.md


def team_section(add: Callable[[str], None], details: dict[str, Any]) -> None:
    """The doc's section on the team ledger (what was measured, how, and the figures behind the table)."""
    joined, cost = details.get("team"), details.get("team_ledger")
    add("### Team ledger (PostgreSQL): one sender and two joined senders")
    add("")
    add("A throwaway PostgreSQL cluster with its durable defaults (fsync and synchronous commit on) holds the "
        "ledger. Each sender runs in a working folder and per-user state folder of its own (another operator's "
        f"machine) and is capped by `--concurrency {PER_SENDER_CONCURRENCY}` at the stand-in's "
        f"{LATENCY * 1000:.0f} ms latency (≤ {PER_SENDER_CONCURRENCY / LATENCY:.0f} SMS/s each): the cap, not the "
        "CPU, is the limit. `--sms-rate` is not the cap here: a channel's rate is the campaign's and is shared by "
        f"its senders. The second sender starts `send --plan ID --join` once {JOIN_AFTER} SMS of the first are "
        "accepted. *While both send* counts the stand-in's accepted SMS between the later sender's first and the "
        "earlier one's last (each SID matched to the sender whose ledger row it is).")
    add("")
    if joined:
        add("| senders | SMS | first→last rate | span | while both send | exactly once |")
        add("| --- | --- | --- | --- | --- | --- |")
        for senders, row in sorted(joined["results"].items()):
            both = f"{row['overlap_rate']:.0f}/s over {row['overlap_span']:.1f} s" if "overlap_rate" in row else "—"
            add(f"| {senders} | {row['accepted']:,} | {row['rate']:.0f}/s | {row['span']:.1f} s | {both} | "
                f"{row['verdict']} |")
        add("")
    if cost:
        add(f"Ledger time per message ({cost['count']:,} plan rows; per claimed batch of {BATCH}: `claim_batch`, "
            "`mark_in_flight`, `record` of each outcome, `flush` = one commit), no provider involved:")
        add("")
        add("| ledger | µs per message | plan rows written per second |")
        add("| --- | --- | --- |")
        for name, timing in cost["timings"].items():
            add(f"| {name} | {timing['per_message_us']:.0f} | {timing['plan_rows_per_s']:,.0f} |")
        add("")
