"""GSM 03.38 encoding detection and exact SMS segment counting.

An SMS is sent in one of two encodings:

* **GSM-7** when every character is in the GSM 03.38 basic set (1 septet
  each) or its extension set (2 septets each: ESC + character). A single
  message holds 160 septets; a concatenated message holds 153 per segment.
* **UCS-2** as soon as one character is outside GSM-7. A single message then
  holds 70 UTF-16 code units, a concatenated one 67 per segment. A character
  outside the Basic Multilingual Plane (most emoji) costs 2 units.

Segment boundaries never split a two-unit character: an ESC + character pair
in GSM-7, or a surrogate pair in UCS-2, moves whole to the next segment. The
segment count is therefore not always ``ceil(units / limit)``.

Conventions:

* An empty text is still one (empty) message: ``segments == 1`` and
  ``split_segments("") == [""]``.
* A literal ESC character (U+001B) is *not* treated as GSM-7: on the wire it
  would start an extension sequence and corrupt the next character, so it
  forces UCS-2 like any other character the GSM alphabet cannot carry.
* A lone surrogate (only possible in a malformed ``str``) counts as one
  UTF-16 unit.

:func:`normalise_for_gsm` is an opt-in cleanup in the spirit of Twilio Smart
Encoding: typographic quotes, dashes, odd spaces and invisible characters are
replaced by GSM-7 equivalents so that a pasted text does not fall into UCS-2
by accident. It has no Greek mappings: lowercase Greek stays UCS-2.
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

GSM7_SINGLE_LIMIT = 160
GSM7_SEGMENT_LIMIT = 153
UCS2_SINGLE_LIMIT = 70
UCS2_SEGMENT_LIMIT = 67

GSM7_BASIC_CHARACTERS: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ"  # 0x00-0x1A; 0x1B is ESC, see module doc
    "ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION_CHARACTERS: frozenset[str] = frozenset("\f^{}\\[~]|€")
GSM7_CHARACTERS: frozenset[str] = GSM7_BASIC_CHARACTERS | GSM7_EXTENSION_CHARACTERS

# Regex character classes scan a str in C about twice as fast as frozenset.issuperset.
_NON_GSM7_PATTERN = re.compile("[^" + re.escape("".join(sorted(GSM7_CHARACTERS))) + "]")
_EXTENSION_PATTERN = re.compile("[" + re.escape("".join(sorted(GSM7_EXTENSION_CHARACTERS))) + "]")
_ASTRAL_PATTERN = re.compile("[\U00010000-\U0010ffff]")
# Byte sets for the ASCII fast path: bytes.translate(None, delete) is one C pass.
_GSM7_ASCII_BYTES = bytes(sorted(ord(char) for char in GSM7_CHARACTERS if char.isascii()))
_EXTENSION_ASCII_BYTES = bytes(sorted(ord(char) for char in GSM7_EXTENSION_CHARACTERS if char.isascii()))


class Encoding(StrEnum):
    """The two SMS data coding schemes a text can be sent in."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True)
class SmsFit:
    """How a text fits into SMS segments.

    ``characters`` is ``len(text)`` (code points). ``units`` is septets for
    GSM-7 and UTF-16 code units for UCS-2. ``segments`` is at least 1: an
    empty text is still one message. ``non_gsm_characters`` lists, in order of
    first appearance, the distinct characters that forced UCS-2 (empty for
    GSM-7).
    """

    encoding: Encoding
    characters: int
    units: int
    segments: int
    non_gsm_characters: tuple[str, ...]


def is_gsm7(text: str) -> bool:
    """Return True if every character of ``text`` can be sent in GSM-7."""
    if text.isascii():  # O(1) in CPython
        return not text.encode("ascii").translate(None, _GSM7_ASCII_BYTES)
    return _NON_GSM7_PATTERN.search(text) is None


def non_gsm_characters(text: str) -> tuple[str, ...]:
    """Return the distinct non-GSM-7 characters of ``text`` in first-appearance order."""
    return tuple(sorted(set(text).difference(GSM7_CHARACTERS), key=text.index))


def single_limit(encoding: Encoding) -> int:
    """Return the unit capacity of a single, unconcatenated message."""
    return GSM7_SINGLE_LIMIT if encoding is Encoding.GSM7 else UCS2_SINGLE_LIMIT


def segment_limit(encoding: Encoding) -> int:
    """Return the unit capacity of one segment of a concatenated message."""
    return GSM7_SEGMENT_LIMIT if encoding is Encoding.GSM7 else UCS2_SEGMENT_LIMIT


def analyse(text: str) -> SmsFit:
    """Return the encoding, unit count and exact segment count of ``text``."""
    encoding, units = _encoding_and_units(text)
    return SmsFit(
        encoding=encoding,
        characters=len(text),
        units=units,
        segments=_segment_count(text, encoding, units),
        non_gsm_characters=() if encoding is Encoding.GSM7 else non_gsm_characters(text),
    )


def split_segments(text: str) -> list[str]:
    """Return the texts of the segments ``text`` is sent as.

    Joining the result gives back ``text``; its length equals
    ``analyse(text).segments``. An empty text gives ``[""]``.
    """
    encoding, units = _encoding_and_units(text)
    if units <= single_limit(encoding):
        return [text]
    ends = _segment_ends(len(text), _double_positions(text, encoding), segment_limit(encoding))
    return [text[start:end] for start, end in pairwise([0, *ends])]


def _encoding_and_units(text: str) -> tuple[Encoding, int]:
    """Encoding and unit count, each scan done by C code (no per-char Python)."""
    if text.isascii():
        return _ascii_encoding_and_units(text.encode("ascii"))
    if _NON_GSM7_PATTERN.search(text) is None:
        return Encoding.GSM7, len(text) + len(_EXTENSION_PATTERN.findall(text))
    return Encoding.UCS2, _utf16_units(text)


def _ascii_encoding_and_units(data: bytes) -> tuple[Encoding, int]:
    if data.translate(None, _GSM7_ASCII_BYTES):  # something is left: not GSM-7
        return Encoding.UCS2, len(data)
    return Encoding.GSM7, 2 * len(data) - len(data.translate(None, _EXTENSION_ASCII_BYTES))


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _segment_count(text: str, encoding: Encoding, units: int) -> int:
    if units <= single_limit(encoding):
        return 1
    limit = segment_limit(encoding)
    if units == len(text):  # no two-unit characters: nothing can be pushed over
        return math.ceil(units / limit)
    return len(_segment_ends(len(text), _double_positions(text, encoding), limit))


def _double_positions(text: str, encoding: Encoding) -> list[int]:
    """Indices of the characters that cost two units and must not be split."""
    pattern = _EXTENSION_PATTERN if encoding is Encoding.GSM7 else _ASTRAL_PATTERN
    return [match.start() for match in pattern.finditer(text)]


def _segment_ends(length: int, doubles: list[int], limit: int) -> list[int]:
    """Greedy segmentation: the end index of each segment, in order.

    ``doubles`` holds the sorted indices of two-unit characters. The text
    before double number ``i`` costs ``doubles[i] + i`` units from index 0,
    an increasing sequence, so the first double that no longer fits in a
    segment is found by bisection instead of a walk over the characters.
    """
    shifted = [position + index for index, position in enumerate(doubles)]
    ends: list[int] = []
    start = first = 0  # ``first``: index of the first double at or after ``start``
    while start < length:
        blocking = bisect_right(shifted, start + limit - 2 + first, lo=first)
        end = start + limit - (blocking - first)
        if blocking < len(doubles):
            end = min(end, doubles[blocking])
        start, first = min(end, length), blocking
        ends.append(start)
    return ends


# --- Smart-encoding-style normalisation -------------------------------------

_SINGLE_QUOTES = "\u2018\u2019\u201a\u201b\u2032\u2035\u2039\u203a\u02b9\u02bb\u02bc\u02bd\u02c8\u00b4`\uff07"
_DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb\u02ba\u02ee\u301d\u301e\uff02"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe63\uff0d"
_SPACES = "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
_INVISIBLES = "\u00ad\u200b\u200c\u200d\u2060\ufeff"

_GSM_REPLACEMENTS: dict[int, str | None] = {
    **dict.fromkeys(map(ord, _SINGLE_QUOTES), "'"),
    **dict.fromkeys(map(ord, _DOUBLE_QUOTES), '"'),
    **dict.fromkeys(map(ord, _DASHES), "-"),
    **dict.fromkeys(map(ord, _SPACES), " "),
    **dict.fromkeys(map(ord, _INVISIBLES), None),
    ord("\u2026"): "...",
    ord("\u2022"): "-",
    ord("\u00d7"): "x",
    ord("\u2044"): "/",
    ord("\uff0c"): ",",
    ord("\uff1a"): ":",
    ord("\uff1b"): ";",
    ord("\uff01"): "!",
    ord("\uff1f"): "?",
    # Canonical singletons whose NFC form is GSM-7: Ohm, Kelvin, Angstrom signs.
    ord("\u2126"): "\u03a9",
    ord("\u212a"): "K",
    ord("\u212b"): "\u00c5",
}
# A base character followed by combining diacritical marks.
_COMBINING_SEQUENCE = re.compile(".[\u0300-\u036f]+", re.DOTALL)


def normalise_for_gsm(text: str) -> str:
    """Replace typographic look-alikes with GSM-7 characters; idempotent.

    Maps curly quotes, dashes, the ellipsis, odd spaces and a few symbols to
    GSM-7 equivalents, removes zero-width characters and soft hyphens, and
    composes a letter + combining accent into its precomposed form when that
    form is GSM-7 (``e`` + U+0301 becomes ``é``). Every replacement is GSM-7;
    characters without a GSM-7 equivalent (lowercase Greek, ``ë``, emoji …)
    are left alone. A GSM-7 text is returned unchanged.
    """
    if is_gsm7(text):
        return text
    # Replace first: removing an invisible character can bring a letter and
    # its combining accent together, and they should then be composed.
    return _COMBINING_SEQUENCE.sub(_compose_if_gsm7, text.translate(_GSM_REPLACEMENTS))


def _compose_if_gsm7(match: re.Match[str]) -> str:
    composed = unicodedata.normalize("NFC", match.group())
    return composed if is_gsm7(composed) else match.group()
