"""The terminal views: times in the organisation's zone in words, and text printed literally."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from crisiscomms.formatting import describe_moment, describe_span, zone_words

from .conftest import DATA, run_cli

PLAYBOOK = DATA / "playbooks" / "minimal.yaml"
OSLO = ZoneInfo("Europe/Oslo")


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_moment_in_words_in_the_organisations_zone() -> None:
    moment = dt.datetime(2026, 10, 16, 8, 0, tzinfo=ZoneInfo("Europe/Helsinki"))
    assert describe_moment(moment, "Europe/Oslo") == "Fri 16 Oct 07:00 Oslo Time"
    assert describe_moment(moment, "Europe/Oslo", "sv") == "fre 16 okt. 07:00 Oslotid"
    assert describe_moment(moment, "UTC") == "Fri 16 Oct 05:00 UTC"
    assert zone_words("America/New_York") == "New York Time"


def test_a_span_in_words() -> None:
    first = dt.datetime(2026, 10, 16, 8, 0, tzinfo=ZoneInfo("Europe/Helsinki"))
    last = dt.datetime(2026, 10, 16, 8, 0, tzinfo=OSLO)
    assert describe_span(first, last, "Europe/Oslo") == "between Fri 16 Oct 07:00 and 08:00 Oslo Time"
    assert describe_span(last, last, "Europe/Oslo") == "at Fri 16 Oct 08:00 Oslo Time"
    later = dt.datetime(2026, 10, 17, 8, 0, tzinfo=OSLO)
    assert describe_span(last, later, "Europe/Oslo") == \
        "between Fri 16 Oct 08:00 Oslo Time and Sat 17 Oct 08:00 Oslo Time"
    # Across the end of summer time (25 Oct 2026): each end in the offset of its own day.
    assert describe_span(dt.datetime(2026, 10, 24, 22, tzinfo=dt.UTC), dt.datetime(2026, 10, 25, 22, tzinfo=dt.UTC),
                         "Europe/Oslo") == "between Sun 25 Oct 00:00 and 23:00 Oslo Time"


def test_deferral_is_said_in_words_not_iso_offsets(tmp_path: Path) -> None:
    playbook = tmp_path / "p.yaml"
    playbook.write_text(PLAYBOOK.read_text(encoding="utf-8").replace("severity: critical", "severity: warning")
                        .replace("templates: ../templates", f"templates: {DATA / 'templates'}"), encoding="utf-8")
    audience = tmp_path / "a.csv"
    audience.write_text("id,name,phone,email,locale,timezone,channels\n"
                        "1,Stockholm,070-123 45 67,,sv,Europe/Stockholm,\n"
                        "2,Athens,+30 691 234 5678,,en,Europe/Athens,\n", encoding="utf-8")
    result = run_cli("send", str(playbook), "--notice", "outage", "--audience", str(audience), "--dry-run",
                     "--channels", "sms", "--at", "2026-11-25T21:30+01:00")
    assert result.code == 0, result.stderr
    assert ("Deferred by quiet hours: 2 SMS, to be sent between Thu 26 Nov 07:00 and 08:00 Stockholm Time "
            "(when quiet hours end for each recipient); rerun the same command then to send them.") \
        in flat(result.stdout)
    assert "+02:00" not in result.stdout


def test_preview_says_when_the_notice_expires_in_words() -> None:
    result = run_cli("preview", str(PLAYBOOK), "--notice", "outage", "--locale", "en", "--at",
                     "2026-11-25T12:00+01:00")
    assert result.code == 0, result.stderr
    assert "Expires Tue 1 Dec 18:00 Stockholm Time" in result.stdout
