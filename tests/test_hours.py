from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crisiscomms.formatting import format_weekly_hours
from crisiscomms.hours import (
    DatedHours,
    DayGivenTwice,
    ExceptionBound,
    OpeningHours,
    TimeRange,
    WeeklySchedule,
    dated_hours_between,
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


OSLO = ZoneInfo("Europe/Oslo")


def timed(first: str, last: str, hours: str, zone: str = "Europe/Oslo") -> DatedHours:
    return dated_hours_between(ExceptionBound.parse(first), ExceptionBound.parse(last), parse_day_hours(hours),
                               ZoneInfo(zone))


def test_a_timed_exception_applies_between_its_moments_only() -> None:
    # The storm: 24/7 from 14 Oct 06:00 to 15 Oct 18:00; normally 08:00-22:00 every day.
    hours = OpeningHours(schedule(daily="08:00-22:00"), (timed("2026-10-14T06:00", "2026-10-15T18:00", "always"),),
                         "Europe/Oslo")
    assert hours.ranges_on(date(2026, 10, 14)) == (TimeRange(360, 1440),)
    assert hours.ranges_on(date(2026, 10, 15)) == (TimeRange(0, 1320),)  # 24/7 until 18:00 joins 08-22
    evening = datetime(2026, 10, 14, 23, 30, tzinfo=OSLO)
    assert hours.is_open(evening)
    assert hours.closes_at(evening) == datetime(2026, 10, 15, 22, tzinfo=OSLO)
    assert hours.exception_at(evening) == 0
    assert not hours.is_open(datetime(2026, 10, 14, 5, 59, tzinfo=OSLO))
    assert hours.next_open(datetime(2026, 10, 14, 3, tzinfo=OSLO)) == datetime(2026, 10, 14, 6, tzinfo=OSLO)
    assert not hours.is_open(datetime(2026, 10, 15, 22, 30, tzinfo=OSLO))


def test_a_timed_closure_cuts_into_the_weekly_hours() -> None:
    hours = OpeningHours(schedule(daily="08:00-22:00"), (timed("2026-10-14T12:00", "2026-10-14T15:30", "closed"),),
                         "Europe/Oslo")
    assert hours.ranges_on(date(2026, 10, 14)) == (TimeRange(480, 720), TimeRange(930, 1320))
    assert hours.closes_at(datetime(2026, 10, 14, 9, tzinfo=OSLO)) == datetime(2026, 10, 14, 12, tzinfo=OSLO)


def test_offsets_are_converted_to_the_route_zone() -> None:
    exception = timed("2026-10-14T04:00+00:00", "2026-10-14T18:00Z", "always")
    assert (exception.first, exception.first_minute, exception.last_minute) == (date(2026, 10, 14), 360, 1200)


def test_a_to_at_midnight_ends_the_day_before() -> None:
    exception = timed("2026-10-14T06:00", "2026-10-16T00:00", "always")
    assert (exception.last, exception.last_minute) == (date(2026, 10, 15), 1440)


def test_yearly_exceptions_recur_and_run_over_new_year() -> None:
    christmas = timed("12-24T12:00", "12-26", "closed")
    new_year = timed("12-31", "01-01", "10:00-14:00")
    hours = OpeningHours(schedule(daily="08:00-22:00"), (christmas, new_year), "Europe/Oslo")
    for year in (2026, 2027, 2031):
        assert hours.ranges_on(date(year, 12, 24)) == (TimeRange(480, 720),)
        assert hours.ranges_on(date(year, 12, 25)) == ()
        assert hours.ranges_on(date(year, 12, 27)) == (TimeRange(480, 1320),)
        assert hours.ranges_on(date(year, 12, 31)) == (TimeRange(600, 840),)
        assert hours.ranges_on(date(year + 1, 1, 1)) == (TimeRange(600, 840),)
        assert hours.ranges_on(date(year + 1, 1, 2)) == (TimeRange(480, 1320),)


def test_a_dated_exception_wins_over_a_yearly_one() -> None:
    storm = timed("2026-12-20", "2026-12-28", "always")
    hours = OpeningHours(schedule(daily="08:00-22:00"), (timed("12-25", "12-25", "closed"), storm), "Europe/Oslo")
    assert hours.ranges_on(date(2026, 12, 25)) == (TimeRange(0, 1440),)
    assert hours.ranges_on(date(2027, 12, 25)) == ()
    assert hours.exception_at(datetime(2026, 12, 25, 3, tzinfo=OSLO)) == 1


def test_timed_exceptions_across_dst_stay_local() -> None:
    # Summer time ends 25 Oct 2026 03:00 in Oslo; the extension ends at 18:00 local either way.
    hours = OpeningHours(schedule(daily="08:00-16:00"), (timed("2026-10-24T16:00", "2026-10-25T18:00", "always"),),
                         "Europe/Oslo")
    closing = hours.closes_at(datetime(2026, 10, 24, 23, tzinfo=OSLO))
    assert closing == datetime(2026, 10, 25, 18, tzinfo=OSLO)
    assert closing is not None and closing.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize(("first", "last", "message"), [
    ("2026-10-15", "2026-10-14", "'to' is before 'from'"),
    ("2026-10-14T18:00", "2026-10-14T06:00",
     "'to' is not after 'from'; give a later time, or 'to' as a day to end with that day"),
    ("12-24", "2026-12-26", "'from' and 'to' must both have a year, or both leave it out (every year)"),
])
def test_impossible_periods_are_explained(first: str, last: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        timed(first, last, "closed")
    assert str(caught.value) == message


@pytest.mark.parametrize(("text", "message"), [
    ("14 Oct", "'14 Oct' is not a date or date and time; write 2026-12-24, 2026-10-14T06:00, or 12-25 for every year"),
    ("02-30", "'02-30' is not a day of the calendar"),
    ("12-24T12:00+01:00", "'12-24T12:00+01:00' recurs every year and cannot have a UTC offset; give the local time"),
    ("2026-10-14T25:00", "'25:00' is not a time of day (00:00 to 24:00)"),
])
def test_bad_exception_bounds(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        ExceptionBound.parse(text)
    assert str(caught.value) == message
