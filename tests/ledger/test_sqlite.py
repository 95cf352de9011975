"""The SQLite ledger: schema versions and migration, leases, plans, claims, the STOP list."""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from crisiscomms.errors import LedgerError
from crisiscomms.ledger.base import (
    CampaignBusy,
    CampaignInfo,
    ClaimPolicy,
    Existing,
    Holder,
    LeaseLost,
    NewPlan,
    PlanRow,
    SkipRow,
    TextChoice,
    decide,
)
from crisiscomms.ledger.liveness import process_start, this_host
from crisiscomms.ledger.schema import V1_TABLES, schema_version
from crisiscomms.ledger.sqlite import SqliteLedger

CAMPAIGN = "org/notice"
ME = Holder(this_host(), os.getpid(), "alice", process_start(os.getpid()))
NOW = "2026-11-25T11:00:00+00:00"


@pytest.fixture
def ledger(tmp_path: Path) -> SqliteLedger:
    return SqliteLedger.open(tmp_path / "ledger.sqlite")


def new_plan(text_version: str = "v1") -> NewPlan:
    return NewPlan(CampaignInfo(CAMPAIGN, "notice", "org", "p.yaml"), text_version, "2026-11-25T12:00+01:00",
                   "alice", ("sms",), False, "{}")


def rows(count: int, not_before: str | None = None) -> list[PlanRow]:
    return [PlanRow(i, "sms", f"+4670100{i:04d}", f"r{i}", i + 2, "sv", "Europe/Stockholm", not_before, "{}")
            for i in range(count)]


def write_plan(ledger: SqliteLedger, plan_id: str, count: int = 3, text_version: str = "v1") -> str:
    writer = ledger.plan_writer(new_plan(text_version))
    writer.add(rows(count), [SkipRow(99, "x", "sms", "invalid_phone", "")])
    return writer.finish(plan_id, "{}")


# -- schema ------------------------------------------------------------------------------------------------------


def test_a_new_ledger_has_the_current_schema_version_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "ledger.sqlite"
    SqliteLedger.open(path).close()
    with sqlite3.connect(path) as db:
        assert schema_version(db) == 3
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"


def test_a_ledger_folder_made_by_another_process_meanwhile_is_no_error(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two first sends at once both create the default ledger: the slower one must not fail with 'File exists'."""
    path = tmp_path / "state" / "ledger.sqlite"
    path.parent.mkdir(mode=0o700)
    monkeypatch.setattr(Path, "exists", lambda self: False)  # as if the other process made it after our check
    SqliteLedger.open(path).close()
    monkeypatch.undo()
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_version_1_ledger_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(V1_TABLES)
        db.execute("INSERT INTO campaigns VALUES ('outage-1a2b3c4d', 'outage', 'p.yaml', '2026-11-01T00:00')")
        db.execute("INSERT INTO messages (campaign, channel, address, recipient_id, line, locale, state, updated_at) "
                   "VALUES ('outage-1a2b3c4d', 'sms', '+46701000001', 'r1', 2, 'sv', 'accepted', 'x')")
    ledger = SqliteLedger.open(path)
    assert [c.campaign for c in ledger.campaigns()] == ["outage-1a2b3c4d"]
    (row,) = ledger.rows("outage-1a2b3c4d")
    assert (row.state, row.text_version, row.corrections) == ("accepted", None, 0)
    ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (3,)


def test_a_newer_ledger_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 4")
    with pytest.raises(LedgerError) as error:
        SqliteLedger.open(path)
    assert str(error.value) == (f"the ledger {path} has schema version 4, newer than this crisiscomms knows (up to 3). "
                                "Nothing was sent. Upgrade crisiscomms, or use another ledger.")


def test_a_missing_ledger_is_not_created_for_reading(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger at"):
        SqliteLedger.open(tmp_path / "none.sqlite", create=False)
    assert not (tmp_path / "none.sqlite").exists()


# -- the decision rule, in Python and in SQL -----------------------------------------------------------------


def test_decision_counts_in_sql_agree_with_decide_for_every_combination(ledger: SqliteLedger) -> None:
    states = [None, "pending", "deferred", "in_flight", "accepted", "failed", "uncertain"]
    combos = list(itertools.product(states, (False, True), (None, "v1", "v0"), ("sms", "email", "banner"),
                                    (None, "2026-11-25T10:00:00+00:00", "2026-11-25T12:00:00+00:00")))
    writer = ledger.plan_writer(new_plan())
    writer.add([PlanRow(i, channel, f"a{i}", f"r{i}", i, "sv", "UTC", not_before, "{}")
                for i, (_, _, _, channel, not_before) in enumerate(combos)], [])
    plan_id = writer.finish("p" * 16, "{}")
    with ledger._transaction():
        ledger.db.executemany(
            "INSERT INTO messages (campaign, channel, address, recipient_id, line, locale, state, permanent, "
            "updated_at, text_version) VALUES (?, ?, ?, 'r', 1, 'sv', ?, ?, 'x', ?)",
            [(CAMPAIGN, channel, f"a{i}", state, int(permanent), version)
             for i, (state, permanent, version, channel, _) in enumerate(combos) if state is not None])
    for choice, resend_uncertain in itertools.product(TextChoice, (False, True)):
        policy = ClaimPolicy(NOW, "v1", resend_uncertain, choice)
        expected: dict[tuple[str, str], int] = {}
        for i, (state, permanent, version, channel, not_before) in enumerate(combos):
            row = PlanRow(i, channel, f"a{i}", f"r{i}", i, "sv", "UTC", not_before, "{}")
            existing = None if state is None else Existing(state, permanent, version)
            key = (channel, decide(row, existing, policy).value)
            expected[key] = expected.get(key, 0) + 1
        assert dict(ledger.decision_counts(CAMPAIGN, plan_id, policy)) == expected, (choice, resend_uncertain)


# -- plans -------------------------------------------------------------------------------------------------------


def test_the_same_plan_twice_is_kept_once_and_found_by_prefix(ledger: SqliteLedger) -> None:
    assert write_plan(ledger, "abcdef0123456789") == "abcdef0123456789"
    assert write_plan(ledger, "abcdef0123456789") == "abcdef0123456789"
    assert [p.id for p in ledger.plans()] == ["abcdef0123456789"]
    header = ledger.plan("ABCDEF01")
    assert (header.messages, header.skips) == (3, 1)
    assert [s.reason for s in ledger.plan_skips(header.id)] == ["invalid_phone"]


def test_an_ambiguous_or_short_plan_reference_is_refused(ledger: SqliteLedger) -> None:
    write_plan(ledger, "abcdef0000000000")
    write_plan(ledger, "abcdef1111111111", text_version="v2")
    with pytest.raises(LedgerError, match="is ambiguous"):
        ledger.plan("abcdef")
    with pytest.raises(LedgerError, match="at least 6 characters"):
        ledger.plan("abc")


def test_an_aborted_plan_leaves_nothing(ledger: SqliteLedger) -> None:
    writer = ledger.plan_writer(new_plan())
    writer.add(rows(10), [])
    writer.abort()
    assert ledger.plans() == []
    assert ledger.db.execute("SELECT COUNT(*) FROM plan_rows").fetchone() == (0,)


# -- leases ------------------------------------------------------------------------------------------------------


def test_a_live_holder_refuses_a_second_sender(ledger: SqliteLedger) -> None:
    ledger.acquire_lease(CAMPAIGN, ME)
    live = Holder("another-host", 4242, "bob")
    with pytest.raises(CampaignBusy) as busy:
        ledger.acquire_lease(CAMPAIGN, live)
    assert busy.value.exit_code == 75
    assert str(busy.value).startswith(f"campaign {CAMPAIGN} is being sent by alice on {this_host()} "
                                      f"(pid {os.getpid()}) since ")
    assert "Nothing was sent." in str(busy.value)


def test_a_dead_holder_on_this_host_is_taken_over_at_once(ledger: SqliteLedger) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = Holder(this_host(), child.pid, "alice", "1")
    ledger.acquire_lease(CAMPAIGN, dead)
    grant = ledger.acquire_lease(CAMPAIGN, ME)
    assert grant.taken_over is not None and grant.taken_over.holder.pid == child.pid


def test_a_reused_pid_is_not_mistaken_for_the_holder(ledger: SqliteLedger) -> None:
    ledger.acquire_lease(CAMPAIGN, Holder(this_host(), os.getpid(), "alice", "an-earlier-start"))
    assert ledger.acquire_lease(CAMPAIGN, ME).taken_over is not None


def test_a_holder_elsewhere_is_stale_only_after_the_heartbeat_bound(ledger: SqliteLedger) -> None:
    remote = Holder("laptop-of-bob", 99, "bob")
    ledger.acquire_lease(CAMPAIGN, remote)
    with pytest.raises(CampaignBusy):
        ledger.acquire_lease(CAMPAIGN, ME)
    ledger.db.execute("UPDATE leases SET heartbeat_at = '2026-01-01T00:00:00+00:00'")
    grant = ledger.acquire_lease(CAMPAIGN, ME)
    assert grant.taken_over is not None
    assert ledger.heartbeat(CAMPAIGN, remote) is False  # the old holder learns it lost the campaign
    assert ledger.heartbeat(CAMPAIGN, ME) is True


def test_a_sender_that_lost_its_lease_cannot_mark_anything_in_flight(ledger: SqliteLedger) -> None:
    remote = Holder("laptop-of-bob", 99, "bob")
    ledger.acquire_lease(CAMPAIGN, remote)
    ledger.db.execute("UPDATE leases SET heartbeat_at = '2026-01-01T00:00:00+00:00'")
    ledger.acquire_lease(CAMPAIGN, ME)
    with pytest.raises(LeaseLost, match="lost its hold on campaign org/notice"):
        ledger.mark_in_flight(CAMPAIGN, remote, [("sms", "+46701000001", None)])


def test_release_frees_the_campaign(ledger: SqliteLedger) -> None:
    ledger.acquire_lease(CAMPAIGN, ME)
    ledger.release_lease(CAMPAIGN, ME)
    assert ledger.leases() == []
    ledger.acquire_lease(CAMPAIGN, Holder("elsewhere", 1, "bob"))


# -- claims ------------------------------------------------------------------------------------------------------


def test_claims_walk_the_plan_once_and_leave_deferrals_for_later(ledger: SqliteLedger) -> None:
    writer = ledger.plan_writer(new_plan())
    writer.add([*rows(3), *(PlanRow(3 + i, "sms", f"+4670200{i:04d}", "d", 9, "sv", "UTC",
                                     "2026-11-26T07:00:00+00:00", "{}") for i in range(2))], [])
    plan_id = writer.finish("c" * 16, "{}")
    ledger.acquire_lease(CAMPAIGN, ME)
    policy = ClaimPolicy(NOW, "v1")
    claims, after = ledger.claim_batch(CAMPAIGN, plan_id, ME, policy, after_seq=-1, limit=2)
    assert ([c.row.seq for c in claims], after) == ([0, 1], 1)
    claims, after = ledger.claim_batch(CAMPAIGN, plan_id, ME, policy, after_seq=after, limit=10)
    assert ([c.row.seq for c in claims], after) == ([2], 4)
    assert ledger.claim_batch(CAMPAIGN, plan_id, ME, policy, after_seq=after, limit=10) == ([], None)
    states = sorted(r.state for r in ledger.rows(CAMPAIGN))
    assert states == ["deferred", "deferred", "pending", "pending", "pending"]


# -- the STOP list -----------------------------------------------------------------------------------------------


def test_a_stop_file_is_imported_once(ledger: SqliteLedger) -> None:
    first = ledger.import_stop_file("old.txt", "digest-1", ["+46701000001", "+46701000002"])
    again = ledger.import_stop_file("old.txt", "digest-1", ["+46701000001", "+46701000002"])
    assert (first.added, first.already, again.already) == (2, False, True)
    assert ledger.add_stop(["+46701000002", "+46701000003"], "Twilio 21610") == 1
    assert sorted(ledger.stop_numbers()) == ["+46701000001", "+46701000002", "+46701000003"]
