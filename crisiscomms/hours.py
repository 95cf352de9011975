"""Opening hours: weekly schedules, dated exceptions, open-now and next-open.

A schedule is written the way a comms person would put it on a door::

    hours:
      mon-fri: "08:00-20:00"
      sat: "10:00-14:00, 15:00-18:00"
      sun: closed

or ``hours: always``. Days not named are closed. Times are in the route's
time zone; ``24:00`` ends a day. A range may not run past midnight: write
``fri: "20:00-24:00"`` and ``sat: "00:00-02:00"`` instead, so that every
range belongs to exactly one weekday.

Exceptions (:class:`DatedHours`) replace the weekly hours between two local
moments — whole days (``2026-12-24``), a date and time (``2026-10-14T06:00``),
or month and day every year (``12-24``). Per local day, the weekly ranges are
kept outside the exception's window and its own ranges apply inside it
(:func:`splice_hours`), so everything else — open now, next opening, closing,
coverage — works on plain day ranges, across midnight and DST alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
ALWAYS_WORDS = frozenset({"always", "24/7"})
CLOSED_WORDS = frozenset({"closed"})

_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, order=True)
class TimeRange:
    """Minutes since midnight, ``start`` < ``end`` ≤ 1440."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"

    @property
    def whole_day(self) -> bool:
        return self.start == 0 and self.end == MINUTES_PER_DAY


DayHours = tuple[TimeRange, ...]


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_clock(text: str) -> int:
    """``"08:30"`` → 510; ``"24:00"`` → 1440. Raises ValueError with a fix."""
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"'{text.strip()}' is not a time; write it as HH:MM, e.g. 08:00")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"'{text.strip()}' is not a time of day (00:00 to 24:00)")
    return hours * 60 + minutes


def parse_day_hours(text: str) -> DayHours:
    """``"08:00-12:00, 13:00-17:00"`` → two ranges; ``"closed"`` → none."""
    value = text.strip()
    if value.lower() in CLOSED_WORDS:
        return ()
    if value.lower() in ALWAYS_WORDS:
        return (TimeRange(0, MINUTES_PER_DAY),)
    ranges = sorted(_parse_range(part) for part in value.split(","))
    for earlier, later in pairwise(ranges):
        if later.start < earlier.end:
            raise ValueError(f"ranges {earlier} and {later} overlap; merge them into one")
    return tuple(ranges)


def _parse_range(text: str) -> TimeRange:
    parts = [p for p in re.split(r"\s*[-–—]\s*", text.strip()) if p]
    if len(parts) != 2:
        raise ValueError(
            f"'{text.strip()}' is not a time range; write it as HH:MM-HH:MM, e.g. 08:00-20:00, or 'closed'")
    start, end = parse_clock(parts[0]), parse_clock(parts[1])
    if start == MINUTES_PER_DAY:
        raise ValueError(f"'{text.strip()}' starts at 24:00; start at 00:00 of the next day instead")
    if end <= start:
        raise ValueError(
            f"'{text.strip()}' ends before it starts; a range cannot pass midnight: "
            "end this day at 24:00 and start the next day at 00:00")
    return TimeRange(start, end)


def parse_day_spec(spec: str) -> tuple[int, ...]:
    """``"mon-fri"`` → (0..4); ``"sat,sun"`` → (5, 6); ``"daily"`` → all."""
    text = spec.strip().lower()
    if text in {"daily", "every day", "mon-sun"}:
        return tuple(range(7))
    days: list[int] = []
    for part in re.split(r"\s*,\s*", text):
        days.extend(_parse_day_part(part, spec))
    return tuple(days)


def _parse_day_part(part: str, spec: str) -> list[int]:
    if "-" in part:
        first, _, last = part.partition("-")
        start, end = _day_index(first.strip(), spec), _day_index(last.strip(), spec)
        if end < start:
            raise ValueError(f"'{spec}': {first} comes after {last}; write the range from mon to sun")
        return list(range(start, end + 1))
    return [_day_index(part, spec)]


_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_INDEX = {name: i for names in (DAY_NAMES, _FULL_DAY_NAMES) for i, name in enumerate(names)}


def _day_index(name: str, spec: str) -> int:
    if name in _DAY_INDEX:
        return _DAY_INDEX[name]
    raise ValueError(f"'{spec}' is not a day or range of days; use mon, tue, wed, thu, fri, sat, sun, "
                     "a range like mon-fri, or a list like sat,sun")


@dataclass(frozen=True)
class WeeklySchedule:
    """Ranges for each weekday, Monday first."""

    days: tuple[DayHours, ...]

    @classmethod
    def always(cls) -> WeeklySchedule:
        return cls(tuple((TimeRange(0, MINUTES_PER_DAY),) for _ in range(7)))

    @classmethod
    def from_mapping(cls, mapping: dict[str, DayHours]) -> WeeklySchedule:
        """Combine ``{"mon-fri": ranges, "sat": ranges}``; raise ValueError(key, message) on overlap."""
        days: list[DayHours | None] = [None] * 7
        given_by: dict[int, str] = {}
        for spec, ranges in mapping.items():
            for day in parse_day_spec(spec):
                if days[day] is not None:
                    raise DayGivenTwice(spec, DAY_NAMES[day], given_by[day])
                days[day] = ranges
                given_by[day] = spec
        return cls(tuple(d or () for d in days))

    @property
    def is_always(self) -> bool:
        return all(len(d) == 1 and d[0].whole_day for d in self.days)


class DayGivenTwice(ValueError):
    def __init__(self, spec: str, day: str, first_spec: str) -> None:
        super().__init__(f"{day} is given twice: in '{first_spec}' and in '{spec}'; give each day once")
        self.spec = spec


@dataclass(frozen=True)
class DatedHours:
    """Hours that replace the weekly ones between two local moments of the route's zone.

    From ``first`` at ``first_minute`` to ``last`` at ``last_minute`` (exclusive; 1440 is the end of
    ``last``, so a bare ``to`` date is inclusive). A ``yearly`` exception recurs every year: only the
    month and day of ``first`` and ``last`` count, and it may run over New Year (12-30 to 01-02).
    """

    first: date
    last: date
    ranges: DayHours
    first_minute: int = 0
    last_minute: int = MINUTES_PER_DAY
    yearly: bool = False

    def window_on(self, day: date) -> tuple[int, int] | None:
        """The minutes of ``day`` (start, end) this exception covers, or None."""
        if not self._touches(day):
            return None
        start = self.first_minute if self._is(day, self.first) else 0
        end = self.last_minute if self._is(day, self.last) else MINUTES_PER_DAY
        return (start, end) if start < end else None

    def covers(self, day: date) -> bool:
        """True when the exception applies during some part of ``day``."""
        return self.window_on(day) is not None

    def covers_moment(self, day: date, minute: int) -> bool:
        window = self.window_on(day)
        return window is not None and window[0] <= minute < window[1]

    def ranges_within(self, day: date) -> DayHours:
        """The exception's own ranges on ``day``, cut to the part of the day it covers."""
        window = self.window_on(day)
        return () if window is None else _clip_all(self.ranges, *window)

    @property
    def whole_days(self) -> bool:
        return self.first_minute == 0 and self.last_minute == MINUTES_PER_DAY

    def days_between(self, start: date, end: date) -> Iterator[date]:
        """The days from ``start`` to ``end`` (inclusive) the exception touches."""
        if not self.yearly:
            start, end = max(start, self.first), min(end, self.last)
        day = start
        while day <= end:
            if self.covers(day):
                yield day
            day += timedelta(days=1)

    def _is(self, day: date, bound: date) -> bool:
        return (day.month, day.day) == (bound.month, bound.day) if self.yearly else day == bound

    def _touches(self, day: date) -> bool:
        if not self.yearly:
            return self.first <= day <= self.last
        key = (day.month, day.day)
        first, last = (self.first.month, self.first.day), (self.last.month, self.last.day)
        return first <= key <= last if first <= last else (key >= first or key <= last)


def _clip(span: TimeRange, start: int, end: int) -> TimeRange | None:
    low, high = max(span.start, start), min(span.end, end)
    return TimeRange(low, high) if low < high else None


def _clip_all(ranges: DayHours, start: int, end: int) -> DayHours:
    return tuple(c for r in ranges if (c := _clip(r, start, end)) is not None)


def _merge_ranges(ranges: Iterable[TimeRange]) -> DayHours:
    merged: list[TimeRange] = []
    for span in sorted(ranges):
        if merged and span.start <= merged[-1].end:
            merged[-1] = TimeRange(merged[-1].start, max(merged[-1].end, span.end))
        else:
            merged.append(span)
    return tuple(merged)


def splice_hours(base: DayHours, replacement: DayHours, window: tuple[int, int]) -> DayHours:
    """``base`` outside ``window``, ``replacement`` inside it, joined where they touch."""
    start, end = window
    kept = (*_clip_all(base, 0, start), *_clip_all(base, end, MINUTES_PER_DAY))
    return _merge_ranges((*kept, *_clip_all(replacement, start, end)))


# ``2026-12-24``, ``2026-10-14T06:00``, ``2026-10-14 06:00+02:00``, or yearly ``12-24``, ``12-24T18:00``.
EXCEPTION_BOUND = re.compile(
    r"^(?:(?P<year>\d{4})-)?(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[T ](?P<hour>\d{1,2}):(?P<minute>\d{2})(?::00)?(?P<offset>Z|[+-]\d{2}:?\d{2})?)?$")
YEARLY_PLACEHOLDER = 2000  # a leap year, so that 02-29 is a day


@dataclass(frozen=True)
class ExceptionBound:
    """One end of an exception: a local day, a minute of it (None: the day itself), yearly or not."""

    day: date
    minute: int | None
    yearly: bool
    offset: str | None = None

    @classmethod
    def parse(cls, text: str) -> ExceptionBound:
        match = EXCEPTION_BOUND.match(text.strip())
        if not match:
            raise ValueError(f"'{text}' is not a date or date and time; write 2026-12-24, 2026-10-14T06:00, "
                             "or 12-25 for every year")
        yearly = match["year"] is None
        try:
            day = date(int(match["year"] or YEARLY_PLACEHOLDER), int(match["month"]), int(match["day"]))
        except ValueError:
            raise ValueError(f"'{text}' is not a day of the calendar") from None
        minute = parse_clock(f"{match['hour']}:{match['minute']}") if match["hour"] is not None else None
        if yearly and match["offset"]:
            raise ValueError(f"'{text}' recurs every year and cannot have a UTC offset; give the local time")
        return cls(day, minute, yearly, match["offset"])

    def local(self, zone: ZoneInfo) -> ExceptionBound:
        """The same moment as local day and minute in ``zone`` (a bound with an offset is converted)."""
        if self.offset is None or self.minute is None:
            return self
        moment = datetime.fromisoformat(f"{self.day.isoformat()}T{_clock(self.minute)}{self.offset}")
        local = moment.astimezone(zone)
        return ExceptionBound(local.date(), local.hour * 60 + local.minute, yearly=False)


def exception_bound_text(day: date, minute: int, yearly: bool, *, start: bool) -> str:
    """One end of an exception as the banner document writes it (local to the route's zone):
    ``2026-12-24`` (a whole day; an end day is inclusive), ``2026-10-14T06:00``, yearly ``12-24``."""
    text = f"{day.month:02d}-{day.day:02d}" if yearly else day.isoformat()
    whole_day = minute == 0 if start else minute == MINUTES_PER_DAY
    return text if whole_day else f"{text}T{_clock(minute)}"


def dated_hours_between(first: ExceptionBound, last: ExceptionBound, ranges: DayHours, zone: ZoneInfo) -> DatedHours:
    """The exception from ``first`` to ``last`` (a bare ``last`` day is inclusive). Raises ValueError."""
    if first.yearly != last.yearly:
        raise ValueError("'from' and 'to' must both have a year, or both leave it out (every year)")
    start, end = first.local(zone), last.local(zone)
    first_minute = start.minute or 0
    last_minute = MINUTES_PER_DAY if end.minute is None else end.minute
    if end.minute == 0 and end.day > start.day and not end.yearly:  # "to 16 Oct 00:00" = to the end of 15 Oct
        end, last_minute = ExceptionBound(end.day - timedelta(days=1), None, False), MINUTES_PER_DAY
    same_day = (start.day.month, start.day.day) == (end.day.month, end.day.day) if start.yearly \
        else start.day == end.day
    if not start.yearly and end.day < start.day:
        raise ValueError("'to' is before 'from'")
    if same_day and last_minute <= first_minute:
        raise ValueError("'to' is not after 'from'; give a later time, or 'to' as a day to end with that day")
    return DatedHours(start.day, end.day, ranges, first_minute, last_minute, start.yearly)


@dataclass(frozen=True)
class OpeningHours:
    """A weekly schedule plus dated exceptions, in one time zone."""

    weekly: WeeklySchedule
    exceptions: tuple[DatedHours, ...]
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return zone_info(self.timezone)

    @property
    def is_always(self) -> bool:
        """Open around the clock, with no exception that ever closes it."""
        return self.weekly.is_always and all(
            len(e.ranges) == 1 and e.ranges[0].whole_day for e in self.exceptions
        )

    def ranges_on(self, day: date) -> DayHours:
        """The open ranges of a local day: the weekly ones, replaced where exceptions apply (the first wins)."""
        return _ranges_on(self, day)

    def exception_at(self, at: datetime) -> int | None:
        """The index of the exception whose hours apply at ``at``, if any."""
        local = at.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return next((i for i in self._by_precedence() if self.exceptions[i].covers_moment(local.date(), minute)),
                    None)

    def exceptions_on(self, day: date) -> list[int]:
        """Indexes of the exceptions that apply during some part of ``day``, strongest first."""
        return [i for i in self._by_precedence() if self.exceptions[i].covers(day)]

    def _by_precedence(self) -> list[int]:
        """Dated exceptions before yearly ones, each in the order written."""
        return sorted(range(len(self.exceptions)), key=lambda i: self.exceptions[i].yearly)

    def next_exception(self, at: datetime, *, within_days: int) -> int | None:
        """The exception in force at ``at``, else the next one to start within ``within_days`` local days."""
        current = self.exception_at(at)
        if current is not None:
            return current
        local = at.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        for offset in range(within_days + 1):
            day = local.date() + timedelta(days=offset)
            for index in self.exceptions_on(day):
                window = self.exceptions[index].window_on(day)
                if window is not None and (offset > 0 or window[1] > minute):
                    return index
        return None

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return any(r.start <= minute < r.end for r in self.ranges_on(local.date()))

    def open_intervals(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Open periods (aware datetimes, merged) that overlap [start, end)."""
        zone = self.zone
        local_start = start.astimezone(zone)
        day = local_start.date() - timedelta(days=1)
        last_day = end.astimezone(zone).date()
        intervals: list[tuple[datetime, datetime]] = []
        while day <= last_day:
            for r in self.ranges_on(day):
                opens = _local_moment(day, r.start, zone)
                closes = _local_moment(day, r.end, zone)
                if closes > start and opens < end:
                    intervals.append((max(opens, start), min(closes, end)))
            day += timedelta(days=1)
        return merge_intervals(intervals)

    def _periods_from(self, at: datetime, horizon_days: int) -> Iterator[tuple[datetime, datetime]]:
        """Open periods that end after ``at``, day by day (unmerged), up to the horizon."""
        zone = self.zone
        day = at.astimezone(zone).date() - timedelta(days=1)
        for _ in range(horizon_days + 2):
            for r in self.ranges_on(day):
                closes = _local_moment(day, r.end, zone)
                if closes > at:
                    yield _local_moment(day, r.start, zone), closes
            day += timedelta(days=1)

    def next_open(self, at: datetime, *, horizon_days: int = 60) -> datetime | None:
        """When the route next opens at or after ``at`` (``at`` itself if open)."""
        for opens, _ in self._periods_from(at, horizon_days):
            return max(opens, at)
        return None

    def closes_at(self, at: datetime, *, horizon_days: int = 60) -> datetime | None:
        """When the current open period ends (None if closed now or open past the horizon)."""
        closing: datetime | None = None
        for opens, closes in self._periods_from(at, horizon_days):
            if opens > (closing or at):
                return closing  # a gap: the open period ended at ``closing``
            closing = closes
        return None  # closed now, or open without a gap to the horizon


@lru_cache(maxsize=65536)
def _ranges_on(hours: OpeningHours, day: date) -> DayHours:
    ranges = hours.weekly.days[day.weekday()]
    # Dated exceptions win over yearly ones; of one kind, the first listed wins (validate refuses overlaps).
    weakest_first = [*reversed([e for e in hours.exceptions if e.yearly]),
                     *reversed([e for e in hours.exceptions if not e.yearly])]
    for exception in weakest_first:
        window = exception.window_on(day)
        if window is not None:
            ranges = splice_hours(ranges, exception.ranges, window)
    return ranges


def _local_moment(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The aware moment ``minute`` minutes after local midnight of ``day``."""
    if minute >= MINUTES_PER_DAY:
        return datetime.combine(day + timedelta(days=1), time(0), zone)
    return datetime.combine(day, time(minute // 60, minute % 60), zone)


def merge_intervals(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def uncovered_intervals(
    best: OpeningHours, others: Sequence[OpeningHours], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Periods in [start, end) when neither ``best`` nor any of ``others`` is open."""
    open_periods = merge_intervals(
        interval for hours in (best, *others) for interval in hours.open_intervals(start, end)
    )
    gaps: list[tuple[datetime, datetime]] = []
    cursor = start
    for opens, closes in open_periods:
        if opens > cursor:
            gaps.append((cursor, opens))
        cursor = max(cursor, closes)
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


@lru_cache(maxsize=512)
def zone_info(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def is_valid_timezone(name: str) -> bool:
    try:
        zone_info(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return True
