"""Render a notice for one reader: sandboxed Jinja2, the reader's language and clock.

Templates live in ``<templates>/<set>/<locale>/<file>`` (see README,
"Templates"); the sandboxed environment that loads them is
:mod:`crisiscomms.template_store`, the content types :mod:`crisiscomms.content`.

What does not depend on the reader (organisation, routes and whether they are
open at the send time, links) is built once per locale and time zone. A
channel whose templates never mention ``recipient`` is rendered once per
locale and time zone too, and the result reused. A personalised e-mail
(``Hello {{ recipient.name }}``) is built from a rendering shared per locale,
time zone and empty values, with SendGrid substitutions for the reader's values
(:mod:`crisiscomms.substitutions`): byte for byte the reader's own rendering.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import phonenumbers

from .content import CHANNEL_FILES, BannerContent, Content, EmailContent, SmsContent, VoiceContent
from .formatting import (
    format_datetime_for,
    format_day_hours,
    format_exception_period,
    format_until,
    format_wait,
    format_weekly_hours,
    format_when,
    phrase,
    timezone_label,
)
from .hours import OpeningHours, zone_info
from .playbook import Notice, Playbook, Route, localized_text, notice_moment
from .smsenc import analyse as analyse_sms
from .smsenc import normalise_for_gsm
from .substitutions import Batchability, EmailPersonaliser, analyse
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
    "notice_next_update",
    "route_href",
    "spoken_digits",
    "template_store",
]


def notice_expiry(playbook: Playbook, notice: Notice, planned_at: dt.datetime) -> dt.datetime | None:
    """The moment a notice stops being true; a bare date means the end of that day, a duration
    (``36h``) counts from the moment the plan is made."""
    return notice_moment(notice.expires, planned_at, playbook.organisation.timezone)


def notice_next_update(playbook: Playbook, notice: Notice, planned_at: dt.datetime) -> dt.datetime | None:
    """When readers will hear more (``next_update``), or None."""
    return notice_moment(notice.next_update, planned_at, playbook.organisation.timezone)


@dataclass
class NoticeRenderer:
    """Renders one notice of a playbook for any reader, as of ``sent_at``."""

    playbook: Playbook
    notice_id: str
    store: TemplateStore
    sent_at: dt.datetime
    reuse: bool = True  # reuse renders that do not mention the recipient (off when each is rendered once)
    exercise: bool = False  # every content starts with the exercise marker (crisiscomms.exercise)
    waits: Mapping[str, dt.timedelta] = field(default_factory=dict)  # route id → expected wait (send --wait)
    _shared: dict[tuple[str, str, bool], dict[str, Any]] = field(default_factory=dict)
    _reused: dict[tuple[str, str, str], Content] = field(default_factory=dict)
    _independent: dict[tuple[str, str], bool] = field(default_factory=dict)
    _states: dict[str, tuple[bool, dt.datetime | None, dt.datetime | None]] = field(default_factory=dict)
    _text_locales: dict[tuple[str, str], str] = field(default_factory=dict)
    _batchability: dict[str, Batchability] = field(default_factory=dict)
    _personalisers: dict[str, EmailPersonaliser | None] = field(default_factory=dict)

    @classmethod
    def for_playbook(cls, playbook: Playbook, base_dir: Path, notice_id: str, sent_at: dt.datetime,
                     *, store: TemplateStore | None = None, exercise: bool = False,
                     waits: Mapping[str, dt.timedelta] | None = None) -> NoticeRenderer:
        """A renderer; pass ``store`` to share compiled templates between renderers of one playbook,
        ``exercise`` to mark every message as an exercise, ``waits`` for expected waits known at plan
        time (they win over the playbook's ``wait``)."""
        return cls(playbook, notice_id, store or template_store(playbook, base_dir), sent_at, exercise=exercise,
                   waits=dict(waits or {}))

    @cached_property
    def notice(self) -> Notice:
        return self.playbook.notices[self.notice_id]

    @property
    def template_set(self) -> str:
        return self.notice.templates or self.notice_id

    def template_names(self, channel: str, locale: str) -> list[tuple[str, bool]]:
        """The files of ``channel`` for a ``locale`` reader, and whether they are another locale's."""
        text_locale = self.text_locale(channel, locale)
        return [(self.store.own_name(self.template_set, text_locale, f), text_locale != locale)
                for f in CHANNEL_FILES[channel]]

    def text_locale(self, channel: str, locale: str) -> str:
        """The written locale whose templates serve a ``locale`` reader on ``channel``: the first of the
        reader's chain (``organisation.locale_fallbacks``, then the default) that has every file of the
        channel, so that no message mixes languages. Dates, times and words follow it."""
        key = (channel, locale)
        if key not in self._text_locales:
            chain = self.playbook.organisation.text_chain(locale)
            self._text_locales[key] = next(
                (code for code in chain if all(self.store.has(self.template_set, code, f)
                                               for f in CHANNEL_FILES[channel])), chain[-1])
        return self._text_locales[key]

    def render(self, channel: str, locale: str, timezone: str, recipient: Mapping[str, Any] | None) -> Content:
        """The ``channel`` content for a reader; ``recipient`` is None for the public banner."""
        key = (channel, locale, timezone)
        reusable = recipient is None or self._independent_of_reader(channel, locale)
        if reusable and key in self._reused:
            return self._reused[key]
        if channel == "email" and recipient is not None and not reusable:
            personaliser = self.email_personaliser(locale)
            personalised = personaliser.personalise(timezone, recipient) if personaliser is not None else None
            if personalised is not None:
                return personalised
        content = self._mark(self._render_unmarked(channel, locale, timezone, recipient), locale)
        if reusable:
            self._reused[key] = content
        return content

    def _render_unmarked(self, channel: str, locale: str, timezone: str,
                         recipient: Mapping[str, Any] | None) -> Content:
        names = [name for name, _ in self.template_names(channel, locale)]
        text_locale = self.text_locale(channel, locale)
        context = dict(self.shared_context(text_locale, timezone, gsm_safe=channel == "sms"))
        context["reader_locale"] = locale
        if recipient is not None:
            context["recipient"] = recipient
        return replace(self._build(channel, [self.store.render(n, context) for n in names]), text_locale=text_locale)

    def _mark(self, content: Content, locale: str) -> Content:
        """With the exercise marker in front, in an exercise."""
        if not self.exercise:
            return content
        from .exercise import exercise_marker, mark_content

        return mark_content(content, exercise_marker(self.playbook, content.text_locale or locale))

    def email_batchability(self, locale: str) -> Batchability:
        """Whether ``locale`` readers' e-mails can share requests through SendGrid substitutions."""
        if locale not in self._batchability:
            names = [name for name, _ in self.template_names("email", locale)]
            self._batchability[locale] = analyse(self.store, names)
        return self._batchability[locale]

    def email_personaliser(self, locale: str) -> EmailPersonaliser | None:
        """Shared renderings for ``locale`` readers' e-mails; None: each reader is rendered alone
        (``reuse`` off, or templates that substitution cannot reproduce)."""
        if locale not in self._personalisers:
            batchability = self.email_batchability(locale)
            self._personalisers[locale] = None if not (self.reuse and batchability.batchable) else EmailPersonaliser(
                batchability.fields, partial(self._render_email, locale), partial(self._mark_email, locale))
        return self._personalisers[locale]

    def _render_email(self, locale: str, timezone: str, recipient: Mapping[str, Any]) -> EmailContent:
        content = self._render_unmarked("email", locale, timezone, recipient)
        assert isinstance(content, EmailContent)
        return content

    def _mark_email(self, locale: str, content: EmailContent) -> EmailContent:
        marked = self._mark(content, locale)
        assert isinstance(marked, EmailContent)
        return marked

    def independent_of_reader(self, channel: str, locale: str) -> bool:
        """True when every ``locale`` reader gets the same ``channel`` content for a time zone."""
        return self._independent_of_reader(channel, locale)

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
            return SmsContent(text, analyse_sms(text))
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
        expires = notice_expiry(playbook, notice, self.sent_at)
        next_update = notice_next_update(playbook, notice, self.sent_at)
        links = [{"title": self._text(link.title, locale), "url": link.url, "kind": link.kind}
                 for link in playbook.links]
        return {
            "locale": locale,
            "lang": locale.replace("_", "-"),  # for lang attributes: BCP 47 (en-GB)
            "org": {"name": playbook.organisation.name, "website": playbook.organisation.website},
            "notice": {"id": self.notice_id, "severity": notice.severity, "channels": list(notice.channels),
                       "expires": expires, "next_update": next_update},
            "vars": {k: self._text(v, locale) if isinstance(v, str | dict) else v
                     for k, v in notice.variables.items()},
            "reach": [self._inquiry_view(iid, locale, timezone) for iid in playbook.notice_inquiries(self.notice_id)],
            "links": links,
            "sent_at": format_datetime_for(self.sent_at, locale, timezone),
            "expires_at": format_datetime_for(expires, locale, timezone) if expires else None,
            "next_update": format_datetime_for(next_update, locale, timezone) if next_update else None,
            "reader_timezone": timezone,
            "hotline": self._hotline(locale, timezone),
            "status_link": next((link for link in links if link["kind"] == "status"), None),
        }

    def _text(self, value: str | dict[str, str], locale: str) -> str:
        """A playbook text in ``locale``, else along the reader's fallback chain (then the default)."""
        organisation = self.playbook.organisation
        return localized_text(value, locale, organisation.default_locale, organisation.text_chain(locale))

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
        use = best if best["open_now"] else (alternative or best)
        others = [r for r in (best, *fallbacks) if r["id"] != use["id"]]
        alternatives = sorted(others, key=lambda r: not r["open_now"])  # open first, each kept in playbook order
        return {
            "id": inquiry_id,
            "label": self._text(inquiry.label, locale),
            "best": best, "fallbacks": fallbacks, "best_open": best["open_now"],
            "alternative": alternative, "use": use,
            "alternatives": alternatives, "second": alternatives[0] if alternatives else None,
        }

    def _route_view(self, route_id: str, locale: str, timezone: str) -> dict[str, Any]:
        route = self.playbook.routes[route_id]
        hours = self.playbook.route_hours[route_id]
        open_now, opens, closes = self._route_state(route_id)
        return {
            "id": route_id,
            "kind": route.kind,
            "label": self._text(route.label, locale)
            if route.label is not None else phrase(route.kind, locale),
            "contact": display_contact(route),
            "href": route_href(route),
            "live_person": route.live_person,
            "hours": self._hours_text(hours, locale, timezone),
            "always": hours.is_always,
            "open_now": open_now,
            "opens": format_when(opens, locale, timezone, self.sent_at) if opens and not open_now else None,
            "closes": format_until(closes, locale, timezone, self.sent_at) if closes and open_now else None,
            "closes_today": bool(open_now and closes and _ends_today(closes, self.sent_at, timezone)),
            "closes_midnight": bool(open_now and closes and _ends_today(closes, self.sent_at, timezone)
                                    and closes.astimezone(zone_info(timezone)).time() == dt.time(0)),
            "today": format_day_hours(hours.ranges_on(self.sent_at.astimezone(hours.zone).date()), locale),
            "special": self._special_hours(route, hours, locale, timezone),
            **self._wait_and_callback(route_id, route, locale),
        }

    def _wait_and_callback(self, route_id: str, route: Route, locale: str) -> dict[str, Any]:
        """``wait`` ("25 minutes"), ``wait_minutes`` (25) and ``callback`` ({contact, href}), or None each."""
        wait = self.waits.get(route_id, route.wait)
        callback = None
        if route.callback is not None:
            callback = {"contact": display_phone(route.callback) if route.callback.startswith("+") else route.callback,
                        "href": f"tel:{route.callback}" if route.callback.startswith("+") else route.callback}
        return {"wait": format_wait(wait, locale) if wait else None,
                "wait_minutes": round(wait.total_seconds() / 60) if wait else None,
                "callback": callback}

    def _route_state(self, route_id: str) -> tuple[bool, dt.datetime | None, dt.datetime | None]:
        """Open now, next opening, current closing: the same in every locale, so computed once."""
        if route_id not in self._states:
            hours = self.playbook.route_hours[route_id]
            open_now = hours.is_open(self.sent_at)
            self._states[route_id] = (open_now, None if open_now else hours.next_open(self.sent_at),
                                      hours.closes_at(self.sent_at) if open_now else None)
        return self._states[route_id]

    def _special_hours(self, route: Route, hours: OpeningHours, locale: str, timezone: str) -> dict[str, Any] | None:
        """The dated exception (holiday, extended crisis hours) in force now, or the next within a week:
        its ``hours``, ``period`` ("Wed 14 Oct 06:00 – Thu 15 Oct 18:00"), ``note`` and ``now``."""
        index = hours.next_exception(self.sent_at, within_days=SPECIAL_HOURS_AHEAD_DAYS)
        if index is None:
            return None
        exception, note = hours.exceptions[index], route.exceptions[index].note
        return {
            "hours": format_day_hours(exception.ranges, locale),
            "period": format_exception_period(exception, locale, self.sent_at.astimezone(hours.zone).year),
            "note": self._text(note, locale) if note is not None else "",
            "now": hours.exception_at(self.sent_at) == index,
        }

    def _hours_text(self, hours: OpeningHours, locale: str, timezone: str) -> str:
        text = format_weekly_hours(hours, locale)
        if not hours.is_always and hours.timezone != timezone:
            text += f" ({timezone_label(hours.timezone, locale)})"
        return text


_FORMATTED_KEYS = frozenset({"hours", "today", "period", "opens", "closes", "sent_at", "expires_at", "wait",
                             "next_update"})
SPECIAL_HOURS_AHEAD_DAYS = 7  # an exception starting within a week is worth telling the reader now


def _gsm_safe_strings(value: Any, key: str = "") -> Any:
    """Normalise the strings crisiscomms formatted (not the template's own text) to GSM-7."""
    if isinstance(value, dict):
        return {k: _gsm_safe_strings(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_gsm_safe_strings(v, key) for v in value]
    if isinstance(value, str) and key in _FORMATTED_KEYS:
        return normalise_for_gsm(value)
    return value


def _ends_today(closes: dt.datetime, now: dt.datetime, timezone: str) -> bool:
    """True when ``closes`` is today for the reader, or the midnight that ends today ("until 24:00")."""
    zone = zone_info(timezone)
    closing, today = closes.astimezone(zone), now.astimezone(zone).date()
    return closing.date() == today or (closing.time() == dt.time(0) and (closing.date() - today).days == 1)


def display_contact(route: Route) -> str:
    """How a customer sees the route: ``+46 8 123 456 78``, an URL or an address."""
    if route.phone:
        return display_phone(route.phone)
    return route.email or route.url or ""


def display_phone(e164: str) -> str:
    return phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)


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
