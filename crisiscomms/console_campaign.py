"""Rich views of plans, preparations and campaign status (used only by the CLI).

Everything that comes from a file, an option or the ledger is printed as plain
:class:`~rich.text.Text`, never interpreted as markup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from .campaign.send import Preparation
from .console import EXERCISE_BANNER, deferred_words, print_plan_summary
from .exercise_report import ExerciseReport
from .ledger.base import STALE_AFTER_SECONDS, Decision, Lease, Ledger, PlanHeader
from .plan import PlanSummary

if TYPE_CHECKING:
    from .campaign.lease import CampaignLease


def _say(console: Console, text: str, style: str = "") -> None:
    """A line of plain text, never wrapped: ids, paths and commands stay whole for copying."""
    console.print(Text(text, style=style), soft_wrap=True)


def print_frozen_plan(header: PlanHeader, summary: PlanSummary, console: Console, *, at: str) -> None:
    print_plan_summary(summary, console, dry_run=False, at=at)
    _say(console, f"Plan {header.id}: {header.messages:,} messages and {header.skips:,} skips frozen in the ledger "
                  f"(campaign {header.campaign}, text version {header.text_version}, planned by {header.planned_by}).",
         "bold")
    if header.approval_required and not header.approved:
        _say(console, f"This notice needs a second operator's approval: someone other than {header.planned_by} "
                      f"reviews it with 'crisiscomms plan show {header.id}' and runs "
                      f"'crisiscomms approve {header.id}'.", "yellow")
    _say(console, f"Send it with: crisiscomms send --plan {header.id}")


def print_plan_header(header: PlanHeader, summary: PlanSummary, console: Console, *, ledger: str,
                      samples: bool = True) -> None:
    """``plan show``: who planned it, approval, and the summary with one sample per locale and channel."""
    if header.exercise:
        _say(console, EXERCISE_BANNER, "bold magenta")
    _say(console, f"Plan {header.id} · campaign {header.campaign} · notice {header.notice}", "bold")
    _say(console, f"Ledger: {ledger}")
    _say(console, f"Planned by {header.planned_by} at {header.created_at}, as of {header.at}; text version "
                  f"{header.text_version}; {header.messages:,} messages, {header.skips:,} skips.")
    _say(console, approval_line(header))
    if samples:
        print_plan_summary(summary, console, dry_run=False, at=header.at[:16])


def approval_line(header: PlanHeader) -> str:
    if header.approved:
        return f"Approved by {header.approved_by} at {header.approved_at}."
    if header.approval_required:
        return "Approval: REQUIRED and not given yet (crisiscomms approve ID, by another operator)."
    return "Approval: not required by the playbook."


def plan_as_dict(header: PlanHeader, summary: PlanSummary) -> dict[str, Any]:
    samples: dict[str, dict[str, Any]] = {}
    for (locale, channel), content in sorted(summary.samples.items()):
        if isinstance(content, dict):
            continue
        samples.setdefault(locale, {})[channel] = {k: v for k, v in vars(content).items() if k != "fit"}
    return {"plan": header.id, "campaign": header.campaign, "notice": header.notice,
            "text_version": header.text_version, "at": header.at, "planned_by": header.planned_by,
            "planned_at": header.created_at, "approval_required": header.approval_required,
            "approved_by": header.approved_by, "approved_at": header.approved_at, "messages": header.messages,
            "skips": header.skips, **summary.as_dict(), "exercise": header.exercise, "samples": samples}


def print_preparation(preparation: Preparation, console: Console) -> None:
    """What the ledger changes about the plan: a taken-over sender, earlier runs, uncertain messages, a new text."""
    if preparation.taken_over is not None:
        old = preparation.taken_over
        _say(console, f"Took over campaign {old.campaign} from {old.holder.describe()}, which had held it since "
                      f"{old.started_at} and is gone (last heartbeat {max(0, round(old.heartbeat_age()))} s ago).",
             "yellow")
    if preparation.made_uncertain:
        _say(console, f"{preparation.made_uncertain:,} messages were in flight when an earlier send stopped: they "
                      "are uncertain and are never resent blindly.")
    change = preparation.text_change
    if change is not None:
        who = f" (chosen by {change.chosen_by} at {change.chosen_at})" if change.chosen_by else ""
        if change.choice.value == "resend":
            _say(console, f"CORRECTION{who}: the {change.total:,} people already reached with an earlier text get "
                          "this new text as a second message; everyone else gets it once.", "bold yellow")
        else:
            _say(console, f"New text{who}: the {change.total:,} people already reached with an earlier text are "
                          "left alone; those not yet reached get the new text.", "yellow")
    done = preparation.count(Decision.DONE)
    if done:
        _say(console, f"Resuming: {done:,} messages were accepted in an earlier run and are not sent again.")
    if done and preparation.plan.exercise and not preparation.to_send:
        _say(console, f"This exercise ({preparation.plan.campaign}) was run before. A new drill of the same notice "
                      "is a campaign of its own: give it a name, e.g. --exercise --campaign drill-2026-12.", "yellow")
    if preparation.uncertain_sms:
        _say(console, f"{preparation.uncertain_sms:,} SMS may have gone out in an earlier run; they are checked "
                      "against Twilio's message list first and resent only if Twilio has no such message.")
    if preparation.uncertain_calls:
        _say(console, f"{preparation.uncertain_calls:,} calls may have been placed in an earlier run; they are "
                      "checked against Twilio's call list first and placed again only if Twilio has no such call.")
    held_email = preparation.count(Decision.UNCERTAIN, "email")
    if held_email:
        _say(console, f"{held_email:,} e-mails may have gone out in an earlier run; they are NOT resent "
                      "(add --resend-uncertain to send them again; some people may get them twice).", "yellow")
    held = preparation.count(Decision.HELD)
    if held:
        _say(console, f"{held:,} messages were rejected by the provider before and are not retried "
                      "(see crisiscomms report).")
    deferred = {channel: preparation.count(Decision.DEFERRED, channel) for channel in ("sms", "voice")}
    if any(deferred.values()):
        _say(console, f"{deferred_words(deferred)} wait for the end of the recipients' quiet hours and are not "
                      "sent now.")


def print_campaign_status(ledger: Ledger, campaign: str, console: Console) -> None:
    """``report``'s header: who is sending what right now, and the campaign's plans."""
    now = dt.datetime.now(dt.UTC)
    leases = ledger.leases()
    if leases:
        for lease in leases:
            age = lease.heartbeat_age(now)
            state = "being sent" if age <= STALE_AFTER_SECONDS else "held by a sender that seems gone"
            _say(console, f"Campaign {lease.campaign} is {state} by {lease.holder.describe()} since "
                          f"{lease.started_at} (heartbeat {max(0, round(age))} s ago)", "bold")
    else:
        _say(console, "No campaign is being sent right now.")
    for header in ledger.plans(campaign):
        _say(console, f"Plan {header.id}: {header.messages:,} messages, planned by {header.planned_by} at "
                      f"{header.created_at}. {approval_line(header)}")


def print_exercise_report(report: ExerciseReport, console: Console) -> None:
    """The drill's result: per channel, time from the start to the last accepted message, failures, deliveries."""
    from rich import box
    from rich.table import Table

    _say(console, f"EXERCISE {report.campaign} (notice {report.notice}) — the result of the drill", "bold magenta")
    total = report.as_dict()["seconds_to_last_accepted"]
    _say(console, f"Started {report.started_at or 'never (nothing was sent)'}; last accepted "
                  f"{report.last_accepted_at or '-'}" + (f" ({_duration(total)} after the start)." if total else "."))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for column in ("channel", "messages", "accepted", "time", "failed", "uncertain", "waiting", "delivered"):
        table.add_column(column, justify="left" if column == "channel" else "right", no_wrap=True)
    for result in report.channels:
        failed = f"{result.failed + result.rejected:,}" + (f" ({result.rejected:,} for good)" if result.rejected
                                                           else "")
        table.add_row(Text(result.channel), f"{result.messages:,}", f"{result.accepted:,}",
                      _duration(result.seconds_to_last_accepted), failed, f"{result.uncertain:,}",
                      f"{result.waiting:,}", "-" if result.delivered is None else f"{result.delivered:,}")
    console.print(table)
    if any(result.delivered is None for result in report.channels):
        _say(console, "delivered: - where the ledger has no delivery receipts for the channel.")
    _say(console, "time: from the start of the exercise to the channel's last accepted message.")
    if report.skipped:
        skipped = ", ".join(f"{reason} {count:,}" for reason, count in sorted(report.skipped.items()))
        _say(console, f"Skipped when planned: {skipped}.")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"



def print_joined(leases: Sequence[Lease], lease: CampaignLease, console: Console) -> None:
    """``send --join``: who else sends this campaign now, and that the work and the rate limits are shared."""
    others = [other for other in leases
              if other.campaign == lease.campaign and other.holder.token != lease.holder.token]
    if not others:
        console.print(f"--join: nobody else is sending campaign {lease.campaign} now; this sender starts it "
                      "(others may join it with the same command).", markup=False, highlight=False, soft_wrap=True)
        return
    names = ", ".join(other.holder.describe() for other in others)
    console.print(f"Joining the send of campaign {lease.campaign} beside {names}: each sender claims its own "
                  f"batches of the plan, and the rate limits are shared ({len(others) + 1} senders).",
                  markup=False, highlight=False, soft_wrap=True)
