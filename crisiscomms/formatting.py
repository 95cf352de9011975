"""Dates, times and opening hours as a native reader of each locale expects them.

Everything goes through Babel's CLDR data, never a string patch of its output:
weekday names (``mån``, ``Δευ``), the locale's time pattern (``08:00``,
``08.00``, ``8.00``), its interval pattern (``08:00–20:00``, ``08:00 – 20:00``,
``08:00–20:00 Uhr``), the 1–24 hour field for the end of a day (``24:00``) and
relative day words (``today``, ``i morgon``). The few words Babel has no data for
("around the clock", "closed") live in :data:`PHRASES`.
"""

from __future__ import annotations

import datetime as dt
import re
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from babel import Locale
from babel.dates import (
    format_datetime,
    format_interval,
    format_skeleton,
    format_timedelta,
    get_day_names,
    get_timezone_name,
    match_skeleton,
    tokenize_pattern,
    untokenize_pattern,
)

from .hours import MINUTES_PER_DAY, DatedHours, DayHours, OpeningHours, TimeRange, zone_info

PHRASES: dict[str, dict[str, str]] = {
    "always": {"en": "24/7", "sv": "dygnet runt", "da": "døgnet rundt", "nb": "døgnet rundt",
               "nl": "dag en nacht", "el": "όλο το 24ωρο"},
    "closed": {"en": "closed", "sv": "stängt", "da": "lukket", "nb": "stengt", "nl": "gesloten",
               "el": "κλειστά"},
    # Default route names, used when a route has no label of its own.
    "phone": {"en": "Phone", "sv": "Telefon", "da": "Telefon", "nb": "Telefon", "nl": "Telefoon",
              "el": "Τηλέφωνο"},
    "sms": {"en": "SMS", "sv": "SMS", "da": "SMS", "nb": "SMS", "nl": "Sms", "el": "SMS"},
    "chat": {"en": "Live chat", "sv": "Chatt", "da": "Chat", "nb": "Chat", "nl": "Chat", "el": "Συνομιλία"},
    "portal": {"en": "Online portal", "sv": "Webbportalen", "da": "Selvbetjening", "nb": "Nettportalen",
               "nl": "Online portaal", "el": "Διαδικτυακή πύλη"},
    "email": {"en": "E-mail", "sv": "E-post", "da": "E-mail", "nb": "E-post", "nl": "E-mail", "el": "Email"},
    "social": {"en": "Social media", "sv": "Sociala medier", "da": "Sociale medier", "nb": "Sosiale medier",
               "nl": "Sociale media", "el": "Μέσα κοινωνικής δικτύωσης"},
    "web": {"en": "Website", "sv": "Webbplats", "da": "Hjemmeside", "nb": "Nettsted", "nl": "Website",
            "el": "Ιστότοπος"},
}


def phrase(key: str, locale: str) -> str:
    table = PHRASES[key]
    return table.get(_language(locale), table["en"])


def _language(locale: str) -> str:
    return locale.split("_", 1)[0]


@lru_cache(maxsize=64)
def _day_names(locale: str) -> tuple[str, ...]:
    names = get_day_names("abbreviated", context="format", locale=locale)
    return tuple(str(names[i]) for i in range(7))


@lru_cache(maxsize=256)
def _pattern(skeleton: str, locale: str, *, hour_24_as_24: bool = False) -> str:
    """The locale's CLDR pattern for ``skeleton``; ``hour_24_as_24`` swaps the hour field H (0–23)
    for k (1–24), so that midnight at the end of a day reads ``24:00`` (``24.00`` in Finnish)."""
    skeletons = Locale.parse(locale).datetime_skeletons
    pattern = str(skeletons[match_skeleton(skeleton, skeletons) or skeleton].pattern)
    return _hour_1_to_24(pattern) if hour_24_as_24 else pattern


def _hour_1_to_24(pattern: str) -> str:
    tokens: list[tuple[str, Any]] = [
        ("field", ("k", value[1])) if kind == "field" and value[0] == "H" else (kind, value)
        for kind, value in tokenize_pattern(pattern)]
    return str(untokenize_pattern(tokens))


def _format_pattern(pattern: str, moment: datetime, locale: str) -> str:
    return str(format_datetime(moment.replace(tzinfo=None), pattern, locale=locale))


def _moment_of(minutes: int) -> tuple[datetime, bool]:
    """A sample moment for a minute of the day, and whether it is the day's end (24:00)."""
    if minutes >= MINUTES_PER_DAY:
        return datetime.combine(_SAMPLE_DAY, time(0)), True
    return datetime.combine(_SAMPLE_DAY, time(minutes // 60, minutes % 60)), False


_SAMPLE_DAY = datetime(2000, 1, 3).date()


def format_clock(minutes: int, locale: str) -> str:
    """``510`` → ``08:30`` (``08.30`` in Danish, ``8.30`` in Finnish); ``1440`` → ``24:00``."""
    moment, end_of_day = _moment_of(minutes)
    return _format_pattern(_pattern("Hm", locale, hour_24_as_24=end_of_day), moment, locale)


@lru_cache(maxsize=4096)
def format_time_range(span: TimeRange, locale: str) -> str:
    """``08:00–20:00``, ``08:00 – 20:00``, ``08:00–20:00 Uhr``: the locale's CLDR interval pattern."""
    start, _ = _moment_of(span.start)
    end, end_of_day = _moment_of(span.end)
    first, second = _interval_patterns(locale, "m" if span.start // 60 == span.end // 60 else "H")
    if end_of_day:
        second = _hour_1_to_24(second)
    return _format_pattern(first, start, locale) + _format_pattern(second, end, locale)


@lru_cache(maxsize=128)
def _interval_patterns(locale: str, difference: str) -> tuple[str, str]:
    """The two halves of the locale's ``Hm`` interval pattern for a greatest ``difference`` (H or m)."""
    formats = Locale.parse(locale).interval_formats
    skeleton = match_skeleton("Hm", formats) or "Hm"
    options = formats.get(skeleton, {})
    halves = options.get(difference) or options.get("H")
    if not halves:
        clock = _pattern("Hm", locale)
        return f"{clock}'–'", clock
    return str(halves[0]), str(halves[1])


def format_day_hours(ranges: DayHours, locale: str) -> str:
    if not ranges:
        return phrase("closed", locale)
    if len(ranges) == 1 and ranges[0].whole_day:
        return phrase("always", locale)
    return ", ".join(format_time_range(r, locale) for r in ranges)


def format_weekly_hours(hours: OpeningHours, locale: str) -> str:
    """``mån–fre 08:00–20:00, lör 10:00–16:00`` (closed days left out), or ``dygnet runt``."""
    if hours.weekly.is_always:
        return phrase("always", locale)
    names = _day_names(locale)
    parts = []
    for first, last, ranges in _runs_of_equal_days(hours.weekly.days):
        if not ranges:
            continue
        days = names[first] if first == last else f"{names[first]}–{names[last]}"
        parts.append(f"{days} {format_day_hours(ranges, locale)}")
    return ", ".join(parts) or phrase("closed", locale)


def _runs_of_equal_days(days: tuple[DayHours, ...]) -> list[tuple[int, int, DayHours]]:
    runs: list[tuple[int, int, DayHours]] = []
    for index, ranges in enumerate(days):
        if runs and runs[-1][2] == ranges:
            runs[-1] = (runs[-1][0], index, ranges)
        else:
            runs.append((index, index, ranges))
    return runs


def format_weekday_time(moment: datetime, locale: str, timezone: str) -> str:
    """``lör 10:00`` (``lør. kl. 10:00``, ``Sa., 10:00``) in ``timezone``: the locale's ``EHm`` pattern."""
    local = moment.astimezone(zone_info(timezone))
    return _format_pattern(_pattern("EHm", locale), local, locale)


def format_when(moment: datetime, locale: str, timezone: str, now: datetime) -> str:
    """When something happens, for a reader at ``now``: ``today at 06:00``, ``tomorrow at 18:00``,
    ``Sat 10:00`` within the week, else ``Sat, Oct 17, 10:00``. Day words are CLDR's."""
    zone = zone_info(timezone)
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    day, minute = local.date(), local.hour * 60 + local.minute
    if minute == 0 and day > today:  # midnight ends the day before: "Sun 24:00", not "Mon 00:00"
        day, minute = day - timedelta(days=1), MINUTES_PER_DAY
    days = (day - today).days
    word = _relative_day(days, locale)
    if word is not None:
        return _combine(word, format_clock(minute, locale), locale, relative=True)
    shown = datetime.combine(day, time(0)) if minute == MINUTES_PER_DAY else local
    if 0 < days < 7:
        return _format_pattern(_pattern("EHm", locale, hour_24_as_24=minute == MINUTES_PER_DAY), shown, locale)
    return _combine(_format_pattern(_pattern("MMMEd", locale), shown, locale), format_clock(minute, locale), locale)


def format_until(moment: datetime, locale: str, timezone: str, now: datetime) -> str:
    """A closing time: ``20:00`` today, ``24:00`` at the end of today, else as :func:`format_when`."""
    zone = zone_info(timezone)
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    if local.date() == today:
        return format_clock(local.hour * 60 + local.minute, locale)
    if local.hour == local.minute == 0 and (local.date() - today).days == 1:
        return format_clock(MINUTES_PER_DAY, locale)
    return format_when(moment, locale, timezone, now)


def _relative_day(days: int, locale: str) -> str | None:
    """CLDR's word for today (0) or tomorrow (1) in ``locale``, if it has one."""
    if days not in (0, 1):
        return None
    fields = Locale.parse(locale)._data["date_fields"]  # Babel's CLDR data; no public accessor exists
    for width in ("day", "day-short"):
        relative = fields.get(width, {}).get("relative", {})
        if days in relative:
            return str(relative[days])
    return None


def _combine(day: str, clock: str, locale: str, *, relative: bool = False) -> str:
    """Join a day and a time with the locale's CLDR date-time pattern (``{1} 'at' {0}``, ``{1} {0}``)."""
    data = Locale.parse(locale)
    pattern = None
    if relative:
        relative_formats = data._data.get("datetime_formats_relative", {})
        pattern = relative_formats.get("long") or relative_formats.get("medium")
    pattern = str(pattern or data.datetime_formats["medium"])
    return _literal(pattern).replace("{1}", day).replace("{0}", clock)


def _literal(pattern: str) -> str:
    """A combining pattern's quoted text unquoted: ``{1} 'kl'. {0}`` → ``{1} kl. {0}``."""
    return re.sub(r"'([^']*)'", lambda m: m.group(1) or "'", pattern)


def format_exception_period(exception: DatedHours, locale: str, year: int) -> str:
    """``Oct 14, 06:00 – Oct 15, 18:00``, ``Dec 24 – 26``, ``Dec 24``: when an exception applies (a yearly
    one in ``year``), with the locale's own day-and-month, interval and interval-fallback patterns."""
    def end(day: date, minute: int, *, whole: bool) -> str:
        shown = datetime.combine(_in_year(day, year) if exception.yearly else day, time(0))
        text = _format_pattern(_pattern("MMMd", locale), shown, locale)
        return text if whole else _combine(text, format_clock(minute, locale), locale)

    if exception.whole_days:
        first_day, last_day = (_in_year(d, year) if exception.yearly else d for d in (exception.first, exception.last))
        if last_day < first_day:
            last_day = _in_year(last_day, year + 1)  # a yearly period over New Year
        if first_day == last_day:
            return _format_pattern(_pattern("MMMd", locale), datetime.combine(first_day, time(0)), locale)
        return str(format_interval(first_day, last_day, "MMMd", locale=locale))
    first = end(exception.first, exception.first_minute, whole=exception.first_minute == 0)
    last = end(exception.last, exception.last_minute, whole=exception.last_minute == MINUTES_PER_DAY)
    fallback = str(Locale.parse(locale).interval_formats.get(None) or "{0}–{1}")  # CLDR's intervalFormatFallback
    return fallback.replace("{0}", first).replace("{1}", last)


def format_wait(wait: timedelta, locale: str) -> str:
    """``25 minutes``, ``1 hour``, ``25 minuter``: Babel's CLDR unit words, in whole minutes up to two hours."""
    minutes = max(1, round(wait.total_seconds() / 60))
    if minutes < 120:
        return str(format_timedelta(timedelta(minutes=minutes), threshold=1000, granularity="minute",
                                    format="long", locale=locale))
    return str(format_timedelta(timedelta(minutes=minutes), threshold=1000, granularity="hour", format="long",
                                locale=locale))


def _in_year(day: date, year: int) -> date:
    """A yearly day in ``year`` (29 Feb becomes 28 Feb outside leap years)."""
    try:
        return day.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def format_datetime_for(moment: datetime, locale: str, timezone: str) -> str:
    """``6 dec. 2026 20:00`` in ``timezone``: date and time joined by the locale's CLDR pattern."""
    local = moment.astimezone(zone_info(timezone))
    return _combine(format_date_for(local, locale, timezone), format_time_for(local, locale, timezone), locale)


def format_date_for(moment: datetime, locale: str, timezone: str) -> str:
    return str(format_skeleton("yMMMd", moment.astimezone(zone_info(timezone)), locale=locale))


def format_time_for(moment: datetime, locale: str, timezone: str) -> str:
    local = moment.astimezone(zone_info(timezone))
    return format_clock(local.hour * 60 + local.minute, locale)


@lru_cache(maxsize=256)
def timezone_label(timezone: str, locale: str) -> str:
    """A short name for ``timezone`` a reader of ``locale`` understands (``CET``, ``Sweden Time``)."""
    return str(get_timezone_name(zone_info(timezone), "short", locale=locale))


def describe_moment(moment: dt.datetime, timezone: str, locale: str = "en") -> str:
    """``Fri 16 Oct 08:00 Oslo Time``: a moment in ``timezone``, in words of ``locale`` (CLDR names)."""
    from babel.dates import format_datetime

    from .hours import zone_info

    zone = zone_info(timezone)
    text = str(format_datetime(moment.astimezone(zone), "EEE d MMM HH:mm", tzinfo=zone, locale=locale))
    return f"{text} {zone_words(timezone, locale)}"


def describe_span(first: dt.datetime, last: dt.datetime, timezone: str, locale: str = "en") -> str:
    """``at Fri 16 Oct 08:00 Oslo Time``, or ``between Fri 16 Oct 07:00 and 08:00 Oslo Time``."""
    from .hours import zone_info

    zone = zone_info(timezone)
    start, end = first.astimezone(zone), last.astimezone(zone)
    if start == end:
        return f"at {describe_moment(start, timezone, locale)}"
    if start.date() == end.date():
        return f"between {describe_moment(start, timezone, locale).removesuffix(' ' + zone_words(timezone, locale))}" \
               f" and {end:%H:%M} {zone_words(timezone, locale)}"
    return f"between {describe_moment(start, timezone, locale)} and {describe_moment(end, timezone, locale)}"


def zone_words(timezone: str, locale: str = "en") -> str:
    """``Oslo Time`` (CLDR's region format with the zone's city); ``UTC`` for UTC."""
    from babel import Locale
    from babel.dates import get_timezone_location

    from .hours import zone_info

    if timezone.upper() in ("UTC", "ETC/UTC", "GMT", "ETC/GMT", "Z"):
        return "UTC"
    city = str(get_timezone_location(zone_info(timezone), locale=locale, return_city=True))
    return str(Locale.parse(locale).zone_formats["region"] % city)
