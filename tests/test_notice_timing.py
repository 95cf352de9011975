"""Relative expiry, next update, waits and call-backs in the playbook model."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from crisiscomms.durations import parse_duration
from crisiscomms.loader import load_playbook
from crisiscomms.render import notice_expiry, notice_next_update

from .test_render import make_project, renderer_for

AT = dt.datetime(2026, 11, 25, 12, tzinfo=dt.timezone(dt.timedelta(hours=1)))
EXPIRES = "    expires: 2026-12-01T18:00:00+01:00\n"


@pytest.mark.parametrize(("text", "expected"), [
    ("36h", dt.timedelta(hours=36)), ("90m", dt.timedelta(minutes=90)), ("2d", dt.timedelta(days=2)),
    ("1d12h", dt.timedelta(hours=36)), ("1d 12h 30m", dt.timedelta(hours=36, minutes=30)),
    ("PT36H", dt.timedelta(hours=36)), ("P2D", dt.timedelta(days=2)), ("P1DT12H", dt.timedelta(hours=36)),
    ("pt90m", dt.timedelta(minutes=90)), ("25min", dt.timedelta(minutes=25)),
])
def test_durations(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("soon", "'soon' is not a duration; write 36h, 90m, 2d, 1d12h or ISO 8601 like PT36H"),
    ("P", "'P' is not a duration; write 36h, 90m, 2d, 1d12h or ISO 8601 like PT36H"),
    ("0h", "'0h' must be more than nothing and at most 366 days"),
    ("400d", "'400d' must be more than nothing and at most 366 days"),
])
def test_bad_durations(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == message


def test_relative_expiry_and_next_update_count_from_the_plan(tmp_path: Path) -> None:
    path = make_project(tmp_path, playbook_edit=(EXPIRES, "    expires: 36h\n    next_update: 90m\n"))
    renderer = renderer_for(path, AT)
    assert notice_expiry(renderer.playbook, renderer.notice, AT) == AT + dt.timedelta(hours=36)
    assert notice_next_update(renderer.playbook, renderer.notice, AT) == AT + dt.timedelta(minutes=90)
    context = renderer.shared_context("en", "Europe/Stockholm")
    assert (context["expires_at"], context["next_update"]) == ("Nov 27, 2026, 00:00", "Nov 25, 2026, 13:30")
    assert context["notice"]["next_update"] == AT + dt.timedelta(minutes=90)


def test_a_day_expires_at_its_end_and_a_local_time_is_the_organisations(tmp_path: Path) -> None:
    path = make_project(tmp_path, playbook_edit=(EXPIRES, "    expires: 2026-12-01\n    next_update: 2026-11-26 08:00:00\n"))
    renderer = renderer_for(path, AT)
    stockholm = dt.timezone(dt.timedelta(hours=1))
    assert notice_expiry(renderer.playbook, renderer.notice, AT) == dt.datetime(2026, 12, 2, tzinfo=stockholm)
    assert notice_next_update(renderer.playbook, renderer.notice, AT) == dt.datetime(2026, 11, 26, 8,
                                                                                     tzinfo=stockholm)


@pytest.mark.parametrize(("edit", "message"), [
    ("    expires: soon-ish\n", "'expires' is 'soon-ish'"),
    ("    expires: P3X\n", "'P3X' is not a duration; write 36h, 90m, 2d, 1d12h or ISO 8601 like PT36H"),
    ("    next_update: 0m\n", "'0m' must be more than nothing and at most 366 days"),
])
def test_bad_notice_moments_are_placed(tmp_path: Path, edit: str, message: str) -> None:
    path = make_project(tmp_path, playbook_edit=(EXPIRES, edit))
    errors = [d.as_text() for d in load_playbook(path).diagnostics if d.severity == "error"]
    assert len(errors) == 1 and message in errors[0] and ":44:" in errors[0], errors


def test_callbacks_and_waits(tmp_path: Path) -> None:
    path = make_project(tmp_path, playbook_edit=(
        '    phone: "08-123 456 78"\n',
        '    phone: "08-123 456 78"\n    callback: "08-123 456 99"\n    wait: 25m\n'))
    hotline = renderer_for(path, AT).shared_context("sv", "Europe/Stockholm")["hotline"]
    assert hotline["callback"] == {"contact": "+46 8 123 456 99", "href": "tel:+46812345699"}
    assert (hotline["wait"], hotline["wait_minutes"]) == ("25 minuter", 25)
    loaded = load_playbook(path)
    from crisiscomms.render import NoticeRenderer

    later = NoticeRenderer.for_playbook(loaded.require(), loaded.base_dir, "outage", AT,
                                        waits={"hotline": dt.timedelta(hours=1, minutes=10)})
    assert later.shared_context("en", "Europe/Stockholm")["hotline"]["wait"] == "70 minutes"
    bad = make_project(tmp_path / "bad", playbook_edit=('    phone: "08-123 456 78"\n',
                                                         '    phone: "08-123 456 78"\n    callback: ring us\n'))
    errors = [d.message for d in load_playbook(bad).diagnostics if d.severity == "error"]
    assert errors == ["'ring us' is not a valid phone number in SE; write it with the country code, "
                      "e.g. +46 8 123 456 78"]
