"""``send --plan ID --join``: several senders of one campaign through a shared (PostgreSQL) ledger.

Every assertion about sending counts the stand-in's record of accepted messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from crisiscomms.testing.standin import Standin

from ..conftest import run_cli
from ..faults.conftest import AT, make_project

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
    assert result.code == 3, result.stdout + result.stderr
    assert (f"--join needs a shared PostgreSQL ledger; {data['ledger']} is a SQLite file, where one sender at a "
            "time sends a campaign. Nothing was sent.") in " ".join(result.stderr.split())
    assert standin.sms_count_by_to() == {}
