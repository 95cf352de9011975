"""What a call can say: the languages Twilio's ``<Say>`` speaks, the voice per locale, and how long a text takes.

Twilio reads a ``<Say>`` text with a voice of the language given in its
``language`` attribute (BCP 47). :data:`TWILIO_VOICES` lists the languages
crisiscomms lets a playbook use and a default voice for each: an Amazon Polly
voice where Twilio offers one, a Google voice for Greek (Twilio has no Polly
voice for el-GR). ``providers.voice.voices`` chooses another voice per locale,
``providers.voice.languages`` another language tag (``{en: en-US}``).

Length: a call says the message twice, so one reading must stay short. The
estimate counts words at the locale's speaking rate (:data:`WORDS_PER_MINUTE`,
words per minute of a text-to-speech voice at its default rate; a number is
read digit by digit, so every digit counts as a word) against
``providers.voice.max_seconds`` (default 60 seconds for one reading).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from .diagnostics import Diagnostic
from .locales import language_tag
from .playbook import Playbook, VoiceSettings
from .yamlsource import SourceMap

TWILIO_VOICES: dict[str, str] = {
    "sv-SE": "Polly.Astrid",
    "da-DK": "Polly.Naja",
    "nb-NO": "Polly.Liv",
    "nl-NL": "Polly.Lotte",
    "nl-BE": "Polly.Lisa-Neural",
    "en-GB": "Polly.Amy",
    "en-US": "Polly.Joanna",
    "en-IE": "Polly.Niamh-Neural",
    "el-GR": "Google.el-GR-Standard-A",
    "fi-FI": "Polly.Suvi-Neural",
    "de-DE": "Polly.Marlene",
    "fr-FR": "Polly.Celine",
    "is-IS": "Polly.Dora",
    "pl-PL": "Polly.Ewa",
    "es-ES": "Polly.Conchita",
    "it-IT": "Polly.Carla",
    "pt-PT": "Polly.Ines",
    "pt-BR": "Polly.Camila",
}
#: Languages with no Amazon Polly voice at Twilio: only a ``Google.<tag>-…`` voice speaks them.
GOOGLE_ONLY: frozenset[str] = frozenset({"el-GR"})
#: Twilio's own basic voices (any language Twilio speaks).
BASIC_VOICES: frozenset[str] = frozenset({"man", "woman", "alice"})

WORDS_PER_MINUTE: dict[str, int] = {"en": 150, "sv": 140, "da": 140, "nb": 140, "nl": 145, "el": 130}
DEFAULT_WORDS_PER_MINUTE = 140

_TOKEN = re.compile(r"\S+")
_DIGIT = re.compile(r"\d")


def say_language(locale: str, settings: VoiceSettings) -> str:
    """The ``<Say language>`` of a locale: ``sv`` → ``sv-SE`` unless ``providers.voice.languages`` says."""
    return language_tag(locale, settings.languages)


def say_voice(locale: str, settings: VoiceSettings) -> str | None:
    """The ``<Say voice>`` of a locale: the playbook's choice, else the default voice of its language."""
    return settings.voices.get(locale) or TWILIO_VOICES.get(say_language(locale, settings))


def voice_problem(language: str, voice: str | None) -> str | None:
    """Why Twilio cannot say a text in ``language`` with ``voice``, or None when it can."""
    if language not in TWILIO_VOICES:
        return f"Twilio <Say> cannot speak {language} (crisiscomms knows: {', '.join(sorted(TWILIO_VOICES))})"
    if voice is None or voice in BASIC_VOICES:
        return None
    if voice.startswith("Polly.") and language in GOOGLE_ONLY:
        return (f"Amazon Polly has no {language} voice at Twilio; "
                f"use a Google voice such as {TWILIO_VOICES[language]}")
    if voice.startswith("Google."):
        return None if voice.startswith(f"Google.{language}-") else f"voice {voice} does not speak {language}"
    if voice.startswith("Polly."):
        return None
    return f"'{voice}' is not a Twilio voice (man, woman, Polly.<name> or Google.<language>-<name>)"


def words_per_minute(locale: str, settings: VoiceSettings) -> int:
    language = locale.replace("-", "_").split("_", 1)[0]
    return settings.words_per_minute.get(locale) or WORDS_PER_MINUTE.get(language, DEFAULT_WORDS_PER_MINUTE)


def spoken_words(text: str) -> int:
    """Words a voice says: each token, but each digit of a number on its own ("+46 8 465" is 6)."""
    return sum(max(1, len(_DIGIT.findall(token))) for token in _TOKEN.findall(text))


def spoken_seconds(text: str, per_minute: int) -> int:
    """Seconds one reading of ``text`` takes at ``per_minute`` words a minute, rounded up."""
    return math.ceil(spoken_words(text) * 60 / per_minute)


def check_voice_languages(playbook: Playbook, source: SourceMap) -> Iterator[Diagnostic]:
    """An error for every locale of the playbook that the voice settings cannot speak."""
    settings = playbook.providers.voice
    if settings is None:
        return
    for locale in playbook.organisation.locales:
        voice = say_voice(locale, settings)
        problem = voice_problem(say_language(locale, settings), voice)
        if problem is None:
            continue
        if locale in settings.voices:
            where: tuple[str, ...] = ("providers", "voice", "voices", locale)
        elif locale in settings.languages:
            where = ("providers", "voice", "languages", locale)
        else:
            where = ("providers", "voice")
        yield source.diagnostic(where, f"calls in '{locale}': {problem}")
