"""Test helper: delivery rows put straight into a ledger (as a claim would), with the lease held."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from crisiscomms.ledger.base import CampaignInfo, Holder, Ledger, now_iso
from crisiscomms.ledger.sqlite import SqliteLedger

HOLDER = Holder("test-host", 1, "tester", "", "")


class NewRow(NamedTuple):
    channel: str
    address: str
    recipient_id: str
    line: int
    locale: str
    not_before: str | None = None


def seed(ledger: Ledger, campaign: str, rows: Sequence[NewRow], holder: Holder = HOLDER) -> None:
    """The rows as pending messages of ``campaign`` (SQLite or PostgreSQL), with ``holder``'s lease."""
    ledger.ensure_campaign(CampaignInfo(campaign, "n", "org", "p.yaml"))
    ledger.acquire_lease(campaign, holder)
    statement = ("INSERT INTO messages (campaign, channel, address, recipient_id, line, locale, state, not_before, "
                 "updated_at, text_version, holder) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, 'v1', ?)")
    values = [(campaign, r.channel, r.address, r.recipient_id, r.line, r.locale, r.not_before, now_iso(),
               holder.token) for r in rows]
    if isinstance(ledger, SqliteLedger):
        with ledger._transaction():
            ledger.db.executemany(statement, values)
        return
    from .ledger.backends import sql

    for row in values:
        sql(ledger, statement, row)
