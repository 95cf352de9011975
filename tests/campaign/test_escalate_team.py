"""Escalation on the team ledger: two operators' machines (separate working folders and per-user state)
escalate one campaign through one PostgreSQL ledger. Counted from the stand-in's record.

The fallback here is for messages with no final receipt ``after`` a bound (the stand-in sends no receipts);
escalation after receipts on the team ledger is in :mod:`.test_receipts_team`."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

from crisiscomms.testing.standin import Standin

from ..faults.conftest import AT, assert_exactly_once, cli_env, email, make_project, phone, run, start
from ..pgserver import PgServer

pytestmark = pytest.mark.postgres

PEOPLE = 30
MINUTE = 60.0


def machines(tmp_path: Path, standin: Standin, pg_server: PgServer, pg_url: str) -> list[tuple[Path, dict[str, str]]]:
    root = make_project(tmp_path / "alice", PEOPLE)
    playbook = root / "playbooks" / "p.yaml"
    text = playbook.read_text(encoding="utf-8")
    text = text.replace("channels: [sms, email, banner]", "channels: [sms]\n    escalate: {sms: email, after: PT1S}", 1)
    playbook.write_text(text, encoding="utf-8")
    shutil.copytree(root, tmp_path / "bob")
    return [(tmp_path / name, cli_env(standin, tmp_path / f"crash-{name}", CRISISCOMMS_OPERATOR=name,
                                      CRISISCOMMS_LEDGER=pg_url, PGPASSWORD=pg_server.password,
                                      XDG_STATE_HOME=str(tmp_path / f"state-{name}")))
            for name in ("alice", "bob")]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "crisiscomms", *args]


def test_two_operators_escalating_one_team_campaign_reach_each_person_once(
        tmp_path: Path, standin: Standin, pg_server: PgServer, pg_url: str) -> None:
    (alice, alice_env), (bob, bob_env) = machines(tmp_path, standin, pg_server, pg_url)
    sent = run(command("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                       "--yes"), alice, alice_env, MINUTE)
    assert sent.code == 0, sent.stdout + sent.stderr
    time.sleep(1.5)  # past the notice's 'after: PT1S' without a final receipt
    dry = run(command("escalate", "--campaign", "testbolaget/outage", "--dry-run"), bob, bob_env, MINUTE)
    assert dry.code == 0, dry.stdout + dry.stderr
    assert f"{PEOPLE} fallback messages (sms->email {PEOPLE})" in dry.stdout
    standin.configure(latency=0.05)  # long enough for the two escalations to overlap
    escalate = command("escalate", "--campaign", "testbolaget/outage", "--yes")
    runs = [start(escalate, folder, env) for folder, env in ((alice, alice_env), (bob, bob_env))]
    outputs = [process.communicate(timeout=2 * MINUTE) for process in runs]
    assert sorted(process.returncode for process in runs) in ([0, 0], [0, 75]), outputs
    again = run(escalate, bob, bob_env, MINUTE)  # someone presses enter once more, on another machine
    assert again.code == 0, again.stdout + again.stderr
    assert_exactly_once(standin.email_count_by_to(), [email(i) for i in range(PEOPLE)], "escalations on PostgreSQL")
    assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(PEOPLE)], "the first send")
