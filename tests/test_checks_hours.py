"""Coverage warnings with timed and yearly exceptions agree with the hours the readers are told."""

from __future__ import annotations

from pathlib import Path

import pytest

from crisiscomms.validate import validate_file

from .test_render import make_project

CHAT_EXCEPTIONS = "    exceptions:\n      - date: 2026-12-24\n        hours: closed\n"


def warnings_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exceptions: str) -> list[str]:
    path = make_project(tmp_path, playbook_edit=(CHAT_EXCEPTIONS, exceptions))
    text = path.read_text(encoding="utf-8").replace("    fallbacks: [hotline]\n", "")
    path.write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return [d.message for d in validate_file(path).diagnostics
            if d.severity == "warning" and "exception" in d.message]


def test_a_timed_closure_inside_opening_hours_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert warnings_for(tmp_path, monkeypatch, "    exceptions:\n      - from: 2026-10-14T12:00\n"
                        "        to: 2026-10-14T15:30\n        hours: closed\n") == [
        "'technical': exceptions leave no route for it open 2026-10-14 12:00–15:30 (Europe/Stockholm); "
        "add a fallback that stays open then"]


def test_a_closure_outside_opening_hours_is_no_news(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert warnings_for(tmp_path, monkeypatch, "    exceptions:\n      - from: 2026-10-14T20:00\n"
                        "        to: 2026-10-15T08:00\n        hours: closed\n") == []


def test_a_yearly_holiday_warns_for_its_coming_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    found = warnings_for(tmp_path, monkeypatch, "    exceptions:\n      - date: 12-25\n        hours: closed\n")
    today = dt.date.today()
    christmas = dt.date(today.year, 12, 25)
    if christmas < today:
        christmas = christmas.replace(year=today.year + 1)
    if christmas.weekday() == 6:  # a Sunday: the chat is closed on Sundays anyway
        assert found == []
    else:
        assert found == [f"'technical': no route for it is open at all on {christmas.isoformat()} (holiday "
                         "exceptions); add a fallback that stays open"]
