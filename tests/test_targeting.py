"""Targeting: audience.where in a notice and send --where; others are skipped as not_targeted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crisiscomms.plan import PlannedMessage, SkippedMessage

from .conftest import DATA, run_cli
from .test_plan import plan

PLAYBOOK = DATA / "playbooks" / "minimal.yaml"
HEADER = "id,name,phone,email,locale,timezone,channels,Area,kind\n"
ROWS = ("1,A,070-100 00 01,,sv,,,Bergen,home\n"
        "2,B,070-100 00 02,,sv,,,Voss,business\n"
        "3,C,070-100 00 03,,sv,,, bergen ,business\n"
        "4,D,070-100 00 04,,sv,,,Oslo,home\n"
        "5,E,070-100 00 05,,sv,,,,home\n")


def audience(tmp_path: Path, rows: str = ROWS, header: str = HEADER) -> Path:
    path = tmp_path / "a.csv"
    path.write_text(header + rows, encoding="utf-8")
    return path


def targeted_playbook(tmp_path: Path, where: str) -> Path:
    playbook = tmp_path / "p.yaml"
    source = PLAYBOOK.read_text(encoding="utf-8").replace("templates: ../templates", f"templates: {DATA / 'templates'}")
    playbook.write_text(source.replace("    channels: [sms, email, banner]\n",
                                       f"    channels: [sms, email, banner]\n    audience:\n      where: {where}\n"),
                        encoding="utf-8")
    return playbook


def sms(items: list[PlannedMessage | SkippedMessage]) -> list[tuple[str, str]]:
    return [(i.recipient_id, i.reason.value if isinstance(i, SkippedMessage) else "planned")
            for i in items if i.channel == "sms"]


def test_where_option_or_within_a_column_and_across_columns(tmp_path: Path) -> None:
    path = audience(tmp_path)
    assert sms(plan(path, where=(("area", ("Bergen", "Voss")),))) == [
        ("1", "planned"), ("2", "planned"), ("3", "planned"), ("4", "not_targeted"), ("5", "not_targeted")]
    assert sms(plan(path, where=(("area", ("Bergen", "Voss")), ("KIND", ("business",))))) == [
        ("1", "not_targeted"), ("2", "planned"), ("3", "planned"), ("4", "not_targeted"), ("5", "not_targeted")]


def test_the_notice_where_and_the_option_both_hold(tmp_path: Path) -> None:
    playbook = targeted_playbook(tmp_path, "{area: [Bergen, Voss]}")
    assert run_cli("validate", "--strict", str(playbook)).code == 0
    path = audience(tmp_path)
    assert sms(plan(path, playbook=playbook)) == [
        ("1", "planned"), ("2", "planned"), ("3", "planned"), ("4", "not_targeted"), ("5", "not_targeted")]
    assert sms(plan(path, playbook=playbook, where=(("kind", ("home",)),))) == [
        ("1", "planned"), ("2", "not_targeted"), ("3", "not_targeted"), ("4", "not_targeted"), ("5", "not_targeted")]


def test_a_not_targeted_row_does_not_count_as_seen(tmp_path: Path) -> None:
    rows = "1,A,070-100 00 01,,sv,,,Oslo,home\n2,A again,070-100 00 01,,sv,,,Bergen,home\n"
    assert sms(plan(audience(tmp_path, rows), where=(("area", ("Bergen",)),))) == [
        ("1", "not_targeted"), ("2", "planned")]


def test_dry_run_counts_not_targeted(tmp_path: Path) -> None:
    result = run_cli("send", str(PLAYBOOK), "--notice", "outage", "--audience", str(audience(tmp_path)), "--dry-run",
                     "--format", "json", "--channels", "sms", "--where", "area=Bergen,Voss", "--at",
                     "2026-11-25T12:00+01:00")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["planned"], summary["skipped"]) == ({"sms": 3}, {"not_targeted": 2})
    assert summary["targeting"] == "area is Bergen or Voss"
    text = run_cli("send", str(PLAYBOOK), "--notice", "outage", "--audience", str(audience(tmp_path)), "--dry-run",
                   "--channels", "sms", "--where", "area=Bergen,Voss", "--where", "kind=home")
    assert "Targeted: only rows where area is Bergen or Voss and kind is home" in text.stdout


def test_a_where_on_a_missing_column_stops_before_planning(tmp_path: Path) -> None:
    path = audience(tmp_path)
    result = run_cli("send", str(PLAYBOOK), "--notice", "outage", "--audience", str(path), "--dry-run",
                     "--where", "region=West", "--where", "area=Bergen")
    assert (result.code, result.stdout) == (3, "")
    assert result.stderr == (
        f"crisiscomms: {path}:1: targeting ('where') uses the column(s) region, which the audience file lacks "
        "(its columns: id, name, phone, email, locale, timezone, channels, Area, kind)\n")
    playbook = targeted_playbook(tmp_path, "{district: North}")
    result = run_cli("send", str(playbook), "--notice", "outage", "--audience", str(path), "--dry-run")
    assert result.code == 3 and "uses the column(s) district, which the audience file lacks" in result.stderr


@pytest.mark.parametrize("bad", ["area", "area=", "=Bergen", "area=,"])
def test_a_bad_where_option_is_a_usage_error(tmp_path: Path, bad: str) -> None:
    result = run_cli("send", str(PLAYBOOK), "--notice", "outage", "--audience", str(audience(tmp_path)),
                     "--dry-run", "--where", bad)
    assert (result.code, result.stderr) == (
        2, f"crisiscomms: --where '{bad}': give COLUMN=VALUE[,VALUE…], e.g. --where area=Bergen,Voss\n")


def test_a_where_without_values_is_a_playbook_error(tmp_path: Path) -> None:
    playbook = targeted_playbook(tmp_path, "{area: []}")
    result = run_cli("validate", str(playbook))
    assert (result.code, result.stdout) == (1, f"{playbook}:45:21: error: 'area': give at least one value, none of "
                                               "them empty\n1 playbook checked: 1 error, 0 warnings — NOT valid\n")
