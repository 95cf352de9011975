"""Durations a comms person writes: ``36h``, ``90m``, ``2d``, ``1d12h``, or ISO 8601 ``PT36H``, ``P2D``."""

from __future__ import annotations

import datetime as dt
import re

_SHORT = re.compile(r"^(?:(?P<days>\d+)\s*d)?\s*(?:(?P<hours>\d+)\s*h)?\s*(?:(?P<minutes>\d+)\s*m(?:in)?)?$",
                    re.IGNORECASE)
_ISO = re.compile(r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
                  r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$", re.IGNORECASE)
MAX_DURATION = dt.timedelta(days=366)
# The same forms for JSON Schema (ECMA-262 regex, no flags), for editors.
DURATION_PATTERN = (r"^(?:\d+ ?[dD])? ?(?:\d+ ?[hH])? ?(?:\d+ ?(?:m|M|min))?$"
                    r"|^[pP](?:\d+[wW])?(?:\d+[dD])?(?:[tT](?:\d+[hH])?(?:\d+[mM])?(?:\d+[sS])?)?$")


def looks_like_duration(text: str) -> bool:
    """True for text meant as a duration (``36h``, ``PT36H``), not a date."""
    stripped = text.strip()
    return bool(stripped) and (bool(_SHORT.match(stripped)) or stripped[:1] in "Pp")


def parse_duration(text: str) -> dt.timedelta:
    """``"36h"`` → 36 hours. Raises ValueError that says how to write one."""
    stripped = text.strip()
    match = _SHORT.match(stripped) or _ISO.match(stripped)
    if not stripped or match is None or not any(match.groupdict().values()):
        raise ValueError(f"'{text}' is not a duration; write 36h, 90m, 2d, 1d12h or ISO 8601 like PT36H")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    duration = dt.timedelta(weeks=parts.get("weeks", 0), days=parts.get("days", 0), hours=parts.get("hours", 0),
                            minutes=parts.get("minutes", 0), seconds=parts.get("seconds", 0))
    if not dt.timedelta(0) < duration <= MAX_DURATION:
        raise ValueError(f"'{text}' must be more than nothing and at most {MAX_DURATION.days} days")
    return duration


def parse_wait_options(values: tuple[str, ...], route_ids: list[str]) -> tuple[tuple[str, dt.timedelta], ...]:
    """``("outage-line=25m",)`` → ``(("outage-line", 25 min),)``; a bad value is a usage error naming it."""
    from .errors import UsageError

    waits: dict[str, dt.timedelta] = {}
    for value in values:
        route, sep, duration = value.partition("=")
        route = route.strip()
        if not sep or not route:
            raise UsageError(f"--wait '{value}': write ROUTE=DURATION, e.g. --wait outage-line=25m")
        if route not in route_ids:
            raise UsageError(f"--wait '{value}': the playbook has no route '{route}' (routes: {', '.join(route_ids)})")
        try:
            waits[route] = parse_duration(duration)
        except ValueError as error:
            raise UsageError(f"--wait '{value}': {error}") from None
    return tuple(waits.items())
