"""Exercise mode outside the ledger: who takes part, the banner path, and the marker in every message."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from crisiscomms.audience import AudienceOptions, MalformedRow, Recipient
from crisiscomms.cap import build_cap_alert
from crisiscomms.errors import UsageError
from crisiscomms.exercise import exercise_banner_path, exercise_marker, exercise_of, exercise_recipients, mark_content
from crisiscomms.loader import load_playbook
from crisiscomms.render import BannerContent, EmailContent, NoticeRenderer, SmsContent, VoiceContent
from crisiscomms.smsenc import analyse

from .conftest import DATA, ROOT, run_cli

STORM = ROOT / "playbooks" / "nordvind-storm.yaml"
AT = dt.datetime(2026, 12, 5, 22, 15, tzinfo=dt.UTC)
OPTIONS = AudienceOptions("SE", "Europe/Stockholm", ("en", "sv", "da", "nb", "nl", "el"), "sv")
SCHEMA = etree.XMLSchema(etree.parse(str(DATA / "cap" / "CAP-v1.2.xsd")))


def variant(tmp_path: Path, old: str, new: str) -> Path:
    text = STORM.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "storm.yaml"
    path.write_text(text.replace(old, new) + f"templates: {ROOT / 'templates'}\n", encoding="utf-8")
    return path


def line_of(path: Path, fragment: str) -> int:
    return next(n for n, row in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if fragment in row)


def test_the_shipped_exercise_recipients_in_audience_form() -> None:
    playbook = load_playbook(STORM).require()
    people = list(exercise_recipients(playbook, STORM.parent, OPTIONS))
    assert all(isinstance(p, Recipient) for p in people)
    assert [(p.id, p.line, p.name, p.phone, p.phone_problem, p.email, p.locale, p.timezone)  # type: ignore[union-attr]
            for p in people] == [
        ("exercise-1", 1, "Krisledningen", "+46701740611", None, "krisledning@nordvind.example", "sv",
         "Europe/Stockholm"),
        ("exercise-2", 2, "Duty manager", "+46846500419", "not_mobile", "jour@nordvind.example", "en",
         "Europe/Stockholm"),
    ]
    assert exercise_banner_path(playbook, STORM.parent) == (
        ROOT / "site" / "exercise" / "nordvind-storm-banner.json").resolve()
    assert playbook.exercise is not None and playbook.exercise.sendgrid_sandbox is True


def test_recipients_from_a_file_are_read_like_an_audience(tmp_path: Path) -> None:
    team = tmp_path / "team.csv"
    team.write_text("id,name,phone,email,locale\nt1,Åsa,070-123 45 67,asa@example.se,sv-SE\nt2,Broken,12,,en\n",
                    encoding="utf-8")
    recipients = STORM.read_text(encoding="utf-8").split("exercise:\n", 1)[1].split("  sendgrid_sandbox")[0]
    path = variant(tmp_path, recipients, "  file: team.csv\n")
    playbook = load_playbook(path).require()
    people = list(exercise_recipients(playbook, tmp_path, OPTIONS))
    assert [(p.id, p.phone, p.phone_problem, p.locale) for p in people if isinstance(p, Recipient)] == [
        ("t1", "+46701234567", None, "sv"), ("t2", None, "invalid_phone", "en")]
    assert not any(isinstance(p, MalformedRow) for p in people)


def test_without_an_exercise_section_the_option_is_refused() -> None:
    playbook = load_playbook(ROOT / "playbooks" / "lindholmen-clinic.yaml").require()
    with pytest.raises(UsageError) as caught:
        exercise_of(playbook)
    assert str(caught.value).startswith("--exercise: the playbook has no 'exercise:' section naming who takes part")


@pytest.mark.parametrize(("old", "new", "fragment", "message"), [
    ("  banner_path: ../site/exercise/nordvind-storm-banner.json", "  banner_path: ../site/nordvind-storm-banner.json",
     "banner_path: ../site/nordvind-storm-banner.json",
     "error: the exercise banner_path is the production banner path; an exercise must never replace the real banner"),
    ('    - {name: Duty manager, phone: "+46 8 465 004 19", email: jour@nordvind.example, locale: en}',
     "    - {name: Nobody, locale: en}", "{name: Nobody",
     "error: recipients entry 2: an exercise recipient needs 'phone' or 'email'"),
    ('phone: "+46 8 465 004 19"', 'phone: "12"', 'phone: "12"', "error: '12' is not a valid phone number in SE"),
    ("  sendgrid_sandbox: true", "  file: team.csv\n  sendgrid_sandbox: true", "  recipients:",
     "error: 'exercise': give the exercise's 'recipients' or a 'file' of them, not both and not neither"),
])
def test_exercise_section_errors_name_their_place(tmp_path: Path, old: str, new: str, fragment: str,
                                                  message: str) -> None:
    path = variant(tmp_path, old, new)
    result = run_cli("validate", str(path))
    assert result.code == 1
    hits = [line for line in result.stdout.splitlines() if line.startswith(f"{path}:{line_of(path, fragment)}:")]
    assert any(message in hit for hit in hits), result.stdout


def test_markers_per_locale_default_and_configured(tmp_path: Path) -> None:
    playbook = load_playbook(STORM).require()
    assert [exercise_marker(playbook, loc) for loc in ("en", "sv", "da", "nb", "nl", "el", "fi")] == [
        "EXERCISE", "ÖVNING", "ØVELSE", "ØVELSE", "OEFENING", "ΑΣΚΗΣΗ", "EXERCISE"]
    path = variant(tmp_path, "  sendgrid_sandbox: true", "  marker: {en: DRILL, sv: TEST}\n  sendgrid_sandbox: true")
    configured = load_playbook(path).require()
    assert [exercise_marker(configured, loc) for loc in ("en", "sv", "da")] == ["DRILL", "TEST", "TEST"]


def test_mark_content_for_every_channel() -> None:
    sms = mark_content(SmsContent("Strömavbrott.", analyse("Strömavbrott.")), "ÖVNING")
    assert isinstance(sms, SmsContent) and sms.text == "ÖVNING: Strömavbrott." and sms.fit == analyse(sms.text)
    email = mark_content(EmailContent("Avbrott", "Hej\n", '<html><body class="x"><p>Hej</p></body></html>\n'),
                         "ÖVNING")
    assert email == EmailContent("[ÖVNING] Avbrott", "ÖVNING\n\nHej\n",
                                 '<html><body class="x"><p style="font-weight:bold">ÖVNING</p><p>Hej</p></body>'
                                 "</html>\n")
    bare = mark_content(EmailContent("S", "T\n", "<p>x</p>"), "A&B")
    assert isinstance(bare, EmailContent) and bare.html == '<p style="font-weight:bold">A&amp;B</p><p>x</p>'
    assert mark_content(VoiceContent("Det här är Nordvind."), "ÖVNING") == VoiceContent("ÖVNING. Det här är Nordvind.")
    assert mark_content(BannerContent("Avbrott", "Text"), "ÖVNING") == BannerContent("ÖVNING: Avbrott", "ÖVNING: Text")


def test_an_exercise_renderer_marks_everything_a_reader_sees() -> None:
    playbook = load_playbook(STORM).require()
    renderer = NoticeRenderer.for_playbook(playbook, STORM.parent, "storm-outage", AT, exercise=True)
    reader = {"id": "exercise-1", "name": "Krisledningen", "locale": "el", "timezone": "Europe/Athens"}
    sms = renderer.render("sms", "el", "Europe/Athens", reader)
    assert isinstance(sms, SmsContent) and sms.text.startswith("ΑΣΚΗΣΗ: Nordvind Energi")
    email = renderer.render("email", "sv", "Europe/Stockholm", {**reader, "locale": "sv"})
    assert isinstance(email, EmailContent) and email.subject.startswith("[ÖVNING] ")
    assert email.text.startswith("ÖVNING\n\n") and '<p style="font-weight:bold">ÖVNING</p>' in email.html
    call = renderer.render("voice", "nl", "Europe/Amsterdam", {**reader, "locale": "nl"})
    assert isinstance(call, VoiceContent) and call.text.startswith("OEFENING. Dit is Nordvind Energi")
    banner = renderer.render("banner", "da", "Europe/Stockholm", None)
    assert isinstance(banner, BannerContent) and banner.title.startswith("ØVELSE: ")
    real = NoticeRenderer.for_playbook(playbook, STORM.parent, "storm-outage", AT)
    assert not real.render("banner", "da", "Europe/Stockholm", None).title.startswith("ØVELSE")  # type: ignore[union-attr]


def test_an_exercise_cap_alert_is_marked_and_valid() -> None:
    playbook = load_playbook(STORM).require()
    renderer = NoticeRenderer.for_playbook(playbook, STORM.parent, "storm-outage", AT, exercise=True)
    root = etree.fromstring(build_cap_alert(renderer).xml)
    assert SCHEMA.validate(root), SCHEMA.error_log
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    assert root.findtext("cap:status", namespaces=ns) == "Exercise"
    assert [h.text.split(":")[0] for h in root.findall("cap:info/cap:headline", ns)] == [
        "EXERCISE", "ÖVNING", "ØVELSE", "ØVELSE", "OEFENING", "ΑΣΚΗΣΗ"]


def test_validate_warns_when_the_marker_makes_a_text_too_long(tmp_path: Path) -> None:
    path = variant(tmp_path, "  sendgrid_sandbox: true",
                   "  marker: {sv: ÖVNING ÖVNING ÖVNING ÖVNING ÖVNING}\n  sendgrid_sandbox: true")
    result = run_cli("validate", str(path))
    assert result.code == 0  # warnings: an exercise still goes out
    assert ("templates/storm-outage/sv/banner_title.txt: warning: with the exercise marker: banner title is 118 "
            "characters; at most 90 fit the one-line bar") in result.stdout
    assert run_cli("validate", "--strict", str(path)).code == 1
