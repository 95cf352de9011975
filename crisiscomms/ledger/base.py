"""The ledger's small interface: what a campaign needs from where it is stored.

A ledger keeps, durably and for every machine that uses it:

* **plans** — a frozen plan is every planned message (with what its rendering
  needs) and every skip of one notice for one audience, plus a snapshot of the
  playbook and templates; its id is the hash of all that (:mod:`crisiscomms.campaign.frozen`);
* **messages** — one delivery row per campaign × channel × address, with its state::

      pending ─▶ in_flight ─▶ accepted (provider id)
                           ├▶ failed (code, reason; permanent or not)
                           └▶ uncertain (may have reached the provider)
      deferred (not before …) ─▶ pending when its time has come

* **leases** — who is sending a campaign right now (one sender at a time);
* **the STOP list** — numbers that must never be messaged again.

A row is marked ``in_flight`` durably *before* its request leaves; a row found
in flight by the next holder of the lease may have been sent: it is uncertain.

Backends live beside this module: ``sqlite.py`` (one machine, one sender per
campaign) and ``postgres.py`` (a team ledger shared by many machines, where
several senders may *join* one campaign's dispatch and claim its rows in
batches). They know nothing of channels, templates or the CLI.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import CrisisCommsError, ExitCode, LedgerError

SCHEMA_VERSION = 3
STATES = ("pending", "in_flight", "accepted", "failed", "deferred", "uncertain")
REACHED_STATES = ("accepted", "uncertain", "in_flight")  # may have reached the person
HEARTBEAT_SECONDS = 5.0
STALE_AFTER_SECONDS = 120.0  # a lease whose heartbeat is older than this is taken over


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def utc_iso(moment: dt.datetime) -> str:
    """A sortable UTC text for a moment (the ledger compares these as text)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


# -- campaigns and plans ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignInfo:
    campaign: str  # "<organisation slug>/<notice id or --campaign name>"
    notice: str
    organisation: str
    playbook: str  # the playbook's path when it was planned (for people; never read back)
    created_at: str = ""
    exercise: bool = False


@dataclass(frozen=True)
class PlanHeader:
    """A frozen plan as the ledger keeps it; ``snapshot`` and ``summary`` are JSON texts."""

    id: str
    campaign: str
    notice: str
    organisation: str
    text_version: str
    at: str  # the plan's moment (ISO 8601)
    created_at: str
    planned_by: str
    channels: tuple[str, ...]
    approval_required: bool
    approved_by: str | None
    approved_at: str | None
    messages: int
    skips: int
    summary: str
    exercise: bool = False

    @property
    def approved(self) -> bool:
        return self.approved_by is not None


@dataclass(frozen=True)
class NewPlan:
    """What is known of a plan before its rows are written (its id is their hash)."""

    campaign: CampaignInfo
    text_version: str
    at: str
    planned_by: str
    channels: tuple[str, ...]
    approval_required: bool
    snapshot: str
    exercise: bool = False


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One planned message; ``view`` is the JSON of what its rendering needs about the reader."""

    seq: int
    channel: str
    address: str
    recipient_id: str
    line: int
    locale: str
    timezone: str
    not_before: str | None  # UTC ISO text, see :func:`utc_iso`
    view: str


@dataclass(frozen=True, slots=True)
class SkipRow:
    line: int
    recipient_id: str
    channel: str
    reason: str
    detail: str


class PlanWriter(Protocol):
    """Writes one plan's rows as they stream in; :meth:`finish` names it by its hash."""

    def add(self, rows: Sequence[PlanRow], skips: Sequence[SkipRow]) -> None: ...
    def finish(self, plan_id: str, summary: str) -> str: ...  # the id (an identical plan may exist already)
    def abort(self) -> None: ...


# -- delivery rows ---------------------------------------------------------------------------------------------


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
    text_version: str | None = None
    corrections: int = 0
    delivery_state: str | None = None  # from the provider's receipts: delivered, undelivered, bounced, …
    delivery_code: str | None = None
    delivery_reason: str | None = None
    delivery_at: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.channel, self.address


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


class TextChoice(enum.StrEnum):
    """What to do when people were already reached with another text of the notice."""

    REFUSE = "refuse"
    CONTINUE = "continue"  # --continue-with-new-text
    RESEND = "resend"  # --resend-to-all


class Decision(enum.StrEnum):
    SEND = "send"  # new, pending, retryable failure, due deferral, a correction
    DONE = "done"  # accepted in an earlier run
    DEFERRED = "deferred"  # quiet hours: not yet
    HELD = "held"  # rejected for good by the provider
    UNCERTAIN = "uncertain"  # may have been sent; e-mail without --resend-uncertain, or SMS not reconciled


@dataclass(frozen=True)
class ClaimPolicy:
    """How a sender treats the rows a plan finds already in the ledger."""

    now: str  # UTC ISO text
    text_version: str
    resend_uncertain: bool = False
    text_choice: TextChoice = TextChoice.REFUSE


@dataclass(frozen=True, slots=True)
class Existing:
    """The parts of a delivery row that decide what happens to a planned message."""

    state: str
    permanent: bool
    text_version: str | None


def decide(row: PlanRow, existing: Existing | None, policy: ClaimPolicy) -> Decision:
    """What to do with a planned message, given what the ledger says about it (every backend uses this)."""
    if row.channel == "banner":
        return Decision.SEND  # rewriting the banner file is harmless and keeps it current (a CAP alert is not:
        # written again it would be a new Update for every aggregator, so it is sent once like a message)
    due = row.not_before is None or row.not_before <= policy.now
    if existing is None or existing.state in ("pending", "deferred"):
        return Decision.SEND if due else Decision.DEFERRED
    other_text = existing.text_version is not None and existing.text_version != policy.text_version
    if existing.state in REACHED_STATES and other_text and policy.text_choice is TextChoice.RESEND:
        return Decision.SEND  # the correction the operator chose to send to everyone
    if existing.state == "accepted":
        return Decision.DONE
    if existing.state == "failed":
        return Decision.HELD if existing.permanent else (Decision.SEND if due else Decision.DEFERRED)
    if row.channel == "email" and policy.resend_uncertain:
        return Decision.SEND
    return Decision.UNCERTAIN  # uncertain / in_flight: SMS are reconciled before the plan is dispatched


@dataclass(frozen=True)
class Claim:
    """A planned message this sender may now send (its delivery row is pending and claimed)."""

    row: PlanRow
    correction: bool = False  # a second message to someone already reached (--resend-to-all)


# -- leases ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """Who holds a campaign's lease: a process on a host, run by an operator."""

    host: str
    pid: int
    operator: str
    process_start: str = ""  # distinguishes a reused pid
    plan: str = ""

    @property
    def token(self) -> str:
        return f"{self.host}:{self.pid}:{self.process_start}"

    def describe(self) -> str:
        return f"{self.operator} on {self.host} (pid {self.pid})"


@dataclass(frozen=True)
class Lease:
    campaign: str
    holder: Holder
    started_at: str
    heartbeat_at: str

    def heartbeat_age(self, now: dt.datetime | None = None) -> float:
        beat = dt.datetime.fromisoformat(self.heartbeat_at)
        return ((now or dt.datetime.now(dt.UTC)) - beat).total_seconds()


@dataclass(frozen=True)
class LeaseGrant:
    lease: Lease
    taken_over: Lease | None = None  # the stale lease this one replaced


class CampaignBusy(CrisisCommsError):
    """Another sender holds the campaign's lease: nothing is sent."""

    exit_code = ExitCode.BUSY

    def __init__(self, lease: Lease) -> None:
        age = max(0, round(lease.heartbeat_age()))
        super().__init__(
            f"campaign {lease.campaign} is being sent by {lease.holder.describe()} since {lease.started_at} "
            f"(last heartbeat {age} s ago). Nothing was sent. Wait for that send to finish (crisiscomms report "
            f"shows it), or stop it there; a sender that died is taken over automatically after "
            f"{STALE_AFTER_SECONDS:.0f} s without a heartbeat (at once on the same host).")
        self.lease = lease


class LeaseLost(LedgerError):
    """This sender's lease was taken over (it looked dead): it must stop at once."""


class LedgerUnavailable(LedgerError):
    """The ledger stopped answering mid-run (a database connection lost): stop dispatching at once.

    Rows already marked in flight stay so in the ledger; the next run finds them uncertain and
    reconciles them with the provider, so nothing is resent blindly when the ledger is back."""


# -- the interface ---------------------------------------------------------------------------------------------


@dataclass
class StopImport:
    path: str
    added: int
    already: bool = False


@dataclass
class CampaignStatus:
    info: CampaignInfo
    lease: Lease | None
    plans: list[PlanHeader] = field(default_factory=list)


class Ledger(Protocol):
    """Where campaigns live. One instance is used by one thread."""

    location: str  # for people: a path, or a URL without its password
    shared: bool  # True: several senders (hosts) may join one campaign's dispatch (``send --join``)

    def close(self) -> None: ...

    # campaigns and plans
    def ensure_campaign(self, info: CampaignInfo) -> None: ...
    def campaigns(self) -> list[CampaignInfo]: ...
    def plan_writer(self, plan: NewPlan) -> PlanWriter: ...
    def plan(self, reference: str) -> PlanHeader: ...  # an id or a unique prefix; LedgerError if unknown
    def plans(self, campaign: str | None = None) -> list[PlanHeader]: ...
    def plan_snapshot(self, plan_id: str) -> str: ...
    def plan_rows(self, plan_id: str, *, after_seq: int = -1, limit: int = 1000) -> list[PlanRow]: ...
    def plan_skips(self, plan_id: str) -> Iterator[SkipRow]: ...
    def approve(self, plan_id: str, operator: str, at: str) -> None: ...

    # leases: one per sender; without ``join`` a live sender of the campaign refuses a second one (CampaignBusy).
    # Acquiring first reaps dead senders' leases (their rows in flight become uncertain). With ``join`` (shared
    # ledgers only) the holder sends beside the live senders of the same plan (``holder.plan``).
    def acquire_lease(self, campaign: str, holder: Holder, *, join: bool = False) -> LeaseGrant: ...
    def live_senders(self, campaign: str) -> int: ...  # leases with a fresh heartbeat (rate limits are shared)
    def heartbeat(self, campaign: str, holder: Holder) -> bool: ...  # False: the lease is no longer ours
    def release_lease(self, campaign: str, holder: Holder) -> None: ...
    def leases(self) -> list[Lease]: ...

    # delivery
    def in_flight_to_uncertain(self, campaign: str) -> int: ...  # rows in flight of senders no longer live
    def has_messages(self, campaign: str) -> bool: ...  # any delivery row yet
    def reached_with_other_text(self, campaign: str, text_version: str) -> Counter[str]: ...  # channel → n
    def text_choice(self, campaign: str, text_version: str) -> tuple[TextChoice, str, str] | None: ...
    def record_text_choice(self, campaign: str, text_version: str, choice: TextChoice, operator: str) -> None: ...
    def decision_counts(self, campaign: str, plan_id: str, policy: ClaimPolicy) -> Counter[tuple[str, str]]: ...
    # The next rows for this sender, their delivery rows made pending (or deferred) for it; returns the
    # claims and a cursor to pass back as ``after_seq`` (None: nothing left for this sender). A shared ledger
    # hands out whole batches of ``limit`` plan rows exclusively (SELECT … FOR UPDATE SKIP LOCKED), so joined
    # senders never claim the same row; a dead sender's batches return to the pool.
    def claim_batch(self, campaign: str, plan_id: str, holder: Holder, policy: ClaimPolicy, *,
                    after_seq: int, limit: int) -> tuple[list[Claim], int | None]: ...
    def mark_in_flight(self, campaign: str, holder: Holder,
                       entries: Sequence[tuple[str, str, str | None]]) -> None: ...
    def set_state(self, campaign: str, keys: Sequence[tuple[str, str]], state: str, *,
                  provider_id: str | None = None) -> None: ...
    def record(self, campaign: str, outcome: Outcome) -> None: ...
    def flush(self) -> None: ...
    def rows(self, campaign: str, *, states: Sequence[str] = (), channel: str | None = None) -> Iterator[Row]: ...
    def counts(self, campaign: str) -> dict[tuple[str, str, str], int]: ...

    def not_reached(self, campaign: str, channel: str, *, silent_since: str | None) -> Iterator[tuple[Row, PlanRow]]:
        """Rows of ``channel`` the provider rejected for good or whose receipt says not delivered (and, with
        ``silent_since``, accepted before that moment without a final receipt), with their plan rows."""
        ...

    # the STOP list
    def add_stop(self, numbers: Iterable[str], source: str) -> int: ...
    def stop_numbers(self) -> Iterator[str]: ...
    def import_stop_file(self, path: str, digest: str, numbers: Sequence[str]) -> StopImport: ...

    # timings (the exercise report)
    def channel_times(self, campaign: str) -> list[ChannelTimes]: ...


# -- timings (added for the exercise report) -------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelTimes:
    """One channel of a campaign as the ledger saw it: its rows by state, when its first request left, when
    its last message was accepted, and the delivery receipts (``delivery_state``) where the ledger has them."""

    channel: str
    states: dict[str, int]  # state → rows; a permanent failure counts as "rejected"
    first_request_at: str | None  # the earliest in-flight mark or attempt (ISO 8601, UTC)
    last_accepted_at: str | None  # the latest accepted attempt
    deliveries: dict[str, int] | None = None  # delivery_state → rows; None: this ledger keeps no receipts

