"""The result of an exercise, the drill's record a team keeps: per channel, how long from the start of the
send to the last message the provider accepted, what failed, and — where delivery receipts reached the
ledger — what was delivered.

Everything comes from the ledger: the rows of the exercise's campaign (their states and, once receipts
are kept, their ``delivery_state``), the attempts table (when each answer came) and the in-flight marks
(when each request left). The *start* is the first request of the campaign on any channel; a channel's
time is from that start to its last accepted attempt, so a slow channel shows as slow.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError, UsageError
from .ledger.base import ChannelTimes, Ledger
from .plan import PlanSummary

#: Receipt states that mean the message reached the person (Twilio SMS/calls, SendGrid events).
DELIVERED_STATES = frozenset({"delivered", "completed", "read"})
CSV_COLUMNS = ("campaign", "channel", "messages", "accepted", "failed", "rejected", "uncertain", "waiting",
               "first_request_at", "last_accepted_at", "seconds_to_last_accepted", "delivered")


@dataclass(frozen=True)
class ChannelResult:
    channel: str
    messages: int
    accepted: int
    failed: int  # failed after retries (may succeed on a resume)
    rejected: int  # refused for good by the provider
    uncertain: int
    waiting: int  # pending, deferred by quiet hours, or in flight
    first_request_at: str | None
    last_accepted_at: str | None
    seconds_to_last_accepted: float | None  # from the exercise's start
    delivered: int | None  # None: no delivery receipts in this ledger
    deliveries: dict[str, int] | None

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class ExerciseReport:
    campaign: str
    notice: str
    exercise: bool
    started_at: str | None
    last_accepted_at: str | None
    channels: list[ChannelResult] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # of the newest plan: reason → messages
    plans: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "notice": self.notice, "exercise": self.exercise,
                "started_at": self.started_at, "last_accepted_at": self.last_accepted_at,
                "seconds_to_last_accepted": _seconds(self.started_at, self.last_accepted_at),
                "channels": {result.channel: {k: v for k, v in result.as_dict().items() if k != "channel"}
                             for result in self.channels},
                "skipped": dict(sorted(self.skipped.items())), "plans": self.plans}


def choose_exercise_campaign(ledger: Ledger, campaign: str | None) -> str:
    """``report --exercise``: the named campaign, which must be an exercise, else the newest exercise."""
    exercises = [info.campaign for info in ledger.campaigns() if info.exercise]
    if campaign is not None:
        if campaign not in exercises:
            known = ", ".join(exercises) or "none yet"
            raise UsageError(f"campaign '{campaign}' is not an exercise in {ledger.location} (exercises: {known})")
        return campaign
    if not exercises:
        raise InputError(f"the ledger {ledger.location} has no exercise yet (crisiscomms send PLAYBOOK --notice ID "
                         "--exercise runs one)")
    return exercises[-1]


def is_exercise(ledger: Ledger, campaign: str) -> bool:
    return any(info.campaign == campaign and info.exercise for info in ledger.campaigns())


def exercise_report(ledger: Ledger, campaign: str) -> ExerciseReport:
    info = next(info for info in ledger.campaigns() if info.campaign == campaign)
    times = ledger.channel_times(campaign)
    starts = [t.first_request_at for t in times if t.first_request_at]
    start = min(starts) if starts else None
    accepted = [t.last_accepted_at for t in times if t.last_accepted_at]
    plans = ledger.plans(campaign)
    skipped = dict(PlanSummary.from_json(plans[-1].summary).skipped) if plans else {}
    return ExerciseReport(campaign, info.notice, info.exercise, start, max(accepted) if accepted else None,
                          [_channel_result(t, start) for t in times], skipped, [plan.id for plan in plans])


def _channel_result(times: ChannelTimes, start: str | None) -> ChannelResult:
    states = times.states
    deliveries = times.deliveries
    return ChannelResult(
        times.channel, sum(states.values()), states.get("accepted", 0), states.get("failed", 0),
        states.get("rejected", 0), states.get("uncertain", 0),
        sum(states.get(s, 0) for s in ("pending", "deferred", "in_flight")),
        times.first_request_at, times.last_accepted_at, _seconds(start, times.last_accepted_at),
        None if deliveries is None else sum(n for s, n in deliveries.items() if s in DELIVERED_STATES),
        deliveries)


def _seconds(start: str | None, end: str | None) -> float | None:
    if start is None or end is None:
        return None
    return round((dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds(), 1)


def as_json(report: ExerciseReport) -> str:
    return json.dumps(report.as_dict(), ensure_ascii=False) + "\n"


def as_csv(report: ExerciseReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for result in report.channels:
        values = {"campaign": report.campaign, **result.as_dict()}
        writer.writerow(["" if values[name] is None else values[name] for name in CSV_COLUMNS])
    return buffer.getvalue()
