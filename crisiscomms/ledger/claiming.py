"""What a claim does to the rows of a batch, the same for every backend: :func:`~.base.decide` per row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .base import REACHED_STATES, Claim, ClaimPolicy, Decision, Existing, PlanRow, decide


@dataclass
class ClaimedRows:
    """A batch sorted by :func:`decide`: what to send, and the delivery rows to create or change."""

    claims: list[Claim] = field(default_factory=list)
    new: list[tuple[PlanRow, str]] = field(default_factory=list)  # no delivery row yet: (row, pending|deferred)
    changed: list[tuple[PlanRow, str, bool]] = field(default_factory=list)  # (row, state, is a correction)


def sort_claims(pairs: Sequence[tuple[PlanRow, Existing | None]], policy: ClaimPolicy) -> ClaimedRows:
    """Rows to send now become pending, rows not yet due deferred; done, held and uncertain rows are left alone."""
    result = ClaimedRows()
    for row, existing in pairs:
        decision = decide(row, existing, policy)
        if decision not in (Decision.SEND, Decision.DEFERRED):
            continue
        state = "pending" if decision is Decision.SEND else "deferred"
        correction = existing is not None and existing.state in REACHED_STATES
        if existing is None:
            result.new.append((row, state))
        else:
            result.changed.append((row, state, correction))
        if decision is Decision.SEND:
            result.claims.append(Claim(row, correction=correction))
    return result
