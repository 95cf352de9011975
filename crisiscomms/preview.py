"""``crisiscomms preview``: a notice as each reader will see it, in every language.

:func:`build_preview` renders through the same :class:`NoticeRenderer` a
send uses; the three views (Rich text, JSON, a self-contained HTML page)
only present its result.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from typing import Any

from babel import Locale

from .banner import build_banner_document
from .formatting import describe_moment
from .render import (
    BannerContent,
    Content,
    EmailContent,
    NoticeRenderer,
    SmsContent,
    VoiceContent,
    notice_expiry,
    notice_next_update,
)
from .session import NoticeSession
from .template_checks import sample_recipient


@dataclass(frozen=True)
class LocalePreview:
    locale: str
    contents: dict[str, Content]  # channel → content

    @property
    def fallbacks(self) -> dict[str, str]:
        """Channel → the locale whose text this locale's readers get, where it is another."""
        return {channel: content.text_locale for channel, content in self.contents.items()
                if content.text_locale and content.text_locale != self.locale}

    def fallback_note(self) -> str | None:
        """``fallback: shown in English`` (``…; SMS in Swedish`` when channels differ), or None."""
        names = {channel: language_name(code) for channel, code in self.fallbacks.items()}
        if not names:
            return None
        if len(set(names.values())) == 1 and len(names) == len(self.contents):
            return f"fallback: shown in {next(iter(names.values()))}"
        return "fallback: " + ", ".join(f"{_CHANNEL_NAMES[c]} shown in {n}" for c, n in names.items())


_CHANNEL_NAMES = {"sms": "SMS", "email": "e-mail", "banner": "banner"}


def language_name(code: str) -> str:
    """``en`` → ``English``, ``en_GB`` → ``English (United Kingdom)`` (Babel's English names)."""
    return str(Locale.parse(code).get_display_name("en") or code)


@dataclass(frozen=True)
class Preview:
    notice_id: str
    severity: str
    organisation: str
    at: dt.datetime
    locales: list[LocalePreview]
    banner_document: dict[str, Any] | None = None  # for the live widget on the HTML page
    timezone: str = "UTC"  # the organisation's, in which the moments below are shown
    expires: dt.datetime | None = None  # the resulting moment (a duration counted from ``at``)
    next_update: dt.datetime | None = None
    withdraws_banner: bool = False  # an all-clear: its send takes the site banner down

    @property
    def expired(self) -> bool:
        return self.expires is not None and self.expires <= self.at

    def as_dict(self) -> dict[str, Any]:
        return {"notice": self.notice_id,
                "expires": _iso(self.expires), "expired": self.expired, "next_update": _iso(self.next_update),
                "fallbacks": {p.locale: p.fallbacks for p in self.locales if p.fallbacks},
                "locales": {p.locale: {ch: content_dict(c) for ch, c in p.contents.items()} for p in self.locales},
                **({"banner": "withdraw"} if self.withdraws_banner else {})}

    def timing_lines(self) -> list[str]:
        """``Expires Sun 06 Dec 2026 20:00 (Europe/Stockholm)``; an expired notice says so first."""
        lines = []
        if self.expires is not None and self.expired:
            lines.append(f"EXPIRED: this notice stopped being true at {self.shown(self.expires)}, "
                         f"before the preview's moment ({self.shown(self.at)}); change 'expires' before sending it")
        elif self.expires is not None:
            lines.append(f"Expires {self.shown(self.expires)}")
        if self.next_update is not None:
            lines.append(f"Next update {self.shown(self.next_update)}")
        return lines

    def shown(self, moment: dt.datetime) -> str:
        """``Tue 1 Dec 18:00 Stockholm Time``: in the organisation's zone, in words (CLDR)."""
        return describe_moment(moment, self.timezone)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat(timespec="minutes") if moment is not None else None


def content_dict(content: Content) -> dict[str, Any]:
    if isinstance(content, SmsContent):
        fit = content.fit
        return {"text": content.text, "encoding": fit.encoding.value, "characters": fit.characters,
                "segments": fit.segments}
    if isinstance(content, EmailContent):
        return {"subject": content.subject, "text": content.text, "html": content.html}
    if isinstance(content, VoiceContent):
        return {"text": content.text}
    return {"title": content.title, "body": content.body}


def build_preview(session: NoticeSession, locales: list[str], at: dt.datetime,
                  waits: tuple[tuple[str, dt.timedelta], ...] = ()) -> Preview:
    playbook = session.playbook
    renderer = NoticeRenderer.for_playbook(playbook, session.base_dir, session.notice_id, at, waits=dict(waits))
    timezone = playbook.organisation.timezone
    previews = []
    for locale in locales:
        recipient = sample_recipient(playbook, locale)
        contents: dict[str, Content] = {
            channel: renderer.render(channel, locale, timezone, None if channel == "banner" else recipient)
            for channel in _rendered_channels(session)
        }
        previews.append(LocalePreview(locale, contents))
    notice = session.notice
    withdraws = notice.withdraws_banner
    document = build_banner_document(renderer) if "banner" in notice.channels and not withdraws else None
    return Preview(session.notice_id, notice.severity, playbook.organisation.name, at, previews, document,
                   timezone=timezone, expires=notice_expiry(playbook, notice, at),
                   next_update=notice_next_update(playbook, notice, at), withdraws_banner=withdraws)


def _rendered_channels(session: NoticeSession) -> list[str]:
    """The notice's channels that have a text; an all-clear's banner is the withdrawal, not a text."""
    return [c for c in session.notice.channels
            if c != "cap"  # the CAP alert: crisiscomms cap
            and not (c == "banner" and session.notice.withdraws_banner)]


def preview_html(preview: Preview) -> str:
    """One self-contained page (no network) a comms lead opens to approve a notice: every locale side by
    side, and the live site widget as visitors will see it (when the notice has a banner)."""
    from .widget import inline_embed

    widget = ""
    if preview.banner_document is not None:
        widget = inline_embed(preview.banner_document, now=preview.at, expanded=True)
    sections = "\n".join(_locale_section(p, preview.severity) for p in preview.locales)
    if preview.withdraws_banner:
        sections = ('<p class="withdraw" role="note">Website banner: this all-clear <strong>withdraws</strong> the '
                    "banner; after the send the site shows no notice.</p>\n") + sections
    title = html.escape(f"{preview.organisation} — {preview.notice_id} ({preview.severity})")
    timing = "".join(f'<p class="{"expired" if line.startswith("EXPIRED") else "timing"}">{html.escape(line)}</p>'
                     for line in preview.timing_lines())
    return _PAGE.format(title=title, at=html.escape(preview.at.isoformat(timespec="minutes")),
                        sections=sections, widget=widget, timing=timing)


def _locale_section(locale_preview: LocalePreview, severity: str) -> str:
    cards = []
    for content in locale_preview.contents.values():
        if isinstance(content, SmsContent):
            card = _sms_card(content)
        elif isinstance(content, EmailContent):
            card = _email_card(content, locale_preview.locale)
        elif isinstance(content, VoiceContent):
            card = (f'<figure class="card voice"><figcaption>Call (said twice)</figcaption>'
                    f'<p>{html.escape(content.text)}</p></figure>')
        else:
            card = _banner_card(content, severity)
        lang = html.escape((content.text_locale or locale_preview.locale).replace("_", "-"))
        cards.append(card.replace('<figure class="card', f'<figure lang="{lang}" class="card', 1))
    code = html.escape(locale_preview.locale)
    note = locale_preview.fallback_note()
    mark = f' <span class="fallback">{html.escape(note)}</span>' if note else ""
    return f'<section aria-labelledby="h-{code}"><h2 id="h-{code}">{code}{mark}</h2>' \
           f'<div class="cards">{"".join(cards)}</div></section>'


def _sms_card(content: SmsContent) -> str:
    fit = content.fit
    segments = f"{fit.segments} segment{'s' if fit.segments != 1 else ''}"
    return (f'<figure class="card sms"><figcaption>SMS · {fit.encoding.value} · {fit.characters} characters · '
            f'{segments}</figcaption><div class="phone"><p class="bubble">{html.escape(content.text)}</p></div>'
            "</figure>")


def _email_card(content: EmailContent, locale: str) -> str:
    return (f'<figure class="card email"><figcaption>E-mail · subject: <strong>{html.escape(content.subject)}'
            f'</strong></figcaption><iframe title="E-mail ({html.escape(locale)})" sandbox="" '
            f'srcdoc="{html.escape(content.html, quote=True)}"></iframe>'
            f'<details><summary>Plain-text part</summary><pre>{html.escape(content.text)}</pre></details></figure>')


def _banner_card(content: BannerContent, severity: str) -> str:
    return (f'<figure class="card banner"><figcaption>Website banner · {html.escape(severity)}</figcaption>'
            f'<div class="bar sev-{html.escape(severity)}">'
            f'<strong>{html.escape(content.title)}</strong></div><p class="popup">{html.escape(content.body)}</p>'
            "</figure>")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'; connect-src 'self' data:; img-src data:; frame-src 'self'">
<title>{title}</title>
<style>
body {{ font: 16px/1.45 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1b1f24; }}
header {{ background: #1b1f24; color: #fff; padding: 1rem 1.5rem; }}
main {{ padding: 1rem 1.5rem; }}
section {{ background: #fff; border-radius: 8px; margin: 0 0 1.5rem; padding: 1rem; box-shadow: 0 1px 3px #0002; }}
h2 {{ margin: 0 0 .75rem; text-transform: uppercase; font-size: 1rem; letter-spacing: .05em; }}
.cards {{ display: grid; grid-template-columns: minmax(16rem, 1fr) minmax(24rem, 2fr) minmax(16rem, 1fr); gap: 1rem; }}
.card {{ margin: 0; }} figcaption {{ font-size: .85rem; color: #4a5260; margin-bottom: .5rem; }}
.phone {{ background: #e9edf2; border-radius: 24px; padding: 1rem; min-height: 10rem; }}
.bubble {{ background: #fff; border-radius: 16px 16px 16px 4px; padding: .75rem; margin: 0; white-space: pre-wrap; }}
iframe {{ width: 100%; height: 28rem; border: 1px solid #ccd2da; border-radius: 6px; background: #fff; }}
pre {{ white-space: pre-wrap; background: #f4f5f7; padding: .5rem; }}
.bar {{ background: #0b4f8a; color: #fff; padding: .5rem .75rem; border-radius: 6px 6px 0 0; }}
.bar.sev-warning {{ background: #ffcc33; color: #1b1f24; }}
.bar.sev-critical {{ background: #a4161a; color: #fff; }}
.withdraw {{ background: #fff; border-left: 4px solid #17692d; padding: .75rem 1rem; }}
.popup {{ border: 1px solid #ccd2da; border-top: 0; padding: .75rem; margin: 0; white-space: pre-wrap; }}
.fallback {{ background: #fff4ce; color: #5c4400; padding: .1rem .5rem; border-radius: 4px; text-transform: none;
  letter-spacing: 0; font-weight: normal; }}
.expired {{ background: #b3261e; color: #fff; padding: .5rem .75rem; border-radius: 6px; font-weight: bold; }}
@media (max-width: 60rem) {{ .cards {{ grid-template-columns: 1fr; }} }}
</style></head>
<body><header><h1>{title}</h1><p>As of {at}</p>{timing}</header>
<main>{sections}</main>{widget}
</body></html>
"""
