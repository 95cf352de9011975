"""Escalation: reach those the primary channel did not, once, on the notice's fallback channel.

A notice may say ``escalate: {sms: email, email: sms, after: 15m}``. The
candidates are the messages of a campaign on a primary channel that the
provider rejected for good, or whose receipt says they did not arrive
(undelivered, failed, bounced, dropped) — and, with ``after``, those accepted
that long ago without a final receipt. For each, the fallback channel's message
goes to the person's address on that channel (kept, never rendered, with the
planned message), with the text of the same frozen plan.

The escalation is itself a frozen plan of the same campaign, sent like any
other (lease, confirmation, dispatch from the ledger): the ledger's one row per
campaign × channel × address means nobody gets the fallback twice, and someone
who was already sent that channel in this campaign is not sent it again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

from ..errors import UsageError
from ..ledger.base import CampaignInfo, Ledger, NewPlan, PlanHeader, PlanRow, utc_iso
from ..plan import CONTACT_KEY, PlanSummary, quiet_hours_end
from ..playbook import Escalation, quiet_window
from .frozen import Snapshot, thaw

ESCALATION_CHUNK = 5_000


@dataclass
class EscalationPlan:
    """What an escalation would send (``rows``) and why others are left out."""

    source: PlanHeader
    rules: Escalation
    rows: list[PlanRow] = field(default_factory=list)
    routes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (from, to) → messages
    no_address: Counter[str] = field(default_factory=Counter)  # fallback channel → people without an address

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(sorted({row.channel for row in self.rows}))

    def as_dict(self) -> dict[str, object]:
        return {"campaign": self.source.campaign, "plan": self.source.id, "messages": len(self.rows),
                "routes": {f"{a}->{b}": n for (a, b), n in sorted(self.routes.items())},
                "no_address": dict(sorted(self.no_address.items()))}


def quiet_windows(ledger: Ledger, plan: PlanHeader) -> dict[str, tuple[int, int]]:
    """Channel → the recipients' quiet hours for SMS and calls (none for a critical notice), as planned."""
    playbook = Snapshot.from_json(ledger.plan_snapshot(plan.id)).playbook
    if playbook["notices"][plan.notice].get("severity") == "critical":
        return {}
    windows: dict[str, tuple[int, int]] = {}
    for channel in ("sms", "voice"):
        settings = (playbook.get("providers") or {}).get(channel) or {}
        window = quiet_window(settings.get("quiet_hours", "21:00-08:00"))
        if window is not None:
            windows[channel] = window
    return windows


def escalation_rules(ledger: Ledger, campaign: str) -> tuple[PlanHeader, Escalation]:
    """The campaign's newest plan and its notice's ``escalate`` rules (UsageError when it has none)."""
    plans = [plan for plan in ledger.plans(campaign) if not plan.id.startswith("esc")]
    if not plans:
        raise UsageError(f"campaign '{campaign}' has no plan in {ledger.location} to escalate")
    plan = plans[-1]
    playbook = Snapshot.from_json(ledger.plan_snapshot(plan.id)).playbook
    rules = playbook["notices"][plan.notice].get("escalate")
    if not rules:
        raise UsageError(f"notice '{plan.notice}' names no fallback channel: add for example "
                         "'escalate: {sms: email, email: sms}' to it in the playbook, plan and send it again")
    return plan, Escalation.model_validate(rules)


def find_escalations(ledger: Ledger, campaign: str, *, now: dt.datetime | None = None) -> EscalationPlan:
    """Every fallback message to send now (nothing is written)."""
    source, rules = escalation_rules(ledger, campaign)
    moment = now or dt.datetime.now(dt.UTC)
    silent_since = utc_iso(moment - rules.after) if rules.after is not None else None
    plan = EscalationPlan(source, rules)
    quiet = quiet_windows(ledger, source)
    seen: set[tuple[str, str]] = set()
    for primary in ("sms", "email", "voice"):
        fallback = rules.fallback(primary)
        if fallback is None:
            continue
        for _, planned in ledger.not_reached(campaign, primary, silent_since=silent_since):
            address = (json.loads(planned.view).get(CONTACT_KEY) or {}).get("sms" if fallback == "voice" else fallback)
            if not address:
                plan.no_address[fallback] += 1
                continue
            if (fallback, address) in seen:
                continue
            seen.add((fallback, address))
            plan.routes[(primary, fallback)] += 1
            window = quiet.get(fallback)
            wait = quiet_hours_end(moment, planned.timezone, window) if window else None  # no SMS or call at 3 a.m.
            plan.rows.append(PlanRow(len(plan.rows), fallback, str(address), planned.recipient_id, planned.line,
                                     planned.locale, planned.timezone, utc_iso(wait) if wait else None, planned.view))
    return plan


def freeze_escalation(ledger: Ledger, escalation: EscalationPlan, *, planned_by: str) -> tuple[PlanHeader, PlanSummary]:
    """Write the escalation as a frozen plan of the same campaign, rendered from the same snapshot."""
    source = escalation.source
    snapshot = ledger.plan_snapshot(source.id)
    info = CampaignInfo(source.campaign, source.notice, source.organisation, "")
    new = NewPlan(campaign=info, text_version=source.text_version, at=source.at, planned_by=planned_by,
                  channels=escalation.channels, approval_required=False, snapshot=snapshot)
    digest = hashlib.sha256(f"escalation of {source.id}".encode())
    for row in escalation.rows:
        digest.update("\x1f".join((row.channel, row.address, row.recipient_id, str(row.line))).encode())
    summary = _summary(ledger, escalation)
    writer = ledger.plan_writer(new)
    try:
        for start in range(0, len(escalation.rows), ESCALATION_CHUNK):
            writer.add(escalation.rows[start:start + ESCALATION_CHUNK], [])
        plan_id = writer.finish("esc" + digest.hexdigest()[:13], summary.to_json())
    except BaseException:
        writer.abort()
        raise
    return ledger.plan(plan_id), summary


def _summary(ledger: Ledger, escalation: EscalationPlan) -> PlanSummary:
    source = escalation.source
    summary = PlanSummary(notice=source.notice, campaign=source.campaign, channels=escalation.channels)
    with thaw(ledger, source.id) as thawed:
        for row in escalation.rows:
            summary.add(thawed.message(row))
    return summary
