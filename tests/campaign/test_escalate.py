"""Receipts into the ledger, the report of who actually got it, and escalation — through the real CLI,
counted from the stand-in's record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from crisiscomms.testing.standin import Standin

from ..conftest import Result, run_cli
from ..faults.conftest import AT, assert_exactly_once, email, make_project, phone

PLAYBOOK = "playbooks/p.yaml"
PEOPLE = 40


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = make_project(tmp_path / "ops", PEOPLE)
    playbook = root / PLAYBOOK
    text = playbook.read_text(encoding="utf-8")
    text = text.replace("channels: [sms, email, banner]", "channels: [sms, banner]\n    escalate: {sms: email}", 1)
    playbook.write_text(text, encoding="utf-8")
    monkeypatch.chdir(root)
    yield root


def send(*extra: str) -> Result:
    return run_cli("send", PLAYBOOK, "--notice", "outage", "--audience", "audience.csv", "--at", AT, "--yes",
                   "--banner-out", "site/banner.json", *extra)


def report_rows() -> list[dict[str, object]]:
    result = run_cli("report", "--format", "json")
    assert result.code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_pulled_receipts_are_reported_and_the_undelivered_get_the_fallback_once(project: Path,
                                                                                 standin: Standin) -> None:
    standin.receipts.configure(enabled=True, undelivered_share=0.25, failed_share=0.1, seed=5)
    assert send().code == 0
    assert len(standin.sms) == PEOPLE and not standin.emails
    finals = standin.receipts.final_states()["sms"]
    not_delivered = {record.to for record in standin.sms if finals[record.sid] != "delivered"}
    assert 0 < len(not_delivered) < PEOPLE

    pulled = run_cli("receipts", "pull")
    assert pulled.code == 0, pulled.stdout + pulled.stderr
    rows = {row["address"]: row for row in report_rows() if row["channel"] == "sms"}
    assert {row["delivery"] for row in rows.values()} == {"delivered", "undelivered", "failed"}
    table = " ".join(run_cli("report").stdout.split())
    assert "A provider's acceptance means queued, not delivered: receipts come later" in table
    for locale in ("en", "sv"):
        mine = [row for row in rows.values() if row["locale"] == locale]
        delivered = sum(row["delivery"] == "delivered" for row in mine)
        assert f"│ sms │ {locale} │ {len(mine)} │ {delivered} │ {len(mine) - delivered} │ 0 │ " \
               f"{delivered / len(mine):.0%} │" in table

    dry = run_cli("escalate", "--campaign", "testbolaget/outage", "--dry-run")
    assert dry.code == 0, dry.stderr
    assert (f"DRY RUN — nothing is sent. Escalation of campaign testbolaget/outage: {len(not_delivered)} fallback "
            f"messages (sms->email {len(not_delivered)}).") in dry.stdout
    assert not standin.emails

    escalated = run_cli("escalate", "--campaign", "testbolaget/outage", "--yes")
    assert escalated.code == 0, escalated.stdout + escalated.stderr
    wanted = [email(i) for i in range(PEOPLE) if phone(i) in not_delivered]
    assert_exactly_once(standin.email_count_by_to(), wanted, "the fallback e-mails")
    again = run_cli("escalate", "--campaign", "testbolaget/outage", "--yes")
    assert again.code == 0, again.stdout + again.stderr
    assert_exactly_once(standin.email_count_by_to(), wanted, "the fallback e-mails after a second escalate")
    assert len(standin.sms) == PEOPLE  # nobody got the SMS twice


def test_escalate_of_a_notice_without_fallbacks_says_what_to_add(project: Path, standin: Standin) -> None:
    playbook = project / PLAYBOOK
    playbook.write_text(playbook.read_text(encoding="utf-8").replace("    escalate: {sms: email}\n", ""),
                        encoding="utf-8")
    assert send().code == 0
    result = run_cli("escalate", "--campaign", "testbolaget/outage", "--dry-run")
    assert result.code == 2
    assert result.stderr == ("crisiscomms: notice 'outage' names no fallback channel: add for example 'escalate: "
                             "{sms: email, email: sms}' to it in the playbook, plan and send it again\n")


def test_nothing_to_escalate_before_receipts_come(project: Path, standin: Standin) -> None:
    assert send().code == 0
    result = run_cli("escalate", "--campaign", "testbolaget/outage", "--yes")
    assert result.code == 0
    assert "Nobody to escalate now" in result.stdout
    assert not standin.emails


def test_pushed_receipts_reach_the_ledger_through_receipts_serve(project: Path, standin: Standin,
                                                                  tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from crisiscomms.testing.standin import DEFAULT_TWILIO_TOKEN

    standin.receipts.configure(enabled=True, undelivered_share=0.3, failed_share=0.0, duplicate_share=0.5,
                               reorder_share=0.5, delay=0.2, seed=9)
    frozen = run_cli("plan", PLAYBOOK, "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                     "--channels", "sms", "--format", "json")
    plan_id = json.loads(frozen.stdout)["plan"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "TWILIO_AUTH_TOKEN": DEFAULT_TWILIO_TOKEN,
           "SENDGRID_WEBHOOK_PUBLIC_KEY": standin.receipts.public_key}
    server = subprocess.Popen([sys.executable, "-m", "crisiscomms", "receipts", "serve", "--listen",
                               f"127.0.0.1:{port}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        sent = run_cli("send", "--plan", plan_id, "--yes", "--status-callback",
                       f"http://127.0.0.1:{port}/twilio/status")
        assert sent.code == 0, sent.stdout + sent.stderr
        drain = urllib.request.Request(standin.twilio_url + "/_standin/receipts/drain", data=b"{}", method="POST")
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(drain, timeout=60).read()
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    finals = standin.receipts.final_states()["sms"]
    by_address = {record.to: finals[record.sid] for record in standin.sms}
    rows = {row["address"]: row["delivery"] for row in (json.loads(line) for line in
            run_cli("report", "--format", "json", "--unmasked").stdout.splitlines()) if row["channel"] == "sms"}
    assert rows == by_address, err[-2000:]


def test_an_undelivered_sms_can_escalate_to_a_call_once(project: Path, standin: Standin) -> None:
    for locale in ("en", "sv"):
        (project / "templates" / "outage" / locale / "voice.txt").write_text(
            "This is {{ org.name }}. Power cut in {{ vars.area }}.\n", encoding="utf-8")
    playbook = project / PLAYBOOK
    text = playbook.read_text(encoding="utf-8").replace("escalate: {sms: email}", "escalate: {sms: voice}")
    text = text.replace("  banner:\n    path: ../out/banner.json\n",
                        '  banner:\n    path: ../out/banner.json\n  voice:\n    from: "+46 8 123 456 78"\n')
    playbook.write_text(text, encoding="utf-8")
    standin.receipts.configure(enabled=True, undelivered_share=0.3, failed_share=0.0, seed=2)
    assert send().code == 0
    finals = standin.receipts.final_states()["sms"]
    not_delivered = sorted(record.to for record in standin.sms if finals[record.sid] != "delivered")
    assert not_delivered
    assert run_cli("receipts", "pull").code == 0
    first = run_cli("escalate", "--campaign", "testbolaget/outage", "--yes")
    assert first.code == 0, first.stdout + first.stderr
    assert run_cli("escalate", "--campaign", "testbolaget/outage", "--yes").code == 0
    assert_exactly_once(standin.call_count_by_to(), not_delivered, "calls to the undelivered")
    assert len(standin.sms) == PEOPLE


def test_escalated_calls_wait_for_the_end_of_the_recipients_quiet_hours(project: Path, standin: Standin) -> None:
    import datetime as dt

    from crisiscomms.campaign.escalate import find_escalations
    from crisiscomms.ledger import open_ledger, resolve_location

    for locale in ("en", "sv"):
        (project / "templates" / "outage" / locale / "voice.txt").write_text(
            "This is {{ org.name }}. Power cut in {{ vars.area }}.\n", encoding="utf-8")
    playbook = project / PLAYBOOK
    text = playbook.read_text(encoding="utf-8").replace("escalate: {sms: email}", "escalate: {sms: voice}")
    text = text.replace("severity: critical", "severity: warning", 1)
    text = text.replace("  banner:\n    path: ../out/banner.json\n",
                        '  banner:\n    path: ../out/banner.json\n  voice:\n    from: "+46 8 123 456 78"\n')
    playbook.write_text(text, encoding="utf-8")
    standin.receipts.configure(enabled=True, undelivered_share=0.3, failed_share=0.0, seed=2)
    assert send("--ignore-quiet-hours").code == 0
    assert run_cli("receipts", "pull").code == 0
    ledger = open_ledger(resolve_location(None, {}))
    try:
        night = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)  # 03:00 in Stockholm
        found = find_escalations(ledger, "testbolaget/outage", now=night)
        noon = find_escalations(ledger, "testbolaget/outage", now=night.replace(hour=11))
    finally:
        ledger.close()
    assert found.rows and {row.not_before for row in found.rows} == {"2026-11-25T07:00:00+00:00"}  # 08:00 local
    assert {row.not_before for row in noon.rows} == {None}


def test_two_operators_escalating_at_once_reach_each_person_once(project: Path, standin: Standin,
                                                                 tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    standin.receipts.configure(enabled=True, undelivered_share=0.4, failed_share=0.0, seed=4)
    assert send().code == 0
    assert run_cli("receipts", "pull").code == 0
    finals = standin.receipts.final_states()["sms"]
    wanted = [email(i) for i in range(PEOPLE)
              if finals[next(r.sid for r in standin.sms if r.to == phone(i))] != "delivered"]
    standin.configure(latency=0.05)
    command = [sys.executable, "-m", "crisiscomms", "escalate", "--campaign", "testbolaget/outage", "--yes"]
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    runs = [subprocess.Popen(command, cwd=folder, env=dict(os.environ), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for folder in (project, elsewhere)]
    outputs = [run.communicate(timeout=120) for run in runs]
    codes = sorted(run.returncode for run in runs)
    assert codes in ([0, 0], [0, 75]), outputs  # the second either waits its turn out or is refused
    assert_exactly_once(standin.email_count_by_to(), wanted, "two escalations at once")
    assert len(standin.sms) == PEOPLE
