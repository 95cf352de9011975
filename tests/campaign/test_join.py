"""``send --plan ID --join``: several senders of one campaign through a shared (PostgreSQL) ledger.

Every assertion about sending counts the stand-in's record of accepted messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crisiscomms.testing.standin import Standin

from ..conftest import run_cli
from ..faults.conftest import AT, assert_exactly_once, make_project, phone

PLAYBOOK = "playbooks/p.yaml"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = make_project(tmp_path / "ops", 10)
    monkeypatch.chdir(root)
    yield root


def test_join_needs_a_frozen_plan(project: Path) -> None:
    result = run_cli("send", PLAYBOOK, "--notice", "outage", "--audience", "audience.csv", "--join", "--yes")
    assert result.code == 2
    assert ("--join joins the send of a frozen plan: use it with --plan ID (the plan the other senders are "
            "sending; crisiscomms report shows it)") in " ".join(result.stderr.split())


def test_join_on_a_sqlite_ledger_is_refused_and_nothing_is_sent(project: Path, standin: Standin) -> None:
    planned = run_cli("plan", PLAYBOOK, "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                      "--channels", "sms", "--format", "json")
    data = json.loads(planned.stdout)
    result = run_cli("send", "--plan", data["plan"], "--join", "--yes")
    assert result.code == 2, result.stdout + result.stderr  # a usage mistake, found before the ledger is opened
    assert (f"--join needs a shared PostgreSQL ledger; {data['ledger']} is a SQLite file, where one sender at a "
            "time sends a campaign. Nothing was sent.") in " ".join(result.stderr.split())
    assert standin.sms_count_by_to() == {}


# -- the ledger lost mid-send (any backend; PostgreSQL's own test stops a real server) ---------------------------


class _LedgerGoesAway:
    """Makes the SQLite ledger behave like a database that stopped answering after ``after`` in-flight marks."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, after: int) -> None:
        from crisiscomms.ledger.sqlite import SqliteLedger

        self.marks, self.after, self.down = 0, after, False
        for name in ("mark_in_flight", "flush", "set_state", "release_lease", "claim_batch"):
            monkeypatch.setattr(SqliteLedger, name, self._wrap(getattr(SqliteLedger, name), name))

    def _wrap(self, method: Any, name: str) -> Any:
        from crisiscomms.ledger.base import LedgerUnavailable

        def wrapped(ledger: Any, *args: Any, **kwargs: Any) -> Any:
            if name == "mark_in_flight":
                self.marks += 1
                self.down = self.down or self.marks > self.after
            if self.down:
                raise LedgerUnavailable(f"lost the connection to the ledger {ledger.location}")
            return method(ledger, *args, **kwargs)

        return wrapped


def test_a_ledger_lost_mid_send_stops_with_the_resume_command_and_the_resume_sends_once(
        project: Path, standin: Standin, monkeypatch: pytest.MonkeyPatch) -> None:
    planned = run_cli("plan", PLAYBOOK, "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                      "--channels", "sms", "--format", "json")
    plan_id = json.loads(planned.stdout)["plan"]
    with monkeypatch.context() as patch:
        outage = _LedgerGoesAway(patch, after=3)
        first = run_cli("send", "--plan", plan_id, "--yes", "--concurrency", "1")
    assert outage.down
    assert first.code == 3, first.stdout + first.stderr
    said = " ".join(first.stderr.split())
    assert "lost the connection to the ledger" in said
    assert ("Stopped dispatching. Messages whose requests had left are marked in flight in the ledger: the next "
            "run treats them as uncertain and checks SMS and calls with Twilio before sending anything again. When "
            f"the ledger is back, resume with: crisiscomms send --plan {plan_id}") in said
    assert "Traceback" not in first.stdout + first.stderr
    sent_before = sum(standin.sms_count_by_to().values())
    assert 1 <= sent_before <= 3
    resumed = run_cli("send", "--plan", plan_id, "--yes")
    assert resumed.code == 0, resumed.stdout + resumed.stderr
    assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(10)], "SMS after the ledger came back")
