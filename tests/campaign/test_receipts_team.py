"""Delivery receipts on the team ledger: one operator sends through the PostgreSQL ledger, another machine's
``receipts serve`` (or ``receipts pull``) writes the stand-in's receipts into it, ``report`` on a third folder
counts them, and escalation reaches exactly those not delivered. Counted from the stand-in's record."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from crisiscomms.testing.standin import Standin

from ..faults.conftest import AT, assert_exactly_once, cli_env, email, make_project, phone, run
from ..pgserver import PgServer

pytestmark = pytest.mark.postgres

PEOPLE = 30
MINUTE = 60.0
CAMPAIGN = "testbolaget/outage"


def machines(tmp_path: Path, standin: Standin, pg_server: PgServer, pg_url: str) -> dict[str, tuple[Path, dict[str, str]]]:
    """Three operators' folders and environments sharing one ledger; the notice escalates SMS to e-mail."""
    root = make_project(tmp_path / "alice", PEOPLE)
    playbook = root / "playbooks" / "p.yaml"
    text = playbook.read_text(encoding="utf-8")
    playbook.write_text(text.replace("channels: [sms, email, banner]", "channels: [sms]\n    escalate: {sms: email}", 1),
                        encoding="utf-8")
    for name in ("bob", "carol"):
        shutil.copytree(root, tmp_path / name)
    return {name: (tmp_path / name, cli_env(standin, tmp_path / f"crash-{name}", CRISISCOMMS_OPERATOR=name,
                                            CRISISCOMMS_LEDGER=pg_url, PGPASSWORD=pg_server.password,
                                            XDG_STATE_HOME=str(tmp_path / f"state-{name}"),
                                            SENDGRID_WEBHOOK_PUBLIC_KEY=standin.receipts.public_key))
            for name in ("alice", "bob", "carol")}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "crisiscomms", *args]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"receipts serve did not listen on {port}: {server.communicate(timeout=10)}")


def drain(standin: Standin) -> None:
    """Wait until the stand-in has posted every receipt it holds back."""
    request = urllib.request.Request(standin.twilio_url + "/_standin/receipts/drain", data=b"{}", method="POST")
    urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=60).read()


def reported_deliveries(folder: Path, env: dict[str, str]) -> dict[str, str | None]:
    report = run(command("report", "--campaign", CAMPAIGN, "--format", "json", "--unmasked"), folder, env, MINUTE)
    assert report.code == 0, report.stdout + report.stderr
    return {row["address"]: row["delivery"] for row in map(json.loads, report.stdout.splitlines())
            if row["channel"] == "sms"}


def stand_in_finals(standin: Standin) -> dict[str, str]:
    finals = standin.receipts.final_states()["sms"]
    return {record.to: finals[record.sid] for record in standin.sms}


def escalate_twice_and_count(standin: Standin, folder: Path, env: dict[str, str]) -> list[str]:
    """Escalate (and press enter once more); who was not delivered, and check each got one e-mail."""
    not_delivered = sorted(to for to, state in stand_in_finals(standin).items() if state != "delivered")
    assert not_delivered
    for _ in range(2):
        escalated = run(command("escalate", "--campaign", CAMPAIGN, "--yes"), folder, env, MINUTE)
        assert escalated.code == 0, escalated.stdout + escalated.stderr
    people = {phone(i): email(i) for i in range(PEOPLE)}
    assert_exactly_once(standin.email_count_by_to(), [people[to] for to in not_delivered], "escalated e-mails")
    return not_delivered


def test_pushed_receipts_reach_the_team_ledger_and_escalation_follows_them(
        tmp_path: Path, standin: Standin, pg_server: PgServer, pg_url: str) -> None:
    team = machines(tmp_path, standin, pg_server, pg_url)
    standin.receipts.configure(enabled=True, undelivered_share=0.3, failed_share=0.1, duplicate_share=0.5,
                               reorder_share=0.5, delay=0.2, seed=5)
    alice, alice_env = team["alice"]
    planned = run(command("plan", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                          "--format", "json"), alice, alice_env, MINUTE)
    assert planned.code == 0, planned.stdout + planned.stderr
    port = free_port()
    bob, bob_env = team["bob"]
    server = subprocess.Popen(command("receipts", "serve", "--listen", f"127.0.0.1:{port}"), cwd=bob, env=bob_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, server)
        sent = run(command("send", "--plan", json.loads(planned.stdout)["plan"], "--yes", "--status-callback",
                           f"http://127.0.0.1:{port}/twilio/status"), alice, alice_env, MINUTE)
        assert sent.code == 0, sent.stdout + sent.stderr
        drain(standin)
    finally:
        server.terminate()
        _, served = server.communicate(timeout=30)
    assert f"Ledger: {pg_url} (from " in served
    assert pg_server.password not in served
    carol, carol_env = team["carol"]
    assert reported_deliveries(carol, carol_env) == stand_in_finals(standin), served[-2000:]
    escalate_twice_and_count(standin, carol, carol_env)
    assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(PEOPLE)], "the first send")


def test_pulled_receipts_reach_the_team_ledger_from_another_folder(
        tmp_path: Path, standin: Standin, pg_server: PgServer, pg_url: str) -> None:
    team = machines(tmp_path, standin, pg_server, pg_url)
    standin.receipts.configure(enabled=True, undelivered_share=0.4, failed_share=0.0, seed=8)
    alice, alice_env = team["alice"]
    sent = run(command("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                       "--yes"), alice, alice_env, MINUTE)
    assert sent.code == 0, sent.stdout + sent.stderr
    bob, bob_env = team["bob"]
    pulled = run(command("receipts", "pull", "--campaign", CAMPAIGN), bob, bob_env, MINUTE)
    assert pulled.code == 0, pulled.stdout + pulled.stderr
    assert pulled.stdout.startswith(f"Asked Twilio about {PEOPLE} SMS: {PEOPLE} now have a final status"), pulled.stdout
    again = run(command("receipts", "pull", "--campaign", CAMPAIGN), alice, alice_env, MINUTE)
    assert again.stdout.startswith("Asked Twilio about 0 SMS"), again.stdout + again.stderr
    assert reported_deliveries(alice, alice_env) == stand_in_finals(standin)
    escalate_twice_and_count(standin, bob, bob_env)
