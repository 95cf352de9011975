"""Render every notice × locale × channel and check that it fits its channel.

Used by ``crisiscomms validate``: a template that will not render, uses an
undefined variable, tries to escape the sandbox, or costs more SMS segments
than the notice allows in any language fails here, before anyone presses send.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from .checks import REFERENCE_MONDAY
from .diagnostics import Diagnostic
from .hours import zone_info
from .loader import LoadedPlaybook
from .locales import fallback_chain
from .playbook import Playbook
from .render import (
    CHANNEL_FILES,
    BannerContent,
    Content,
    EmailContent,
    NoticeRenderer,
    SmsContent,
    TemplateRenderError,
    VoiceContent,
    template_store,
)

EMAIL_SUBJECT_LIMIT = 78
BANNER_TITLE_LIMIT = 90
BANNER_BODY_LIMIT = 600
SAMPLE_NAME = "Konstantina Papadopoulou-Lindqvist Andersen"


@dataclass(frozen=True)
class _Place:
    notice_id: str
    channel: str
    locale: str


def sample_recipient(playbook: Playbook, locale: str) -> dict[str, str]:
    """A demanding reader: a long name and every audience column the playbook declares."""
    recipient = {
        "id": "sample-0001", "name": SAMPLE_NAME, "locale": locale,
        "timezone": playbook.organisation.timezone, "phone": "+46701234567", "email": "sample@example.org",
    }
    recipient.update({name: f"<{name}-sample-value>" for name in playbook.audience_fields})
    return recipient


def reference_moments(playbook: Playbook) -> list[dt.datetime]:
    """A weekday noon and a Sunday night: routes open and routes closed."""
    zone = zone_info(playbook.organisation.timezone)
    return [dt.datetime.combine(REFERENCE_MONDAY + dt.timedelta(days=2), dt.time(12), zone),
            dt.datetime.combine(REFERENCE_MONDAY + dt.timedelta(days=6), dt.time(3), zone)]


def check_templates(loaded: LoadedPlaybook) -> list[Diagnostic]:
    playbook = loaded.playbook
    if playbook is None:
        return []
    store = template_store(playbook, loaded.base_dir)
    found: set[Diagnostic] = set()
    for notice_id, notice in playbook.notices.items():
        renderers = [NoticeRenderer(playbook, notice_id, store, moment, reuse=False)
                     for moment in reference_moments(playbook)]
        for locale in playbook.organisation.locales:
            for channel in notice.channels:
                if channel == "banner" and notice.withdraws_banner:
                    continue  # an all-clear's banner is the withdrawal document: no template
                found.update(_check_one(renderers, playbook, _Place(notice_id, channel, locale)))
        if playbook.exercise is not None and not any(d.severity == "error" for d in found):
            exercise = NoticeRenderer(playbook, notice_id, store, renderers[0].sent_at, reuse=False, exercise=True)
            found.update(_exercise_fit(exercise, playbook, notice_id))
    return sorted(found, key=lambda d: (d.path, d.line, d.message))


def _exercise_fit(renderer: NoticeRenderer, playbook: Playbook, notice_id: str) -> Iterator[Diagnostic]:
    """The same size checks with the exercise marker in front: warnings (an exercise still goes out)."""
    for locale in playbook.organisation.locales:
        for channel in renderer.notice.channels:
            if channel == "cap":
                continue
            recipient = None if channel == "banner" else sample_recipient(playbook, locale)
            content = renderer.render(channel, locale, playbook.organisation.timezone, recipient)
            for found in _fit(content, renderer, _Place(notice_id, channel, locale)):
                yield Diagnostic(found.path, found.line, found.column, "warning",
                                 f"with the exercise marker: {found.message}")


def _check_one(renderers: list[NoticeRenderer], playbook: Playbook, place: _Place) -> Iterator[Diagnostic]:
    store = renderers[0].store
    missing = False
    for name, _ in renderers[0].template_names(place.channel, place.locale):
        if not (store.root / name).is_file():
            missing = True
            yield Diagnostic(store.shown(name), 0, 0, "error",
                             f"missing template for notice '{place.notice_id}' ({place.channel})")
    if missing:
        return
    yield from _fallback_diagnostic(renderers[0], playbook, place)
    if place.channel == "email":
        yield from _batching_note(renderers[0], place)
    recipient = None if place.channel in ("banner", "cap") else sample_recipient(playbook, place.locale)
    for renderer in renderers:
        try:
            content = renderer.render(place.channel, place.locale, playbook.organisation.timezone, recipient)
        except TemplateRenderError as error:
            problem = error.problem
            yield Diagnostic(problem.path, problem.line, 0, "error", problem.message)
            return
        yield from _fit(content, renderer, place)


_CHANNEL_WORDS = {"sms": "SMS", "email": "e-mail", "banner": "banner"}


def _fallback_diagnostic(renderer: NoticeRenderer, playbook: Playbook, place: _Place) -> Iterator[Diagnostic]:
    """A locale whose files for a channel are not all there: its readers get another locale's whole
    message (never a mix). A note when ``organisation.locale_fallbacks`` declares it, else a warning."""
    text_locale = renderer.text_locale(place.channel, place.locale)
    if text_locale == place.locale:
        return
    store = renderer.store
    absent = [f for f in CHANNEL_FILES[place.channel] if not store.has(renderer.template_set, place.locale, f)]
    first = store.shown(store.own_name(renderer.template_set, place.locale, absent[0]))
    used = store.shown(store.own_name(renderer.template_set, text_locale, "")).rstrip("/") + "/"
    message = (f"missing; {place.locale} readers get the whole {text_locale} {_CHANNEL_WORDS[place.channel]} "
               f"({used}), so that no message mixes languages")
    if declared_fallback(playbook, place.locale, text_locale):
        yield Diagnostic(first, 0, 0, "note", f"{message}; as declared in organisation.locale_fallbacks")
    else:
        yield Diagnostic(first, 0, 0, "warning", f"{message}; add the files, or declare it in "
                                                 "organisation.locale_fallbacks")


def _batching_note(renderer: NoticeRenderer, place: _Place) -> Iterator[Diagnostic]:
    """A note when personalised e-mails of this template cannot share SendGrid requests through
    substitutions (:mod:`crisiscomms.substitutions`): each distinct e-mail then is a request."""
    batchability = renderer.email_batchability(place.locale)
    if batchability.batchable or batchability.unreadable:
        return
    yield Diagnostic(renderer.store.shown(batchability.template), batchability.line, 0, "note",
                     f"personalised e-mails cannot share SendGrid requests: the template {batchability.reason}, "
                     "which substitution cannot reproduce; each distinct e-mail goes as a request of its own")


def declared_fallback(playbook: Playbook, locale: str, text_locale: str) -> bool:
    """True when ``locale`` readers reach ``text_locale`` through ``organisation.locale_fallbacks``."""
    organisation = playbook.organisation
    return text_locale in fallback_chain(locale, organisation.locale_fallbacks, locale)


def _fit(content: Content, renderer: NoticeRenderer, place: _Place) -> Iterator[Diagnostic]:
    names = [renderer.store.shown(n) for n, _ in renderer.template_names(place.channel, place.locale)]
    if isinstance(content, SmsContent):
        yield from _sms_fit(content, renderer, place, names[0])
    elif isinstance(content, EmailContent):
        yield from _email_fit(content, names)
    elif isinstance(content, BannerContent):
        yield from _banner_fit(content, names)
    elif isinstance(content, VoiceContent):
        yield from _voice_fit(content, renderer, place, names[0])


def _sms_fit(content: SmsContent, renderer: NoticeRenderer, place: _Place, path: str) -> Iterator[Diagnostic]:
    budget = renderer.notice.segment_budget(place.locale)
    setting = "sms_segments_by_locale" if place.locale in renderer.notice.sms_segments_by_locale else "sms_segments"
    fit = content.fit
    if not content.text:
        yield Diagnostic(path, 0, 0, "error", "the SMS is empty")
    if fit.segments > budget:
        forced = ""
        if fit.non_gsm_characters:
            shown = " ".join(fit.non_gsm_characters[:12]) + (" …" if len(fit.non_gsm_characters) > 12 else "")
            forced = f"; UCS-2 because of: {shown}"
        yield Diagnostic(
            path, 0, 0, "error",
            f"SMS in {place.locale} is {fit.segments} segments ({fit.encoding.value}, {fit.characters} characters); "
            f"notice '{place.notice_id}' allows {budget} ({setting}){forced}")


def _email_fit(content: EmailContent, names: list[str]) -> Iterator[Diagnostic]:
    subject, text, html = names
    if not content.subject:
        yield Diagnostic(subject, 0, 0, "error", "the e-mail subject is empty")
    elif len(content.subject) > EMAIL_SUBJECT_LIMIT:
        yield Diagnostic(subject, 0, 0, "warning",
                         f"subject is {len(content.subject)} characters; over {EMAIL_SUBJECT_LIMIT} "
                         "it is cut off in many mail clients")
    if not content.text.strip():
        yield Diagnostic(text, 0, 0, "error", "the plain-text part is empty; it is always sent")
    if not content.html.strip():
        yield Diagnostic(html, 0, 0, "error", "the HTML part is empty")


def _banner_fit(content: BannerContent, names: list[str]) -> Iterator[Diagnostic]:
    title, body = names
    if not content.title:
        yield Diagnostic(title, 0, 0, "error", "the banner title is empty")
    elif len(content.title) > BANNER_TITLE_LIMIT:
        yield Diagnostic(title, 0, 0, "error",
                         f"banner title is {len(content.title)} characters; at most {BANNER_TITLE_LIMIT} "
                         "fit the one-line bar")
    if len(content.body) > BANNER_BODY_LIMIT:
        yield Diagnostic(body, 0, 0, "error",
                         f"banner body is {len(content.body)} characters; at most {BANNER_BODY_LIMIT} "
                         "fit the pop-up")


def _voice_fit(content: VoiceContent, renderer: NoticeRenderer, place: _Place, path: str) -> Iterator[Diagnostic]:
    from .playbook import VoiceSettings
    from .speech import TWIML_LIMIT, build_twiml, spoken_seconds, words_per_minute

    if not content.text:
        yield Diagnostic(path, 0, 0, "error", "the voice message is empty")
        return
    settings = renderer.playbook.providers.voice or VoiceSettings.model_validate({"from": "+12025550100"})
    rate = words_per_minute(place.locale, settings)
    seconds = spoken_seconds(content.text, rate)
    if seconds > settings.max_seconds:
        yield Diagnostic(
            path, 0, 0, "error",
            f"voice message in {place.locale} takes about {seconds} seconds to say ({rate} words a minute); "
            f"at most {settings.max_seconds} (providers.voice.max_seconds) - it is said twice")
    twiml = len(build_twiml(content.text, place.locale, settings))
    if twiml > TWIML_LIMIT:
        yield Diagnostic(
            path, 0, 0, "error",
            f"voice message in {place.locale} makes a call of {twiml} characters of TwiML; Twilio takes at most "
            f"{TWIML_LIMIT} (the text is in it three times, once URL-encoded): shorten it")


__all__ = ["CHANNEL_FILES", "check_templates", "sample_recipient"]
