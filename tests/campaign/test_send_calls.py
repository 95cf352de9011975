"""Calls through the whole campaign (against the stand-in): an uncertain call is looked up in Twilio's call
list before a resume — found: not called again; not found: called exactly once more."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crisiscomms.testing.standin import (
    Standin,
)

from ..conftest import DATA, Result, run_cli

AT = "2026-11-25T12:00+01:00"
LANDLINES = ["+4685550000", "+4685550001", "+4685550002"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(DATA / "templates", tmp_path / "templates")
    for locale in ("en", "sv"):
        (tmp_path / "templates" / "outage" / locale / "voice.txt").write_text(
            "This is {{ org.name }}. Power cut in {{ vars.area }}.\n", encoding="utf-8")
    (tmp_path / "playbooks").mkdir()
    text = (DATA / "playbooks" / "minimal.yaml").read_text(encoding="utf-8")
    text = text.replace("    channels: [sms, email, banner]\n", "    channels: [voice]\n")
    text = text.replace("  banner:\n    path: ../out/banner.json\n", '  voice:\n    from: "+46 8 123 456 78"\n')
    (tmp_path / "playbooks" / "p.yaml").write_text(text, encoding="utf-8")
    rows = ["id,name,phone,email,locale,timezone,channels"]
    rows += [f"l{i},Landline {i},+46 8 {5550000 + i},,en,," for i in range(3)]
    (tmp_path / "audience.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def send() -> Result:
    return run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT, "--yes")


def test_an_uncertain_call_that_twilio_has_is_not_placed_again(project: Path, standin: Standin) -> None:
    standin.configure(unanswered_rate=1.0)  # Twilio places the call but the answer is lost
    first = send()
    assert first.code == 1, first.stdout + first.stderr
    assert "3 calls are uncertain (no answer from Twilio)" in first.stdout
    assert sorted(call.to for call in standin.calls) == LANDLINES
    standin.configure(unanswered_rate=0.0)
    second = send()
    assert second.code == 0, second.stdout + second.stderr
    assert "3 calls may have been placed in an earlier run; they are checked against Twilio's call list" \
        in second.stdout
    assert "Checked 3 uncertain calls with Twilio: 3 had gone out, 0 had not (sent now)" in second.stdout
    assert sorted(call.to for call in standin.calls) == LANDLINES  # nobody called twice


def test_an_uncertain_call_that_twilio_lacks_is_placed_exactly_once(project: Path, standin: Standin) -> None:
    standin.configure(fail_500_rate=1.0)  # a 5xx: may have been placed, and here it was not
    first = send()
    assert first.code == 1, first.stdout + first.stderr
    assert standin.calls == []
    standin.configure(fail_500_rate=0.0)
    second = send()
    assert second.code == 0, second.stdout + second.stderr
    assert "Checked 3 uncertain calls with Twilio: 0 had gone out, 3 had not (sent now)" in second.stdout
    assert sorted(call.to for call in standin.calls) == LANDLINES
    third = send()
    assert third.code == 0, third.stdout + third.stderr
    assert sorted(call.to for call in standin.calls) == LANDLINES  # and a further resume calls nobody


def test_calls_in_quiet_hours_wait_and_are_said_to_be_calls(project: Path, standin: Standin) -> None:
    playbook = project / "playbooks" / "p.yaml"
    text = playbook.read_text(encoding="utf-8").replace("severity: critical", "severity: warning")
    playbook.write_text(text.replace("expires: 2026-12-01T18:00:00+01:00", "expires: 2099-12-01T18:00:00+01:00"),
                        encoding="utf-8")
    result = run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv",
                     "--at", "2099-11-25T23:00+01:00", "--yes")  # a night still to come: the calls wait
    assert result.code == 0, result.stdout + result.stderr
    assert "Deferred by quiet hours: 3 calls, to be sent" in result.stdout
    assert "3 calls wait for the end of the recipients' quiet hours and are not sent now." in result.stdout
    assert "3 calls wait for the end of the recipients' quiet hours. Run crisiscomms send" in \
        " ".join(result.stdout.split())
    assert standin.calls == []
