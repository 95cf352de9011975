"""Dates, times and opening hours as a native reader of each locale expects them.

Everything goes through Babel: weekday names (``mån``, ``Δευ``), the locale's
time pattern (``08:00``, ``08.00``) and its interval style
(``08:00–20:00``, ``08:00 – 20:00``). The few words Babel has no data for
("around the clock", "closed") live in :data:`PHRASES`.
"""

from __future__ import annotations

from datetime import datetime, time
from functools import lru_cache

from babel.dates import format_interval, format_skeleton, get_day_names, get_timezone_name

from .hours import MINUTES_PER_DAY, DayHours, OpeningHours, TimeRange, zone_info

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


def format_clock(minutes: int, locale: str) -> str:
    """``510`` → ``08:30`` (``08.30`` in Danish); ``1440`` → ``24:00``."""
    if minutes >= MINUTES_PER_DAY:
        return _format_time(time(0), locale).replace("00", "24", 1)
    return _format_time(time(minutes // 60, minutes % 60), locale)


@lru_cache(maxsize=4096)
def _format_time(value: time, locale: str) -> str:
    return str(format_skeleton("Hm", datetime.combine(datetime.min.date(), value), locale=locale))


@lru_cache(maxsize=4096)
def format_time_range(span: TimeRange, locale: str) -> str:
    if span.end < MINUTES_PER_DAY:
        start = time(span.start // 60, span.start % 60)
        end = time(span.end // 60, span.end % 60)
        return str(format_interval(start, end, "Hm", locale=locale))
    return f"{format_clock(span.start, locale)}{_interval_separator(locale)}{format_clock(span.end, locale)}"


@lru_cache(maxsize=64)
def _interval_separator(locale: str) -> str:
    """The locale's own separator between two times (``–`` or `` – ``)."""
    sample = str(format_interval(time(8), time(20), "Hm", locale=locale))
    return sample.replace(_format_time(time(8), locale), "", 1).replace(_format_time(time(20), locale), "", 1)


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
    """``lör 10:00`` in ``timezone``."""
    local = moment.astimezone(zone_info(timezone))
    return f"{_day_names(locale)[local.weekday()]} {format_clock(local.hour * 60 + local.minute, locale)}"


def format_datetime_for(moment: datetime, locale: str, timezone: str) -> str:
    """``28 nov. 2026 10:00`` in ``timezone``."""
    local = moment.astimezone(zone_info(timezone))
    return f"{format_skeleton('yMMMd', local, locale=locale)} {format_clock(local.hour * 60 + local.minute, locale)}"


def format_date_for(moment: datetime, locale: str, timezone: str) -> str:
    return str(format_skeleton("yMMMd", moment.astimezone(zone_info(timezone)), locale=locale))


def format_time_for(moment: datetime, locale: str, timezone: str) -> str:
    local = moment.astimezone(zone_info(timezone))
    return format_clock(local.hour * 60 + local.minute, locale)


@lru_cache(maxsize=256)
def timezone_label(timezone: str, locale: str) -> str:
    """A short name for ``timezone`` a reader of ``locale`` understands (``CET``, ``Sweden Time``)."""
    return str(get_timezone_name(zone_info(timezone), "short", locale=locale))
