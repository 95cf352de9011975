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

Size: the call's TwiML (:func:`build_twiml`) goes inline in the ``Twiml``
parameter, which Twilio limits to :data:`TWIML_LIMIT` characters; it holds
the text twice plus, URL-encoded, once more for the replay (a non-ASCII
letter costs 6 characters there), so a long Greek text hits this limit
before the time limit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

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

#: Characters of inline TwiML Twilio accepts in the ``Twiml`` parameter of a call.
TWIML_LIMIT = 4000
#: Seconds to wait for the key press after the prompt.
GATHER_TIMEOUT = 6

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


#: Said after the message: pressing a key plays it once more.
REPEAT_PROMPT: dict[str, str] = {
    "en": "To hear the message again, press 1.",
    "sv": "Tryck 1 för att höra meddelandet igen.",
    "da": "Tryk 1 for at høre beskeden igen.",
    "nb": "Trykk 1 for å høre meldingen igjen.",
    "nl": "Druk op 1 om het bericht opnieuw te horen.",
    "el": "Πατήστε 1 για να ακούσετε ξανά το μήνυμα.",
}


def repeat_prompt(locale: str) -> str:
    language = locale.replace("-", "_").split("_", 1)[0]
    return REPEAT_PROMPT.get(locale) or REPEAT_PROMPT.get(language) or REPEAT_PROMPT["en"]


def build_twiml(text: str, locale: str, settings: VoiceSettings) -> str:
    """The call's TwiML: ``text`` said twice, then "press 1 to hear it again"
    (the shape is drawn in :mod:`crisiscomms.channels.voice`)."""
    say: dict[str, str] = {"language": say_language(locale, settings)}
    voice = say_voice(locale, settings)
    if voice:
        say["voice"] = voice
    replay = VoiceResponse()
    replay.say(text, **say)
    replay.hangup()
    response = VoiceResponse()
    response.say(text, **say)
    response.pause(length=1)
    response.say(text, **say)
    query = urlencode({"Twiml": replay.to_xml(xml_declaration=False)})
    gather = response.gather(num_digits=1, timeout=GATHER_TIMEOUT, action=f"{settings.replay_url}?{query}",
                             method="GET")
    gather.say(repeat_prompt(locale), **say)
    response.hangup()
    return str(response.to_xml(xml_declaration=False))
