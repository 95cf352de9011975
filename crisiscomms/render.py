"""Render a notice for one reader: sandboxed Jinja2, the reader's language and clock.

Templates live in ``<templates>/<set>/<locale>/<file>`` (see README,
"Templates"); the sandboxed environment that loads them is
:mod:`crisiscomms.template_store`, the content types :mod:`crisiscomms.content`.

What does not depend on the reader (organisation, routes and whether they are
open at the send time, links) is built once per locale and time zone. A
channel whose templates never mention ``recipient`` is rendered once per
locale and time zone too, and the result reused.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import phonenumbers

from .content import CHANNEL_FILES, BannerContent, Content, EmailContent, SmsContent, VoiceContent
from .formatting import (
    format_clock,
    format_datetime_for,
    format_day_hours,
    format_time_for,
    format_weekday_time,
    format_weekly_hours,
    phrase,
    timezone_label,
)
from .hours import MINUTES_PER_DAY, OpeningHours, zone_info
from .playbook import Notice, Playbook, Route, localized_text
from .smsenc import analyse, normalise_for_gsm
from .template_store import (
    TemplateProblem,
    TemplateRenderError,
    TemplateStore,
    spoken_digits,
    template_store,
)

__all__ = [
    "CHANNEL_FILES",
    "BannerContent",
    "Content",
    "EmailContent",
    "NoticeRenderer",
    "SmsContent",
    "TemplateProblem",
    "TemplateRenderError",
    "TemplateStore",
    "VoiceContent",
    "display_contact",
    "notice_expiry",
    "route_href",
    "spoken_digits",
    "template_store",
]


def notice_expiry(playbook: Playbook, notice: Notice) -> dt.datetime | None:
    """The moment a notice stops being true; a bare date means the end of that day."""
    expires = notice.expires
    zone = zone_info(playbook.organisation.timezone)
    if expires is None:
        return None
    if isinstance(expires, dt.datetime):
        return expires if expires.tzinfo else expires.replace(tzinfo=zone)
    return dt.datetime.combine(expires + dt.timedelta(days=1), dt.time(0), zone)


@dataclass
class NoticeRenderer:
    """Renders one notice of a playbook for any reader, as of ``sent_at``."""

    playbook: Playbook
    notice_id: str
    store: TemplateStore
    sent_at: dt.datetime
    reuse: bool = True  # reuse renders that do not mention the recipient (off when each is rendered once)
    exercise: bool = False  # every content starts with the exercise marker (crisiscomms.exercise)
    _shared: dict[tuple[str, str, bool], dict[str, Any]] = field(default_factory=dict)
    _reused: dict[tuple[str, str, str], Content] = field(default_factory=dict)
    _independent: dict[tuple[str, str], bool] = field(default_factory=dict)
    _states: dict[str, tuple[bool, dt.datetime | None, dt.datetime | None]] = field(default_factory=dict)

    @classmethod
    def for_playbook(cls, playbook: Playbook, base_dir: Path, notice_id: str, sent_at: dt.datetime,
                     *, store: TemplateStore | None = None, exercise: bool = False) -> NoticeRenderer:
        """A renderer; pass ``store`` to share compiled templates between renderers of one playbook,
        ``exercise`` to mark every message as an exercise."""
        return cls(playbook, notice_id, store or template_store(playbook, base_dir), sent_at, exercise=exercise)

    @cached_property
    def notice(self) -> Notice:
        return self.playbook.notices[self.notice_id]

    @property
    def template_set(self) -> str:
        return self.notice.templates or self.notice_id

    def template_names(self, channel: str, locale: str) -> list[tuple[str, bool]]:
        return [self.store.name_for(self.template_set, locale, f) for f in CHANNEL_FILES[channel]]

    def render(self, channel: str, locale: str, timezone: str, recipient: Mapping[str, Any] | None) -> Content:
        """The ``channel`` content for a reader; ``recipient`` is None for the public banner."""
        key = (channel, locale, timezone)
        reusable = recipient is None or self._independent_of_reader(channel, locale)
        if reusable and key in self._reused:
            return self._reused[key]
        names = [name for name, _ in self.template_names(channel, locale)]
        context = dict(self.shared_context(locale, timezone, gsm_safe=channel == "sms"))
        if recipient is not None:
            context["recipient"] = recipient
        content = self._build(channel, [self.store.render(n, context) for n in names])
        if self.exercise:
            from .exercise import exercise_marker, mark_content

            content = mark_content(content, exercise_marker(self.playbook, locale))
        if reusable:
            self._reused[key] = content
        return content

    def _independent_of_reader(self, channel: str, locale: str) -> bool:
        """True when no template of ``channel`` in ``locale`` mentions ``recipient`` (then one render serves all)."""
        key = (channel, locale)
        if key not in self._independent:
            names = [name for name, _ in self.template_names(channel, locale)]
            self._independent[key] = self.reuse and not any(self.store.uses_recipient(n) for n in names)
        return self._independent[key]

    def _build(self, channel: str, parts: list[str]) -> Content:
        if channel == "sms":
            text = parts[0].strip()
            if self.playbook.providers.sms is not None and self.playbook.providers.sms.smart_encoding:
                text = normalise_for_gsm(text)
            return SmsContent(text, analyse(text))
        if channel == "email":
            return EmailContent(_one_line(parts[0]), parts[1].strip() + "\n", parts[2].strip() + "\n")
        if channel == "voice":
            return VoiceContent(_one_line(parts[0]))
        return BannerContent(_one_line(parts[0]), parts[1].strip())

    def shared_context(self, locale: str, timezone: str, *, gsm_safe: bool = False) -> dict[str, Any]:
        """The reader-independent context; ``gsm_safe`` for SMS, where the en dashes and
        thin spaces of Babel's hours would turn the whole message into UCS-2."""
        key = (locale, timezone, gsm_safe)
        if key not in self._shared:
            context = self._build_shared_context(locale, timezone)
            self._shared[key] = {**_gsm_safe_strings(context), "gsm_safe": True} if gsm_safe else context
        return self._shared[key]

    def _build_shared_context(self, locale: str, timezone: str) -> dict[str, Any]:
        playbook, notice = self.playbook, self.notice
        default = playbook.organisation.default_locale
        expires = notice_expiry(playbook, notice)
        links = [{"title": localized_text(link.title, locale, default), "url": link.url, "kind": link.kind}
                 for link in playbook.links]
        return {
            "locale": locale,
            "org": {"name": playbook.organisation.name, "website": playbook.organisation.website},
            "notice": {"id": self.notice_id, "severity": notice.severity, "channels": list(notice.channels),
                       "expires": expires},
            "vars": {k: localized_text(v, locale, default) if isinstance(v, str | dict) else v
                     for k, v in notice.variables.items()},
            "reach": [self._inquiry_view(iid, locale, timezone) for iid in playbook.notice_inquiries(self.notice_id)],
            "links": links,
            "sent_at": format_datetime_for(self.sent_at, locale, timezone),
            "expires_at": format_datetime_for(expires, locale, timezone) if expires else None,
            "reader_timezone": timezone,
            "hotline": self._hotline(locale, timezone),
            "status_link": next((link for link in links if link["kind"] == "status"), None),
        }

    def _hotline(self, locale: str, timezone: str) -> dict[str, Any] | None:
        """The first route of this notice where a person answers around the clock."""
        for inquiry_id in self.playbook.notice_inquiries(self.notice_id):
            inquiry = self.playbook.inquiries[inquiry_id]
            for route_id in (inquiry.best, *inquiry.fallbacks):
                route = self.playbook.routes[route_id]
                if route.live_person and self.playbook.route_hours[route_id].is_always:
                    return self._route_view(route_id, locale, timezone)
        return None

    def _inquiry_view(self, inquiry_id: str, locale: str, timezone: str) -> dict[str, Any]:
        inquiry = self.playbook.inquiries[inquiry_id]
        best = self._route_view(inquiry.best, locale, timezone)
        fallbacks = [self._route_view(r, locale, timezone) for r in inquiry.fallbacks]
        alternative = None if best["open_now"] else next((f for f in fallbacks if f["open_now"]), None)
        return {
            "id": inquiry_id,
            "label": localized_text(inquiry.label, locale, self.playbook.organisation.default_locale),
            "best": best, "fallbacks": fallbacks, "best_open": best["open_now"],
            "alternative": alternative, "use": best if best["open_now"] else (alternative or best),
        }

    def _route_view(self, route_id: str, locale: str, timezone: str) -> dict[str, Any]:
        route = self.playbook.routes[route_id]
        hours = self.playbook.route_hours[route_id]
        open_now, opens, closes = self._route_state(route_id)
        return {
            "id": route_id,
            "kind": route.kind,
            "label": localized_text(route.label, locale, self.playbook.organisation.default_locale)
            if route.label is not None else phrase(route.kind, locale),
            "contact": display_contact(route),
            "href": route_href(route),
            "live_person": route.live_person,
            "hours": self._hours_text(hours, locale, timezone),
            "always": hours.is_always,
            "open_now": open_now,
            "opens": _when(opens, locale, timezone) if not open_now else None,
            "closes": _format_closing(closes, locale, timezone) if open_now else None,
            "special": self._special_hours(route, hours, locale),
        }

    def _route_state(self, route_id: str) -> tuple[bool, dt.datetime | None, dt.datetime | None]:
        """Open now, next opening, current closing: the same in every locale, so computed once."""
        if route_id not in self._states:
            hours = self.playbook.route_hours[route_id]
            open_now = hours.is_open(self.sent_at)
            self._states[route_id] = (open_now, None if open_now else hours.next_open(self.sent_at),
                                      hours.closes_at(self.sent_at) if open_now else None)
        return self._states[route_id]

    def _special_hours(self, route: Route, hours: OpeningHours, locale: str) -> dict[str, str] | None:
        """Today's hours when a dated exception (holiday, extended crisis hours) replaces the weekly ones."""
        today = self.sent_at.astimezone(hours.zone).date()
        for exception in route.exceptions:
            if exception.dated_hours.covers(today):
                note = exception.note
                return {"hours": format_day_hours(exception.dated_hours.ranges, locale),
                        "note": localized_text(note, locale, self.playbook.organisation.default_locale)
                        if note is not None else ""}
        return None

    def _hours_text(self, hours: OpeningHours, locale: str, timezone: str) -> str:
        text = format_weekly_hours(hours, locale)
        if not hours.is_always and hours.timezone != timezone:
            text += f" ({timezone_label(hours.timezone, locale)})"
        return text


_FORMATTED_KEYS = frozenset({"hours", "opens", "closes", "sent_at", "expires_at"})


def _gsm_safe_strings(value: Any, key: str = "") -> Any:
    """Normalise the strings crisiscomms formatted (not the template's own text) to GSM-7."""
    if isinstance(value, dict):
        return {k: _gsm_safe_strings(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_gsm_safe_strings(v, key) for v in value]
    if isinstance(value, str) and key in _FORMATTED_KEYS:
        return normalise_for_gsm(value)
    return value


def _when(moment: dt.datetime | None, locale: str, timezone: str) -> str | None:
    return format_weekday_time(moment, locale, timezone) if moment else None


def _format_closing(closing: dt.datetime | None, locale: str, timezone: str) -> str | None:
    if closing is None:
        return None
    local = closing.astimezone(zone_info(timezone))
    if local.hour == local.minute == 0:
        return format_clock(MINUTES_PER_DAY, locale)  # "until 24:00", not "until 00:00"
    return format_time_for(closing, locale, timezone)


def display_contact(route: Route) -> str:
    """How a customer sees the route: ``+46 8 123 456 78``, an URL or an address."""
    if route.phone:
        return phonenumbers.format_number(phonenumbers.parse(route.phone), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return route.email or route.url or ""


def route_href(route: Route) -> str:
    """A link that opens the route: ``tel:``, ``sms:``, ``mailto:`` or the URL."""
    if route.phone:
        return f"{'sms' if route.kind == 'sms' else 'tel'}:{route.phone}"
    if route.email:
        return f"mailto:{route.email}"
    return route.url or ""


_SPACES = re.compile(r"\s+")


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()
