"""The real send against the local provider stand-in: ledger, resume, never twice, exit codes, secrets."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from crisiscomms.campaign.frozen import freeze
from crisiscomms.campaign.identity import this_holder
from crisiscomms.campaign.lease import CampaignLease
from crisiscomms.campaign.send import PlanSend, SendOptions
from crisiscomms.dispatch import DispatchSettings
from crisiscomms.ledger import open_ledger, resolve_location
from crisiscomms.plan import Planner, PlanRequest
from crisiscomms.session import open_notice
from crisiscomms.testing.standin import (
    DEFAULT_SENDGRID_KEY,
    DEFAULT_TWILIO_TOKEN,
    Standin,
)

from .conftest import DATA, Result, run_cli

AT = "2026-11-25T12:00+01:00"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the minimal playbook and templates, an audience of 30, run from tmp_path."""
    shutil.copytree(DATA / "templates", tmp_path / "templates")
    (tmp_path / "playbooks").mkdir()
    shutil.copy(DATA / "playbooks" / "minimal.yaml", tmp_path / "playbooks" / "p.yaml")
    rows = ["id,name,phone,email,locale"]
    rows += [f"r{i},Person {i},+4670{1000000 + i},person{i}@example.se,{'sv' if i % 2 else 'en'}" for i in range(30)]
    (tmp_path / "audience.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def default_ledger() -> Path:
    return resolve_location(None, {}).path


def send(*extra: str) -> Result:
    return run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                   "--yes", "--banner-out", "site/banner.json", *extra)


def test_send_then_resume_sends_nothing_twice(project: Path, standin: Standin) -> None:
    first = send()
    assert first.code == 0, first.stdout + first.stderr
    assert (len(standin.sms), len(standin.emails)) == (30, 30)
    assert "Everything was accepted by the providers" in first.stdout
    second = send()
    assert second.code == 0
    assert "Resuming: 60 messages were accepted in an earlier run" in second.stdout
    assert (len(standin.sms), len(standin.emails)) == (30, 30)


def test_banner_file_is_written_atomically_with_versioned_document(project: Path, standin: Standin) -> None:
    assert send("--channels", "banner").code == 0
    document = json.loads((project / "site" / "banner.json").read_text(encoding="utf-8"))
    assert (document["format"], document["version"]) == ("crisiscomms-banner", 1)
    assert document["notice"]["severity"] == "critical"
    assert set(document["locales"]) == {"en", "sv"}
    assert document["routes"]["chat"]["hours"]["weekly"]["mon"] == [["08:00", "20:00"]]
    assert [p.name for p in (project / "site").iterdir()] == ["banner.json"]  # no temp file left behind


def test_transient_faults_then_resume_deliver_every_sms_exactly_once(project: Path, standin: Standin) -> None:
    standin.configure(fail_429_rate=0.1, fail_500_rate=0.1, unanswered_rate=0.1, seed=7)
    first = send("--channels", "sms")
    assert first.code == 1  # some uncertain
    assert "SMS are uncertain" in first.stdout
    standin.configure(fail_429_rate=0.0, fail_500_rate=0.0, unanswered_rate=0.0)
    second = send("--channels", "sms")
    assert second.code == 0, second.stdout
    assert "uncertain SMS with Twilio" in second.stdout
    counts = standin.sms_count_by_to()
    assert len(counts) == 30
    assert set(counts.values()) == {1}


def test_uncertain_email_is_held_until_resend_uncertain(project: Path, standin: Standin) -> None:
    standin.configure(unanswered_rate=1.0)
    assert send("--channels", "email").code == 1
    standin.configure(unanswered_rate=0.0)
    held = send("--channels", "email")
    assert held.code == 1
    assert "e-mails may have gone out in an earlier run; they are NOT resent" in held.stdout
    resent = send("--channels", "email", "--resend-uncertain")
    assert resent.code == 0
    assert set(standin.email_count_by_to().values()) == {2}  # at least once: the unanswered ones went out too


def test_bad_credentials_abort_before_fanning_out(project: Path, standin: Standin,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong-token-value")
    result = send("--channels", "sms")
    assert result.code == 4
    assert "TWILIO_AUTH_TOKEN" in result.stdout + result.stderr
    assert "wrong-token-value" not in result.stdout + result.stderr
    assert standin.requests["twilio"] == 1  # the first request went alone; nothing more
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", DEFAULT_TWILIO_TOKEN)
    assert send("--channels", "sms").code == 0
    assert set(standin.sms_count_by_to().values()) == {1}


def test_missing_credentials_are_named(project: Path, standin: Standin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENDGRID_API_KEY")
    result = send("--channels", "email")
    assert result.code == 4
    assert "SENDGRID_API_KEY" in result.stderr
    assert standin.requests["sendgrid"] == 0


def test_all_missing_credentials_named_at_once_before_any_ledger(project: Path, standin: Standin,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SENDGRID_API_KEY"):
        monkeypatch.delenv(name)
    result = send()
    assert (result.code, result.stdout) == (4, "")
    assert result.stderr == (
        "crisiscomms: missing credentials: TWILIO_ACCOUNT_SID (SMS: the Twilio account SID); TWILIO_AUTH_TOKEN "
        "(SMS: the Twilio auth token); SENDGRID_API_KEY (e-mail: the SendGrid API key with Mail Send permission). "
        "Export them and run again; nothing was sent and the ledger was not changed.\n")
    assert standin.requests["twilio"] == standin.requests["sendgrid"] == 0
    assert not (project / ".crisiscomms").exists()
    assert not (project / "site" / "banner.json").exists()


def test_stop_reply_is_suppressed_in_later_runs(project: Path, standin: Standin) -> None:
    standin.configure(opted_out=frozenset({"+46701000003"}))
    first = send("--channels", "sms")
    assert first.code == 1  # one rejected for good
    assert "rejected by the provider for good" in first.stdout
    with sqlite3.connect(default_ledger()) as db:
        assert db.execute("SELECT address, source FROM stop_list").fetchall() == [
            ("+46701000003", "Twilio 21610 (replied STOP)")]
    standin.configure(opted_out=frozenset())
    again = send("--channels", "sms", "--campaign", "second-wave", "--dry-run", "--format", "json")
    assert json.loads(again.stdout)["skipped"] == {"suppressed": 1}


@pytest.mark.parametrize(("ledger", "why"), [
    ("/sys/crisiscomms-ledger.sqlite", "Permission denied (is the folder read-only?)"),  # read-only fs
    ("/dev/full", "the disk is full"),  # every write fails with ENOSPC
])
def test_unwritable_ledger_stops_before_anything_is_sent(project: Path, standin: Standin, ledger: str,
                                                         why: str) -> None:
    if not Path(ledger).parent.exists():
        pytest.skip(f"{Path(ledger).parent} does not exist here")
    result = send("--ledger", ledger)
    assert result.code == 3
    assert result.stderr == (
        f"crisiscomms: cannot write the ledger {ledger}: {why}. Nothing was sent. Free disk space, fix the "
        "permissions, or choose another ledger with --ledger.\n")
    assert standin.requests["twilio"] + standin.requests["sendgrid"] == 0


def test_ledger_on_a_full_or_broken_file_stops_before_anything_is_sent(project: Path, standin: Standin) -> None:
    (project / "not-a-db.sqlite").write_bytes(b"this is not a database" * 100)
    result = send("--ledger", "not-a-db.sqlite")
    assert result.code == 3
    assert result.stderr == (
        f"crisiscomms: the ledger {project / 'not-a-db.sqlite'} is damaged or not a crisiscomms ledger (file is not a "
        "database). Nothing was sent. Restore it from a backup, or use another ledger with --ledger.\n")
    assert standin.requests["twilio"] + standin.requests["sendgrid"] == 0


def test_confirmation_must_match_the_count(project: Path, standin: Standin, monkeypatch: pytest.MonkeyPatch) -> None:
    import crisiscomms.cli

    args = ("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
            "--channels", "sms")
    refused = run_cli(*args)
    assert refused.code == 2
    assert "refusing to send without a confirmation" in refused.stderr
    monkeypatch.setattr(crisiscomms.cli, "_stdin_is_terminal", lambda: True)
    wrong = run_cli(*args, input="29\n")
    assert wrong.code == 1
    assert "Type 30 to send them" in wrong.stdout and "Nothing was sent" in wrong.stdout
    assert standin.requests["twilio"] == 0
    right = run_cli(*args, input="30\n")
    assert right.code == 0
    assert len(standin.sms) == 30


def test_interrupted_run_resumes_exactly_once(project: Path, standin: Standin) -> None:
    standin.configure(latency=0.02)
    session = open_notice(Path("playbooks/p.yaml"), "outage")
    request = PlanRequest(audience=Path("audience.csv"), at=dt.datetime.fromisoformat(AT), channels=("sms",))
    options = SendOptions(dispatch=DispatchSettings(concurrency={"sms": 4}))
    location = resolve_location(None, {})

    async def interrupted() -> None:
        stop = asyncio.Event()
        seen = 0

        def progress(channel: str, state: str, count: int) -> None:
            nonlocal seen
            seen += count
            if seen >= 8:
                stop.set()

        ledger = open_ledger(location)
        holder = this_holder({})
        frozen = freeze(Planner(session, request), ledger, planned_by="ops", approval_required=False,
                        rehearsal=True)
        with CampaignLease(ledger, location, frozen.header.campaign, holder):
            run = PlanSend(ledger, frozen.header, frozen.summary, holder, options)
            outcome = await run.execute(run.prepare(), on_progress=progress, stop=stop)
        ledger.close()
        assert outcome.dispatch.interrupted
        assert 8 <= outcome.total("accepted") < 30

    asyncio.run(interrupted())
    assert send("--channels", "sms").code == 0
    assert len(standin.sms_count_by_to()) == 30
    assert set(standin.sms_count_by_to().values()) == {1}


def test_no_credential_in_output_ledger_or_report(project: Path, standin: Standin) -> None:
    standin.configure(fail_500_rate=0.2, seed=3)
    outputs = [send(), send(), run_cli("report", "--format", "csv"), run_cli("report", "--format", "json"),
               run_cli("report", "--unmasked")]
    text = "".join(r.stdout + r.stderr for r in outputs)
    with sqlite3.connect(default_ledger()) as db:
        text += json.dumps([list(row) for table in ("campaigns", "messages", "attempts", "plans", "plan_rows")
                            for row in db.execute(f"SELECT * FROM {table}")])
    text += "".join(p.read_text(encoding="utf-8", errors="replace") for p in project.rglob("*") if p.is_file()
                    and p.suffix not in {".sqlite", ".sqlite-wal", ".sqlite-shm"})
    for secret in (DEFAULT_TWILIO_TOKEN, DEFAULT_SENDGRID_KEY):
        assert secret not in text


def test_report_masks_addresses(project: Path, standin: Standin) -> None:
    assert send("--channels", "sms,email").code == 0
    result = run_cli("report", "--format", "csv")
    lines = result.stdout.splitlines()
    assert lines[0] == ("id,channel,address,locale,status,provider_id,error_code,error,attempts,time,"
                        "delivery,delivery_code,delivery_reason,delivery_time")
    assert any(",sms,+46*****0000,en,accepted,SM" in line for line in lines)
    assert any(",email,p***@example.se,en,accepted," in line for line in lines)
    assert "+46701000000" in run_cli("report", "--format", "csv", "--unmasked").stdout


def test_an_expired_notice_sends_no_sms_but_a_rehearsal_before_expiry_does(project: Path, standin: Standin) -> None:
    text = (project / "playbooks" / "p.yaml").read_text(encoding="utf-8")
    expired = text.replace("expires: 2026-12-01T18:00:00+01:00", "expires: 2020-01-01T18:00:00+01:00")
    assert expired != text
    (project / "playbooks" / "expired.yaml").write_text(expired, encoding="utf-8")
    real = run_cli("send", "playbooks/expired.yaml", "--notice", "outage", "--audience", "audience.csv", "--yes",
                   "--channels", "sms", "--ledger", "real.sqlite")  # no --at: real time, after the expiry
    assert real.code == 3
    assert real.stderr.endswith("crisiscomms: notice 'outage' expired at 2020-01-01T18:00+01:00: no SMS is sent "
                                "after a notice stopped being true (change its 'expires' in the playbook to send "
                                "it)\n")
    assert standin.requests["twilio"] == 0
    rehearsal = send("--channels", "sms", "--status-callback", "https://receipts.example.org/twilio/status")
    assert rehearsal.code == 0, rehearsal.stderr
    assert len(standin.sms) == 30
    assert {record.status_callback for record in standin.sms} == {"https://receipts.example.org/twilio/status"}
