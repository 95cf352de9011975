"""The team ledger: one PostgreSQL database that many machines (and several senders of one campaign) share.

Every method means what the SQLite ledger's method means (:mod:`.sqlite`); the differences:

* ``shared`` is True: ``acquire_lease(join=True)`` lets a second sender join a live campaign of the same plan,
  and :meth:`claim_batch` hands out the plan in exclusive chunks (:mod:`.pg_claims`);
* psycopg 3 *async* with its connection pool, run on an event-loop thread of this ledger
  (:class:`~.pg_connect.LoopThread`); a call that gets no answer in time, or a connection lost mid-run,
  raises :class:`~crisiscomms.ledger.base.LedgerUnavailable`: the sender stops at once;
* plan rows are written with COPY, outcomes and in-flight marks with one statement per batch (``unnest``).

Nothing here prints the URL's password: the ledger is named by its masked URL (``location``).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from ..errors import CrisisCommsError, LedgerError
from . import pg_claims, pg_connect, pg_writes
from .base import (
    REACHED_STATES,
    CampaignBusy,
    CampaignInfo,
    ChannelTimes,
    Claim,
    ClaimPolicy,
    Holder,
    LeaseGrant,
    NewPlan,
    Outcome,
    PlanHeader,
    PlanRow,
    Row,
    SkipRow,
    StopImport,
    TextChoice,
    now_iso,
)
from .base import Lease as LeaseRecord
from .pg_connect import (
    CALL_TIMEOUT_SECONDS,
    CONNECTION_OPTIONS,
    LoopThread,
    PgTarget,
    lost_connection,
    opening_problem,
    write_problem,
)
from .pg_schema import migrate, refuse_newer, stored_version
from .queries import (
    DECISION_SQL,
    MESSAGE_WIDTH,
    PLAN_COLUMNS,
    PLAN_ROW_COLUMNS,
    counts_query,
    message_row,
    not_reached_query,
    plan_header,
    plan_prefix,
    plan_row,
    rows_query,
    states_by_channel,
    the_one_plan,
)
from .sqlite import FLUSH_EVERY_ROWS, FLUSH_EVERY_SECONDS

T = TypeVar("T")
Connection = psycopg.AsyncConnection[tuple[Any, ...]]

#: A deadlock or serialisation failure rolled a whole transaction back (a receipts server and a sender locking
#: the same rows in another order): it is run again this many times before it counts as a ledger error.
ROLLBACK_RETRIES = 3

PG_DECISION_SQL = re.sub(r":(\w+)", r"%(\1)s", DECISION_SQL)  # decide() in SQL, with psycopg's placeholders


class PostgresLedger:
    """A PostgreSQL database. One instance is used by one thread (its pool runs on a thread of its own)."""

    def __init__(self, target: PgTarget, runner: LoopThread, pool: AsyncConnectionPool[Connection]) -> None:
        self.target, self.runner, self.pool = target, runner, pool
        self.location = target.shown
        self.shared = True  # several senders may join one campaign (send --join)
        self._pending_outcomes: list[tuple[str, Outcome]] = []
        self._last_flush = time.monotonic()
        self._lost = False  # the connection was lost once: close() does not wait for it again

    @classmethod
    def open(cls, target: PgTarget, *, create: bool = True) -> PostgresLedger:
        """Connect, create or check the schema, and open the pool — before anything is sent."""
        runner = LoopThread("crisiscomms-ledger")
        try:
            pool = runner.run(_open_pool(target, create=create), pg_connect.CONNECT_TIMEOUT_SECONDS * 4)
        except BaseException as error:
            runner.stop()
            if isinstance(error, KeyboardInterrupt):
                raise
            raise opening_problem(target, error) from None
        return cls(target, runner, pool)

    def close(self) -> None:
        try:
            if not self._lost:  # else the outcomes stay unwritten: their rows stay in flight, uncertain next run
                self.flush()
        finally:
            try:
                with contextlib.suppress(psycopg.Error, TimeoutError):
                    self.runner.run(self.pool.close(timeout=2), CALL_TIMEOUT_SECONDS)
            finally:
                self.runner.stop()

    # -- plumbing ---------------------------------------------------------------------------------------------

    def _call(self, work: Callable[[Connection], Awaitable[T]], *, transaction: bool = False) -> T:
        """Run ``work`` with a pooled connection on the ledger's loop; failures become the ledger's errors."""
        async def job() -> T:
            async with self.pool.connection() as connection:
                if not transaction:
                    return await work(connection)
                async with connection.transaction():
                    return await work(connection)

        try:
            for _ in range(ROLLBACK_RETRIES if transaction else 0):  # a rolled-back transaction left nothing
                with contextlib.suppress(psycopg.errors.TransactionRollback):
                    return self.runner.run(job(), CALL_TIMEOUT_SECONDS)
            return self.runner.run(job(), CALL_TIMEOUT_SECONDS)
        except CrisisCommsError:
            raise
        except (psycopg.OperationalError, psycopg.InterfaceError, TimeoutError) as error:
            self._lost = True
            raise lost_connection(self.target, error) from None
        except psycopg.Error as error:
            raise write_problem(self.target, error) from None

    def _fetch(self, sql: str, params: Sequence[object] | dict[str, object] = ()) -> list[tuple[Any, ...]]:
        async def work(connection: Connection) -> list[tuple[Any, ...]]:
            cursor = await connection.execute(sql, params)
            return await cursor.fetchall()
        return self._call(work)

    def _execute(self, sql: str, params: Sequence[object] = ()) -> int:
        async def work(connection: Connection) -> int:
            cursor = await connection.execute(sql, params)
            return cursor.rowcount
        return self._call(work)

    # -- campaigns --------------------------------------------------------------------------------------------

    def ensure_campaign(self, info: CampaignInfo) -> None:
        self._execute("INSERT INTO campaigns (campaign, notice, playbook, created_at, organisation, exercise) "
                      "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                      (info.campaign, info.notice, info.playbook, now_iso(), info.organisation, info.exercise))

    def campaigns(self) -> list[CampaignInfo]:
        return [CampaignInfo(str(c), str(n), str(o or ""), str(p), str(at), bool(x)) for c, n, p, at, o, x in
                self._fetch("SELECT campaign, notice, playbook, created_at, organisation, exercise "
                            "FROM campaigns ORDER BY created_at, campaign")]

    # -- plans ------------------------------------------------------------------------------------------------

    def plan_writer(self, plan: NewPlan) -> PgPlanWriter:
        self.ensure_campaign(plan.campaign)
        return PgPlanWriter(self, plan)

    def plan(self, reference: str) -> PlanHeader:
        reference = reference.strip().lower()
        rows = self._fetch(f"SELECT {PLAN_COLUMNS} FROM plans WHERE state = 'ready' AND id LIKE %s "
                           "ORDER BY created_at", (plan_prefix(reference),))
        return plan_header(the_one_plan(reference, rows, self.location))

    def plans(self, campaign: str | None = None) -> list[PlanHeader]:
        if campaign is None:
            found = self._fetch(f"SELECT {PLAN_COLUMNS} FROM plans WHERE state = 'ready' ORDER BY created_at")
        else:
            found = self._fetch(f"SELECT {PLAN_COLUMNS} FROM plans WHERE state = 'ready' AND campaign = %s "
                                "ORDER BY created_at", (campaign,))
        return [plan_header(row) for row in found]

    def plan_snapshot(self, plan_id: str) -> str:
        found = self._fetch("SELECT snapshot FROM plans WHERE id = %s", (plan_id,))
        if not found:
            raise LedgerError(f"plan {plan_id} is not in the ledger {self.location}")
        return str(found[0][0])

    def plan_rows(self, plan_id: str, *, after_seq: int = -1, limit: int = 1000) -> list[PlanRow]:
        key = self._plan_key(plan_id)
        return [plan_row(values) for values in self._fetch(
            f"SELECT {PLAN_ROW_COLUMNS} FROM plan_rows WHERE plan = %s AND seq > %s ORDER BY seq LIMIT %s",
            (key, after_seq, limit))]

    def plan_skips(self, plan_id: str) -> Iterator[SkipRow]:
        key = self._plan_key(plan_id)
        for line, rid, channel, reason, detail in self._fetch(
                "SELECT line, recipient_id, channel, reason, detail FROM plan_skips WHERE plan = %s ORDER BY n",
                (key,)):
            yield SkipRow(int(line), str(rid), str(channel), str(reason), str(detail))

    def approve(self, plan_id: str, operator: str, at: str) -> None:
        self._execute("UPDATE plans SET approved_by = %s, approved_at = %s WHERE id = %s", (operator, at, plan_id))

    def _plan_key(self, plan_id: str) -> int:
        found = self._fetch("SELECT key FROM plans WHERE id = %s", (plan_id,))
        if not found:
            raise LedgerError(f"plan {plan_id} is not in the ledger {self.location}")
        return int(found[0][0])

    # -- leases and claims (see pg_claims) --------------------------------------------------------------------

    def acquire_lease(self, campaign: str, holder: Holder, *, join: bool = False) -> LeaseGrant:
        grant, busy = self._call(lambda c: pg_claims.acquire(c, campaign, holder, join=join))
        if busy is not None:
            raise CampaignBusy(busy)  # after the transaction: the reaping of dead senders is kept
        assert grant is not None
        return grant

    def heartbeat(self, campaign: str, holder: Holder) -> bool:
        return self._execute("UPDATE leases SET heartbeat_at = clock_timestamp() WHERE campaign = %s AND token = %s",
                             (campaign, holder.token)) == 1

    def live_senders(self, campaign: str) -> int:
        return len(self._call(lambda c: pg_claims.live_leases(c, campaign)))

    def release_lease(self, campaign: str, holder: Holder) -> None:
        self._call(lambda c: pg_claims.release(c, campaign, holder), transaction=True)

    def leases(self) -> list[LeaseRecord]:
        return [lease for lease, _ in self._call(lambda c: pg_claims.all_leases(c, None))]

    def in_flight_to_uncertain(self, campaign: str) -> int:
        """Rows in flight whose sender is no longer live may have been sent: uncertain (a live co-sender's stay)."""
        return self._call(lambda c: pg_claims.orphans_to_uncertain(c, campaign))

    def claim_batch(self, campaign: str, plan_id: str, holder: Holder, policy: ClaimPolicy, *,
                    after_seq: int, limit: int) -> tuple[list[Claim], int | None]:
        """The next chunk of ``limit`` plan rows with something to send, exclusively this sender's.

        ``after_seq`` is not used: the chunks of the sender's round (in the ledger) say what is left."""
        key = self._plan_key(plan_id)
        return self._call(lambda c: pg_claims.claim_next_chunk(c, campaign, key, holder, policy, limit))

    def mark_in_flight(self, campaign: str, holder: Holder, entries: Sequence[tuple[str, str, str | None]]) -> None:
        """Committed before the requests leave, with the lease checked in the same transaction (LeaseLost)."""
        self._call(lambda c: pg_claims.mark_in_flight(c, campaign, holder, entries), transaction=True)

    # -- delivery ---------------------------------------------------------------------------------------------

    def has_messages(self, campaign: str) -> bool:
        return bool(self._fetch("SELECT 1 FROM messages WHERE campaign = %s LIMIT 1", (campaign,)))

    def reached_with_other_text(self, campaign: str, text_version: str) -> Counter[str]:
        return Counter({str(channel): int(n) for channel, n in self._fetch(
            "SELECT channel, COUNT(*) FROM messages WHERE campaign = %s AND state = ANY(%s) AND channel != 'banner' "
            "AND text_version IS NOT NULL AND text_version != %s GROUP BY channel",
            (campaign, list(REACHED_STATES), text_version))})

    def text_choice(self, campaign: str, text_version: str) -> tuple[TextChoice, str, str] | None:
        found = self._fetch("SELECT choice, operator, at FROM text_choices WHERE campaign = %s AND text_version = %s",
                            (campaign, text_version))
        return None if not found else (TextChoice(found[0][0]), str(found[0][1]), str(found[0][2]))

    def record_text_choice(self, campaign: str, text_version: str, choice: TextChoice, operator: str) -> None:
        self._execute("INSERT INTO text_choices (campaign, text_version, choice, operator, at) "
                      "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (campaign, text_version) DO UPDATE SET "
                      "choice = EXCLUDED.choice, operator = EXCLUDED.operator, at = EXCLUDED.at",
                      (campaign, text_version, choice.value, operator, now_iso()))

    def decision_counts(self, campaign: str, plan_id: str, policy: ClaimPolicy) -> Counter[tuple[str, str]]:
        """(channel, decision) → n for every row of the plan, without changing anything (decide() in SQL)."""
        key = self._plan_key(plan_id)
        parameters: dict[str, object] = {
            "campaign": campaign, "plan": key, "now": policy.now, "text_version": policy.text_version,
            "resend": policy.text_choice is TextChoice.RESEND, "resend_uncertain": policy.resend_uncertain}
        return Counter({(str(channel), str(decision)): int(n) for channel, decision, n in self._fetch(
            f"SELECT p.channel, {PG_DECISION_SQL}, COUNT(*) FROM plan_rows p LEFT JOIN messages m "
            "ON m.campaign = %(campaign)s AND m.channel = p.channel AND m.address = p.address "
            "WHERE p.plan = %(plan)s GROUP BY 1, 2", parameters)})

    def set_state(self, campaign: str, keys: Sequence[tuple[str, str]], state: str, *,
                  provider_id: str | None = None) -> None:
        unique = list(dict.fromkeys(keys))
        self._execute(
            "UPDATE messages m SET state = %s, provider_id = COALESCE(%s, m.provider_id), updated_at = %s "
            "FROM unnest(%s::text[], %s::text[]) AS k(channel, address) "
            "WHERE m.campaign = %s AND m.channel = k.channel AND m.address = k.address",
            (state, provider_id, now_iso(), [c for c, _ in unique], [a for _, a in unique], campaign))

    def record(self, campaign: str, outcome: Outcome) -> None:
        """Buffer an attempt's outcome; written in batches (see :meth:`flush`)."""
        self._pending_outcomes.append((campaign, outcome))
        if len(self._pending_outcomes) >= FLUSH_EVERY_ROWS or \
                time.monotonic() - self._last_flush >= FLUSH_EVERY_SECONDS:
            self.flush()

    def flush(self) -> None:
        outcomes, self._pending_outcomes = self._pending_outcomes, []
        self._last_flush = time.monotonic()
        if outcomes:
            self._call(lambda c: pg_writes.write_outcomes(c, outcomes, now_iso()), transaction=True)

    def rows(self, campaign: str, *, states: Sequence[str] = (), channel: str | None = None) -> Iterator[Row]:
        query, params = rows_query(campaign, states, channel, "%s")
        for values in self._fetch(query, params):
            yield message_row(values)

    def counts(self, campaign: str) -> dict[tuple[str, str, str], int]:
        return {(str(c), str(loc), str(s)): int(n) for c, loc, s, n in self._fetch(counts_query("%s"), (campaign,))}

    def not_reached(self, campaign: str, channel: str, *, silent_since: str | None) -> Iterator[tuple[Row, PlanRow]]:
        query, params = not_reached_query(campaign, channel, silent_since, "%s")
        for values in self._fetch(query, params):
            yield message_row(values[:MESSAGE_WIDTH]), plan_row(values[MESSAGE_WIDTH:])

    # -- the STOP list ----------------------------------------------------------------------------------------

    def add_stop(self, numbers: Iterable[str], source: str) -> int:
        unique = list(dict.fromkeys(numbers))
        return self._execute("INSERT INTO stop_list (address, source, added_at) SELECT a, %s, %s "
                             "FROM unnest(%s::text[]) AS a ON CONFLICT DO NOTHING", (source, now_iso(), unique))

    def stop_numbers(self) -> Iterator[str]:
        for (address,) in self._fetch("SELECT address FROM stop_list"):
            yield str(address)

    def import_stop_file(self, path: str, digest: str, numbers: Sequence[str]) -> StopImport:
        """Once per file content: the import and its record are one transaction (two machines at once: one wins)."""
        added = self._call(lambda c: pg_writes.import_stop_numbers(c, path, digest, list(numbers), now_iso()),
                           transaction=True)
        return StopImport(path, 0, already=True) if added is None else StopImport(path, added)

    # -- timings ----------------------------------------------------------------------------------------------

    def channel_times(self, campaign: str) -> list[ChannelTimes]:
        states = states_by_channel(self._fetch(
            "SELECT channel, state, permanent, COUNT(*) FROM messages WHERE campaign = %s GROUP BY 1, 2, 3",
            (campaign,)))
        first = {str(c): str(at) for c, at in self._fetch(
            "SELECT channel, MIN(at) FROM (SELECT channel, last_attempt_at AS at FROM messages WHERE campaign = %s "
            "UNION ALL SELECT channel, at FROM attempts WHERE campaign = %s) t WHERE at IS NOT NULL GROUP BY 1",
            (campaign, campaign))}
        last = {str(c): str(at) for c, at in self._fetch(
            "SELECT channel, MAX(at) FROM attempts WHERE campaign = %s AND outcome = 'accepted' GROUP BY 1",
            (campaign,))}
        deliveries: dict[str, dict[str, int]] = {}
        for channel, state, count in self._fetch(
                "SELECT channel, delivery_state, COUNT(*) FROM messages WHERE campaign = %s "
                "AND delivery_state IS NOT NULL GROUP BY 1, 2", (campaign,)):
            deliveries.setdefault(str(channel), {})[str(state)] = int(count)
        return [ChannelTimes(channel, counts, first.get(channel), last.get(channel), deliveries.get(channel))
                for channel, counts in sorted(states.items())]


class PgPlanWriter:
    """Plan rows go in by COPY as they stream; the plan is ``writing`` (invisible) until :meth:`finish`."""

    def __init__(self, ledger: PostgresLedger, plan: NewPlan) -> None:
        self.ledger, self.plan = ledger, plan
        self.messages = self.skips = 0
        found = ledger._fetch(
            "INSERT INTO plans (campaign, notice, organisation, text_version, at, created_at, planned_by, channels, "
            "approval_required, snapshot, state, exercise) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "'writing', %s) RETURNING key",
            (plan.campaign.campaign, plan.campaign.notice, plan.campaign.organisation, plan.text_version, plan.at,
             now_iso(), plan.planned_by, ",".join(plan.channels), plan.approval_required, plan.snapshot,
             plan.exercise))
        self.key = int(found[0][0])

    def add(self, rows: Sequence[PlanRow], skips: Sequence[SkipRow]) -> None:
        self.ledger._call(lambda c: pg_writes.copy_plan_rows(c, self.key, rows, skips), transaction=True)
        self.messages += len(rows)
        self.skips += len(skips)

    def finish(self, plan_id: str, summary: str) -> str:
        self.ledger._call(lambda c: pg_writes.finish_plan(c, self.key, plan_id, summary, self.messages, self.skips),
                          transaction=True)
        return plan_id

    def abort(self) -> None:
        with contextlib.suppress(LedgerError):  # the database is gone: the plan stays invisible ('writing')
            self.ledger._call(lambda c: pg_writes.drop_plan(c, self.key), transaction=True)


def read_stop_numbers(target: PgTarget) -> list[str]:
    """The STOP list without creating or changing anything (no ledger tables yet: empty), for a dry run."""
    try:
        with psycopg.connect(target.conninfo, **CONNECTION_OPTIONS) as connection:
            if connection.execute("SELECT to_regclass('stop_list')").fetchone() in (None, (None,)):
                return []
            return [str(address) for (address,) in connection.execute("SELECT address FROM stop_list")]
    except psycopg.Error as error:
        raise opening_problem(target, error) from None


async def _open_pool(target: PgTarget, *, create: bool) -> AsyncConnectionPool[Connection]:
    connection = await psycopg.AsyncConnection.connect(target.conninfo, **CONNECTION_OPTIONS)
    try:
        if create:
            await migrate(connection, target.shown)
        else:
            await _require_schema(connection, target)
    finally:
        await connection.close()
    pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
        target.conninfo, min_size=1, max_size=2, kwargs=CONNECTION_OPTIONS, open=False,
        timeout=pg_connect.CONNECT_TIMEOUT_SECONDS, name="crisiscomms-ledger",
        check=AsyncConnectionPool.check_connection)  # a connection dropped while idle is replaced, not an error
    await pool.open(wait=True, timeout=pg_connect.CONNECT_TIMEOUT_SECONDS * 2)
    return pool


async def _require_schema(connection: Connection, target: PgTarget) -> None:
    """An existing ledger (of an older version: migrated, as SQLite's are), never a new one."""
    version = await stored_version(connection)
    if version is None:
        raise LedgerError(f"no ledger in {target.shown} (no crisiscomms tables yet); give the one the send used "
                          "with --ledger, or set CRISISCOMMS_LEDGER")
    refuse_newer(version, target.shown)
    await migrate(connection, target.shown)
