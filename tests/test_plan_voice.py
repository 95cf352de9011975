"""Who gets a call: landlines when the notice allows voice, whoever asks for calls; quiet hours as for SMS."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from crisiscomms.plan import PlannedMessage, Planner, PlanRequest, SkippedMessage, call_address
from crisiscomms.session import open_notice

from .conftest import DATA, run_cli

HEADER = "id,name,phone,email,locale,timezone,channels\n"
VOICE_SETTINGS = """  voice:
    from: "+46 8 123 456 78"
    quiet_hours: "21:00-08:00"
"""


def playbook(tmp_path: Path, *, severity: str = "critical", channels: str = "[sms, email, voice]") -> Path:
    templates = tmp_path / "templates"
    shutil.copytree(DATA / "templates", templates)
    for locale, text in (("en", "This is {{ org.name }}. Power cut in {{ vars.area }}."),
                         ("sv", "Det här är {{ org.name }}. Strömavbrott i {{ vars.area }}.")):
        (templates / "outage" / locale / "voice.txt").write_text(text + "\n", encoding="utf-8")
    text = (DATA / "playbooks" / "minimal.yaml").read_text(encoding="utf-8")
    text = text.replace("    severity: critical\n    channels: [sms, email, banner]\n",
                        f"    severity: {severity}\n    channels: {channels}\n")
    text = text.replace("  banner:\n    path: ../out/banner.json\n", VOICE_SETTINGS)
    text = text.replace("templates: ../templates", f"templates: {templates}")
    path = tmp_path / "voice.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def plan(book: Path, rows: str, tmp_path: Path, at: str = "2026-11-25T12:00+01:00",
         **options: object) -> list[PlannedMessage | SkippedMessage]:
    audience = tmp_path / "a.csv"
    audience.write_text(HEADER + rows, encoding="utf-8")
    request = PlanRequest(audience=audience, at=dt.datetime.fromisoformat(at), **options)  # type: ignore[arg-type]
    return list(Planner(open_notice(book, "outage"), request).items())


def outcome(items: list[PlannedMessage | SkippedMessage], channel: str) -> list[tuple[int, str]]:
    return [(i.line, i.reason.value if isinstance(i, SkippedMessage) else f"planned {i.address}")
            for i in items if i.channel == channel]


ROWS = (
    "1,Mobile,070-123 45 67,m@example.se,sv,,\n"  # 2: SMS; no call (the SMS reaches them)
    "2,Landline,08-765 432 10,,sv,,\n"  # 3: no SMS (not_mobile); a call
    "3,Asks,070-111 22 33,,en,,voice;sms\n"  # 4: SMS and a call: they asked for calls
    "4,SmsOnly,08-222 33 44,,en,,sms\n"  # 5: landline, but agreed to SMS only: no call
    "5,NoPhone,,n@example.se,en,,\n"  # 6: no phone: no call
    "6,Bad,12,,en,,\n"  # 7: invalid phone
    "7,Dup,08 765 432 10,,sv,,\n"  # 8: the same landline again
    "8,Stop,08-999 88 77,,sv,,\n"  # 9: on the suppression list: no call either
)


def test_landlines_and_who_asks_get_a_call(tmp_path: Path) -> None:
    stop = tmp_path / "stop.txt"
    stop.write_text("08-999 88 77\n", encoding="utf-8")
    items = plan(playbook(tmp_path), ROWS, tmp_path, suppress=(stop,))
    assert outcome(items, "voice") == [
        (2, "reached_by_sms"), (3, "planned +46876543210"), (4, "planned +46701112233"), (5, "not_consented"),
        (6, "no_address"), (7, "invalid_phone"), (8, "duplicate"), (9, "suppressed")]
    assert outcome(items, "sms") == [
        (2, "planned +46701234567"), (3, "not_mobile"), (4, "planned +46701112233"), (5, "not_mobile"),
        (6, "no_address"), (7, "invalid_phone"), (8, "not_mobile"), (9, "not_mobile")]
    call = next(i for i in items if isinstance(i, PlannedMessage) and i.channel == "voice")
    assert call.content.text == "Det här är Testbolaget. Strömavbrott i Norra distriktet."  # type: ignore[union-attr]


def test_without_sms_every_phone_is_called(tmp_path: Path) -> None:
    items = plan(playbook(tmp_path, channels="[email, voice]"), ROWS, tmp_path)
    assert outcome(items, "voice")[:2] == [(2, "planned +46701234567"), (3, "planned +46876543210")]


@pytest.mark.parametrize(("severity", "deferred"), [("warning", True), ("critical", False)])
def test_quiet_hours_apply_to_calls_critical_excepted(tmp_path: Path, severity: str, deferred: bool) -> None:
    rows = "1,Night,08-765 432 10,,sv,,\n2,Athens,+30 210 123 4567,,en,Europe/Athens,\n"
    items = plan(playbook(tmp_path, severity=severity), rows, tmp_path, at="2026-11-25T21:30+01:00")
    calls = [i for i in items if isinstance(i, PlannedMessage) and i.channel == "voice"]
    assert len(calls) == 2
    if deferred:
        assert [c.not_before for c in calls] == [
            dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))]
    else:
        assert [c.not_before for c in calls] == [None, None]
    ignored = plan(playbook(tmp_path / "b", severity=severity), rows, tmp_path, at="2026-11-25T21:30+01:00",
                   ignore_quiet_hours=True)
    assert [i.not_before for i in ignored if isinstance(i, PlannedMessage) and i.channel == "voice"] == [None, None]


def test_dry_run_counts_calls_and_deferred(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    book = playbook(tmp_path / "b", severity="warning")
    audience = tmp_path / "a.csv"
    audience.write_text(HEADER + ROWS, encoding="utf-8")
    result = run_cli("send", str(book), "--notice", "outage", "--audience", str(audience), "--dry-run",
                     "--format", "json", "--at", "2026-11-25T22:00+01:00")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["planned"] == {"sms": 2, "email": 2, "voice": 3}
    assert summary["deferred"] == {"sms": 2, "voice": 3}  # 22:00 in Stockholm: quiet hours for both
    assert summary["skipped"]["reached_by_sms"] == 1
    assert summary["locales"] == {"en": {"sms": 1, "email": 1, "voice": 1}, "sv": {"sms": 1, "email": 1, "voice": 2}}


def test_call_address_rules() -> None:
    from crisiscomms.audience import Recipient

    def person(phone: str | None, problem: str | None) -> Recipient:
        return Recipient(1, "r", "n", phone, problem, None, None, "en", "Europe/Stockholm", None, None, {})

    assert call_address(person("+46812345678", "not_mobile"), asked=False, sms_planned=True) == "+46812345678"
    assert call_address(person("+46701234567", None), asked=False, sms_planned=True).value == "reached_by_sms"  # type: ignore[union-attr]
    assert call_address(person("+46701234567", None), asked=True, sms_planned=True) == "+46701234567"
    assert call_address(person(None, "invalid_phone"), asked=True, sms_planned=False).value == "invalid_phone"  # type: ignore[union-attr]
