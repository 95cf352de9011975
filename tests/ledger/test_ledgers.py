"""Every ledger backend means the same: plans, prefixes, leases, claims, the STOP list, decisions, counts.

Each test runs against SQLite and against a real PostgreSQL server (skipped, with the reason, without one).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest

from crisiscomms.errors import LedgerError
from crisiscomms.ledger.base import (
    CampaignBusy,
    CampaignInfo,
    ClaimPolicy,
    Existing,
    Holder,
    LeaseLost,
    Ledger,
    NewPlan,
    Outcome,
    PlanRow,
    SkipRow,
    TextChoice,
    decide,
)
from crisiscomms.ledger.liveness import process_start, this_host

from .backends import age_leases, ledger, location, sql

__all__ = ["ledger", "location"]  # the fixtures

CAMPAIGN = "org/notice"
ME = Holder(this_host(), os.getpid(), "alice", process_start(os.getpid()))
NOW = "2026-11-25T11:00:00+00:00"


def new_plan(text_version: str = "v1") -> NewPlan:
    return NewPlan(CampaignInfo(CAMPAIGN, "notice", "org", "p.yaml"), text_version, "2026-11-25T12:00+01:00",
                   "alice", ("sms",), False, "{}")


def rows(count: int, not_before: str | None = None) -> list[PlanRow]:
    return [PlanRow(i, "sms", f"+4670100{i:04d}", f"r{i}", i + 2, "sv", "Europe/Stockholm", not_before, "{}")
            for i in range(count)]


def write_plan(ledger: Ledger, plan_id: str, count: int = 3, text_version: str = "v1") -> str:
    writer = ledger.plan_writer(new_plan(text_version))
    writer.add(rows(count), [SkipRow(99, "x", "sms", "invalid_phone", "")])
    return writer.finish(plan_id, "{}")


# -- the decision rule, in Python and in SQL -----------------------------------------------------------------


def test_decision_counts_in_sql_agree_with_decide_for_every_combination(ledger: Ledger) -> None:
    states = [None, "pending", "deferred", "in_flight", "accepted", "failed", "uncertain"]
    combos = list(itertools.product(states, (False, True), (None, "v1", "v0"), ("sms", "email", "banner"),
                                    (None, "2026-11-25T10:00:00+00:00", "2026-11-25T12:00:00+00:00")))
    writer = ledger.plan_writer(new_plan())
    writer.add([PlanRow(i, channel, f"a{i}", f"r{i}", i, "sv", "UTC", not_before, "{}")
                for i, (_, _, _, channel, not_before) in enumerate(combos)], [])
    plan_id = writer.finish("p" * 16, "{}")
    for i, (state, permanent, version, channel, _) in enumerate(combos):
        if state is not None:
            sql(ledger, "INSERT INTO messages (campaign, channel, address, recipient_id, line, locale, state, "
                "permanent, updated_at, text_version) VALUES (?, ?, ?, 'r', 1, 'sv', ?, ?, 'x', ?)",
                (CAMPAIGN, channel, f"a{i}", state, permanent, version))
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


def test_the_same_plan_twice_is_kept_once_and_found_by_prefix(ledger: Ledger) -> None:
    assert write_plan(ledger, "abcdef0123456789") == "abcdef0123456789"
    assert write_plan(ledger, "abcdef0123456789") == "abcdef0123456789"
    assert [p.id for p in ledger.plans()] == ["abcdef0123456789"]
    header = ledger.plan("ABCDEF01")
    assert (header.messages, header.skips) == (3, 1)
    assert [s.reason for s in ledger.plan_skips(header.id)] == ["invalid_phone"]


def test_an_ambiguous_or_short_plan_reference_is_refused(ledger: Ledger) -> None:
    write_plan(ledger, "abcdef0000000000")
    write_plan(ledger, "abcdef1111111111", text_version="v2")
    with pytest.raises(LedgerError, match="is ambiguous"):
        ledger.plan("abcdef")
    with pytest.raises(LedgerError, match="at least 6 characters"):
        ledger.plan("abc")


def test_an_aborted_plan_leaves_nothing(ledger: Ledger) -> None:
    writer = ledger.plan_writer(new_plan())
    writer.add(rows(10), [])
    writer.abort()
    assert ledger.plans() == []
    assert sql(ledger, "SELECT COUNT(*) FROM plan_rows") == [(0,)]


# -- leases ------------------------------------------------------------------------------------------------------


def test_a_live_holder_refuses_a_second_sender(ledger: Ledger) -> None:
    ledger.acquire_lease(CAMPAIGN, ME)
    live = Holder("another-host", 4242, "bob")
    with pytest.raises(CampaignBusy) as busy:
        ledger.acquire_lease(CAMPAIGN, live)
    assert busy.value.exit_code == 75
    assert str(busy.value).startswith(f"campaign {CAMPAIGN} is being sent by alice on {this_host()} "
                                      f"(pid {os.getpid()}) since ")
    assert "Nothing was sent." in str(busy.value)


def test_a_dead_holder_on_this_host_is_taken_over_at_once(ledger: Ledger) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = Holder(this_host(), child.pid, "alice", "1")
    ledger.acquire_lease(CAMPAIGN, dead)
    grant = ledger.acquire_lease(CAMPAIGN, ME)
    assert grant.taken_over is not None and grant.taken_over.holder.pid == child.pid


def test_a_reused_pid_is_not_mistaken_for_the_holder(ledger: Ledger) -> None:
    ledger.acquire_lease(CAMPAIGN, Holder(this_host(), os.getpid(), "alice", "an-earlier-start"))
    assert ledger.acquire_lease(CAMPAIGN, ME).taken_over is not None


def test_a_holder_elsewhere_is_stale_only_after_the_heartbeat_bound(ledger: Ledger) -> None:
    remote = Holder("laptop-of-bob", 99, "bob")
    ledger.acquire_lease(CAMPAIGN, remote)
    with pytest.raises(CampaignBusy):
        ledger.acquire_lease(CAMPAIGN, ME)
    age_leases(ledger)
    grant = ledger.acquire_lease(CAMPAIGN, ME)
    assert grant.taken_over is not None
    assert ledger.heartbeat(CAMPAIGN, remote) is False  # the old holder learns it lost the campaign
    assert ledger.heartbeat(CAMPAIGN, ME) is True


def test_a_sender_that_lost_its_lease_cannot_mark_anything_in_flight(ledger: Ledger) -> None:
    remote = Holder("laptop-of-bob", 99, "bob")
    ledger.acquire_lease(CAMPAIGN, remote)
    age_leases(ledger)
    ledger.acquire_lease(CAMPAIGN, ME)
    with pytest.raises(LeaseLost, match="lost its hold on campaign org/notice"):
        ledger.mark_in_flight(CAMPAIGN, remote, [("sms", "+46701000001", None)])


def test_release_frees_the_campaign(ledger: Ledger) -> None:
    ledger.acquire_lease(CAMPAIGN, ME)
    ledger.release_lease(CAMPAIGN, ME)
    assert ledger.leases() == []
    ledger.acquire_lease(CAMPAIGN, Holder("elsewhere", 1, "bob"))


# -- claims ------------------------------------------------------------------------------------------------------


def test_claims_walk_the_plan_once_and_leave_deferrals_for_later(ledger: Ledger) -> None:
    writer = ledger.plan_writer(new_plan())
    writer.add([*rows(3), *(PlanRow(3 + i, "sms", f"+4670200{i:04d}", "d", 9, "sv", "UTC",
                                     "2026-11-26T07:00:00+00:00", "{}") for i in range(2))], [])
    plan_id = writer.finish("c" * 16, "{}")
    ledger.acquire_lease(CAMPAIGN, ME)
    policy = ClaimPolicy(NOW, "v1")
    claims, after = ledger.claim_batch(CAMPAIGN, plan_id, ME, policy, after_seq=-1, limit=2)
    assert ([c.row.seq for c in claims], after) == ([0, 1], 1)
    claims, after = ledger.claim_batch(CAMPAIGN, plan_id, ME, policy, after_seq=after, limit=10)
    assert [c.row.seq for c in claims] == [2]  # the cursor: SQLite's last row read, PostgreSQL's chunk end
    assert after is not None
    assert ledger.claim_batch(CAMPAIGN, plan_id, ME, policy, after_seq=after, limit=10) == ([], None)
    states = sorted(r.state for r in ledger.rows(CAMPAIGN))
    assert states == ["deferred", "deferred", "pending", "pending", "pending"]


# -- the STOP list -----------------------------------------------------------------------------------------------


def test_a_stop_file_is_imported_once(ledger: Ledger) -> None:
    first = ledger.import_stop_file("old.txt", "digest-1", ["+46701000001", "+46701000002"])
    again = ledger.import_stop_file("old.txt", "digest-1", ["+46701000001", "+46701000002"])
    assert (first.added, first.already, again.already) == (2, False, True)
    assert ledger.add_stop(["+46701000002", "+46701000003"], "Twilio 21610") == 1
    assert sorted(ledger.stop_numbers()) == ["+46701000001", "+46701000002", "+46701000003"]


# -- delivery rows -----------------------------------------------------------------------------------------------


def _sent(ledger: Ledger, count: int = 4) -> str:
    plan_id = write_plan(ledger, "d" * 16, count)
    ledger.acquire_lease(CAMPAIGN, ME)
    claims, _ = ledger.claim_batch(CAMPAIGN, plan_id, ME, ClaimPolicy(NOW, "v1"), after_seq=-1, limit=100)
    ledger.mark_in_flight(CAMPAIGN, ME, [("sms", c.row.address, "fp") for c in claims])
    return plan_id


def test_outcomes_are_counted_and_rows_listed_by_state(ledger: Ledger) -> None:
    _sent(ledger)
    ledger.record(CAMPAIGN, Outcome("sms", "+46701000000", "pending", 1, "retry"))
    ledger.record(CAMPAIGN, Outcome("sms", "+46701000000", "accepted", 2, "accepted", provider_id="SM1"))
    ledger.record(CAMPAIGN, Outcome("sms", "+46701000001", "failed", 1, "rejected", code="21211", reason="bad",
                                    permanent=True))
    ledger.flush()
    ledger.set_state(CAMPAIGN, [("sms", "+46701000002")], "accepted", provider_id="SM3")
    assert ledger.counts(CAMPAIGN) == {("sms", "sv", "accepted"): 2, ("sms", "sv", "failed"): 1,
                                       ("sms", "sv", "in_flight"): 1}
    (failed,) = ledger.rows(CAMPAIGN, states=("failed",), channel="sms")
    assert (failed.address, failed.permanent, failed.error_code, failed.error, failed.attempts) == (
        "+46701000001", True, "21211", "bad", 1)
    accepted = {r.address: r.provider_id for r in ledger.rows(CAMPAIGN, states=("accepted",))}
    assert accepted == {"+46701000000": "SM1", "+46701000002": "SM3"}
    assert [(row.address, plan.seq) for row, plan in ledger.not_reached(CAMPAIGN, "sms", silent_since=None)] == [
        ("+46701000001", 1)]
    (times,) = ledger.channel_times(CAMPAIGN)
    assert times.states == {"accepted": 2, "rejected": 1, "in_flight": 1}
    assert times.first_request_at is not None and times.last_accepted_at is not None
    assert ledger.has_messages(CAMPAIGN)


def test_rows_left_in_flight_by_a_dead_sender_become_uncertain(ledger: Ledger) -> None:
    _sent(ledger, 2)
    ledger.release_lease(CAMPAIGN, ME)  # as if the process had died after its marks
    assert ledger.in_flight_to_uncertain(CAMPAIGN) == 2
    assert {r.state for r in ledger.rows(CAMPAIGN)} == {"uncertain"}
    assert ledger.reached_with_other_text(CAMPAIGN, "v2") == {"sms": 2}


def test_a_text_choice_is_remembered(ledger: Ledger) -> None:
    ledger.ensure_campaign(CampaignInfo(CAMPAIGN, "notice", "org", "p.yaml"))
    assert ledger.text_choice(CAMPAIGN, "v2") is None
    ledger.record_text_choice(CAMPAIGN, "v2", TextChoice.CONTINUE, "alice")
    ledger.record_text_choice(CAMPAIGN, "v2", TextChoice.RESEND, "bob")
    choice = ledger.text_choice(CAMPAIGN, "v2")
    assert choice is not None and choice[:2] == (TextChoice.RESEND, "bob")
    assert [c.campaign for c in ledger.campaigns()] == [CAMPAIGN]


def test_an_unknown_plan_is_named_with_the_ledger(ledger: Ledger) -> None:
    with pytest.raises(LedgerError) as error:
        ledger.plan("abcdef99")
    assert str(error.value) == (f"plan 'abcdef99' is not in the ledger {ledger.location} (crisiscomms report lists "
                                "the plans)")
