"""The embedded ledger: one SQLite file, the default for one machine.

WAL mode with ``synchronous=FULL``: a committed in-flight mark survives a power
loss, not only a killed process. Marks are group-committed (one transaction,
so one fsync, per batch of requests), outcomes are written in batches.
The file (and its ``-wal``/``-shm`` companions) is created ``0600``: it holds
phone numbers and e-mail addresses. Credentials are never written to it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..errors import LedgerError
from .base import (
    REACHED_STATES,
    STALE_AFTER_SECONDS,
    CampaignBusy,
    CampaignInfo,
    ChannelTimes,
    Claim,
    ClaimPolicy,
    Existing,
    Holder,
    Lease,
    LeaseGrant,
    LeaseLost,
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
from .claiming import sort_claims
from .liveness import holder_is_gone
from .queries import (
    DECISION_SQL,
    MESSAGE_WIDTH,
    PLAN_COLUMNS,
    PLAN_ROW_COLUMNS,
    counts_query,
    lease_from,
    message_row,
    not_reached_query,
    opt,
    plan_header,
    plan_prefix,
    plan_row,
    rows_query,
    states_by_channel,
    the_one_plan,
)
from .schema import migrate

FLUSH_EVERY_ROWS = 500
FLUSH_EVERY_SECONDS = 0.25
PLAN_COMMIT_ROWS = 20_000

def check_ledger_path(path: Path) -> None:
    """Refuse, before any planning, a ledger path that can never be a file."""
    if path.is_dir():
        raise LedgerError(f"the ledger {path} is a folder; give the ledger's file name, e.g. {path / 'ledger.sqlite'}")
    folder = next((p for p in path.parents if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise LedgerError(f"cannot write the ledger {path}: {folder} is a file, not a folder. Nothing was sent. "
                          "Choose another file with --ledger PATH.")


class SqliteLedger:
    """One SQLite file. One instance is used by one thread (the lease keeper opens its own)."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.db = connection
        self.path = path
        self.location = str(path)
        self.shared = False  # one machine: one sender per campaign
        self._pending_outcomes: list[tuple[str, Outcome]] = []
        self._last_flush = time.monotonic()

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> SqliteLedger:
        """Open (creating, migrating) the ledger and prove it can be written, before anything is sent."""
        _refuse_database_url(path)
        check_ledger_path(path)
        if not create and not path.exists():
            raise LedgerError(f"no ledger at {path}; give the one the send used with --ledger, or set "
                              "CRISISCOMMS_LEDGER")
        try:
            _create_private(path)
            connection = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=True)
        except (sqlite3.Error, OSError) as error:
            raise LedgerError(f"cannot write the ledger {path}: {_explain(error)}. Nothing was sent. "
                              "Free disk space, fix the permissions, or choose another ledger with --ledger.") from None
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA busy_timeout=30000")
            migrate(connection, path)
            connection.execute("BEGIN IMMEDIATE")  # proves the file can be written
            connection.execute("ROLLBACK")
        except sqlite3.DatabaseError as error:
            connection.close()
            raise LedgerError(_database_problem(path, error)) from None
        _private_companions(path)
        return cls(connection, path)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.db.close()

    # -- campaigns --------------------------------------------------------------------------------------------

    def ensure_campaign(self, info: CampaignInfo) -> None:
        self._write("INSERT OR IGNORE INTO campaigns (campaign, notice, playbook, created_at, organisation, exercise) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (info.campaign, info.notice, info.playbook, now_iso(), info.organisation, int(info.exercise)))

    def campaigns(self) -> list[CampaignInfo]:
        return [CampaignInfo(str(c), str(n), str(o or ""), str(p), str(at), bool(x)) for c, n, p, at, o, x in
                self.db.execute("SELECT campaign, notice, playbook, created_at, organisation, exercise "
                                "FROM campaigns ORDER BY created_at, campaign")]

    # -- plans ------------------------------------------------------------------------------------------------

    def plan_writer(self, plan: NewPlan) -> _SqlitePlanWriter:
        self.ensure_campaign(plan.campaign)
        return _SqlitePlanWriter(self, plan)

    def plan(self, reference: str) -> PlanHeader:
        reference = reference.strip().lower()
        rows = self.db.execute(f"SELECT {PLAN_COLUMNS} FROM plans WHERE state = 'ready' AND id LIKE ? "
                               "ORDER BY created_at", (plan_prefix(reference),)).fetchall()
        return plan_header(the_one_plan(reference, rows, self.location))

    def plans(self, campaign: str | None = None) -> list[PlanHeader]:
        query = f"SELECT {PLAN_COLUMNS} FROM plans WHERE state = 'ready'"
        params: tuple[str, ...] = ()
        if campaign is not None:
            query += " AND campaign = ?"
            params = (campaign,)
        return [plan_header(row) for row in self.db.execute(query + " ORDER BY created_at", params)]

    def plan_snapshot(self, plan_id: str) -> str:
        row = self.db.execute("SELECT snapshot FROM plans WHERE id = ?", (plan_id,)).fetchone()
        if row is None:
            raise LedgerError(f"plan {plan_id} is not in the ledger {self.location}")
        return str(row[0])

    def plan_rows(self, plan_id: str, *, after_seq: int = -1, limit: int = 1000) -> list[PlanRow]:
        key = self._plan_key(plan_id)
        return [plan_row(values) for values in self.db.execute(
            f"SELECT {PLAN_ROW_COLUMNS} FROM plan_rows WHERE plan = ? AND seq > ? ORDER BY seq LIMIT ?",
            (key, after_seq, limit))]

    def plan_skips(self, plan_id: str) -> Iterator[SkipRow]:
        key = self._plan_key(plan_id)
        for line, rid, channel, reason, detail in self.db.execute(
                "SELECT line, recipient_id, channel, reason, detail FROM plan_skips WHERE plan = ? ORDER BY rowid",
                (key,)):
            yield SkipRow(int(line), str(rid), str(channel), str(reason), str(detail))

    def approve(self, plan_id: str, operator: str, at: str) -> None:
        self._write("UPDATE plans SET approved_by = ?, approved_at = ? WHERE id = ?", (operator, at, plan_id))

    def _plan_key(self, plan_id: str) -> int:
        row = self.db.execute("SELECT key FROM plans WHERE id = ?", (plan_id,)).fetchone()
        if row is None:
            raise LedgerError(f"plan {plan_id} is not in the ledger {self.location}")
        return int(row[0])

    # -- leases -----------------------------------------------------------------------------------------------

    def acquire_lease(self, campaign: str, holder: Holder, *, join: bool = False) -> LeaseGrant:
        if join:
            raise LedgerError(f"--join needs a shared PostgreSQL ledger; {self.path} is a SQLite file, where one "
                              "sender at a time sends a campaign. Nothing was sent.")
        stamp = now_iso()
        with self._transaction():
            current = self._lease(campaign)
            if current is not None and current.holder.token != holder.token and not _is_stale(current):
                raise CampaignBusy(current)
            self.db.execute(
                "INSERT OR REPLACE INTO leases (campaign, token, host, pid, process_start, operator, plan, "
                "started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (campaign, holder.token, holder.host, holder.pid, holder.process_start, holder.operator, holder.plan,
                 stamp, stamp))
        taken_over = current if current is not None and current.holder.token != holder.token else None
        return LeaseGrant(Lease(campaign, holder, stamp, stamp), taken_over)

    def heartbeat(self, campaign: str, holder: Holder) -> bool:
        cursor = self._write("UPDATE leases SET heartbeat_at = ? WHERE campaign = ? AND token = ?",
                             (now_iso(), campaign, holder.token))
        return cursor.rowcount == 1

    def live_senders(self, campaign: str) -> int:
        lease = self._lease(campaign)
        return int(lease is not None and not _is_stale(lease))

    def release_lease(self, campaign: str, holder: Holder) -> None:
        self._write("DELETE FROM leases WHERE campaign = ? AND token = ?", (campaign, holder.token))

    def leases(self) -> list[Lease]:
        return [lease_from(values) for values in self.db.execute(
            "SELECT campaign, host, pid, process_start, operator, plan, started_at, heartbeat_at FROM leases "
            "ORDER BY started_at")]

    def _lease(self, campaign: str) -> Lease | None:
        values = self.db.execute(
            "SELECT campaign, host, pid, process_start, operator, plan, started_at, heartbeat_at FROM leases "
            "WHERE campaign = ?", (campaign,)).fetchone()
        return None if values is None else lease_from(values)

    def _require_lease(self, campaign: str, holder: Holder) -> None:
        row = self.db.execute("SELECT token FROM leases WHERE campaign = ?", (campaign,)).fetchone()
        if row is None or row[0] != holder.token:
            raise LeaseLost(f"this send lost its hold on campaign {campaign} (another sender took it over, "
                            "believing this one dead); it stopped at once. Nothing was sent twice; see "
                            "crisiscomms report.")

    # -- delivery ---------------------------------------------------------------------------------------------

    def in_flight_to_uncertain(self, campaign: str) -> int:
        """Rows a killed process left in flight may have been sent: make them uncertain."""
        cursor = self._write("UPDATE messages SET state = 'uncertain', updated_at = ? "
                             "WHERE campaign = ? AND state = 'in_flight'", (now_iso(), campaign))
        return cursor.rowcount

    def has_messages(self, campaign: str) -> bool:
        return self.db.execute("SELECT 1 FROM messages WHERE campaign = ? LIMIT 1", (campaign,)).fetchone() is not None

    def reached_with_other_text(self, campaign: str, text_version: str) -> Counter[str]:
        marks = ",".join("?" for _ in REACHED_STATES)
        return Counter({str(channel): int(n) for channel, n in self.db.execute(
            f"SELECT channel, COUNT(*) FROM messages WHERE campaign = ? AND state IN ({marks}) AND channel != 'banner' "
            "AND text_version IS NOT NULL AND text_version != ? GROUP BY channel",  # the banner is rewritten anyway
            (campaign, *REACHED_STATES, text_version))})

    def text_choice(self, campaign: str, text_version: str) -> tuple[TextChoice, str, str] | None:
        """The choice an operator made earlier about people reached with another text: (choice, who, when)."""
        row = self.db.execute("SELECT choice, operator, at FROM text_choices WHERE campaign = ? AND text_version = ?",
                              (campaign, text_version)).fetchone()
        return None if row is None else (TextChoice(row[0]), str(row[1]), str(row[2]))

    def record_text_choice(self, campaign: str, text_version: str, choice: TextChoice, operator: str) -> None:
        self._write("INSERT OR REPLACE INTO text_choices (campaign, text_version, choice, operator, at) "
                    "VALUES (?, ?, ?, ?, ?)", (campaign, text_version, choice.value, operator, now_iso()))

    def decision_counts(self, campaign: str, plan_id: str, policy: ClaimPolicy) -> Counter[tuple[str, str]]:
        """(channel, decision) → n for every row of the plan, without changing anything.

        One aggregate query: :data:`DECISION_SQL` is :func:`~crisiscomms.ledger.base.decide` in SQL
        (a test holds the two to the same answers for every combination of states)."""
        key = self._plan_key(plan_id)
        parameters = {"campaign": campaign, "plan": key, "now": policy.now, "text_version": policy.text_version,
                      "resend": int(policy.text_choice is TextChoice.RESEND),
                      "resend_uncertain": int(policy.resend_uncertain)}
        return Counter({(str(channel), str(decision)): int(n) for channel, decision, n in self.db.execute(
            f"SELECT p.channel, {DECISION_SQL}, COUNT(*) FROM plan_rows p LEFT JOIN messages m "
            "ON m.campaign = :campaign AND m.channel = p.channel AND m.address = p.address "
            "WHERE p.plan = :plan GROUP BY 1, 2", parameters)})

    def claim_batch(self, campaign: str, plan_id: str, holder: Holder, policy: ClaimPolicy, *,
                    after_seq: int, limit: int) -> tuple[list[Claim], int | None]:
        """The next rows of the plan to send now, their delivery rows made pending for this plan.

        Returns the claims and the sequence number to continue after (None at the end of the plan)."""
        key = self._plan_key(plan_id)
        pairs = self._pairs(campaign, key, after_seq, limit)
        if not pairs:
            return [], None
        stamp = now_iso()
        claimed = sort_claims(pairs, policy)
        inserts = [(campaign, row.channel, row.address, row.recipient_id, row.line, row.locale, state, row.not_before,
                    stamp, key, row.seq, policy.text_version, holder.token) for row, state in claimed.new]
        updates = [(state, row.recipient_id, row.line, row.locale, row.not_before, stamp, key, row.seq,
                    policy.text_version, holder.token, int(correction), campaign, row.channel, row.address)
                   for row, state, correction in claimed.changed]
        with self._transaction():
            self._require_lease(campaign, holder)
            self.db.executemany(
                "INSERT INTO messages (campaign, channel, address, recipient_id, line, locale, state, not_before, "
                "updated_at, plan, seq, text_version, holder) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", inserts)
            self.db.executemany(
                "UPDATE messages SET state = ?, recipient_id = ?, line = ?, locale = ?, not_before = ?, "
                "updated_at = ?, plan = ?, seq = ?, text_version = ?, holder = ?, permanent = 0, "
                "corrections = corrections + ? WHERE campaign = ? AND channel = ? AND address = ?", updates)
        return claimed.claims, pairs[-1][0].seq

    def _pairs(self, campaign: str, key: int, after_seq: int, limit: int) -> list[tuple[PlanRow, Existing | None]]:
        query = ("SELECT p.seq, p.channel, p.address, p.recipient_id, p.line, p.locale, p.timezone, p.not_before, "
                 "p.view, m.state, m.permanent, m.text_version FROM plan_rows p LEFT JOIN messages m "
                 "ON m.campaign = ? AND m.channel = p.channel AND m.address = p.address "
                 "WHERE p.plan = ? AND p.seq > ? ORDER BY p.seq LIMIT ?")
        pairs: list[tuple[PlanRow, Existing | None]] = []
        for values in self.db.execute(query, (campaign, key, after_seq, limit)):
            row = plan_row(values[:9])
            state, permanent, text_version = values[9:]
            existing = None if state is None else Existing(str(state), bool(permanent), opt(text_version))
            pairs.append((row, existing))
        return pairs

    def mark_in_flight(self, campaign: str, holder: Holder, entries: Sequence[tuple[str, str, str | None]]) -> None:
        """Committed (fsync'd) before the requests leave: a crash after this leaves them uncertain, never forgotten.

        ``entries`` are (channel, address, body fingerprint or None): the fingerprint lets an
        uncertain SMS be found in Twilio's message list by its text."""
        stamp = now_iso()
        with self._transaction():
            self._require_lease(campaign, holder)
            self.db.executemany(
                "UPDATE messages SET state = 'in_flight', attempts = attempts + 1, last_attempt_at = ?, "
                "updated_at = ?, body = COALESCE(?, body) WHERE campaign = ? AND channel = ? AND address = ?",
                [(stamp, stamp, fingerprint, campaign, channel, address) for channel, address, fingerprint in entries])

    def set_state(self, campaign: str, keys: Sequence[tuple[str, str]], state: str, *,
                  provider_id: str | None = None) -> None:
        stamp = now_iso()
        with self._transaction():
            self.db.executemany(
                "UPDATE messages SET state = ?, provider_id = COALESCE(?, provider_id), updated_at = ? "
                "WHERE campaign = ? AND channel = ? AND address = ?",
                [(state, provider_id, stamp, campaign, channel, address) for channel, address in keys])

    def record(self, campaign: str, outcome: Outcome) -> None:
        """Buffer an attempt's outcome; written in batches (see :meth:`flush`)."""
        self._pending_outcomes.append((campaign, outcome))
        if len(self._pending_outcomes) >= FLUSH_EVERY_ROWS or \
                time.monotonic() - self._last_flush >= FLUSH_EVERY_SECONDS:
            self.flush()

    def flush(self) -> None:
        outcomes, self._pending_outcomes = self._pending_outcomes, []
        self._last_flush = time.monotonic()
        if not outcomes:
            return
        stamp = now_iso()
        with self._transaction():
            self.db.executemany(
                "UPDATE messages SET state = ?, provider_id = COALESCE(?, provider_id), error_code = ?, error = ?, "
                "permanent = ?, updated_at = ? WHERE campaign = ? AND channel = ? AND address = ?",
                [(o.state, o.provider_id, o.code, o.reason, int(o.permanent), stamp, campaign, o.channel,
                  o.address) for campaign, o in outcomes])
            self.db.executemany(
                "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(campaign, o.channel, o.address, o.attempt, stamp, o.outcome, o.code, o.reason, o.provider_id)
                 for campaign, o in outcomes])

    def rows(self, campaign: str, *, states: Sequence[str] = (), channel: str | None = None) -> Iterator[Row]:
        query, params = rows_query(campaign, states, channel, "?")
        for values in self.db.execute(query, params).fetchall():
            yield message_row(values)

    def counts(self, campaign: str) -> dict[tuple[str, str, str], int]:
        """(channel, locale, state) → number of rows."""
        return {(str(c), str(loc), str(s)): int(n) for c, loc, s, n in self.db.execute(counts_query("?"), (campaign,))}

    def not_reached(self, campaign: str, channel: str, *, silent_since: str | None) -> Iterator[tuple[Row, PlanRow]]:
        query, params = not_reached_query(campaign, channel, silent_since, "?")
        for values in self.db.execute(query, params).fetchall():
            yield message_row(values[:MESSAGE_WIDTH]), plan_row(values[MESSAGE_WIDTH:])

    # -- the STOP list ----------------------------------------------------------------------------------------

    def add_stop(self, numbers: Iterable[str], source: str) -> int:
        stamp = now_iso()
        values = [(number, source, stamp) for number in numbers]
        with self._transaction():
            before = self.db.total_changes
            self.db.executemany("INSERT OR IGNORE INTO stop_list (address, source, added_at) VALUES (?, ?, ?)", values)
            return self.db.total_changes - before

    def stop_numbers(self) -> Iterator[str]:
        for (address,) in self.db.execute("SELECT address FROM stop_list").fetchall():
            yield str(address)

    def import_stop_file(self, path: str, digest: str, numbers: Sequence[str]) -> StopImport:
        if self.db.execute("SELECT 1 FROM stop_imports WHERE digest = ?", (digest,)).fetchone():
            return StopImport(path, 0, already=True)
        added = self.add_stop(numbers, f"imported from {path}")
        self._write("INSERT OR IGNORE INTO stop_imports (digest, path, imported_at, numbers) VALUES (?, ?, ?, ?)",
                    (digest, path, now_iso(), len(numbers)))
        return StopImport(path, added)

    # -- plumbing ---------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise LedgerError(f"cannot write the ledger {self.path}: {_explain(error)}") from None
        try:
            yield
            self.db.execute("COMMIT")
        except sqlite3.Error as error:
            self._rollback()
            raise LedgerError(f"cannot write the ledger {self.path}: {_explain(error)}") from None
        except BaseException:
            self._rollback()
            raise

    def _write(self, sql: str, params: Sequence[object]) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.Error as error:
            raise LedgerError(f"cannot write the ledger {self.path}: {_explain(error)}") from None

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("ROLLBACK")

    # -- timings (added for the exercise report) --------------------------------------------------------------

    def channel_times(self, campaign: str) -> list[ChannelTimes]:
        """Per channel: rows by state, the first request and the last accepted attempt, and receipts."""
        states = states_by_channel(self.db.execute(
            "SELECT channel, state, permanent, COUNT(*) FROM messages WHERE campaign = ? GROUP BY 1, 2, 3",
            (campaign,)))
        first = self._earliest_requests(campaign)
        last = {str(c): str(at) for c, at in self.db.execute(
            "SELECT channel, MAX(at) FROM attempts WHERE campaign = ? AND outcome = 'accepted' GROUP BY 1",
            (campaign,))}
        deliveries = self._delivery_states(campaign)
        return [ChannelTimes(channel, counts, first.get(channel), last.get(channel),
                             None if deliveries is None else deliveries.get(channel))  # None: no receipt yet
                for channel, counts in sorted(states.items())]

    def _earliest_requests(self, campaign: str) -> dict[str, str]:
        earliest: dict[str, str] = {}
        for sql in ("SELECT channel, MIN(last_attempt_at) FROM messages WHERE campaign = ? GROUP BY 1",
                    "SELECT channel, MIN(at) FROM attempts WHERE campaign = ? GROUP BY 1"):
            for channel, at in self.db.execute(sql, (campaign,)):
                if at is not None and (str(channel) not in earliest or str(at) < earliest[str(channel)]):
                    earliest[str(channel)] = str(at)
        return earliest

    def _delivery_states(self, campaign: str) -> dict[str, dict[str, int]] | None:
        """``messages.delivery_state`` by channel, when the ledger has the column (delivery receipts)."""
        if not any(row[1] == "delivery_state" for row in self.db.execute("PRAGMA table_info(messages)")):
            return None
        found: dict[str, dict[str, int]] = {}
        for channel, state, count in self.db.execute(
                "SELECT channel, delivery_state, COUNT(*) FROM messages WHERE campaign = ? "
                "AND delivery_state IS NOT NULL GROUP BY 1, 2", (campaign,)):
            found.setdefault(str(channel), {})[str(state)] = int(count)
        return found


class _SqlitePlanWriter:
    """Plan rows go in as they stream, in transactions of :data:`PLAN_COMMIT_ROWS` rows.

    The plan is ``writing`` (invisible) until :meth:`finish` names it by its hash and
    makes it ``ready``; a plan whose writer died stays invisible."""

    def __init__(self, ledger: SqliteLedger, plan: NewPlan) -> None:
        self.ledger = ledger
        self.plan = plan
        self.messages = 0
        self.skips = 0
        self._uncommitted = 0
        with ledger._transaction():
            cursor = ledger.db.execute(
                "INSERT INTO plans (id, campaign, notice, organisation, text_version, at, created_at, planned_by, "
                "channels, approval_required, snapshot, state, exercise) "
                "VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'writing', ?)",
                (plan.campaign.campaign, plan.campaign.notice, plan.campaign.organisation, plan.text_version,
                 plan.at, now_iso(), plan.planned_by, ",".join(plan.channels), int(plan.approval_required),
                 plan.snapshot, int(plan.exercise)))
            assert cursor.lastrowid is not None
            self.key = int(cursor.lastrowid)
        self._begin()

    def _begin(self) -> None:
        try:
            self.ledger.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise LedgerError(f"cannot write the ledger {self.ledger.path}: {_explain(error)}") from None

    def add(self, rows: Sequence[PlanRow], skips: Sequence[SkipRow]) -> None:
        db = self.ledger.db
        try:
            db.executemany(f"INSERT INTO plan_rows (plan, {PLAN_ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [(self.key, r.seq, r.channel, r.address, r.recipient_id, r.line, r.locale, r.timezone,
                             r.not_before, r.view) for r in rows])
            db.executemany("INSERT INTO plan_skips (plan, line, recipient_id, channel, reason, detail) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           [(self.key, s.line, s.recipient_id, s.channel, s.reason, s.detail) for s in skips])
            self.messages += len(rows)
            self.skips += len(skips)
            self._uncommitted += len(rows) + len(skips)
            if self._uncommitted >= PLAN_COMMIT_ROWS:
                db.execute("COMMIT")
                self._uncommitted = 0
                self._begin()
        except sqlite3.Error as error:
            self.ledger._rollback()
            raise LedgerError(f"cannot write the ledger {self.ledger.path}: {_explain(error)}") from None

    def finish(self, plan_id: str, summary: str) -> str:
        db = self.ledger.db
        try:
            existing = db.execute("SELECT key FROM plans WHERE id = ?", (plan_id,)).fetchone()
            if existing is not None:  # the very same plan was made before: keep that one
                self._drop()
            else:
                db.execute("UPDATE plans SET id = ?, state = 'ready', summary = ?, messages = ?, skips = ? "
                           "WHERE key = ?", (plan_id, summary, self.messages, self.skips, self.key))
            db.execute("COMMIT")
        except sqlite3.Error as error:
            self.ledger._rollback()
            raise LedgerError(f"cannot write the ledger {self.ledger.path}: {_explain(error)}") from None
        return plan_id

    def abort(self) -> None:
        self.ledger._rollback()
        with contextlib.suppress(sqlite3.Error, LedgerError), self.ledger._transaction():
            self._drop()

    def _drop(self) -> None:
        db = self.ledger.db
        db.execute("DELETE FROM plan_rows WHERE plan = ?", (self.key,))
        db.execute("DELETE FROM plan_skips WHERE plan = ?", (self.key,))
        db.execute("DELETE FROM plans WHERE key = ?", (self.key,))


def _refuse_database_url(path: Path) -> None:
    """A PostgreSQL URL where a SQLite file is opened (commands open ledgers with :func:`open_ledger`, which
    tells them apart; this guards tools and scripts that open a file directly)."""
    url = re.sub(r"^(postgres(?:ql)?):/(?!/)", r"\1://", str(path), flags=re.IGNORECASE)
    if url != str(path):
        raise LedgerError(f"the ledger {url} is a PostgreSQL database, not a SQLite ledger file; open it as a "
                          "database URL (--ledger or CRISISCOMMS_LEDGER). Nothing was changed.")


def _is_stale(lease: Lease) -> bool:
    return lease.heartbeat_age() > STALE_AFTER_SECONDS or holder_is_gone(lease.holder)


def _create_private(path: Path) -> None:
    """Create the ledger file 0600 (and its folder 0700) before SQLite opens it.

    Two processes may create the same default ledger at the same moment: neither step fails if the other
    process got there first. An existing file is never opened here: closing a descriptor of the database
    file drops every POSIX lock this process holds on it, also those of its other SQLite connections (the
    receipts writer thread has one beside the server's), and another process would then take the WAL away.
    """
    path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    if path.exists():
        return
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return  # created by another process meanwhile
    os.close(descriptor)


def _private_companions(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        with contextlib.suppress(OSError):
            if companion.exists() and companion.stat().st_mode & 0o077:
                companion.chmod(0o600)


def _database_problem(path: Path, error: sqlite3.DatabaseError) -> str:
    if isinstance(error, LedgerError):
        return str(error)
    text = str(error)
    if "not a database" in text or "malformed" in text or "disk image" in text:
        return (f"the ledger {path} is damaged or not a crisiscomms ledger ({text}). Nothing was sent. "
                "Restore it from a backup, or use another ledger with --ledger.")
    return (f"cannot write the ledger {path}: {_explain(error)}. Nothing was sent. Free disk space, fix the "
            "permissions, or choose another ledger with --ledger.")


def _explain(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"{error.strerror} (is the folder read-only?)"
        return "the disk is full" if error.errno == errno.ENOSPC else error.strerror
    text = str(error)
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return f"{text} (is the folder read-only?)"
    if "disk is full" in text:
        return "the disk is full"
    return text
