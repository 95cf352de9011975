from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from crisiscomms.formatting import format_weekly_hours
from crisiscomms.hours import (
    DatedHours,
    DayGivenTwice,
    OpeningHours,
    TimeRange,
    WeeklySchedule,
    parse_day_hours,
    parse_day_spec,
    uncovered_intervals,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def schedule(**days: str) -> WeeklySchedule:
    return WeeklySchedule.from_mapping({k.replace("_", "-"): parse_day_hours(v) for k, v in days.items()})


@pytest.mark.parametrize(("text", "expected"), [
    ("08:00-20:00", (TimeRange(480, 1200),)),
    ("08:00 – 12:00, 13:00-24:00", (TimeRange(480, 720), TimeRange(780, 1440))),
    ("closed", ()),
    ("always", (TimeRange(0, 1440),)),
])
def test_parse_day_hours(text: str, expected: tuple[TimeRange, ...]) -> None:
    assert parse_day_hours(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("25:00-26:00", "'25:00' is not a time of day (00:00 to 24:00)"),
    ("08:60-09:00", "'08:60' is not a time of day (00:00 to 24:00)"),
    ("20:00-08:00", "'20:00-08:00' ends before it starts; a range cannot pass midnight: end this day at 24:00 "
                    "and start the next day at 00:00"),
    ("08:00-12:00, 11:00-13:00", "ranges 08:00-12:00 and 11:00-13:00 overlap; merge them into one"),
    ("noon", "'noon' is not a time range; write it as HH:MM-HH:MM, e.g. 08:00-20:00, or 'closed'"),
    ("24:00-24:00", "'24:00-24:00' starts at 24:00; start at 00:00 of the next day instead"),
])
def test_impossible_hours_are_explained(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_day_hours(text)
    assert str(caught.value) == message


def test_day_specs() -> None:
    assert parse_day_spec("mon-fri") == (0, 1, 2, 3, 4)
    assert parse_day_spec("Sat, sun") == (5, 6)
    assert parse_day_spec("daily") == tuple(range(7))
    with pytest.raises(ValueError, match="fri comes after mon"):
        parse_day_spec("fri-mon")


def test_day_given_twice() -> None:
    with pytest.raises(DayGivenTwice) as caught:
        schedule(mon_fri="08:00-20:00", fri="10:00-12:00")
    assert str(caught.value) == "fri is given twice: in 'mon-fri' and in 'fri'; give each day once"


def test_open_now_next_open_and_exceptions() -> None:
    hours = OpeningHours(schedule(mon_fri="08:00-20:00", sat="10:00-16:00"),
                         (DatedHours(date(2026, 12, 24), date(2026, 12, 24), ()),), "Europe/Stockholm")
    wednesday_noon = datetime(2026, 11, 25, 12, tzinfo=STOCKHOLM)
    assert hours.is_open(wednesday_noon)
    assert hours.closes_at(wednesday_noon) == datetime(2026, 11, 25, 20, tzinfo=STOCKHOLM)
    sunday = datetime(2026, 11, 29, 9, tzinfo=STOCKHOLM)
    assert not hours.is_open(sunday)
    assert hours.next_open(sunday) == datetime(2026, 11, 30, 8, tzinfo=STOCKHOLM)
    assert not hours.is_open(datetime(2026, 12, 24, 12, tzinfo=STOCKHOLM))  # Christmas Eve closed
    assert hours.next_open(datetime(2026, 12, 24, 12, tzinfo=STOCKHOLM)) == datetime(2026, 12, 25, 8,
                                                                                        tzinfo=STOCKHOLM)


def test_hours_across_dst_change_stay_local() -> None:
    hours = OpeningHours(schedule(daily="08:00-20:00"), (), "Europe/Stockholm")
    before = datetime(2026, 3, 28, 21, tzinfo=STOCKHOLM)  # DST starts 2026-03-29 02:00
    assert hours.next_open(before) == datetime(2026, 3, 29, 8, tzinfo=STOCKHOLM)
    assert hours.next_open(before).utcoffset().total_seconds() == 7200  # type: ignore[union-attr]


def test_uncovered_intervals() -> None:
    chat = OpeningHours(schedule(mon_fri="08:00-20:00"), (), "Europe/Stockholm")
    evening = OpeningHours(schedule(mon_fri="20:00-24:00"), (), "Europe/Stockholm")
    start = datetime(2026, 1, 5, tzinfo=STOCKHOLM)
    end = datetime(2026, 1, 6, tzinfo=STOCKHOLM)
    assert uncovered_intervals(chat, [evening], start, end) == [(start, start.replace(hour=8))]


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", "Mon–Fri 08:00\u2009–\u200920:00, Sat 10:00\u2009–\u200916:00"),
    ("sv", "mån–fre 08:00–20:00, lör 10:00–16:00"),
    ("da", "man.–fre. 08.00–20.00, lør. 10.00–16.00"),
    ("nb", "man.–fre. 08:00–20:00, lør. 10:00–16:00"),
    ("nl", "ma–vr 08:00–20:00, za 10:00–16:00"),
    ("el", "Δευ–Παρ 08:00–20:00, Σάβ 10:00–16:00"),
])
def test_weekly_hours_read_natively(locale: str, expected: str) -> None:
    hours = OpeningHours(schedule(mon_fri="08:00-20:00", sat="10:00-16:00"), (), "Europe/Stockholm")
    assert format_weekly_hours(hours, locale) == expected


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", "24/7"), ("sv", "dygnet runt"), ("da", "døgnet rundt"), ("nb", "døgnet rundt"),
    ("nl", "dag en nacht"), ("el", "όλο το 24ωρο"),
])
def test_always_in_words(locale: str, expected: str) -> None:
    assert format_weekly_hours(OpeningHours(WeeklySchedule.always(), (), "UTC"), locale) == expected


def test_closes_at_is_none_for_always_open_across_a_dst_change() -> None:
    # A bug the browser parity test found: the horizon's last local midnight fell short of
    # ``at + 60 days`` across DST, and a far-away "closing" came back.
    hours = OpeningHours(WeeklySchedule.always(), (), "Europe/Stockholm")
    assert hours.closes_at(datetime(2026, 3, 7, 22, 15, tzinfo=ZoneInfo("UTC"))) is None
    daily = OpeningHours(schedule(daily="08:00-20:00"), (), "Europe/Stockholm")
    moment = datetime(2026, 3, 7, 10, tzinfo=STOCKHOLM)
    assert daily.closes_at(moment) == datetime(2026, 3, 7, 20, tzinfo=STOCKHOLM)
    assert daily.closes_at(datetime(2026, 3, 7, 21, tzinfo=STOCKHOLM)) is None
