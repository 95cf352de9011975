"""The team ledger across processes: two senders in separate working folders (each with its own per-user state)
share one campaign through one PostgreSQL ledger.

Every assertion about sending counts the stand-in's record of accepted messages.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from crisiscomms.testing.standin import Standin

from ..faults.conftest import AT, assert_exactly_once, cli_env, make_project, phone, run, start, wait_for_requests
from ..pgserver import PgServer, running_server

pytestmark = pytest.mark.postgres

RECIPIENTS = 300
MINUTE = 60.0


@dataclass(frozen=True)
class Operator:
    """One operator's machine: a working folder and an environment of its own, the team's ledger."""

    folder: Path
    env: dict[str, str]

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "crisiscomms", *args]

    def send_plan(self, plan_id: str, *extra: str) -> list[str]:
        return self.command("send", "--plan", plan_id, "--yes", *extra)


def operator(tmp_path: Path, name: str, standin: Standin, ledger: str, password: str) -> Operator:
    folder = tmp_path / name
    if not (tmp_path / "alice").exists():
        make_project(tmp_path / "alice", RECIPIENTS)
    if name != "alice":
        shutil.copytree(tmp_path / "alice", folder)
    env = cli_env(standin, tmp_path / f"crash-{name}", CRISISCOMMS_OPERATOR=name, CRISISCOMMS_LEDGER=ledger,
                  PGPASSWORD=password, XDG_STATE_HOME=str(tmp_path / f"state-{name}"))
    return Operator(folder, env)


def frozen_plan(who: Operator) -> str:
    planned = run(who.command("plan", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv",
                              "--at", AT, "--channels", "sms", "--format", "json"), who.folder, who.env, MINUTE)
    assert planned.code == 0, planned.text
    return str(json.loads(planned.stdout)["plan"])


def senders_of(server: PgServer, url: str) -> dict[str, int]:
    """Accepted rows per sender (the holder token each row was claimed by), read from the ledger itself."""
    import psycopg

    with psycopg.connect(server.admin_conninfo(urlsplit(url).path.lstrip("/"))) as connection:
        rows = connection.execute("SELECT holder, COUNT(*) FROM messages WHERE state = 'accepted' "
                                  "GROUP BY holder").fetchall()
    return {str(holder): int(count) for holder, count in rows}


@pytest.fixture
def team(tmp_path: Path, standin: Standin, pg_server: PgServer, pg_url: str) -> Iterator[tuple[Operator, Operator]]:
    standin.configure(latency=0.05)  # 300 SMS at concurrency 5: a few seconds, long enough to join
    yield (operator(tmp_path, "alice", standin, pg_url, pg_server.password),
           operator(tmp_path, "bob", standin, pg_url, pg_server.password))


def test_two_joined_senders_in_two_folders_split_the_work_and_reach_everyone_once(
        team: tuple[Operator, Operator], standin: Standin, pg_server: PgServer, pg_url: str) -> None:
    alice, bob = team
    plan_id = frozen_plan(alice)
    first = start(alice.send_plan(plan_id, "--concurrency", "5"), alice.folder, alice.env)
    assert wait_for_requests(standin, "twilio", 20, first), first.communicate()
    joined = run(bob.send_plan(plan_id, "--join", "--concurrency", "5"), bob.folder, bob.env, 2 * MINUTE)
    out, err = first.communicate(timeout=2 * MINUTE)
    assert first.returncode == 0, out + err
    assert joined.code == 0, joined.text
    assert "Joining the send of campaign testbolaget/outage beside alice on" in joined.text
    assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(RECIPIENTS)], "two joined senders")
    shares = senders_of(pg_server, pg_url)
    assert len(shares) == 2 and min(shares.values()) >= 20, shares  # both did a real part of the work


def test_a_second_sender_without_join_is_refused_across_machines(
        team: tuple[Operator, Operator], standin: Standin) -> None:
    alice, bob = team
    plan_id = frozen_plan(alice)
    first = start(alice.send_plan(plan_id, "--concurrency", "5"), alice.folder, alice.env)
    assert wait_for_requests(standin, "twilio", 10, first), first.communicate()
    refused = run(bob.send_plan(plan_id), bob.folder, bob.env, MINUTE)
    assert refused.code == 75, refused.text
    assert "crisiscomms: campaign testbolaget/outage is being sent by alice on" in refused.text
    assert "Nothing was sent." in refused.text
    first.communicate(timeout=2 * MINUTE)
    assert first.returncode == 0
    assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(RECIPIENTS)], "refused second sender")


def test_kill_9_of_one_of_two_joined_senders_then_a_resume_reaches_everyone_once(
        team: tuple[Operator, Operator], standin: Standin) -> None:
    alice, bob = team
    plan_id = frozen_plan(alice)
    first = start(alice.send_plan(plan_id, "--concurrency", "5"), alice.folder, alice.env)
    assert wait_for_requests(standin, "twilio", 10, first), first.communicate()
    second = start(bob.send_plan(plan_id, "--join", "--concurrency", "5"), bob.folder, bob.env)
    assert wait_for_requests(standin, "twilio", 60, second), second.communicate()
    second.send_signal(signal.SIGKILL)  # bob's laptop dies with claimed rows and requests on their way
    second.communicate(timeout=MINUTE)
    first.communicate(timeout=2 * MINUTE)
    assert first.returncode in (0, 1)  # 1: rows bob left in flight are uncertain until checked with Twilio
    resumed = run(alice.send_plan(plan_id), alice.folder, alice.env, 2 * MINUTE)
    assert resumed.code == 0, resumed.text
    assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(RECIPIENTS)], "after kill -9 of a sender")


def test_the_database_stopped_mid_send_stops_it_clearly_and_the_resume_sends_once(
        tmp_path: Path, standin: Standin) -> None:
    with running_server() as own:  # a cluster of this test's own: it is stopped and started again
        if isinstance(own, str):
            pytest.skip(own)
        own.execute("CREATE DATABASE team")
        alice = operator(tmp_path, "alice", standin, own.url("team"), own.password)
        standin.configure(latency=0.05)
        plan_id = frozen_plan(alice)
        sending = start(alice.send_plan(plan_id, "--concurrency", "5"), alice.folder, alice.env)
        assert wait_for_requests(standin, "twilio", 30, sending), sending.communicate()
        own.stop()
        at_stop = standin.requests["twilio"]
        out, err = sending.communicate(timeout=MINUTE)
        after_stop = standin.requests["twilio"] - at_stop
        said = " ".join((out + err).split())
        assert sending.returncode == 3, said
        assert "Stopped dispatching." in said
        assert f"When the ledger is back, resume with: crisiscomms send --plan {plan_id}" in said
        assert "Traceback" not in said and own.password not in said
        assert after_stop <= 10, after_stop  # at most what was on its way (concurrency 5) and one more batch
        own.start()
        resumed = run(alice.send_plan(plan_id), alice.folder, alice.env, 2 * MINUTE)
        assert resumed.code == 0, resumed.text
        assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(RECIPIENTS)],
                            "after the database came back")
