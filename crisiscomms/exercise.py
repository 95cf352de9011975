"""Exercise mode, the parts that live outside the campaign and the ledger: who takes part, where the
banner goes, and the marker every exercise message carries.

A playbook's ``exercise:`` section names the people who take part
(``recipients``, or a ``file`` in the audience format) and may set the
marker per locale (default :data:`~crisiscomms.playbook.DEFAULT_EXERCISE_MARKERS`:
EXERCISE, ÖVNING, ØVELSE, OEFENING, ΑΣΚΗΣΗ). A renderer made with
``exercise=True`` puts the marker in front of everything a reader sees
(:func:`mark_content`): the SMS (``ÖVNING: …``), the e-mail subject
(``[ÖVNING] …``), the first line of its text and a first paragraph of its
HTML, the first words of a call, the banner's title and body — and so the
CAP alert's headline and description, whose status is then ``Exercise``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from .audience import AudienceOptions, MalformedRow, RawRecipient, Recipient, make_recipient, open_audience
from .content import Content, EmailContent, SmsContent, VoiceContent
from .errors import UsageError
from .playbook import DEFAULT_EXERCISE_MARKERS, Exercise, Playbook, localized_text
from .smsenc import analyse

_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def exercise_of(playbook: Playbook) -> Exercise:
    """The playbook's exercise settings; a :class:`UsageError` when it has none."""
    if playbook.exercise is None:
        raise UsageError("--exercise: the playbook has no 'exercise:' section naming who takes part "
                         "(exercise: recipients: [{phone: …, email: …, locale: …}] or exercise: file: team.csv)")
    return playbook.exercise


def exercise_marker(playbook: Playbook, locale: str) -> str:
    """The marker of ``locale``: the playbook's ``exercise.marker``, else the default for the language."""
    configured = playbook.exercise.marker if playbook.exercise is not None else None
    if configured is not None:
        return localized_text(configured, locale, playbook.organisation.default_locale)
    language = locale.replace("-", "_").split("_", 1)[0]
    return DEFAULT_EXERCISE_MARKERS.get(locale) or DEFAULT_EXERCISE_MARKERS.get(language, "EXERCISE")


def exercise_recipients(playbook: Playbook, base_dir: Path,
                        options: AudienceOptions) -> Iterator[Recipient | MalformedRow]:
    """The people an exercise messages, as the audience reader gives them (the same normalisation,
    skips and locale negotiation). Entries of ``recipients`` are numbered from 1 (their ``line``) and
    get the ids ``exercise-1``, ``exercise-2`` …; a ``file`` is read like ``--audience``."""
    exercise = exercise_of(playbook)
    if exercise.file is not None:
        with open_audience(base_dir / exercise.file, options) as audience:
            yield from audience
        return
    for number, entry in enumerate(exercise.recipients, 1):
        yield make_recipient(options, number, RawRecipient(
            id=f"exercise-{number}", name=entry.name, phone=entry.phone or "", email=entry.email or "",
            locale=entry.locale or "", timezone=entry.timezone or ""))


def exercise_banner_path(playbook: Playbook, base_dir: Path) -> Path | None:
    """Where an exercise writes the banner (``exercise.banner_path``), or None: never the production path."""
    exercise = exercise_of(playbook)
    return (base_dir / exercise.banner_path).resolve() if exercise.banner_path else None


def exercise_cap_path(playbook: Playbook, base_dir: Path) -> Path | None:
    """Where an exercise writes its CAP alert (``exercise.cap_path``), or None: never ``providers.cap.path``."""
    exercise = exercise_of(playbook)
    return (base_dir / exercise.cap_path).resolve() if exercise.cap_path else None


def exercise_cap_target(playbook: Playbook, base_dir: Path, out: Path | None) -> Path | None:
    """Where ``crisiscomms cap --exercise`` writes: ``--out``, else ``exercise.cap_path``, else stdout (None) —
    never ``providers.cap.path``, the file aggregators read (a :class:`UsageError` if ``--out`` names it)."""
    from .cap import default_cap_path

    production = default_cap_path(playbook, base_dir)
    if out is not None:
        if production is not None and out.resolve() == production:
            raise UsageError(f"--exercise: {out} is the production CAP file (providers.cap.path); an exercise alert "
                             "never replaces the real one (write it to exercise.cap_path or another --out)")
        return out
    if playbook.exercise is None or playbook.exercise.cap_path is None:
        return None
    return exercise_cap_path(playbook, base_dir)


def mark_content(content: Content, marker: str) -> Content:
    """``content`` as an exercise message: ``marker`` in front of everything the reader sees first."""
    if isinstance(content, SmsContent):
        text = f"{marker}: {content.text}"
        return SmsContent(text, analyse(text), content.text_locale)
    if isinstance(content, EmailContent):
        paragraph = f'<p style="font-weight:bold">{html.escape(marker)}</p>'
        marked_html, found = _BODY_TAG.subn(lambda match: match.group(0) + paragraph, content.html, count=1)
        return EmailContent(f"[{marker}] {content.subject}", f"{marker}\n\n{content.text}",
                            marked_html if found else paragraph + content.html, content.text_locale)
    if isinstance(content, VoiceContent):
        return VoiceContent(f"{marker}. {content.text}", content.text_locale)
    return replace(content, title=f"{marker}: {content.title}", body=f"{marker}: {content.body}")
