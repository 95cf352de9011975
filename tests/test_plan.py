"""The plan and the dry run: skips, dedupe, suppression, quiet hours, the JSON an operator's tools read."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import respx

from crisiscomms.plan import PlannedMessage, Planner, PlanRequest, SkippedMessage, quiet_hours_end, region_of
from crisiscomms.session import open_notice

from .conftest import DATA, run_cli

PLAYBOOK = DATA / "playbooks" / "minimal.yaml"
HEADER = "id,name,phone,email,locale,timezone,channels\n"


def audience(tmp_path: Path, rows: str, *, header: str = HEADER, name: str = "a.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (header + rows).encode("utf-8"))
    return path


def plan(path: Path, at: str = "2026-11-25T12:00+01:00", *, playbook: Path = PLAYBOOK, notice: str = "outage",
         **options: object) -> list[PlannedMessage | SkippedMessage]:
    session = open_notice(playbook, notice)
    request = PlanRequest(audience=path, at=dt.datetime.fromisoformat(at), **options)  # type: ignore[arg-type]
    return list(Planner(session, request).items())


def by_channel(items: list[PlannedMessage | SkippedMessage], channel: str) -> list[tuple[int, str]]:
    return [(i.line, i.reason.value if isinstance(i, SkippedMessage) else "planned")
            for i in items if i.channel == channel]


def test_every_skip_reason(tmp_path: Path) -> None:
    rows = (
        "1,Anna,070-123 45 67,anna@example.se,sv,,\n"  # line 2: planned on both
        "2,Dup,+46 70 123 45 67,ANNA@example.se,sv,,\n"  # 3: duplicate phone (other spelling) and email (case)
        "3,Bad,12,not-an-email,en,,\n"  # 4: invalid_phone, invalid_email
        "4,Fixed,08-123 456 78,,en,,\n"  # 5: not_mobile, no_address
        "5,Consent,070-765 43 21,c@example.se,en,,email\n"  # 6: not_consented on sms
        "6,Broken,1,2\n"  # 7: malformed_row
        "7,Stop,070-111 22 33,stop@example.se,en,,\n"  # 8: suppressed on both
    )
    suppress = tmp_path / "stop.txt"
    suppress.write_text("+46701112233\nSTOP@example.se\n", encoding="utf-8")
    items = plan(audience(tmp_path, rows), suppress=(suppress,))
    assert by_channel(items, "sms") == [
        (2, "planned"), (3, "duplicate"), (4, "invalid_phone"), (5, "not_mobile"), (6, "not_consented"),
        (7, "malformed_row"), (8, "suppressed")]
    assert by_channel(items, "email") == [
        (2, "planned"), (3, "duplicate"), (4, "invalid_email"), (5, "no_address"), (6, "planned"),
        (7, "malformed_row"), (8, "suppressed")]
    assert by_channel(items, "banner") == [(0, "planned")]
    malformed = next(i for i in items if isinstance(i, SkippedMessage) and i.reason.value == "malformed_row")
    assert malformed.detail == "4 fields where the header has 7"


def test_bom_and_semicolons(tmp_path: Path) -> None:
    path = audience(tmp_path, "1;Åsa Öberg;070-123 45 67;asa@example.se;sv-SE;;\n", header=HEADER.replace(",", ";"),
                    bom=True)
    planned = [i for i in plan(path) if isinstance(i, PlannedMessage) and i.channel != "banner"]
    assert [(i.channel, i.address, i.locale) for i in planned] == [
        ("sms", "+46701234567", "sv"), ("email", "asa@example.se", "sv")]


def test_locales_greek_swedish_and_unsupported(tmp_path: Path) -> None:
    rows = ("1,Nikos,+30 691 234 5678,,el-GR,Europe/Athens,\n"
            "2,Sven,070-123 45 67,,sv_FI,,\n"
            "3,João,+351 912 345 678,,pt-BR,Europe/Lisbon,\n")
    planned = [i for i in plan(audience(tmp_path, rows)) if isinstance(i, PlannedMessage) and i.channel == "sms"]
    assert [(i.recipient_id, i.locale) for i in planned] == [("1", "en"), ("2", "sv"), ("3", "en")]
    assert planned[1].content.text.startswith("Testbolaget: avbrott")  # type: ignore[union-attr]


def test_quiet_hours_defer_non_critical_sms_in_local_time(tmp_path: Path) -> None:
    playbook = tmp_path / "p.yaml"
    playbook.write_text(PLAYBOOK.read_text(encoding="utf-8").replace("severity: critical", "severity: warning")
                        .replace("templates: ../templates", f"templates: {DATA / 'templates'}")
                        .replace("hours: always", "hours: always\n    # 24/7 line"), encoding="utf-8")
    rows = ("1,Stockholm,070-123 45 67,,sv,Europe/Stockholm,\n"
            "2,Athens,+30 691 234 5678,,en,Europe/Athens,\n"
            "3,New York,+1 212 555 0123,,en,America/New_York,\n")
    # 21:30 in Stockholm = 22:30 in Athens (both quiet), 15:30 in New York (not quiet).
    items = plan(audience(tmp_path, rows), "2026-11-25T21:30+01:00", playbook=playbook)
    sms = {i.recipient_id: i.not_before for i in items if isinstance(i, PlannedMessage) and i.channel == "sms"}
    assert sms == {
        "1": dt.datetime(2026, 11, 26, 8, tzinfo=ZoneInfo("Europe/Stockholm")),
        "2": dt.datetime(2026, 11, 26, 8, tzinfo=ZoneInfo("Europe/Athens")),
        "3": None,
    }
    ignored = plan(audience(tmp_path, rows), "2026-11-25T21:30+01:00", playbook=playbook, ignore_quiet_hours=True)
    assert all(i.not_before is None for i in ignored if isinstance(i, PlannedMessage))


def test_critical_notices_ignore_quiet_hours(tmp_path: Path) -> None:
    items = plan(audience(tmp_path, "1,A,070-123 45 67,,sv,,\n"), "2026-11-25T23:30+01:00")
    assert all(i.not_before is None for i in items if isinstance(i, PlannedMessage))


def test_quiet_hours_end_across_dst_change() -> None:
    window = (21 * 60, 8 * 60)
    stockholm = ZoneInfo("Europe/Stockholm")
    # The night clocks go forward (2026-03-29 02:00 → 03:00): quiet hours still end at 08:00 local, CEST.
    end = quiet_hours_end(dt.datetime(2026, 3, 28, 23, tzinfo=stockholm), "Europe/Stockholm", window)
    assert end == dt.datetime(2026, 3, 29, 8, tzinfo=stockholm)
    assert end is not None and end.utcoffset() == dt.timedelta(hours=2)
    # The night they go back (2026-10-25): 07:30 local is still quiet, ends 08:00 CET.
    end = quiet_hours_end(dt.datetime(2026, 10, 25, 6, 30, tzinfo=dt.UTC), "Europe/Stockholm", window)
    assert end == dt.datetime(2026, 10, 25, 8, tzinfo=stockholm)
    assert quiet_hours_end(dt.datetime(2026, 10, 25, 12, tzinfo=stockholm), "Europe/Stockholm", window) is None


def test_channels_option_narrows_the_run(tmp_path: Path) -> None:
    items = plan(audience(tmp_path, "1,A,070-123 45 67,a@example.se,sv,,\n"), channels=("email",))
    assert {i.channel for i in items} == {"email"}


def test_missing_header_aborts_with_exit_3(tmp_path: Path) -> None:
    path = audience(tmp_path, "1,A,0701234567\n", header="id,name,mobile\n")
    result = run_cli("send", str(PLAYBOOK), "--notice", "outage", "--audience", str(path), "--dry-run")
    assert result.code == 3
    assert result.stderr == (
        f'crisiscomms: {path}:1: the header has no "phone" or "email" column (found: id, name, mobile). Rename the '
        'column that holds phone numbers to "phone" or e-mail addresses to "email".\n')


def test_dry_run_json_shape_and_skipped_csv(tmp_path: Path) -> None:
    rows = ("1,Anna,070-123 45 67,anna@example.se,sv,,\n"
            "2,Nikos,+30 691 234 5678,nikos@example.gr,el,Europe/Athens,\n"
            "3,Bad,12,,en,,\n")
    skipped = tmp_path / "skipped.csv"
    result = run_cli("send", str(PLAYBOOK), "--notice", "outage", "--audience", str(audience(tmp_path, rows)),
                     "--dry-run", "--format", "json", "--at", "2026-11-25T12:00+01:00", "--banner-out",
                     str(tmp_path / "b.json"), "--skipped-out", str(skipped))
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["campaign"] == "testbolaget/outage"
    assert summary.pop("ledger").endswith("/crisiscomms/ledger.sqlite")  # whose STOP list was read
    assert summary == {
        "notice": "outage", "campaign": summary["campaign"],
        "planned": {"sms": 2, "email": 2, "banner": 1},
        "skipped": {"invalid_phone": 1, "no_address": 1},
        "skipped_details": {"invalid_phone": {"too short for SE": 1}},
        "deferred": {"sms": 0},
        "locales": {"en": {"sms": 1, "email": 1}, "sv": {"sms": 1, "email": 1}},
        "sms_segments": 2,
        "estimated_cost": {"amount": 0.05, "currency": "EUR", "unpriced_segments": 1},
        "deferred_until": None,
        "banner_path": str(tmp_path / "b.json"),
        "text_locales": {"en": {"en": 2}, "sv": {"sv": 2}},
    }
    assert skipped.read_text(encoding="utf-8").splitlines() == [
        "line,id,channel,reason,detail", "4,3,sms,invalid_phone,too short for SE", "4,3,email,no_address,"]
    assert not (tmp_path / "b.json").exists()  # a dry run writes no banner


def test_dry_run_opens_no_connection_and_writes_no_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dry run opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.chdir(tmp_path)
    path = audience(tmp_path, "1,Anna,070-123 45 67,anna@example.se,sv,,\n")
    with respx.mock(using="httpx", assert_all_called=False) as router:
        result = run_cli("send", str(PLAYBOOK), "--notice", "outage", "--audience", str(path), "--dry-run")
    assert result.code == 0, result.stderr
    assert router.calls.call_count == 0
    assert "DRY RUN — nothing is sent" in result.stdout
    assert not (tmp_path / ".crisiscomms").exists()
    from crisiscomms.ledger import default_ledger_path

    assert not default_ledger_path().exists()  # a dry run writes no ledger, not even the per-user one


def test_dry_run_text_summary(tmp_path: Path) -> None:
    path = audience(tmp_path, "1,Anna,070-123 45 67,anna@example.se,sv,,\n2,Dup,0701234567,,sv,,\n")
    result = run_cli("send", str(PLAYBOOK), "--notice", "outage", "--audience", str(path), "--dry-run", "--at",
                     "2026-11-25T12:00+01:00")
    assert result.code == 0
    out = result.stdout
    assert "Planned messages" in out and re.search(r"│ duplicate +│ +1 │", out)
    assert "SMS segments: 1; estimated cost 0.05 EUR" in out
    assert "sample: sms · sv" in out and "Banner would be written to" in out


def test_channel_option_errors(tmp_path: Path) -> None:
    path = audience(tmp_path, "1,A,070-123 45 67,,sv,,\n")
    result = run_cli("send", str(PLAYBOOK), "--notice", "outage", "--audience", str(path), "--dry-run",
                     "--channels", "sms,fax")
    assert (result.code, result.stderr) == (
        2, "crisiscomms: --channels: unknown channel fax (channels: sms, email, banner, voice, cap)\n")


def test_region_of() -> None:
    assert [region_of(n) for n in ("+46701234567", "+306912345678", "+12125550123", "+3519123")] == [
        "SE", "GR", "US", "PT"]


def test_invalid_phone_skips_say_why(tmp_path: Path) -> None:
    rows = ("1,Short,12,,en,,\n"
            "2,Long,0701234567890123,,en,,\n"
            "3,Country,+999 123 456,,en,,\n"
            "4,Unassigned,071 234 56 78,,en,,\n"
            "5,Word,call me,,en,,\n")
    items = plan(audience(tmp_path, rows), channels=("sms",))
    assert [(i.line, i.reason.value, i.detail) for i in items if isinstance(i, SkippedMessage)] == [
        (2, "invalid_phone", "too short for SE"),
        (3, "invalid_phone", "too long for SE"),
        (4, "invalid_phone", "unknown country code"),
        (5, "invalid_phone", "not valid in SE"),
        (6, "invalid_phone", "not a phone number"),
    ]


def test_dry_run_text_counts_invalid_phones_by_detail(tmp_path: Path) -> None:
    path = audience(tmp_path, "1,A,12,,en,,\n2,B,13,,en,,\n3,C,071 234 56 78,,en,,\n")
    result = run_cli("send", str(PLAYBOOK), "--notice", "outage", "--audience", str(path), "--dry-run",
                     "--channels", "sms", "--at", "2026-11-25T12:00+01:00")
    assert result.code == 0, result.stderr
    assert re.search(r"│ invalid_phone +│ +3 │\n│   too short for SE +│ +2 │\n│   not valid in SE +│ +1 │",
                     result.stdout), result.stdout


def test_unknown_channel_in_a_row_is_a_counted_skip_with_its_line(tmp_path: Path) -> None:
    skipped = tmp_path / "skipped.csv"
    path = audience(tmp_path, "1,A,070-123 45 67,a@example.se,sv,,sms;fax\n")
    result = run_cli("send", str(PLAYBOOK), "--notice", "outage", "--audience", str(path), "--dry-run",
                     "--format", "json", "--skipped-out", str(skipped), "--at", "2026-11-25T12:00+01:00")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["skipped"] == {"malformed_row": 2}
    assert skipped.read_text(encoding="utf-8").splitlines() == [
        "line,id,channel,reason,detail",
        '2,1,sms,malformed_row,"unknown channel ""fax"" in ""channels"" (known: banner, email, sms, voice)"',
        '2,1,email,malformed_row,"unknown channel ""fax"" in ""channels"" (known: banner, email, sms, voice)"']
