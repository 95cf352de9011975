"""Exercise mode on the team ledger: two operators' machines (separate working folders and per-user state)
drill through one PostgreSQL ledger. Every assertion about sending counts the stand-in's accepted messages."""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

from crisiscomms.testing.standin import Standin

from ..faults.conftest import cli_env, run
from ..pgserver import PgServer
from .test_exercise_send import AT, CUSTOMERS, TEAM_EMAIL, TEAM_LANDLINE, TEAM_MOBILE, write_project

pytestmark = pytest.mark.postgres

MINUTE = 60.0


def machines(tmp_path: Path, standin: Standin, pg_server: PgServer, pg_url: str) -> list[tuple[Path, dict[str, str]]]:
    """Alice's and Bob's folders (the same project) and environments (the team's ledger, own state)."""
    write_project(tmp_path / "alice")
    shutil.copytree(tmp_path / "alice", tmp_path / "bob")
    return [(tmp_path / name, cli_env(standin, tmp_path / f"crash-{name}", CRISISCOMMS_OPERATOR=name,
                                      CRISISCOMMS_LEDGER=pg_url, PGPASSWORD=pg_server.password,
                                      XDG_STATE_HOME=str(tmp_path / f"state-{name}")))
            for name in ("alice", "bob")]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "crisiscomms", *args]


def test_an_exercise_planned_on_one_machine_is_sent_once_from_another(tmp_path: Path, standin: Standin,
                                                                     pg_server: PgServer, pg_url: str) -> None:
    (alice, alice_env), (bob, bob_env) = machines(tmp_path, standin, pg_server, pg_url)
    planned = run(command("plan", "playbooks/p.yaml", "--notice", "outage", "--exercise", "--at", AT,
                          "--format", "json"), alice, alice_env, MINUTE)
    assert planned.code == 0, planned.stdout + planned.stderr
    plan_id = str(json.loads(planned.stdout)["plan"])
    sent = run(command("send", "--plan", plan_id, "--yes"), bob, bob_env, MINUTE)
    assert sent.code == 0, sent.stdout + sent.stderr
    assert "EXERCISE — only the playbook's exercise recipients are messaged" in sent.stdout
    again = run(command("send", "--plan", plan_id, "--yes"), alice, alice_env, MINUTE)
    assert again.code == 0, again.stdout + again.stderr
    assert "Resuming: 4 messages were accepted in an earlier run" in again.stdout
    assert [sms.to for sms in standin.sms] == [TEAM_MOBILE]
    assert all(sms.body.startswith("ÖVNING: ") for sms in standin.sms)
    assert [call.to for call in standin.calls] == [TEAM_LANDLINE]
    assert [mail.to for mail in standin.emails] == [TEAM_EMAIL]
    # The plan froze the banner's path as resolved where it was planned (a shared web root in a real team).
    assert (alice / "site" / "exercise" / "banner.json").exists()
    assert not (alice / "site" / "banner.json").exists() and not (bob / "site").exists()


def test_the_real_campaign_after_a_drill_on_the_team_ledger_reaches_everyone_once(
        tmp_path: Path, standin: Standin, pg_server: PgServer, pg_url: str) -> None:
    (alice, alice_env), (bob, bob_env) = machines(tmp_path, standin, pg_server, pg_url)
    drill = run(command("send", "playbooks/p.yaml", "--notice", "outage", "--exercise", "--at", AT, "--yes"),
                alice, alice_env, MINUTE)
    assert drill.code == 0, drill.stdout + drill.stderr
    real = command("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                   "--yes", "--channels", "sms")
    first = run(real, bob, bob_env, MINUTE)
    assert first.code == 0, first.stdout + first.stderr
    assert "Resuming" not in first.stdout  # nobody counts as reached by the drill
    second = run(real, alice, alice_env, MINUTE)  # Alice presses enter too, on her laptop
    assert second.code == 0, second.stdout + second.stderr
    texts = Counter(sms.to for sms in standin.sms if not sms.body.startswith("ÖVNING"))
    assert texts == Counter([*CUSTOMERS, TEAM_MOBILE])  # every customer once, the team member once as a customer
    assert [sms.to for sms in standin.sms if sms.body.startswith("ÖVNING")] == [TEAM_MOBILE]
