"""Test helper: delivery rows put straight into a ledger (as a claim would), with the lease held."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from crisiscomms.ledger.base import CampaignInfo, Holder, now_iso
from crisiscomms.ledger.sqlite import SqliteLedger

HOLDER = Holder("test-host", 1, "tester", "", "")


class NewRow(NamedTuple):
    channel: str
    address: str
    recipient_id: str
    line: int
    locale: str
    not_before: str | None = None


def seed(ledger: SqliteLedger, campaign: str, rows: Sequence[NewRow], holder: Holder = HOLDER) -> None:
    ledger.ensure_campaign(CampaignInfo(campaign, "n", "org", "p.yaml"))
    ledger.acquire_lease(campaign, holder)
    with ledger._transaction():
        ledger.db.executemany(
            "INSERT INTO messages (campaign, channel, address, recipient_id, line, locale, state, not_before, "
            "updated_at, text_version, holder) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, 'v1', ?)",
            [(campaign, r.channel, r.address, r.recipient_id, r.line, r.locale, r.not_before, now_iso(), holder.token)
             for r in rows])
