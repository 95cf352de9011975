"""What every part of the stand-in shares: its configuration, the rate window, the gate's verdict, JSON answers."""

from __future__ import annotations

import collections
import dataclasses
import json
import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

Provider = Literal["twilio", "sendgrid"]
PROVIDERS: tuple[Provider, ...] = ("twilio", "sendgrid")

DEFAULT_TWILIO_SID = "AC" + "5a" * 16
DEFAULT_TWILIO_TOKEN = "standin-twilio-auth-token"
DEFAULT_SENDGRID_KEY = "SG.standin.sendgrid-api-key"

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
TWILIO_API_VERSION = "2010-04-01"

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
Fault = Literal["429", "500", "unanswered"]
JsonDict = dict[str, Any]



# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


@dataclass
class StandinConfig:
    """How the stand-in behaves; may be changed between test phases.

    Rates are probabilities in ``[0, 1]`` drawn from ``random.Random(seed)``
    once per authenticated request, so a run is reproducible for a given
    order of requests. ``rate_cap`` is requests per second allowed per
    provider (``None``: unlimited); ``twilio_rate_cap`` and
    ``sendgrid_rate_cap`` override it for one provider.
    """

    twilio_sid: str = DEFAULT_TWILIO_SID
    twilio_token: str = DEFAULT_TWILIO_TOKEN
    sendgrid_key: str = DEFAULT_SENDGRID_KEY
    latency: float = 0.0
    rate_cap: float | None = None
    twilio_rate_cap: float | None = None
    sendgrid_rate_cap: float | None = None
    fail_429_rate: float = 0.0
    fail_500_rate: float = 0.0
    unanswered_rate: float = 0.0
    seed: int = 0
    opted_out: AbstractSet[str] = frozenset()

    def __post_init__(self) -> None:
        """Validate the numbers and freeze the opted-out set."""
        self.opted_out = frozenset(self.opted_out)
        if self.latency < 0:
            raise ValueError("latency must be >= 0")
        for name in ("rate_cap", "twilio_rate_cap", "sendgrid_rate_cap"):
            cap = getattr(self, name)
            if cap is not None and cap <= 0:
                raise ValueError(f"{name} must be > 0 or None")
        for name in ("fail_429_rate", "fail_500_rate", "unanswered_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.fail_429_rate + self.fail_500_rate + self.unanswered_rate > 1.0:
            raise ValueError("fault rates must add up to at most 1")

    def cap_for(self, provider: Provider) -> float | None:
        """The effective rate cap (requests per second) of one provider."""
        specific = self.twilio_rate_cap if provider == "twilio" else self.sendgrid_rate_cap
        return specific if specific is not None else self.rate_cap

    def to_json(self) -> JsonDict:
        """The configuration as a JSON-ready mapping."""
        data = dataclasses.asdict(self)
        data["opted_out"] = sorted(self.opted_out)
        return data

    def with_changes(self, changes: Mapping[str, Any]) -> StandinConfig:
        """A validated copy with ``changes`` applied (unknown names raise)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        updates = dict(changes)
        if "opted_out" in updates:
            updates["opted_out"] = frozenset(updates["opted_out"])
        try:
            return dataclasses.replace(self, **updates)
        except TypeError as error:
            raise ValueError(str(error)) from error


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


class _SlidingWindow:
    """Admits at most ``cap`` events in any one-second window (bounded memory)."""

    def __init__(self) -> None:
        self._times: collections.deque[float] = collections.deque()

    def take(self, cap: float | None, now: float) -> float | None:
        """Admit one event (``None``) or return when the window next frees up."""
        if cap is None:
            return None
        times = self._times
        while times and times[0] <= now - 1.0:
            times.popleft()
        if len(times) < cap:
            times.append(now)
            return None
        return times[0] + 1.0

    def clear(self) -> None:
        """Forget every admitted event."""
        self._times.clear()


@dataclass(slots=True)
class _Admission:
    """The verdict of the shared gate: an early answer, or go on (maybe unanswered)."""

    response: web.Response | None = None
    unanswered: bool = False


def _json(status: int, body: object, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response."""
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )
