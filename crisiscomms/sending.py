"""``crisiscomms send``: plan, then (unless it is a dry run) dispatch and record.

A dry run is this pipeline with nothing dispatched: the same planner, the same
renders, the same counts. It opens no connection and writes no ledger.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import enum
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .channels.base import BodyFingerprint, Channel, Message, ProviderRejected
from .dispatch import Dispatcher, DispatchResult, DispatchSettings, ProgressCallback
from .errors import InputError, ProviderError
from .ledger import Ledger, NewRow, Row
from .plan import PlanItem, PlannedMessage, Planner, PlanSummary, SkippedMessage, summary_for
from .suppression import append_suppressed_phone

SKIPPED_COLUMNS = ("line", "id", "channel", "reason", "detail")


class SkippedWriter:
    """Writes every skip as a CSV row, for follow-up by the contact centre."""

    def __init__(self, stream: TextIO | None) -> None:
        self._writer = csv.writer(stream) if stream is not None else None
        if self._writer is not None:
            self._writer.writerow(SKIPPED_COLUMNS)

    def write(self, item: SkippedMessage) -> None:
        if self._writer is not None:
            self._writer.writerow((item.line, item.recipient_id, item.channel, item.reason.value, item.detail))


@contextmanager
def skipped_writer(path: Path | None) -> Iterator[SkippedWriter]:
    if path is None:
        yield SkippedWriter(None)
        return
    try:
        stream = path.open("w", encoding="utf-8", newline="")
    except OSError as error:
        raise InputError(f"cannot write --skipped-out {path}: {error.strerror}") from None
    with stream:
        yield SkippedWriter(stream)


def plan_all(planner: Planner, skipped_out: Path | None) -> PlanSummary:
    """Stream the whole plan into a summary (and the skipped CSV); nothing is sent."""
    summary = summary_for(planner)
    with skipped_writer(skipped_out) as skipped:
        for item in planner.items():
            _account(summary, skipped, item)
    return summary


def _account(summary: PlanSummary, skipped: SkippedWriter, item: PlanItem) -> None:
    summary.add(item)
    if isinstance(item, SkippedMessage):
        skipped.write(item)


# ---------------------------------------------------------------------------------------------------------------
# The real send: the same plan, checked against the ledger, then dispatched.
# ---------------------------------------------------------------------------------------------------------------

RECONCILE_CONCURRENCY = 10
STOP_LIST_NAME = "opted-out-sms.txt"


class Decision(enum.StrEnum):
    SEND = "send"  # new, pending, retryable failure, due deferral
    DONE = "done"  # accepted in an earlier run
    DEFERRED = "deferred"  # quiet hours: not yet
    HELD = "held"  # rejected for good by the provider
    UNCERTAIN = "uncertain"  # may have been sent; e-mail without --resend-uncertain, or SMS not reconciled


def decide(row: Row | None, item: PlannedMessage, at: dt.datetime, *, resend_uncertain: bool) -> Decision:
    """What to do with a planned message, given what the ledger says about it."""
    if item.channel == "banner":
        return Decision.SEND  # rewriting the banner file is harmless and keeps it current
    due = item.not_before is None or item.not_before <= at
    if row is None or row.state == "pending":
        return Decision.SEND if due else Decision.DEFERRED
    if row.state == "accepted":
        return Decision.DONE
    if row.state == "failed":
        return Decision.HELD if row.permanent else Decision.SEND
    if row.state == "deferred":
        return Decision.SEND if due else Decision.DEFERRED
    if item.channel == "email" and resend_uncertain:
        return Decision.SEND
    return Decision.UNCERTAIN  # uncertain / in_flight: SMS are reconciled before the plan is replayed


@dataclass(frozen=True)
class SendOptions:
    ledger: Path
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    resend_uncertain: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    rehearsal_at: dt.datetime | None = None  # send --at: channels reckon time (SMS validity) from it


@dataclass
class Preparation:
    """The plan checked against the ledger: what this run will do."""

    summary: PlanSummary
    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, decision) → n
    uncertain_sms: int = 0  # to reconcile with Twilio before anything else
    other_campaigns: list[tuple[str, int]] = field(default_factory=list)

    def count(self, decision: Decision, channel: str | None = None) -> int:
        return sum(n for (c, d), n in self.decisions.items() if d == decision.value and channel in (None, c))

    @property
    def to_send(self) -> int:
        """Messages to people this run sends now (not counting the banner file)."""
        return sum(n for (c, d), n in self.decisions.items() if d == Decision.SEND.value and c != "banner")


@dataclass
class SendOutcome:
    campaign: str
    counts: dict[tuple[str, str, str], int]  # (channel, locale, state) → n, from the ledger
    dispatch: DispatchResult
    reconciled: Counter[str] = field(default_factory=Counter)  # found / resend / unknown

    def as_dict(self) -> dict[str, object]:
        """The outcome for tools (``send --format json``): counts per channel and state, and the next steps."""
        by_channel: dict[str, dict[str, int]] = {}
        for (channel, _, state), count in sorted(self.counts.items()):
            by_channel.setdefault(channel, {})
            by_channel[channel][state] = by_channel[channel].get(state, 0) + count
        return {"campaign": self.campaign, "counts": by_channel, "complete": self.complete,
                "rejected": self.permanent_failures, "aborted": str(self.dispatch.aborted or "") or None,
                "interrupted": self.dispatch.interrupted, "next_steps": next_steps(self)}

    def total(self, state: str, channel: str | None = None) -> int:
        return sum(n for (c, _, s), n in self.counts.items() if s == state and channel in (None, c))

    permanent_failures: int = 0

    @property
    def retryable_failures(self) -> int:
        return self.total("failed") - self.permanent_failures

    @property
    def complete(self) -> bool:
        """Nothing left that a rerun could still deliver now (deferrals aside)."""
        unsettled = sum(self.total(s) for s in ("pending", "in_flight", "uncertain"))
        return unsettled == 0 and self.retryable_failures == 0


class SendRun:
    """One ``crisiscomms send`` (not a dry run): ledger first, so nothing goes out unrecorded."""

    def __init__(self, planner: Planner, options: SendOptions) -> None:
        self.planner = planner
        self.options = options
        self.ledger = Ledger.open(options.ledger)  # LedgerError (exit 3) before anything is sent
        self.campaign = planner.campaign
        session = planner.session
        self.ledger.ensure_campaign(self.campaign, session.notice_id, str(session.loaded.path))
        self.at = planner.request.at

    @property
    def stop_list(self) -> Path:
        return self.options.ledger.parent / STOP_LIST_NAME

    def close(self) -> None:
        self.ledger.close()

    # -- pass 1: what will happen ---------------------------------------------------------------------------

    def prepare(self, skipped_out: Path | None = None) -> Preparation:
        self.ledger.in_flight_to_uncertain(self.campaign)
        preparation = Preparation(summary_for(self.planner))
        preparation.other_campaigns = self.ledger.accepted_in_other_campaigns(
            self.planner.session.notice_id, self.campaign)
        with skipped_writer(skipped_out) as skipped:
            for item, row in self._with_rows(self.planner.items(), preparation.summary, skipped):
                decision = decide(row, item, self.at, resend_uncertain=self.options.resend_uncertain)
                if decision is Decision.UNCERTAIN and item.channel == "sms":
                    preparation.uncertain_sms += 1
                preparation.decisions[(item.channel, decision.value)] += 1
        return preparation

    def _with_rows(self, items: Iterable[PlanItem], summary: PlanSummary | None,
                   skipped: SkippedWriter | None) -> Iterator[tuple[PlannedMessage, Row | None]]:
        """Planned messages with their ledger rows, looked up a chunk at a time."""
        chunk: list[PlannedMessage] = []
        for item in items:
            if summary is not None:
                summary.add(item)
            if isinstance(item, SkippedMessage):
                if skipped is not None:
                    skipped.write(item)
                continue
            chunk.append(item)
            if len(chunk) >= LOOKUP_CHUNK:
                yield from self._rows_for(chunk)
                chunk = []
        yield from self._rows_for(chunk)

    def _rows_for(self, chunk: list[PlannedMessage]) -> Iterator[tuple[PlannedMessage, Row | None]]:
        rows = self.ledger.existing(self.campaign, [(i.channel, i.address) for i in chunk])
        for item in chunk:
            yield item, rows.get((item.channel, item.address))

    # -- pass 2: send ---------------------------------------------------------------------------------------

    async def execute(self, *, on_progress: ProgressCallback | None = None,
                      stop: asyncio.Event | None = None) -> SendOutcome:
        from .channels import create_channel
        from .channels.base import ChannelContext
        from .channels.http import make_http_client

        session = self.planner.session
        settings = self.options.dispatch
        async with make_http_client(max_connections=max(settings.concurrency.values(), default=100)) as http:
            context = ChannelContext(session.playbook, session.notice_id, http, self.options.environ,
                                     at=self.options.rehearsal_at)
            channels = {name: create_channel(name, context) for name in self.planner.channels}
            reconciled = await self._reconcile(channels.get("sms"))
            dispatcher = Dispatcher(self.ledger, self.campaign, channels, settings, on_progress=on_progress,
                                    on_suppress=self._suppress, stop=stop)
            replanned = Planner(session, self.planner.request)
            result = await dispatcher.run(self._sendable(replanned.items()))
            for channel in channels.values():
                await channel.aclose()
        self.ledger.flush()
        outcome = SendOutcome(self.campaign, self.ledger.counts(self.campaign), result, reconciled)
        outcome.permanent_failures = sum(
            1 for _ in self.ledger.rows(self.campaign, states=("failed",)) if _.permanent)
        return outcome

    def _sendable(self, items: Iterable[PlanItem]) -> Iterator[PlannedMessage]:
        new_rows: list[NewRow] = []
        ready: list[PlannedMessage] = []
        for item, row in self._with_rows(items, None, None):
            decision = decide(row, item, self.at, resend_uncertain=self.options.resend_uncertain)
            if row is None and decision in (Decision.SEND, Decision.DEFERRED):
                new_rows.append(NewRow(item.channel, item.address, item.recipient_id, item.line, item.locale,
                                       item.not_before if decision is Decision.DEFERRED else None))
            if decision is Decision.SEND:
                ready.append(item)
            if len(ready) >= LOOKUP_CHUNK or len(new_rows) >= LOOKUP_CHUNK:
                yield from self._flush_ready(new_rows, ready)
                new_rows, ready = [], []
        yield from self._flush_ready(new_rows, ready)

    def _flush_ready(self, new_rows: list[NewRow], ready: list[PlannedMessage]) -> Iterator[PlannedMessage]:
        self.ledger.add(self.campaign, new_rows)  # rows exist (pending) before any is marked in flight
        yield from ready

    async def _reconcile(self, sms: Channel | None) -> Counter[str]:
        """Ask Twilio about every SMS a previous run left uncertain: found → accepted, else → resend."""
        counts: Counter[str] = Counter()
        if sms is None:
            return counts
        rows = list(self.ledger.rows(self.campaign, states=("uncertain",), channel="sms"))
        semaphore = asyncio.Semaphore(RECONCILE_CONCURRENCY)

        async def check(row: Row) -> None:
            async with semaphore:
                counts[await self._reconcile_one(sms, row)] += 1

        await asyncio.gather(*(check(row) for row in rows))
        return counts

    async def _reconcile_one(self, sms: Channel, row: Row) -> str:
        since = dt.datetime.fromisoformat(row.last_attempt_at) if row.last_attempt_at else dt.datetime.min
        body = BodyFingerprint(row.body) if row.body else None
        if body is None:
            return "unknown"  # no fingerprint: cannot tell, so never resend blindly
        message = Message(f"sms:{row.address}", row.recipient_id, row.address, row.locale, body)
        try:
            sid = await sms.find_sent(message, since.replace(tzinfo=since.tzinfo or dt.UTC))
        except ProviderRejected:
            raise
        except ProviderError:
            return "unknown"
        key = [(row.channel, row.address)]
        if sid:
            self.ledger.set_state(self.campaign, key, "accepted", provider_id=sid)
            return "found"
        self.ledger.set_state(self.campaign, key, "pending")
        return "resend"

    def _suppress(self, e164: str) -> None:
        """Twilio said the number replied STOP: never message it again (the next plan reads this file)."""
        append_suppressed_phone(self.stop_list, e164)
        self.planner.suppression.add_phone(e164)


LOOKUP_CHUNK = 400


def next_steps(outcome: SendOutcome) -> list[str]:
    steps: list[str] = []
    result = outcome.dispatch
    if result.aborted is not None:
        steps.append(f"The provider refused the run: {result.aborted}. Fix it and run the same command again; "
                     "nothing accepted so far will be sent twice.")
    if result.interrupted:
        steps.append("Stopped by Ctrl-C. Run the same command again to resume where it stopped.")
    if outcome.reconciled:
        found, resend, unknown = (outcome.reconciled[k] for k in ("found", "resend", "unknown"))
        steps.append(f"Checked {found + resend + unknown} uncertain SMS with Twilio: {found} had gone out, "
                     f"{resend} had not (sent now), {unknown} could not be checked (still uncertain).")
    uncertain_sms, uncertain_email = outcome.total("uncertain", "sms"), outcome.total("uncertain", "email")
    if uncertain_sms:
        steps.append(f"{uncertain_sms:,} SMS are uncertain (no answer from Twilio). Run the same command again: "
                     "it checks with Twilio and resends only those that did not go out.")
    if uncertain_email:
        steps.append(f"{uncertain_email:,} e-mails are uncertain. Run the same command with --resend-uncertain "
                     "to send them again (some may arrive twice).")
    if outcome.retryable_failures:
        steps.append(f"{outcome.retryable_failures:,} messages failed after retries (throttling, errors). "
                     "Run the same command again to retry them.")
    if outcome.total("pending"):
        steps.append(f"{outcome.total('pending'):,} messages were not sent yet. Run the same command again.")
    if outcome.total("deferred"):
        steps.append(f"{outcome.total('deferred'):,} SMS wait for the end of the recipients' quiet hours. "
                     "Run the same command again after that (e.g. from cron) to send them.")
    if outcome.permanent_failures:
        steps.append(f"{outcome.permanent_failures:,} messages were rejected by the provider for good. "
                     f"See: crisiscomms report --campaign {outcome.campaign} --format csv")
    if not steps:
        steps.append("Everything was accepted by the providers. Delivery receipts come later from them.")
    return steps
