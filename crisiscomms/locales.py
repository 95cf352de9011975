"""Locale negotiation: map whatever an audience file or browser says to a
locale the playbook supports.

``sv-SE``, ``sv_FI`` and ``SV`` become ``sv``; ``nb-NO``, ``no`` and ``nn``
become ``nb``; ``en`` and ``en-IE`` become ``en_GB`` when only that variant is
supported; anything unsupported or empty becomes the playbook's default.
:func:`fallback_chain` is the order in which a reader's texts are looked for
(``organisation.locale_fallbacks``, then the default locale).
Parsing is Babel's; the result is memoised because an audience of a million
rows uses a handful of distinct spellings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from babel import Locale, UnknownLocaleError

# Languages a reader of one can read the other's text in, when only the
# other is supported. Norwegian ("no") is the macro-language of Bokmål and
# Nynorsk; Babel already aliases "no" to "nb_NO".
_READABLE_INSTEAD: dict[str, str] = {"no": "nb", "nn": "nb"}


def negotiate_locale(requested: str | None, supported: Sequence[str], default: str) -> str:
    """Return the supported locale that best serves ``requested``.

    ``supported`` holds codes such as ``("en", "sv", "nb", "en_GB")``; ``default`` must be one
    of them. The exact locale wins, then its language (``sv_FI`` → ``sv``), then a language its
    readers read (``nn`` → ``nb``), then the same language in another region (``en`` or
    ``en_IE`` → ``en_GB`` when there is no ``en``), else ``default``.
    """
    return _negotiate(requested or "", tuple(supported), default)


@lru_cache(maxsize=4096)
def _negotiate(requested: str, supported: tuple[str, ...], default: str) -> str:
    wanted = _parse(requested)
    if wanted is None:
        return default
    candidates = _candidates(wanted)
    for candidate in candidates:
        if candidate in supported:
            return candidate
    for candidate in candidates:
        variant = next((code for code in supported if language_of(code) == candidate), None)
        if variant is not None:
            return variant
    return default


def language_of(code: str) -> str:
    """``en_GB`` → ``en``."""
    return code.replace("-", "_").split("_", 1)[0].lower()


def fallback_chain(locale: str, fallbacks: Mapping[str, str], default: str) -> list[str]:
    """The locales whose text a ``locale`` reader gets, best first: the locale, its language
    (``en_GB`` → ``en``), the declared fallbacks (``{de: en}``), then the default locale."""
    chain: list[str] = []

    def add(code: str) -> None:
        while code and code not in chain:
            chain.append(code)
            language = language_of(code)
            if language != code and language not in chain:
                chain.append(language)
            code = fallbacks.get(code) or fallbacks.get(language) or ""

    add(locale)
    if default not in chain:
        chain.append(default)
    return chain


def folder_spellings(locale: str) -> tuple[str, ...]:
    """The folder names a template folder for ``locale`` may have: ``en_GB``, ``en-GB``."""
    return (locale, locale.replace("_", "-")) if "_" in locale else (locale,)


def _parse(requested: str) -> Locale | None:
    text = requested.strip().replace("-", "_")
    if not text:
        return None
    try:
        return Locale.parse(text.lower() if "_" not in text else text)
    except (UnknownLocaleError, ValueError, TypeError):
        language = text.split("_", 1)[0].lower()
        try:
            return Locale.parse(language)
        except (UnknownLocaleError, ValueError, TypeError):
            return None


def _candidates(locale: Locale) -> list[str]:
    """Codes to try, most specific first: ``sv_FI`` → ``sv_FI``, ``sv``."""
    language = str(locale.language)
    codes = []
    if locale.territory:
        codes.append(f"{language}_{locale.territory}")
    codes.append(language)
    if language in _READABLE_INSTEAD:
        codes.append(_READABLE_INSTEAD[language])
    return codes


def is_known_locale(code: str) -> bool:
    """True when Babel knows ``code`` (``en``, ``sv_SE``, ``nb-NO`` …)."""
    return _parse(code) is not None


#: The region a bare language code is spoken in by default, for BCP 47 tags
#: (CAP ``<language>``, Twilio ``<Say language>``). A playbook overrides them
#: per provider (``languages: {en: en-US}``).
DEFAULT_REGIONS: dict[str, str] = {
    "sv": "SE", "da": "DK", "nb": "NO", "no": "NO", "nn": "NO", "nl": "NL", "el": "GR", "en": "GB",
    "fi": "FI", "de": "DE", "fr": "FR", "es": "ES", "it": "IT", "pl": "PL", "pt": "PT", "is": "IS",
}


def language_tag(locale: str, overrides: Mapping[str, str] | None = None) -> str:
    """The BCP 47 tag of a playbook locale: ``sv`` → ``sv-SE``, ``en_US`` → ``en-US``, unless ``overrides`` says."""
    if overrides and locale in overrides:
        return overrides[locale]
    language, _, territory = locale.replace("-", "_").partition("_")
    region = territory.upper() or DEFAULT_REGIONS.get(language.lower())
    return f"{language.lower()}-{region}" if region else language.lower()
