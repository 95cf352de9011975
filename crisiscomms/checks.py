"""Whole-playbook checks: references that must resolve, and the ways a crisis
plan goes wrong (nobody to talk to, a need left uncovered at night, a
critical notice with no line open around the clock).

Each check yields :class:`Diagnostic` values placed at the YAML node that
needs the fix; none stops the others.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

from .diagnostics import Diagnostic
from .hours import DAY_NAMES, MINUTES_PER_DAY, DatedHours, OpeningHours, uncovered_intervals, zone_info
from .locales import fallback_chain
from .playbook import Playbook
from .speech import check_voice_languages
from .yamlsource import PathKey, SourceMap

# A week without a DST change, used to compare weekly schedules.
REFERENCE_MONDAY = date(2026, 1, 5)
YEARLY_SCAN_START = date(2000, 1, 1)  # yearly exceptions keep month and day in the leap year 2000


def check_playbook(playbook: Playbook, source: SourceMap, base_dir: Path) -> list[Diagnostic]:
    checks = (
        _check_locales, _check_locale_fallbacks, _check_localized_texts, _check_references, _check_providers,
        _check_receipts, _check_variable_names, _check_overlapping_exceptions, _check_segment_budgets,
        _check_live_person, _check_coverage, _check_critical_notices, _check_files, _check_exercise,
    )
    found: list[Diagnostic] = []
    for check in checks:
        found.extend(check(playbook, source, base_dir))
    return found


def _error(source: SourceMap, location: PathKey, message: str, *, key: bool = False) -> Diagnostic:
    return source.diagnostic(location, message, key=key)


def _warning(source: SourceMap, location: PathKey, message: str) -> Diagnostic:
    return source.diagnostic(location, message, severity="warning")


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (defined: {', '.join(known)})" if known else ""


def _check_locales(playbook: Playbook, source: SourceMap, _: Path) -> Iterator[Diagnostic]:
    organisation = playbook.organisation
    if organisation.default_locale not in organisation.locales:
        yield _error(source, ("organisation", "default_locale"),
                     f"default_locale '{organisation.default_locale}' is not in locales; add it to 'locales'")
    seen: set[str] = set()
    for index, code in enumerate(organisation.locales):
        if code in seen:
            yield _error(source, ("organisation", "locales", index), f"locale '{code}' is listed twice")
        seen.add(code)


def _check_locale_fallbacks(playbook: Playbook, source: SourceMap, _: Path) -> Iterator[Diagnostic]:
    """Each declared fallback leads to a written locale, without a loop; one not written is noted."""
    organisation = playbook.organisation
    fallbacks = organisation.locale_fallbacks
    for code, target in fallbacks.items():
        place = ("organisation", "locale_fallbacks", code)
        if target not in organisation.locales and target not in fallbacks:
            yield _error(source, place, f"fallback '{target}' for '{code}' is not one of locales "
                                        f"({', '.join(organisation.locales)}); readers would get nothing written")
            continue
        chain = [code]
        while chain[-1] in fallbacks and fallbacks[chain[-1]] not in chain:
            chain.append(fallbacks[chain[-1]])
        if chain[-1] in fallbacks:
            yield _error(source, place, f"the fallbacks of '{code}' go round in a circle "
                                        f"({' → '.join([*chain, fallbacks[chain[-1]]])}); end the chain at a "
                                        "written locale")
        elif code not in organisation.locales:
            text = organisation.text_chain(code)[0]
            yield source.diagnostic(place, f"{code} readers get the {text} text (declared here)", severity="note")


def _localized_fields(playbook: Playbook) -> Iterator[tuple[PathKey, object]]:
    for rid, route in playbook.routes.items():
        if route.label is not None:
            yield ("routes", rid, "label"), route.label
        for index, exception in enumerate(route.exceptions):
            if exception.note is not None:
                yield ("routes", rid, "exceptions", index, "note"), exception.note
    for iid, inquiry in playbook.inquiries.items():
        yield ("inquiries", iid, "label"), inquiry.label
    for index, link in enumerate(playbook.links):
        yield ("links", index, "title"), link.title
    for nid, notice in playbook.notices.items():
        for name, value in notice.variables.items():
            if isinstance(value, dict):
                yield ("notices", nid, "variables", name), value


def _check_localized_texts(playbook: Playbook, source: SourceMap, _: Path) -> Iterator[Diagnostic]:
    locales = playbook.organisation.locales
    default = playbook.organisation.default_locale
    if default not in locales:
        return  # reported once by _check_locales
    for location, value in _localized_fields(playbook):
        if not isinstance(value, dict):
            continue
        for code in value:
            if code not in locales:
                yield _error(source, (*location, code),
                             f"'{code}' is not one of the playbook's locales ({', '.join(locales)})", key=True)
        if default not in value:
            yield _error(source, location, f"no text for the default locale '{default}'; add '{default}: ...'")
        missing = [code for code in locales if code not in value and code != default
                   and not _declared_text(playbook, code, value)]
        if missing:
            yield _warning(source, location,
                           f"no text for {', '.join(missing)}; those readers will see the '{default}' text")


def _declared_text(playbook: Playbook, code: str, value: dict[str, str]) -> bool:
    """True when ``organisation.locale_fallbacks`` leads ``code`` readers to a text ``value`` has."""
    organisation = playbook.organisation
    declared = fallback_chain(code, organisation.locale_fallbacks, code)[1:]
    return any(other in value for other in declared)


def _check_references(playbook: Playbook, source: SourceMap, _: Path) -> Iterator[Diagnostic]:
    routes = playbook.routes
    for iid, inquiry in playbook.inquiries.items():
        if inquiry.best not in routes:
            yield _error(source, ("inquiries", iid, "best"),
                         f"route '{inquiry.best}' is not defined under 'routes'{_did_you_mean(inquiry.best, routes)}")
        for index, fallback in enumerate(inquiry.fallbacks):
            if fallback not in routes:
                yield _error(source, ("inquiries", iid, "fallbacks", index),
                             f"route '{fallback}' is not defined under 'routes'{_did_you_mean(fallback, routes)}")
            elif fallback == inquiry.best:
                yield _error(source, ("inquiries", iid, "fallbacks", index),
                             f"'{fallback}' is already the best route; a fallback must be another route")
    for nid, notice in playbook.notices.items():
        for index, name in enumerate(notice.inquiries or []):
            if name not in playbook.inquiries:
                yield _error(source, ("notices", nid, "inquiries", index),
                             f"inquiry '{name}' is not defined under 'inquiries'"
                             f"{_did_you_mean(name, playbook.inquiries)}")
        if notice.clears is not None and (notice.clears not in playbook.notices or notice.clears == nid):
            what = "itself" if notice.clears == nid else f"'{notice.clears}', which is not a notice"
            yield _error(source, ("notices", nid, "clears"),
                         f"notice '{nid}' clears {what}{_did_you_mean(notice.clears, playbook.notices)}")


def _check_providers(playbook: Playbook, source: SourceMap, _: Path) -> Iterator[Diagnostic]:
    for nid, notice in playbook.notices.items():
        for index, channel in enumerate(notice.channels):
            if getattr(playbook.providers, channel) is None:
                yield _error(source, ("notices", nid, "channels", index),
                             f"notice '{nid}' uses {channel}, but 'providers' has no '{channel}' section")
            elif channel == "cap" and playbook.providers.cap is not None and not playbook.providers.cap.path:
                yield _error(source, ("providers", "cap"),
                             f"notice '{nid}' uses cap, but 'providers: cap' has no 'path' to write the alert to")
    yield from check_voice_languages(playbook, source)


def _check_receipts(playbook: Playbook, source: SourceMap, _: Path) -> Iterator[Diagnostic]:
    """``providers.sms.receipts: true`` without a ``status_callback``: Twilio would report nothing."""
    sms = playbook.providers.sms
    if sms is None or not sms.receipts or sms.status_callback is not None:
        return
    notices = [nid for nid, notice in playbook.notices.items() if "sms" in notice.channels]
    if notices:
        yield _warning(source, ("providers", "sms", "receipts"),
                       f"receipts are expected but no status_callback is set, so Twilio will not report whether "
                       f"the SMS of {', '.join(repr(n) for n in notices)} arrived: set providers.sms.status_callback "
                       f"to the /twilio/status address of 'crisiscomms receipts serve' (or pass send "
                       f"--status-callback), or fetch statuses with 'crisiscomms receipts pull'")


_DICT_ATTRIBUTES = frozenset(name for name in dir(dict) if not name.startswith("_"))


def _check_variable_names(playbook: Playbook, source: SourceMap, _: Path) -> Iterator[Diagnostic]:
    for nid, notice in playbook.notices.items():
        for name in notice.variables:
            if name in _DICT_ATTRIBUTES:
                yield _error(source, ("notices", nid, "variables", name),
                             f"variable name '{name}' clashes with a built-in name in templates "
                             f"(vars.{name} would not be your text); rename it", key=True)


def _check_overlapping_exceptions(playbook: Playbook, source: SourceMap, _: Path) -> Iterator[Diagnostic]:
    for rid in playbook.routes:
        exceptions = playbook.route_hours[rid].exceptions
        for index, exception in enumerate(exceptions):
            for other in range(index):
                if exceptions_overlap(exception, exceptions[other]):
                    yield _error(source, ("routes", rid, "exceptions", index),
                                 f"this exception overlaps exception {other + 1} of route '{rid}' "
                                 f"({describe_exception(exceptions[other])}); give each moment one set of hours")
                    break


def _check_segment_budgets(playbook: Playbook, source: SourceMap, _: Path) -> Iterator[Diagnostic]:
    locales = playbook.organisation.locales
    for nid, notice in playbook.notices.items():
        for code in notice.sms_segments_by_locale:
            if code not in locales:
                yield _error(source, ("notices", nid, "sms_segments_by_locale", code),
                             f"'{code}' is not one of the organisation's locales ({', '.join(locales)})", key=True)


def exceptions_overlap(one: DatedHours, other: DatedHours) -> bool:
    """Two exceptions of the same kind (dated, or yearly) that apply at the same moment.

    A dated exception overlapping a yearly one is fine: the dated one wins (a storm over Christmas)."""
    if one.yearly != other.yearly:
        return False
    if one.yearly:
        days: Iterable[date] = one.days_between(YEARLY_SCAN_START, YEARLY_SCAN_START + timedelta(days=365))
    else:
        days = one.days_between(max(one.first, other.first), min(one.last, other.last))
    for day in days:
        mine, theirs = one.window_on(day), other.window_on(day)
        if mine is not None and theirs is not None and mine[0] < theirs[1] and theirs[0] < mine[1]:
            return True
    return False


def describe_exception(exception: DatedHours) -> str:
    """``2026-10-14 06:00–2026-10-15 18:00``, ``2026-12-24``, ``12-24–12-26 every year``."""
    def end(day: date, minute: int, *, first: bool) -> str:
        text = f"{day.month:02d}-{day.day:02d}" if exception.yearly else day.isoformat()
        whole = minute == 0 if first else minute == MINUTES_PER_DAY
        return text if whole else f"{text} {minute // 60:02d}:{minute % 60:02d}"

    start = end(exception.first, exception.first_minute, first=True)
    finish = end(exception.last, exception.last_minute, first=False)
    text = start if start == finish else f"{start}–{finish}"
    return f"{text} every year" if exception.yearly else text


def _check_live_person(playbook: Playbook, source: SourceMap, _: Path) -> Iterator[Diagnostic]:
    if not any(route.live_person for route in playbook.routes.values()):
        yield _error(source, ("routes",),
                     "no route has 'live_person: true'; in a crisis there must always be a way to reach "
                     "a person: mark the phone line or chat where people answer")


def _known_hours(playbook: Playbook, route_ids: Iterable[str]) -> list[OpeningHours]:
    return [playbook.route_hours[r] for r in route_ids if r in playbook.route_hours]


def _check_coverage(playbook: Playbook, source: SourceMap, _: Path) -> Iterator[Diagnostic]:
    zone = zone_info(playbook.organisation.timezone)
    start = datetime.combine(REFERENCE_MONDAY, datetime.min.time(), zone)
    for iid, inquiry in playbook.inquiries.items():
        if inquiry.best not in playbook.route_hours:
            continue
        best = playbook.route_hours[inquiry.best]
        if best.is_always:
            continue
        fallbacks = _known_hours(playbook, inquiry.fallbacks)
        gaps = _wrap_week(uncovered_intervals(best, fallbacks, start, start + timedelta(days=7)))
        if gaps:
            advice = ("add a fallback route that is open then" if not inquiry.fallbacks
                      else "add or change a fallback so that one is open then")
            yield _warning(source, ("inquiries", iid),
                           f"'{iid}': '{inquiry.best}' can be closed and no fallback is open "
                           f"{describe_weekly_gaps(gaps, playbook.organisation.timezone)}; {advice}")
        yield from _exception_gaps(playbook, source, iid, best, fallbacks)


def _exception_gaps(
    playbook: Playbook, source: SourceMap, iid: str, best: OpeningHours, fallbacks: list[OpeningHours]
) -> Iterator[Diagnostic]:
    """Days when exceptions leave nobody open for ``iid`` at times the weekly hours would have covered:
    whole days (a holiday) and parts of days (a timed closure)."""
    zone = zone_info(playbook.organisation.timezone)
    today = date.today()
    special_days = sorted({day for hours in (best, *fallbacks) for e in hours.exceptions
                           for day in _exception_days(e, today)})
    weekly = [OpeningHours(h.weekly, (), h.timezone) for h in (best, *fallbacks)]
    closed_days: list[date] = []
    partly: list[tuple[datetime, datetime]] = []
    for day in special_days[:366]:
        midnight = datetime.combine(day, datetime.min.time(), zone)
        next_midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
        usual = uncovered_intervals(weekly[0], weekly[1:], midnight, next_midnight)
        new = [gap for gap in uncovered_intervals(best, fallbacks, midnight, next_midnight)
               if not any(a <= gap[0] and gap[1] <= b for a, b in usual)]
        if new == [(midnight, next_midnight)]:
            closed_days.append(day)
        else:
            partly.extend(new)
    if closed_days:
        days = ", ".join(d.isoformat() for d in closed_days[:5]) + (" …" if len(closed_days) > 5 else "")
        yield _warning(source, ("inquiries", iid),
                       f"'{iid}': no route for it is open at all on {days} (holiday exceptions); "
                       "add a fallback that stays open")
    if partly:
        shown = ", ".join(_moment_range(a, b) for a, b in partly[:5]) + (" …" if len(partly) > 5 else "")
        yield _warning(source, ("inquiries", iid),
                       f"'{iid}': exceptions leave no route for it open {shown} "
                       f"({playbook.organisation.timezone}); add a fallback that stays open then")


def _moment_range(start: datetime, end: datetime) -> str:
    """``2026-10-14 12:00–15:00``; an end at midnight is ``24:00`` of the day before."""
    finish = "24:00" if end.hour == end.minute == 0 else f"{end:%H:%M}"
    return f"{start:%Y-%m-%d %H:%M}–{finish}"


def _exception_days(exception: DatedHours, today: date) -> Iterator[date]:
    """The days a dated exception touches, or a yearly one's in the coming twelve months."""
    if exception.yearly:
        return exception.days_between(today, today + timedelta(days=365))
    return exception.days_between(exception.first, exception.last)


def _wrap_week(gaps: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Join a gap that runs past Sunday midnight with the one that starts the week."""
    if len(gaps) > 1 and gaps[0][0].weekday() == 0 and gaps[0][0].hour == gaps[0][0].minute == 0 \
            and gaps[-1][1] - gaps[0][0] == timedelta(days=7):
        return [*gaps[1:-1], (gaps[-1][0], gaps[0][1] + timedelta(days=7))]
    return gaps


def describe_weekly_gaps(gaps: list[tuple[datetime, datetime]], timezone: str) -> str:
    """``[(Sat 16:00, Mon 08:00)]`` → ``"sat 16:00–mon 08:00 (Europe/Stockholm)"``."""
    parts = [f"{_weekday_clock(a)}–{_weekday_clock(b, end=True)}" for a, b in gaps[:6]]
    more = f" and {len(gaps) - 6} more" if len(gaps) > 6 else ""
    return f"{', '.join(parts)}{more} ({timezone})"


def _weekday_clock(moment: datetime, *, end: bool = False) -> str:
    if end and moment.hour == 0 and moment.minute == 0:
        previous = moment - timedelta(days=1)
        return f"{DAY_NAMES[previous.weekday()]} 24:00"
    return f"{DAY_NAMES[moment.weekday()]} {moment:%H:%M}"


def _check_critical_notices(playbook: Playbook, source: SourceMap, _: Path) -> Iterator[Diagnostic]:
    """A critical notice must show a route a person answers around the clock: one error per such notice."""
    for nid, notice in playbook.notices.items():
        if notice.severity != "critical":
            continue
        shown_routes = sorted({
            route
            for iid in playbook.notice_inquiries(nid) if iid in playbook.inquiries
            for route in (playbook.inquiries[iid].best, *playbook.inquiries[iid].fallbacks)
        })
        if not any(_answered_around_the_clock(playbook, r) for r in shown_routes):
            yield _error(source, ("notices", nid, "severity"), _no_person_around_the_clock(playbook, nid, shown_routes))


def _answered_around_the_clock(playbook: Playbook, route_id: str) -> bool:
    route, hours = playbook.routes.get(route_id), playbook.route_hours.get(route_id)
    return route is not None and hours is not None and route.live_person and hours.is_always


def _no_person_around_the_clock(playbook: Playbook, nid: str, shown_routes: list[str]) -> str:
    always = [r for r in shown_routes if r in playbook.route_hours and playbook.route_hours[r].is_always]
    people = [r for r in shown_routes if r in playbook.routes and playbook.routes[r].live_person]
    found = []
    if always:
        found.append(f"open 24/7 but nobody answers: {', '.join(always)}")
    if people:
        found.append(f"a person answers, not 24/7: {', '.join(people)}")
    shown = f" ({'; '.join(found)})" if found else ""
    return (f"critical notice '{nid}' shows no route that a person answers 24/7{shown}; give one of its "
            "inquiries a route with 'live_person: true' and 'hours: always' (and no closing exceptions)")


def _check_exercise(playbook: Playbook, source: SourceMap, base_dir: Path) -> Iterator[Diagnostic]:
    exercise = playbook.exercise
    if exercise is None:
        return
    if exercise.file is not None and not (base_dir / exercise.file).is_file():
        yield _error(source, ("exercise", "file"), f"exercise file '{exercise.file}' does not exist")
    banner = playbook.providers.banner
    if exercise.banner_path is not None and banner is not None \
            and (base_dir / exercise.banner_path).resolve() == (base_dir / banner.path).resolve():
        yield _error(source, ("exercise", "banner_path"),
                     "the exercise banner_path is the production banner path; an exercise must never replace "
                     "the real banner")
    uses_banner = any("banner" in notice.channels for notice in playbook.notices.values())
    if exercise.banner_path is None and uses_banner:
        yield _warning(source, ("exercise",), "no exercise banner_path: exercises will not write a banner")
    cap = playbook.providers.cap
    if exercise.cap_path is not None and cap is not None and cap.path is not None \
            and (base_dir / exercise.cap_path).resolve() == (base_dir / cap.path).resolve():
        yield _error(source, ("exercise", "cap_path"),
                     "the exercise cap_path is the production CAP path (providers.cap.path); an exercise must "
                     "never replace the real alert")
    uses_cap = any("cap" in notice.channels for notice in playbook.notices.values())
    if exercise.cap_path is None and uses_cap:
        yield _warning(source, ("exercise",), "no exercise cap_path: exercises will not write a CAP alert")


def _check_files(playbook: Playbook, source: SourceMap, base_dir: Path) -> Iterator[Diagnostic]:
    templates = base_dir / playbook.templates
    if not templates.is_dir():
        yield _error(source, ("templates",) if "templates" in _top_keys(source) else (),
                     f"template folder '{playbook.templates}' does not exist (looked for {_relative(templates)})")
    for index, name in enumerate(playbook.suppression):
        if not (base_dir / name).is_file():
            yield _error(source, ("suppression", index), f"suppression file '{name}' does not exist")


def _relative(path: Path) -> str:
    return os.path.relpath(path.resolve(), Path.cwd())


def _top_keys(source: SourceMap) -> set[str]:
    return {str(k[0]) for k in source.keys if len(k) == 1}
