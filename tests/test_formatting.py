"""Dates and times from Babel's CLDR patterns in any locale, never patched strings."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from crisiscomms.formatting import format_clock, format_datetime_for, format_time_range, format_until, format_when
from crisiscomms.hours import TimeRange

OSLO = ZoneInfo("Europe/Oslo")
SUNDAY_EARLY = datetime(2026, 10, 18, 5, tzinfo=OSLO)


@pytest.mark.parametrize(("locale", "evening", "day", "end_of_day"), [
    ("en", "20:00\u2009–\u200924:00", "08:00\u2009–\u200920:00", "24:00"),
    ("sv", "20:00–24:00", "08:00–20:00", "24:00"),
    ("da", "20.00–24.00", "08.00–20.00", "24.00"),
    ("nb", "20:00–24:00", "08:00–20:00", "24:00"),
    ("nl", "20:00–24:00", "08:00–20:00", "24:00"),
    ("el", "20:00–24:00", "08:00–20:00", "24:00"),
    ("fi", "20.00–24.00", "8.00–20.00", "24.00"),
    ("de", "20:00–24:00 Uhr", "08:00–20:00 Uhr", "24:00"),
    ("fr", "20:00\u2009–\u200924:00", "08:00\u2009–\u200920:00", "24:00"),
    ("pl", "20:00–24:00", "08:00–20:00", "24:00"),
    ("ja", "20時00分～24時00分", "8時00分～20時00分", "24:00"),
    ("ar", "20:00–24:00", "08:00–20:00", "24:00"),
])
def test_ranges_and_the_end_of_the_day(locale: str, evening: str, day: str, end_of_day: str) -> None:
    assert format_time_range(TimeRange(1200, 1440), locale) == evening
    assert format_time_range(TimeRange(480, 1200), locale) == day
    assert format_clock(1440, locale) == end_of_day


@pytest.mark.parametrize(("locale", "today", "tomorrow", "later"), [
    ("en", "today at 06:00", "tomorrow at 18:00", "Wed 18:00"),
    ("sv", "i dag kl. 06:00", "i morgon kl. 18:00", "ons 18:00"),
    ("da", "i dag kl. 06.00", "i morgen kl. 18.00", "ons. 18.00"),
    ("nb", "i dag kl. 06:00", "i morgen kl. 18:00", "ons. kl. 18:00"),
    ("nl", "vandaag om 06:00", "morgen om 18:00", "wo 18:00"),
    ("el", "σήμερα, 06:00", "αύριο, 18:00", "Τετ 18:00"),
    ("fi", "tänään klo 6.00", "huomenna klo 18.00", "ke 18.00"),
    ("de", "heute um 06:00", "morgen um 18:00", "Mi., 18:00"),
    ("fr", "aujourd’hui à 06:00", "demain à 18:00", "mer. 18:00"),
    ("pl", "dzisiaj, 06:00", "jutro, 18:00", "śr., 18:00"),
    ("ja", "今日の 6:00", "明日の 18:00", "18:00 (水)"),
    ("ar", "اليوم في 06:00", "غدًا في 18:00", "الأربعاء 18:00"),
])
def test_relative_day_words_come_from_cldr(locale: str, today: str, tomorrow: str, later: str) -> None:
    """"opens Sun 06:00" on a Sunday says today, in every locale."""
    def when(day: int, hour: int) -> str:
        return format_when(datetime(2026, 10, day, hour, tzinfo=OSLO), locale, "Europe/Oslo", SUNDAY_EARLY)

    assert (when(18, 6), when(19, 18), when(21, 18)) == (today, tomorrow, later)


def test_until_is_a_bare_time_today_and_24_00_at_midnight() -> None:
    def until(day: int, hour: int, locale: str = "fi") -> str:
        return format_until(datetime(2026, 10, day, hour, tzinfo=OSLO), locale, "Europe/Oslo", SUNDAY_EARLY)

    assert (until(18, 20), until(19, 0), until(19, 18)) == ("20.00", "24.00", "huomenna klo 18.00")


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", "Oct 18, 2026, 05:00"), ("sv", "18 okt. 2026 05:00"), ("de", "18. Okt. 2026, 05:00"),
    ("fi", "18.10.2026 5.00"), ("ja", "2026年10月18日 5:00"), ("ar", "18 أكتوبر 2026، 05:00"),
])
def test_moments_join_date_and_time_the_locale_way(locale: str, expected: str) -> None:
    assert format_datetime_for(SUNDAY_EARLY, locale, "Europe/Oslo") == expected


def test_a_closing_at_midnight_is_the_end_of_the_day_before() -> None:
    saturday_late = datetime(2026, 12, 5, 23, 30, tzinfo=OSLO)

    def until(day: int, locale: str) -> str:
        return format_until(datetime(2026, 12, day, tzinfo=OSLO), locale, "Europe/Oslo", saturday_late)

    assert [until(6, "da"), until(7, "da"), until(8, "da"), until(7, "en")] == [
        "24.00", "i morgen kl. 24.00", "man. 24.00", "tomorrow at 24:00"]
