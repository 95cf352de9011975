"""The two-person rule: a plan that needs approval is sent only after someone else approved it."""

from __future__ import annotations

from ..errors import SendRefused
from ..ledger.base import Ledger, PlanHeader, now_iso


def approve_plan(ledger: Ledger, plan: PlanHeader, approver: str) -> PlanHeader:
    """Record ``approver``'s approval of ``plan``; the planner cannot approve their own plan."""
    if approver.casefold() == plan.planned_by.casefold():
        raise SendRefused(f"plan {plan.id} was planned by {approver}: the approval must come from another operator "
                          "(set CRISISCOMMS_OPERATOR to your own name if you share a login). Nothing was approved.")
    if plan.approved:
        return plan
    ledger.approve(plan.id, approver, now_iso())
    return ledger.plan(plan.id)
