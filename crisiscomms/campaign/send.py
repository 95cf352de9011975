"""Sending a frozen plan: checks first (lease, approval, changed text), then dispatch from the ledger.

The dispatcher is fed by claims: batches of the plan's rows that the ledger
makes pending for this sender, rendered from the plan's snapshot. Nothing is
read from the audience, the playbook or the templates on disk.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ..channels.base import BodyFingerprint, Channel, Message, ProviderRejected
from ..dispatch import Dispatcher, DispatchResult, DispatchSettings, ProgressCallback, SendersCallback
from ..errors import ProviderError, SendRefused
from ..ledger.base import (
    ClaimPolicy,
    Decision,
    Holder,
    Lease,
    Ledger,
    LedgerUnavailable,
    PlanHeader,
    Row,
    TextChoice,
    utc_iso,
)
from ..plan import PlannedMessage, PlanSummary
from ..playbook import Playbook
from .frozen import Thawed, thaw

RECONCILE_CONCURRENCY = 10
CLAIM_BATCH = 500
#: On a shared ledger a claim is a chunk of the plan no other sender gets: small enough that a sender who joins
#: finds free chunks, and that a crashed sender leaves little behind.
SHARED_CLAIM_BATCH = 100
#: Channels whose uncertain rows are looked up at the provider before a resume, and whether the look-up
#: needs the fingerprint of the text sent (an SMS is matched by its body; Twilio keeps no TwiML of a call,
#: so any call to the number from the caller id since the attempt counts as this one).
RECONCILED_CHANNELS: dict[str, bool] = {"sms": True, "voice": False}


@dataclass(frozen=True)
class SendOptions:
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    resend_uncertain: bool = False
    text_choice: TextChoice | None = None  # --continue-with-new-text / --resend-to-all, if given
    status_callback: str | None = None  # send --status-callback: where Twilio reports delivery (not frozen)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def with_status_callback(playbook: Playbook, url: str, where: str) -> Playbook:
    """``send --status-callback URL``: the playbook with ``providers.sms.status_callback`` replaced."""
    from pydantic import ValidationError

    from ..errors import UsageError
    from ..playbook import SmsSettings

    providers = playbook.providers
    if providers.sms is None:
        raise UsageError(f"--status-callback needs a 'providers: sms' section in {where}")
    try:
        sms = SmsSettings.model_validate({**providers.sms.model_dump(by_alias=True), "status_callback": url})
    except ValidationError as error:
        raise UsageError(f"--status-callback: {error.errors()[0]['msg']}") from None
    return playbook.model_copy(update={"providers": providers.model_copy(update={"sms": sms})})


@dataclass(frozen=True)
class TextChange:
    """People already reached with another text of this notice, and what is done about it."""

    reached: Counter[str]  # channel → people
    choice: TextChoice
    chosen_by: str = ""  # who chose it in an earlier run ("" when chosen now)
    chosen_at: str = ""

    @property
    def total(self) -> int:
        return sum(self.reached.values())


@dataclass
class Preparation:
    """The plan checked against the ledger: what this run will do."""

    plan: PlanHeader
    summary: PlanSummary
    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, decision) → n
    uncertain_sms: int = 0  # to reconcile with Twilio before anything else
    uncertain_calls: int = 0  # the same for calls (Twilio's call list)
    text_change: TextChange | None = None
    taken_over: Lease | None = None
    made_uncertain: int = 0  # rows a dead sender left in flight

    @property
    def to_reconcile(self) -> int:
        """Uncertain messages looked up at Twilio first: each is sent at most once more."""
        return self.uncertain_sms + self.uncertain_calls

    def count(self, decision: Decision, channel: str | None = None) -> int:
        return sum(n for (c, d), n in self.decisions.items() if d == decision.value and channel in (None, c))

    @property
    def to_send(self) -> int:
        """Messages to people this run sends now (not counting the banner file)."""
        return sum(n for (c, d), n in self.decisions.items() if d == Decision.SEND.value and c != "banner")


@dataclass
class SendOutcome:
    campaign: str
    plan: str
    counts: dict[tuple[str, str, str], int]  # (channel, locale, state) → n, from the ledger
    dispatch: DispatchResult
    reconciled: Counter[str] = field(default_factory=Counter)  # found / resend / unknown, and per channel
    permanent_failures: int = 0
    exercise: bool = False
    other_senders: int = 0  # joined senders still sending this campaign when this one finished

    def as_dict(self) -> dict[str, object]:
        """The outcome for tools (``send --format json``): counts per channel and state, and the next steps."""
        by_channel: dict[str, dict[str, int]] = {}
        for (channel, _, state), count in sorted(self.counts.items()):
            by_channel.setdefault(channel, {})
            by_channel[channel][state] = by_channel[channel].get(state, 0) + count
        return {"campaign": self.campaign, "plan": self.plan, "exercise": self.exercise, "counts": by_channel,
                "complete": self.complete, "other_senders": self.other_senders,
                "rejected": self.permanent_failures, "aborted": str(self.dispatch.aborted or "") or None,
                "interrupted": self.dispatch.interrupted, "next_steps": next_steps(self)}

    def total(self, state: str, channel: str | None = None) -> int:
        return sum(n for (c, _, s), n in self.counts.items() if s == state and channel in (None, c))

    @property
    def retryable_failures(self) -> int:
        return self.total("failed") - self.permanent_failures

    @property
    def complete(self) -> bool:
        """Nothing left that a rerun could still deliver now (deferrals aside); with other senders still at work,
        the rows they hold (pending, in flight) are theirs to settle."""
        busy = ("uncertain",) if self.other_senders else ("pending", "in_flight", "uncertain")
        unsettled = sum(self.total(s) for s in busy)
        return unsettled == 0 and self.retryable_failures == 0


def require_approval(plan: PlanHeader) -> None:
    if plan.approval_required and not plan.approved:
        raise SendRefused(
            f"plan {plan.id} needs the approval of a second operator before it is sent (the playbook says "
            f"approval: required). Nothing was sent. Someone other than {plan.planned_by} reviews it with "
            f"'crisiscomms plan show {plan.id}' and runs 'crisiscomms approve {plan.id}'; then send it with "
            f"'crisiscomms send --plan {plan.id}'.")


def text_change_refusal(plan: PlanHeader, reached: Counter[str]) -> SendRefused:
    total = sum(reached.values())
    per_channel = ", ".join(f"{channel} {count:,}" for channel, count in sorted(reached.items()))
    return SendRefused(
        f"notice {plan.notice} has already reached {total:,} people in campaign {plan.campaign} with a different "
        f"text ({per_channel}); this plan's text (version {plan.text_version}) has changed since. Nothing was "
        "sent. Choose one and run the command again with it:\n"
        "  --continue-with-new-text  those not yet reached get the new text; nobody gets a second message\n"
        f"  --resend-to-all           a correction: the {total:,} already reached get the new text again, "
        "the others get it once")


class PlanSend:
    """One send of a frozen plan by the holder of its campaign's lease."""

    def __init__(self, ledger: Ledger, plan: PlanHeader, summary: PlanSummary, holder: Holder,
                 options: SendOptions, *, taken_over: Lease | None = None,
                 senders: SendersCallback | None = None) -> None:
        self.ledger, self.plan, self.summary, self.holder, self.options = ledger, plan, summary, holder, options
        self.senders = senders  # joined senders share the rate limits
        self.campaign = plan.campaign
        self.taken_over = taken_over
        self.policy = ClaimPolicy(now=utc_iso(dt.datetime.now(dt.UTC)), text_version=plan.text_version,
                                  resend_uncertain=options.resend_uncertain)

    # -- before the confirmation ----------------------------------------------------------------------------

    def prepare(self) -> Preparation:
        """Refuse what needs a decision first; then count what this run will do (nothing is sent)."""
        require_approval(self.plan)
        preparation = Preparation(self.plan, self.summary, taken_over=self.taken_over)
        preparation.made_uncertain = self.ledger.in_flight_to_uncertain(self.campaign)
        preparation.text_change = self._text_change()
        choice = preparation.text_change.choice if preparation.text_change else TextChoice.REFUSE
        self.policy = ClaimPolicy(now=self.policy.now, text_version=self.plan.text_version,
                                  resend_uncertain=self.options.resend_uncertain, text_choice=choice)
        preparation.decisions = self._decisions()
        if choice is not TextChoice.RESEND:  # a correction goes to them anyway: nothing to look up
            preparation.uncertain_sms = self._uncertain("sms")
            preparation.uncertain_calls = self._uncertain("voice")
        return preparation

    def _uncertain(self, channel: str) -> int:
        if channel not in self.plan.channels:
            return 0
        return sum(1 for _ in self.ledger.rows(self.campaign, states=("uncertain",), channel=channel))

    def _decisions(self) -> Counter[tuple[str, str]]:
        """What happens to each planned message; a first send with nothing deferred needs no look-up."""
        if not sum(self.summary.deferred.values()) and not self.ledger.has_messages(self.campaign):
            return Counter({(channel, Decision.SEND.value): n for channel, n in self.summary.planned.items() if n})
        return self.ledger.decision_counts(self.campaign, self.plan.id, self.policy)

    def _text_change(self) -> TextChange | None:
        reached = self.ledger.reached_with_other_text(self.campaign, self.plan.text_version)
        if not reached:
            return None
        if self.options.text_choice is not None and self.options.text_choice is not TextChoice.REFUSE:
            return TextChange(reached, self.options.text_choice)
        earlier = self.ledger.text_choice(self.campaign, self.plan.text_version)
        if earlier is not None:
            return TextChange(reached, earlier[0], earlier[1], earlier[2])
        raise text_change_refusal(self.plan, reached)

    # -- the send -------------------------------------------------------------------------------------------

    async def execute(self, preparation: Preparation, *, on_progress: ProgressCallback | None = None,
                      stop: asyncio.Event | None = None) -> SendOutcome:
        from ..channels import create_channel
        from ..channels.base import ChannelContext
        from ..channels.http import make_http_client

        change = preparation.text_change
        if change is not None and not change.chosen_by:
            self.ledger.record_text_choice(self.campaign, self.plan.text_version, change.choice,
                                           self.holder.operator)
        settings = self.options.dispatch
        with thaw(self.ledger, self.plan.id) as thawed:
            playbook = thawed.playbook
            if self.options.status_callback:
                playbook = with_status_callback(playbook, self.options.status_callback, f"plan {self.plan.id}")
            rehearsal_at = dt.datetime.fromisoformat(thawed.snapshot.at) if thawed.snapshot.rehearsal else None
            async with make_http_client(max_connections=max(settings.concurrency.values(), default=100)) as http:
                context = ChannelContext(playbook, self.plan.notice, http, self.options.environ, at=rehearsal_at,
                                         planned_at=dt.datetime.fromisoformat(thawed.snapshot.at),
                                         exercise=self.plan.exercise or thawed.snapshot.exercise)
                channels = {name: create_channel(name, context) for name in self.plan.channels}
                reconciled = Counter[str]()
                if self.policy.text_choice is not TextChoice.RESEND:
                    reconciled = await self._reconcile(channels)
                dispatcher = Dispatcher(self.ledger, self.campaign, channels, settings, holder=self.holder,
                                        on_progress=on_progress, on_suppress=self._suppress, stop=stop,
                                        senders=self.senders)
                try:
                    result = await dispatcher.run(self._claimed(thawed))
                except LedgerUnavailable as error:
                    raise self._stopped_without_ledger(error) from None
                finally:
                    for channel in channels.values():
                        await channel.aclose()
        self.ledger.flush()
        outcome = SendOutcome(self.campaign, self.plan.id, self.ledger.counts(self.campaign), result, reconciled,
                              exercise=self.plan.exercise,
                              other_senders=max(0, self.ledger.live_senders(self.campaign) - 1))
        outcome.permanent_failures = sum(
            1 for row in self.ledger.rows(self.campaign, states=("failed",)) if row.permanent)
        return outcome

    def _stopped_without_ledger(self, error: LedgerUnavailable) -> LedgerUnavailable:
        return LedgerUnavailable(
            f"{error}\nStopped dispatching. Messages whose requests had left are marked in flight in the ledger: "
            "the next run treats them as uncertain and checks SMS and calls with Twilio before sending anything "
            f"again. When the ledger is back, resume with: crisiscomms send --plan {self.plan.id}")

    @property
    def _claim_size(self) -> int:
        return SHARED_CLAIM_BATCH if self.ledger.shared else CLAIM_BATCH

    def _claimed(self, thawed: Thawed) -> Iterator[PlannedMessage]:
        """The plan's messages to send now, claimed from the ledger a batch at a time."""
        after: int | None = -1
        while after is not None:
            claims, after = self.ledger.claim_batch(self.campaign, self.plan.id, self.holder, self.policy,
                                                    after_seq=after, limit=self._claim_size)
            for claim in claims:
                yield thawed.message(claim.row)

    async def _reconcile(self, channels: Mapping[str, Channel]) -> Counter[str]:
        """Ask Twilio about every SMS and call a previous run left uncertain: found → accepted, else → resend."""
        counts: Counter[str] = Counter()
        rows = [(channels[name], row) for name in RECONCILED_CHANNELS if name in channels
                for row in self.ledger.rows(self.campaign, states=("uncertain",), channel=name)]
        semaphore = asyncio.Semaphore(RECONCILE_CONCURRENCY)

        async def check(channel: Channel, row: Row) -> None:
            async with semaphore:
                counts[await self._reconcile_one(channel, row)] += 1
                counts[row.channel] += 1

        await asyncio.gather(*(check(channel, row) for channel, row in rows))
        return counts

    async def _reconcile_one(self, channel: Channel, row: Row) -> str:
        since = dt.datetime.fromisoformat(row.last_attempt_at) if row.last_attempt_at else dt.datetime.min
        body = BodyFingerprint(row.body) if row.body else None
        if body is None and RECONCILED_CHANNELS[row.channel]:
            return "unknown"  # no fingerprint: cannot tell, so never resend blindly
        message = Message(f"{row.recipient_id}/{row.channel}", row.recipient_id, row.address, row.locale, body)
        try:
            sid = await channel.find_sent(message, since.replace(tzinfo=since.tzinfo or dt.UTC))
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
        """Twilio said the number replied STOP: never message it again (every later plan reads the ledger's list)."""
        self.ledger.add_stop([e164], "Twilio 21610 (replied STOP)")


def next_steps(outcome: SendOutcome) -> list[str]:
    steps: list[str] = []
    result = outcome.dispatch
    resume = f"crisiscomms send --plan {outcome.plan}"
    if result.aborted is not None:
        steps.append(f"The provider refused the run: {result.aborted}. Fix it and resume with: {resume} "
                     "(nothing accepted so far will be sent twice).")
    if result.interrupted:
        steps.append(f"Stopped by Ctrl-C. Resume where it stopped with: {resume} (or run the same command again).")
    if outcome.reconciled:
        found, resend, unknown = (outcome.reconciled[k] for k in ("found", "resend", "unknown"))
        what = " and ".join(word for name, word in (("sms", "SMS"), ("voice", "calls")) if outcome.reconciled[name])
        steps.append(f"Checked {found + resend + unknown} uncertain {what} with Twilio: {found} had gone out, "
                     f"{resend} had not (sent now), {unknown} could not be checked (still uncertain).")
    uncertain_sms, uncertain_email = outcome.total("uncertain", "sms"), outcome.total("uncertain", "email")
    uncertain_calls = outcome.total("uncertain", "voice")
    if uncertain_calls:
        steps.append(f"{uncertain_calls:,} calls are uncertain (no answer from Twilio). Resume with: {resume} "
                     "(or run the same command again): it checks Twilio's call list and calls again only those "
                     "that were not placed.")
    if uncertain_sms:
        steps.append(f"{uncertain_sms:,} SMS are uncertain (no answer from Twilio). Resume with: {resume} "
                     "(or run the same command again): it checks with Twilio and resends only those that did not "
                     "go out.")
    if uncertain_email:
        steps.append(f"{uncertain_email:,} e-mails are uncertain. Resume with: {resume} --resend-uncertain "
                     "to send them again (some may arrive twice).")
    if outcome.retryable_failures:
        steps.append(f"{outcome.retryable_failures:,} messages failed after retries (throttling, errors). "
                     f"Retry them with: {resume} (or run the same command again).")
    if outcome.other_senders:
        steps.append(f"{outcome.other_senders} other sender{'s are' if outcome.other_senders > 1 else ' is'} still "
                     f"sending this campaign; this sender's part is done. The whole campaign: crisiscomms report "
                     f"--campaign {outcome.campaign}")
    elif outcome.total("pending"):
        steps.append(f"{outcome.total('pending'):,} messages were not sent yet. Resume with: {resume} "
                     "(or run the same command again).")
    if outcome.total("deferred"):
        sms, calls = outcome.total("deferred", "sms"), outcome.total("deferred", "voice")
        waiting = " and ".join([f"{sms:,} SMS"] * bool(sms) + [f"{calls:,} calls"] * bool(calls)) or \
            f"{outcome.total('deferred'):,} messages"
        steps.append(f"{waiting} wait for the end of the recipients' quiet hours. "
                     f"Run {resume} after that (e.g. from cron) to send them.")
    if outcome.permanent_failures:
        steps.append(f"{outcome.permanent_failures:,} messages were rejected by the provider for good. "
                     f"See: crisiscomms report --campaign {outcome.campaign} --format csv")
    if not steps:
        steps.append("Everything was accepted by the providers.")
    steps.append("Accepted means queued, not delivered: receipts come later (crisiscomms receipts serve or pull); "
                 f"see who got it with: crisiscomms report --campaign {outcome.campaign}")
    return steps
