"""Exercise mode end to end, against the stand-in: ``plan``/``send --exercise`` reach exactly the playbook's
exercise recipients, every message marked, the banner and CAP alert only at the exercise paths, e-mail in
SendGrid's sandbox when asked; the exercise is a campaign of its own that is never resumed as a real one and
never counts for (or blocks) the real campaign."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lxml import etree

from crisiscomms.ledger import open_ledger, resolve_location
from crisiscomms.testing.standin import (
    Standin,
)

from ..conftest import DATA, Result, run_cli

AT = "2026-11-25T12:00+01:00"
CAP_NS = "{urn:oasis:names:tc:emergency:cap:1.2}"
TEAM_MOBILE, TEAM_LANDLINE, TEAM_EMAIL = "+46701740611", "+46846500419", "krisledning@test.example"
CUSTOMERS = [f"+4670{1000000 + i}" for i in range(4)]
EXERCISE = f"""exercise:
  recipients:
    - {{name: Krisledningen, phone: "070-174 06 11", email: {TEAM_EMAIL}, locale: sv}}
    - {{name: Duty manager, phone: "+46 8 465 004 19", locale: en}}
  marker: {{en: EXERCISE, sv: ÖVNING}}
  banner_path: ../site/exercise/banner.json
  cap_path: ../site/exercise/cap.xml
"""


def write_project(root: Path, exercise: str = EXERCISE) -> Path:
    shutil.copytree(DATA / "templates", root / "templates")
    for locale in ("en", "sv"):
        (root / "templates" / "outage" / locale / "voice.txt").write_text(
            "This is {{ org.name }}. Power cut in {{ vars.area }}.\n", encoding="utf-8")
    (root / "playbooks").mkdir()
    text = (DATA / "playbooks" / "minimal.yaml").read_text(encoding="utf-8")
    text = text.replace("    channels: [sms, email, banner]\n", "    channels: [sms, email, banner, voice, cap]\n")
    text = text.replace("  banner:\n    path: ../out/banner.json\n",
                        '  banner:\n    path: ../site/banner.json\n  voice:\n    from: "+46 8 123 456 78"\n'
                        "  cap:\n    path: ../site/cap.xml\n")
    (root / "playbooks" / "p.yaml").write_text(text + exercise, encoding="utf-8")
    rows = ["id,name,phone,email,locale,timezone"]
    rows += [f"c{i},Customer {i},{number},c{i}@test.example,sv," for i, number in enumerate(CUSTOMERS)]
    rows += [f"team,Krisledningen,{TEAM_MOBILE},{TEAM_EMAIL},sv,"]  # the crisis team are customers too
    (root / "audience.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return write_project(tmp_path)


def send_exercise(*extra: str) -> Result:
    return run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--exercise", "--at", AT, "--yes", *extra)


def send_real(*extra: str) -> Result:
    return run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                   "--yes", *extra)


def plan_id_of(result: Result) -> str:
    return str(json.loads(result.stdout)["plan"])


def test_an_exercise_reaches_exactly_the_exercise_recipients_marked(project: Path, standin: Standin) -> None:
    result = send_exercise()
    assert result.code == 0, result.stdout + result.stderr
    assert "EXERCISE — only the playbook's exercise recipients are messaged" in result.stdout
    assert "campaign testbolaget/outage#exercise" in result.stdout
    assert [(sms.to, sms.body.split(":")[0]) for sms in standin.sms] == [(TEAM_MOBILE, "ÖVNING")]
    assert [call.to for call in standin.calls] == [TEAM_LANDLINE]  # the landline is called, not texted
    twiml = standin.calls[0].twiml or ""
    assert '<Say language="en-GB" voice="Polly.Amy">EXERCISE. This is Testbolaget.' in twiml
    assert [(mail.to, mail.subject.split("]")[0]) for mail in standin.emails] == [(TEAM_EMAIL, "[ÖVNING")]
    banner = json.loads((project / "site" / "exercise" / "banner.json").read_text(encoding="utf-8"))
    assert banner["locales"]["sv"]["title"].startswith("ÖVNING: ")
    cap = etree.parse(str(project / "site" / "exercise" / "cap.xml"))
    assert cap.findtext(f"{CAP_NS}status") == "Exercise"
    assert not (project / "site" / "banner.json").exists()  # the production banner is never touched
    assert not (project / "site" / "cap.xml").exists()  # nor the production CAP alert
    assert not set(CUSTOMERS) & {sms.to for sms in standin.sms}


def test_exercise_email_goes_to_the_sendgrid_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    standin: Standin) -> None:
    monkeypatch.chdir(tmp_path)
    write_project(tmp_path, EXERCISE + "  sendgrid_sandbox: true\n")
    result = send_exercise("--format", "json")
    assert result.code == 0, result.stdout + result.stderr
    outcome = json.loads(result.stdout)
    assert (outcome["exercise"], outcome["counts"]["email"]) == (True, {"accepted": 1})
    assert standin.emails == []  # SendGrid validated it and delivered nothing
    assert len(standin.sms) == 1
    assert "exercise.sendgrid_sandbox: SendGrid accepts the exercise e-mails and delivers none" in result.stderr


def test_the_exercise_neither_counts_for_nor_blocks_the_real_campaign(project: Path, standin: Standin) -> None:
    assert send_exercise().code == 0
    real = send_real()
    assert real.code == 0, real.stdout + real.stderr
    assert "Resuming" not in real.stdout  # nobody counts as reached by the exercise
    texted = [sms.to for sms in standin.sms]
    assert sorted(texted) == sorted([TEAM_MOBILE, *CUSTOMERS, TEAM_MOBILE])  # the team member, once per campaign
    real_texts = [sms.body for sms in standin.sms if not sms.body.startswith("ÖVNING")]
    assert len(real_texts) == 5
    assert json.loads((project / "site" / "banner.json").read_text(encoding="utf-8"))["notice"] is not None
    ledger = open_ledger(resolve_location(None, {}), create=False)
    try:
        flags = {info.campaign: info.exercise for info in ledger.campaigns()}
    finally:
        ledger.close()
    assert flags == {"testbolaget/outage#exercise": True, "testbolaget/outage": False}


def test_an_exercise_plan_is_only_ever_sent_as_an_exercise(project: Path, standin: Standin) -> None:
    planned = run_cli("plan", "playbooks/p.yaml", "--notice", "outage", "--exercise", "--at", AT, "--format", "json")
    assert planned.code == 0, planned.stdout + planned.stderr
    summary = json.loads(planned.stdout)
    assert (summary["campaign"], summary["exercise"]) == ("testbolaget/outage#exercise", True)
    assert summary["planned"] == {"sms": 1, "email": 1, "banner": 1, "voice": 1, "cap": 1}
    plan = plan_id_of(planned)
    first = run_cli("send", "--plan", plan, "--yes")
    assert first.code == 0, first.stdout + first.stderr
    assert "EXERCISE — only the playbook's exercise recipients are messaged" in first.stdout
    assert [sms.body.startswith("ÖVNING: ") for sms in standin.sms] == [True]
    again = run_cli("send", "--plan", plan, "--yes")
    assert again.code == 0, again.stdout + again.stderr
    assert "Resuming: 4 messages were accepted in an earlier run" in again.stdout
    assert (len(standin.sms), len(standin.calls), len(standin.emails)) == (1, 1, 1)
    real = run_cli("plan", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                   "--format", "json")
    refused = run_cli("send", "--plan", plan_id_of(real), "--exercise", "--yes")
    assert refused.code == 2
    assert "is a real plan of campaign testbolaget/outage, not an exercise" in refused.stderr
    assert len(standin.sms) == 1


@pytest.mark.parametrize("extra, flag", [(("--audience", "audience.csv"), "--audience"),
                                         (("--where", "area=North"), "--where"),
                                         (("--banner-out", "b.json"), "--banner-out")])
def test_exercise_excludes_the_options_of_a_real_audience(project: Path, standin: Standin, extra: tuple[str, ...],
                                                         flag: str) -> None:
    for command in ("plan", "send"):
        result = run_cli(command, "playbooks/p.yaml", "--notice", "outage", "--exercise", *extra, "--yes"
                         if command == "send" else "--format=text")
        assert result.code == 2, result.stdout + result.stderr
        assert f"--exercise and {flag} exclude each other" in result.stderr
    assert standin.sms == []


def test_without_exercise_paths_an_exercise_writes_no_banner_and_says_so(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         standin: Standin) -> None:
    monkeypatch.chdir(tmp_path)
    exercise = "\n".join(line for line in EXERCISE.splitlines() if "_path" not in line) + "\n"
    write_project(tmp_path, exercise)
    dry = run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--exercise", "--at", AT, "--dry-run",
                  "--format", "json")
    assert dry.code == 0, dry.stdout + dry.stderr
    summary = json.loads(dry.stdout)
    assert summary["planned"] == {"sms": 1, "email": 1, "banner": 0, "voice": 1, "cap": 0}
    assert summary["notes"] == [
        "the playbook has no exercise.banner_path: this exercise writes no banner (the production banner is "
        "never touched)",
        "the playbook has no exercise.cap_path: this exercise writes no CAP alert (the production alert is never "
        "touched)"]
    result = send_exercise()
    assert result.code == 0, result.stdout + result.stderr
    assert "note: the playbook has no exercise.banner_path: this exercise writes no banner" in result.stdout
    assert not (tmp_path / "site").exists()


def test_exercise_without_an_exercise_section_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               standin: Standin) -> None:
    monkeypatch.chdir(tmp_path)
    write_project(tmp_path, "")
    result = send_exercise()
    assert result.code == 2, result.stdout + result.stderr
    assert "--exercise: the playbook has no 'exercise:' section naming who takes part" in result.stderr
    assert standin.sms == []


def test_validate_refuses_the_production_cap_path_for_an_exercise(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_project(tmp_path, EXERCISE.replace("../site/exercise/cap.xml", "../site/cap.xml"))
    result = run_cli("validate", "playbooks/p.yaml")
    assert result.code == 1, result.stdout
    line = next(n for n, text in enumerate((tmp_path / "playbooks" / "p.yaml").read_text().splitlines(), 1)
                if "cap_path" in text)
    assert any(hit.startswith(f"playbooks/p.yaml:{line}:") and "error: the exercise cap_path is the production CAP "
               "path (providers.cap.path); an exercise must never replace the real alert" in hit
               for hit in result.stdout.splitlines()), result.stdout


def test_validate_warns_when_an_exercise_would_write_no_cap_alert(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_project(tmp_path, "\n".join(line for line in EXERCISE.splitlines() if "cap_path" not in line) + "\n")
    result = run_cli("validate", "playbooks/p.yaml")
    assert result.code == 0, result.stdout
    assert "warning: no exercise cap_path: exercises will not write a CAP alert" in result.stdout


def test_a_second_drill_of_the_same_notice_needs_a_name_of_its_own(project: Path, standin: Standin) -> None:
    assert send_exercise().code == 0
    again = send_exercise()
    assert again.code == 0, again.stdout + again.stderr
    assert ("This exercise (testbolaget/outage#exercise) was run before. A new drill of the same notice is a "
            "campaign of its own: give it a name, e.g. --exercise --campaign drill-2026-12.") in again.stdout
    assert len(standin.sms) == 1
    named = send_exercise("--campaign", "drill-2026-12")
    assert named.code == 0, named.stdout + named.stderr
    assert "campaign testbolaget/drill-2026-12#exercise" in named.stdout
    assert [sms.to for sms in standin.sms] == [TEAM_MOBILE, TEAM_MOBILE]


def test_a_campaign_name_cannot_pretend_to_be_an_exercise(project: Path, standin: Standin) -> None:
    result = send_real("--campaign", "outage#exercise")
    assert result.code == 2, result.stdout + result.stderr
    assert "--campaign 'outage#exercise': a campaign name cannot contain '#' (it marks exercises)" in result.stderr
    assert standin.sms == []


def test_cap_exercise_never_writes_the_production_alert(project: Path) -> None:
    written = run_cli("cap", "playbooks/p.yaml", "--notice", "outage", "--exercise", "--at", AT)
    assert written.code == 0, written.stdout + written.stderr
    assert etree.parse(str(project / "site" / "exercise" / "cap.xml")).findtext(f"{CAP_NS}status") == "Exercise"
    assert not (project / "site" / "cap.xml").exists()
    refused = run_cli("cap", "playbooks/p.yaml", "--notice", "outage", "--exercise", "--out", "site/cap.xml")
    assert refused.code == 2
    assert "is the production CAP file (providers.cap.path); an exercise alert never replaces the real one" \
        in refused.stderr
    assert not (project / "site" / "cap.xml").exists()
