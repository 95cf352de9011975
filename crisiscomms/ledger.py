"""The send ledger: one SQLite row per campaign × channel × address, so that a
run can be resumed and nothing is ever sent twice.

States::

    pending ─▶ in_flight ─▶ accepted (provider id)
                         ├▶ failed (code, reason; permanent or not)
                         └▶ uncertain (may have reached the provider)
    deferred (not before …) ─▶ pending when its time has come

A row is marked ``in_flight`` and committed *before* its request leaves. A
row found ``in_flight`` when a run starts belonged to a process that died
mid-request: it is uncertain. WAL mode with ``synchronous=NORMAL`` survives a
killed process; outcomes are committed in batches, never one fsync a message.
Addresses are stored (the report needs them, masked); credentials never are.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import LedgerError

SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    campaign TEXT PRIMARY KEY,
    notice TEXT NOT NULL,
    playbook TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    campaign TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    locale TEXT NOT NULL,
    state TEXT NOT NULL,
    permanent INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    provider_id TEXT,
    error_code TEXT,
    error TEXT,
    not_before TEXT,
    body TEXT, -- SMS: fingerprint of the text sent, to reconcile by body
    last_attempt_at TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (campaign, channel, address)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attempts (
    campaign TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    code TEXT,
    reason TEXT,
    provider_id TEXT
);
CREATE INDEX IF NOT EXISTS messages_state ON messages (campaign, state);
"""

STATES = ("pending", "in_flight", "accepted", "failed", "deferred", "uncertain")
FLUSH_EVERY_ROWS = 500
FLUSH_EVERY_SECONDS = 0.25


@dataclass(frozen=True)
class Row:
    campaign: str
    channel: str
    address: str
    recipient_id: str
    line: int
    locale: str
    state: str
    permanent: bool
    attempts: int
    provider_id: str | None
    error_code: str | None
    error: str | None
    not_before: str | None
    body: str | None
    last_attempt_at: str | None
    updated_at: str

    @property
    def key(self) -> tuple[str, str]:
        return self.channel, self.address


@dataclass(frozen=True)
class NewRow:
    channel: str
    address: str
    recipient_id: str
    line: int
    locale: str
    not_before: dt.datetime | None


@dataclass(frozen=True)
class Outcome:
    """What happened to one attempt, for :meth:`Ledger.record`."""

    channel: str
    address: str
    state: str  # accepted | failed | uncertain | pending (retry later in this run)
    attempt: int
    outcome: str  # the channel's outcome: accepted, rejected, retry, uncertain
    provider_id: str | None = None
    code: str | None = None
    reason: str | None = None
    permanent: bool = False


def check_ledger_path(path: Path) -> None:
    """Refuse, before any planning, a ledger path that can never be a file."""
    if path.is_dir():
        raise LedgerError(f"--ledger {path} is a folder; give the ledger's file name, e.g. {path / 'ledger.sqlite'}")
    folder = next((p for p in path.parents if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise LedgerError(f"cannot write the ledger {path}: {folder} is a file, not a folder. Nothing was sent. "
                          "Choose another file with --ledger PATH.")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class Ledger:
    """One SQLite file; one campaign at a time is worked on."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.db = connection
        self.path = path
        self._pending_outcomes: list[Outcome] = []
        self._campaign = ""
        self._last_flush = time.monotonic()

    @classmethod
    def open(cls, path: Path) -> Ledger:
        """Open (creating) the ledger and prove it can be written, before anything is sent."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path, isolation_level=None, timeout=10)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(SCHEMA)
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("CREATE TEMP TABLE IF NOT EXISTS _probe(x)")
            connection.execute("INSERT INTO campaigns VALUES ('__probe__', '', '', '')")
            connection.execute("ROLLBACK")
        except (sqlite3.Error, OSError) as error:
            raise LedgerError(
                f"cannot write the ledger {path}: {_explain(error)}. Nothing was sent. "
                "Free disk space, fix the permissions, or choose another file with --ledger PATH.") from None
        return cls(connection, path)

    def close(self) -> None:
        self.flush()
        self.db.close()

    # -- campaigns --------------------------------------------------------------------------------------------

    def ensure_campaign(self, campaign: str, notice: str, playbook: str) -> None:
        self._write("INSERT OR IGNORE INTO campaigns VALUES (?, ?, ?, ?)", (campaign, notice, playbook, now_iso()))

    def campaigns(self) -> list[tuple[str, str, str]]:
        return [(str(a), str(b), str(c)) for a, b, c in self.db.execute(
            "SELECT campaign, notice, created_at FROM campaigns WHERE campaign != '__probe__' ORDER BY created_at")]

    def accepted_in_other_campaigns(self, notice: str, campaign: str) -> list[tuple[str, int]]:
        rows = self.db.execute(
            "SELECT c.campaign, COUNT(m.address) FROM campaigns c JOIN messages m ON m.campaign = c.campaign "
            "WHERE c.notice = ? AND c.campaign != ? AND m.state = 'accepted' GROUP BY c.campaign",
            (notice, campaign))
        return [(str(name), int(count)) for name, count in rows]

    # -- rows -------------------------------------------------------------------------------------------------

    def existing(self, campaign: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Row]:
        """The rows already in the ledger for these (channel, address) keys."""
        found: dict[tuple[str, str], Row] = {}
        for start in range(0, len(keys), 400):
            chunk = keys[start:start + 400]
            placeholders = ",".join("(?, ?)" for _ in chunk)
            flat = [value for key in chunk for value in key]
            query = (f"SELECT * FROM messages WHERE campaign = ? AND (channel, address) IN (VALUES {placeholders})")
            for values in self.db.execute(query, [campaign, *flat]):
                row = _row(values)
                found[row.key] = row
        return found

    def add(self, campaign: str, rows: Iterable[NewRow]) -> None:
        """Insert new rows: pending, or deferred when they have a not-before time."""
        stamp = now_iso()
        values = [(campaign, r.channel, r.address, r.recipient_id, r.line, r.locale,
                   "deferred" if r.not_before else "pending", r.not_before.isoformat() if r.not_before else None,
                   stamp) for r in rows]
        self._write_many(
            "INSERT OR IGNORE INTO messages (campaign, channel, address, recipient_id, line, locale, state, "
            "not_before, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def mark_in_flight(self, campaign: str, entries: Sequence[tuple[str, str, str | None]]) -> None:
        """Committed before the requests leave: a crash after this leaves them uncertain, never forgotten.

        ``entries`` are (channel, address, body fingerprint or None): the fingerprint lets an
        uncertain SMS be found in Twilio's message list by its text."""
        stamp = now_iso()
        self._write_many(
            "UPDATE messages SET state = 'in_flight', attempts = attempts + 1, last_attempt_at = ?, updated_at = ?, "
            "body = COALESCE(?, body) WHERE campaign = ? AND channel = ? AND address = ?",
            [(stamp, stamp, fingerprint, campaign, channel, address) for channel, address, fingerprint in entries])

    def set_state(self, campaign: str, keys: Sequence[tuple[str, str]], state: str, *,
                  provider_id: str | None = None) -> None:
        stamp = now_iso()
        self._write_many(
            "UPDATE messages SET state = ?, provider_id = COALESCE(?, provider_id), updated_at = ? "
            "WHERE campaign = ? AND channel = ? AND address = ?",
            [(state, provider_id, stamp, campaign, channel, address) for channel, address in keys])

    def record(self, campaign: str, outcome: Outcome) -> None:
        """Buffer an attempt's outcome; written in batches (see :meth:`flush`)."""
        self._pending_outcomes.append(outcome)
        self._campaign = campaign
        if len(self._pending_outcomes) >= FLUSH_EVERY_ROWS or \
                time.monotonic() - self._last_flush >= FLUSH_EVERY_SECONDS:
            self.flush()

    def flush(self) -> None:
        outcomes, self._pending_outcomes = self._pending_outcomes, []
        self._last_flush = time.monotonic()
        if not outcomes:
            return
        campaign = self._campaign
        stamp = now_iso()
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "UPDATE messages SET state = ?, provider_id = COALESCE(?, provider_id), error_code = ?, error = ?, "
                "permanent = ?, updated_at = ? WHERE campaign = ? AND channel = ? AND address = ?",
                [(o.state, o.provider_id, o.code, o.reason, int(o.permanent), stamp, campaign, o.channel,
                  o.address) for o in outcomes])
            self.db.executemany(
                "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(campaign, o.channel, o.address, o.attempt, stamp, o.outcome, o.code, o.reason, o.provider_id)
                 for o in outcomes])
            self.db.execute("COMMIT")
        except sqlite3.Error as error:
            self._rollback()
            raise LedgerError(f"cannot write the ledger {self.path}: {_explain(error)}") from None

    def rows(self, campaign: str, *, states: Sequence[str] = (), channel: str | None = None) -> Iterator[Row]:
        query = "SELECT * FROM messages WHERE campaign = ?"
        params: list[str] = [campaign]
        if states:
            query += f" AND state IN ({','.join('?' for _ in states)})"
            params.extend(states)
        if channel:
            query += " AND channel = ?"
            params.append(channel)
        for values in self.db.execute(query + " ORDER BY line, channel", params):
            yield _row(values)

    def counts(self, campaign: str) -> dict[tuple[str, str, str], int]:
        """(channel, locale, state) → number of rows."""
        return {(str(c), str(loc), str(s)): int(n) for c, loc, s, n in self.db.execute(
            "SELECT channel, locale, state, COUNT(*) FROM messages WHERE campaign = ? GROUP BY 1, 2, 3",
            (campaign,))}

    def in_flight_to_uncertain(self, campaign: str) -> int:
        """Rows a killed process left in flight may have been sent: make them uncertain."""
        cursor = self._write("UPDATE messages SET state = 'uncertain', updated_at = ? "
                             "WHERE campaign = ? AND state = 'in_flight'", (now_iso(), campaign))
        return cursor.rowcount

    # -- plumbing ---------------------------------------------------------------------------------------------

    def _write(self, sql: str, params: Sequence[object]) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.Error as error:
            raise LedgerError(f"cannot write the ledger {self.path}: {_explain(error)}") from None

    def _write_many(self, sql: str, values: Sequence[Sequence[object]]) -> None:
        if not values:
            return
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(sql, values)
            self.db.execute("COMMIT")
        except sqlite3.Error as error:
            self._rollback()
            raise LedgerError(f"cannot write the ledger {self.path}: {_explain(error)}") from None

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("ROLLBACK")


def _row(values: Sequence[object]) -> Row:
    (campaign, channel, address, recipient_id, line, locale, state, permanent, attempts, provider_id, error_code,
     error, not_before, body, last_attempt_at, updated_at) = values
    return Row(str(campaign), str(channel), str(address), str(recipient_id), int(line), str(locale),  # type: ignore[call-overload]
               str(state), bool(permanent), int(attempts), _opt(provider_id), _opt(error_code), _opt(error),  # type: ignore[call-overload]
               _opt(not_before), _opt(body), _opt(last_attempt_at), str(updated_at))


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _explain(error: BaseException) -> str:
    text = str(error)
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return f"{text} (is the folder read-only?)"
    if "disk is full" in text:
        return "the disk is full"
    return text
