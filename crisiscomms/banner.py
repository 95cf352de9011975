"""The site-banner document: what a website needs to show a notice itself.

Versioned JSON (``format: crisiscomms-banner``, ``version: 1``; schema in
``docs/banner.schema.json``): every locale's title and body, the severity,
issue and expiry times, and per inquiry its routes with machine-readable
hours, so the page computes "open now" in the browser rather than trusting
the moment the file was written.

A *withdrawal* document (``notice: null`` and ``withdrawn``) takes the banner
down: ``crisiscomms banner withdraw``, or the send of a notice with
``banner: withdraw`` (the all-clear). The widget then shows nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from .formatting import format_weekly_hours
from .hours import DayHours, OpeningHours, exception_bound_text
from .playbook import Playbook, localized_text
from .render import BannerContent, NoticeRenderer, display_contact, notice_expiry, route_href

BANNER_FORMAT = "crisiscomms-banner"
BANNER_VERSION = 1
DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def build_banner_document(renderer: NoticeRenderer) -> dict[str, Any]:
    """The document a send of the renderer's notice writes: the notice, or the withdrawal for an all-clear."""
    playbook, notice = renderer.playbook, renderer.notice
    if notice.withdraws_banner:
        return withdrawal_document(playbook, renderer.sent_at, renderer.notice_id)
    expires = notice_expiry(playbook, notice, renderer.sent_at)
    inquiry_ids = playbook.notice_inquiries(renderer.notice_id)
    route_ids = sorted({r for i in inquiry_ids for r in (playbook.inquiries[i].best, *playbook.inquiries[i].fallbacks)})
    return {
        "format": BANNER_FORMAT,
        "version": BANNER_VERSION,
        "organisation": _organisation(playbook),
        "notice": {"id": renderer.notice_id, "severity": notice.severity,
                   "issued": _iso(renderer.sent_at), "expires": _iso(expires) if expires else None},
        "default_locale": playbook.organisation.default_locale,
        "locales": {locale: _locale_text(renderer, locale) for locale in playbook.organisation.locales},
        "inquiries": [_inquiry(playbook, iid) for iid in inquiry_ids],
        "routes": {rid: _route(playbook, rid) for rid in route_ids},
        "links": [{"url": link.url, "kind": link.kind, "title": _all_locales(playbook, link.title)}
                  for link in playbook.links],
        **({"locale_fallbacks": dict(playbook.organisation.locale_fallbacks)}
           if playbook.organisation.locale_fallbacks else {}),
    }


def withdrawal_document(playbook: Playbook, at: dt.datetime, notice_id: str | None = None) -> dict[str, Any]:
    """A valid "no notice" document: the widget shows nothing. ``notice_id`` is the all-clear that withdrew it."""
    return {
        "format": BANNER_FORMAT,
        "version": BANNER_VERSION,
        "organisation": _organisation(playbook),
        "notice": None,
        "withdrawn": {"at": _iso(at), "by": notice_id},
    }


def default_banner_path(playbook: Playbook, base_dir: Path) -> Path | None:
    """Where the playbook's ``providers: banner`` writes the document (relative to the playbook), if set."""
    settings = playbook.providers.banner
    return (base_dir / settings.path).resolve() if settings else None


def _organisation(playbook: Playbook) -> dict[str, Any]:
    return {"name": playbook.organisation.name, "website": playbook.organisation.website,
            "timezone": playbook.organisation.timezone}


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _all_locales(playbook: Playbook, value: str | dict[str, str]) -> dict[str, str]:
    default = playbook.organisation.default_locale
    return {locale: localized_text(value, locale, default) for locale in playbook.organisation.locales}


def _locale_text(renderer: NoticeRenderer, locale: str) -> dict[str, Any]:
    content = renderer.render("banner", locale, renderer.playbook.organisation.timezone, None)
    assert isinstance(content, BannerContent)
    text = {"title": content.title, "body": content.body}
    if content.text_locale and content.text_locale != locale:
        text["lang"] = content.text_locale  # another locale's text: the widget's words and lang follow it
    return text


def _inquiry(playbook: Playbook, inquiry_id: str) -> dict[str, Any]:
    inquiry = playbook.inquiries[inquiry_id]
    return {"id": inquiry_id, "label": _all_locales(playbook, inquiry.label), "best": inquiry.best,
            "fallbacks": list(inquiry.fallbacks)}


def _route(playbook: Playbook, route_id: str) -> dict[str, Any]:
    route = playbook.routes[route_id]
    hours = playbook.route_hours[route_id]
    label = _all_locales(playbook, route.label) if route.label is not None else None
    return {
        "kind": route.kind,
        "label": label,
        "contact": display_contact(route),
        "href": route_href(route),
        "live_person": route.live_person,
        "hours": _hours(playbook, route_id, hours),
        "hours_text": {loc: format_weekly_hours(hours, loc) for loc in playbook.organisation.locales},
    }


def _hours(playbook: Playbook, route_id: str, hours: OpeningHours) -> dict[str, Any]:
    notes = [e.note for e in playbook.routes[route_id].exceptions]
    return {
        "timezone": hours.timezone,
        "always": hours.is_always,
        "weekly": {DAY_KEYS[i]: _ranges(day) for i, day in enumerate(hours.weekly.days)},
        "exceptions": [{"from": exception_bound_text(e.first, e.first_minute, e.yearly, start=True),
                        "to": exception_bound_text(e.last, e.last_minute, e.yearly, start=False),
                        "ranges": _ranges(e.ranges),
                        "note": _all_locales(playbook, note) if note is not None else None}
                       for e, note in zip(hours.exceptions, notes, strict=True)],
    }


def _ranges(day: DayHours) -> list[list[str]]:
    return [[f"{r.start // 60:02d}:{r.start % 60:02d}", f"{r.end // 60:02d}:{r.end % 60:02d}"] for r in day]
