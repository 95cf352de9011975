"""``crisiscomms report``: per-recipient outcomes of a campaign, from the ledger.

What contact-centre agents need at hand when customers call: who got which
message on which channel, the provider's id, and why a message failed.
Addresses are masked unless asked otherwise; credentials are never in the
ledger, so never in a report.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .errors import InputError, UsageError
from .ledger.base import Ledger, Row

COLUMNS = ("id", "channel", "address", "locale", "status", "provider_id", "error_code", "error", "attempts", "time",
           "delivery", "delivery_code", "delivery_reason", "delivery_time")
#: Delivery states that mean the message did not reach the person (escalation candidates).
NOT_REACHED = ("undelivered", "failed", "bounced", "dropped")
DELIVERY_LAG = ("A provider's acceptance means queued, not delivered: receipts come later (seconds to hours), "
                "through 'crisiscomms receipts serve' or 'crisiscomms receipts pull'.")


@dataclass(frozen=True)
class ReportRow:
    id: str
    channel: str
    address: str
    locale: str
    status: str
    provider_id: str
    error_code: str
    error: str
    attempts: int
    time: str
    delivery: str = ""  # the provider's receipt: delivered, undelivered, bounced, …; "" while none came
    delivery_code: str = ""
    delivery_reason: str = ""
    delivery_time: str = ""

    def as_tuple(self) -> tuple[str | int, ...]:
        return tuple(getattr(self, name) for name in COLUMNS)


def mask_address(channel: str, address: str) -> str:
    """``+46701234567`` → ``+46*****4567``; ``anna@example.se`` → ``a***@example.se``."""
    if channel == "sms":
        return address[:3] + "*" * max(0, len(address) - 7) + address[-4:] if len(address) > 7 else "****"
    if channel == "email" and "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return address


def choose_campaign(ledger: Ledger, campaign: str | None) -> str:
    known = [info.campaign for info in ledger.campaigns()]
    if not known:
        raise InputError(f"the ledger {ledger.location} has no campaigns yet")
    if campaign is None:
        return known[-1]
    if campaign not in known:
        raise UsageError(f"campaign '{campaign}' is not in {ledger.location} (campaigns: {', '.join(known)})")
    return campaign


def report_rows(ledger: Ledger, campaign: str, *, unmasked: bool = False) -> Iterator[ReportRow]:
    for row in ledger.rows(campaign):
        yield _report_row(row, unmasked)


def _report_row(row: Row, unmasked: bool) -> ReportRow:
    address = row.address if unmasked or row.channel == "banner" else mask_address(row.channel, row.address)
    status = "rejected" if row.state == "failed" and row.permanent else row.state
    return ReportRow(row.recipient_id, row.channel, address, row.locale, status, row.provider_id or "",
                     row.error_code or "", row.error or "", row.attempts, row.updated_at, row.delivery_state or "",
                     row.delivery_code or "", row.delivery_reason or "", row.delivery_at or "")


@dataclass
class DeliveryCounts:
    """Per channel × locale: what the providers accepted, and what their receipts say since."""

    accepted: int = 0
    delivered: int = 0
    not_reached: int = 0  # undelivered, failed, bounced, dropped
    no_receipt: int = 0  # accepted, nothing heard yet

    @property
    def share_delivered(self) -> float | None:
        return self.delivered / self.accepted if self.accepted else None


def delivery_summary(rows: Iterable[Row]) -> dict[tuple[str, str], DeliveryCounts]:
    """(channel, locale) → counts, for every channel that takes receipts (not the banner or CAP files)."""
    summary: dict[tuple[str, str], DeliveryCounts] = {}
    for row in rows:
        if row.channel in ("banner", "cap") or row.state != "accepted":
            continue
        counts = summary.setdefault((row.channel, row.locale), DeliveryCounts())
        counts.accepted += 1
        if row.delivery_state in ("delivered", "opened"):
            counts.delivered += 1
        elif row.delivery_state in NOT_REACHED:
            counts.not_reached += 1
        elif row.delivery_state is None:
            counts.no_receipt += 1
    return dict(sorted(summary.items()))


def as_csv(rows: Iterator[ReportRow]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(row.as_tuple())
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def as_json_lines(campaign: str, rows: Iterator[ReportRow]) -> Iterator[str]:
    for row in rows:
        yield json.dumps({"campaign": campaign, **dict(zip(COLUMNS, row.as_tuple(), strict=True))},
                         ensure_ascii=False) + "\n"
