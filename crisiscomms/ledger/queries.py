"""SQL and row handling that both backends share, written once with the driver's placeholder (``?`` or ``%s``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import LedgerError
from .base import Holder, Lease, PlanHeader, PlanRow, Row

MESSAGE_COLUMNS = ("campaign, channel, address, recipient_id, line, locale, state, permanent, attempts, provider_id, "
                   "error_code, error, not_before, body, last_attempt_at, updated_at, text_version, corrections, "
                   "delivery_state, delivery_code, delivery_reason, delivery_at")
PLAN_COLUMNS = ("id, campaign, notice, organisation, text_version, at, created_at, planned_by, channels, "
                "approval_required, approved_by, approved_at, messages, skips, summary, exercise")
PLAN_ROW_COLUMNS = "seq, channel, address, recipient_id, line, locale, timezone, not_before, view"
MESSAGE_WIDTH = len(MESSAGE_COLUMNS.split(","))

# decide() in SQL, for counting a plan's decisions in one query (a test holds the two to the same answers)
_DUE = "(p.not_before IS NULL OR p.not_before <= :now)"
DECISION_SQL = f"""CASE
    WHEN p.channel = 'banner' THEN 'send'
    WHEN m.state IS NULL OR m.state IN ('pending', 'deferred') THEN CASE WHEN {_DUE} THEN 'send' ELSE 'deferred' END
    WHEN m.state IN ('accepted', 'uncertain', 'in_flight') AND m.text_version IS NOT NULL
         AND m.text_version != :text_version AND :resend THEN 'send'
    WHEN m.state = 'accepted' THEN 'done'
    WHEN m.state = 'failed' THEN CASE WHEN m.permanent THEN 'held' WHEN {_DUE} THEN 'send' ELSE 'deferred' END
    WHEN p.channel = 'email' AND :resend_uncertain THEN 'send'
    ELSE 'uncertain' END"""


def plan_prefix(reference: str) -> str:
    """The reference as a LIKE pattern (at least 6 characters of a plan id)."""
    if len(reference) < 6:
        raise LedgerError(f"plan '{reference}': give at least 6 characters of the plan id")
    return reference.replace("%", "").replace("_", "") + "%"


def the_one_plan(reference: str, found: Sequence[Sequence[object]], location: str) -> Sequence[object]:
    """The single plan a reference names, or the error that says why not."""
    if not found:
        raise LedgerError(f"plan '{reference}' is not in the ledger {location} (crisiscomms report lists the plans)")
    if len(found) > 1:
        raise LedgerError(f"plan '{reference}' is ambiguous in {location}: "
                          f"{', '.join(str(r[0]) for r in found)}; give more of the id")
    return found[0]


def rows_query(campaign: str, states: Sequence[str], channel: str | None, mark: str) -> tuple[str, list[object]]:
    query = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE campaign = {mark}"
    params: list[object] = [campaign]
    if states:
        query += f" AND state IN ({','.join(mark for _ in states)})"
        params.extend(states)
    if channel:
        query += f" AND channel = {mark}"
        params.append(channel)
    return query + " ORDER BY line, channel", params


def counts_query(mark: str) -> str:
    return f"SELECT channel, locale, state, COUNT(*) FROM messages WHERE campaign = {mark} GROUP BY 1, 2, 3"


def not_reached_query(campaign: str, channel: str, silent_since: str | None,
                      mark: str) -> tuple[str, list[object]]:
    """Rejected for good, or a receipt says not delivered (or, with ``silent_since``, no final receipt since)."""
    columns = ", ".join(f"m.{c.strip()}" for c in MESSAGE_COLUMNS.split(","))
    plan_columns = ", ".join(f"r.{c.strip()}" for c in PLAN_ROW_COLUMNS.split(","))
    query = (f"SELECT {columns}, {plan_columns} FROM messages m "
             f"JOIN plan_rows r ON r.plan = m.plan AND r.seq = m.seq WHERE m.campaign = {mark} AND m.channel = {mark} "
             "AND ((m.state = 'failed' AND m.permanent) "
             "OR m.delivery_state IN ('undelivered', 'failed', 'bounced', 'dropped')")
    params: list[object] = [campaign, channel]
    if silent_since is not None:
        query += (" OR (m.state = 'accepted' AND (m.delivery_state IS NULL OR m.delivery_state IN "
                  f"('sent', 'deferred')) AND m.last_attempt_at <= {mark})")
        params.append(silent_since)
    return query + ") ORDER BY m.line", params


def states_by_channel(found: Iterable[Sequence[object]]) -> dict[str, dict[str, int]]:
    """(channel, state, permanent, n) rows as channel → state → n, a permanent failure counted as "rejected"."""
    states: dict[str, dict[str, int]] = {}
    for channel, state, permanent, count in found:
        name = "rejected" if state == "failed" and permanent else str(state)
        per_channel = states.setdefault(str(channel), {})
        per_channel[name] = per_channel.get(name, 0) + int(str(count))
    return states


# -- rows as the interface's dataclasses ------------------------------------------------------------------------


def plan_header(values: Sequence[object]) -> PlanHeader:
    (plan_id, campaign, notice, organisation, text_version, at, created_at, planned_by, channels, approval_required,
     approved_by, approved_at, messages, skips, summary, exercise) = values
    return PlanHeader(str(plan_id), str(campaign), str(notice), str(organisation), str(text_version), str(at),
                      str(created_at), str(planned_by), tuple(str(channels).split(",")) if channels else (),
                      bool(approval_required), opt(approved_by), opt(approved_at), int(messages or 0),  # type: ignore[call-overload]
                      int(skips or 0), str(summary or "{}"), bool(exercise))  # type: ignore[call-overload]


def plan_row(values: Sequence[object]) -> PlanRow:
    seq, channel, address, recipient_id, line, locale, timezone, not_before, view = values
    return PlanRow(int(seq), str(channel), str(address), str(recipient_id), int(line), str(locale),  # type: ignore[call-overload]
                   str(timezone), opt(not_before), str(view))


def lease_from(values: Sequence[object]) -> Lease:
    campaign, host, pid, process_start, operator, plan, started_at, heartbeat_at = values
    holder = Holder(str(host), int(pid), str(operator), str(process_start or ""), str(plan or ""))  # type: ignore[call-overload]
    return Lease(str(campaign), holder, str(started_at), str(heartbeat_at))


def message_row(values: Sequence[object]) -> Row:
    (campaign, channel, address, recipient_id, line, locale, state, permanent, attempts, provider_id, error_code,
     error, not_before, body, last_attempt_at, updated_at, text_version, corrections, delivery_state, delivery_code,
     delivery_reason, delivery_at) = values
    return Row(str(campaign), str(channel), str(address), str(recipient_id), int(line), str(locale),  # type: ignore[call-overload]
               str(state), bool(permanent), int(attempts), opt(provider_id), opt(error_code), opt(error),  # type: ignore[call-overload]
               opt(not_before), opt(body), opt(last_attempt_at), str(updated_at), opt(text_version),
               int(corrections or 0), opt(delivery_state), opt(delivery_code), opt(delivery_reason),  # type: ignore[call-overload]
               opt(delivery_at))


def opt(value: object) -> str | None:
    return None if value is None else str(value)
