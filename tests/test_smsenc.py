"""Tests for crisiscomms.smsenc: GSM-7 / UCS-2 detection and exact segmentation."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crisiscomms.smsenc import (
    GSM7_BASIC_CHARACTERS,
    GSM7_CHARACTERS,
    GSM7_EXTENSION_CHARACTERS,
    Encoding,
    SmsFit,
    analyse,
    is_gsm7,
    non_gsm_characters,
    normalise_for_gsm,
    segment_limit,
    single_limit,
    split_segments,
)

EMOJI = "\U0001f600"  # 😀, outside the BMP: a surrogate pair in UTF-16


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2  # lone surrogates: 1 unit


def units_in(segment: str, encoding: Encoding) -> int:
    """Units a segment costs in the encoding of the whole message."""
    if encoding is Encoding.GSM7:
        return len(segment) + sum(char in GSM7_EXTENSION_CHARACTERS for char in segment)
    return utf16_units(segment)


def reference_segments(text: str) -> list[str]:
    """Character-by-character greedy segmentation, written for clarity, not speed."""
    encoding = Encoding.GSM7 if all(char in GSM7_CHARACTERS for char in text) else Encoding.UCS2
    if units_in(text, encoding) <= single_limit(encoding):
        return [text]
    segments, current = [], ""
    for char in text:
        if units_in(current + char, encoding) > segment_limit(encoding):
            segments.append(current)
            current = ""
        current += char
    return [*segments, current]


# --- the alphabet ------------------------------------------------------------


def test_alphabet_has_127_basic_and_10_extension_characters() -> None:
    assert len(GSM7_BASIC_CHARACTERS) == 127  # 128 codes minus ESC
    assert sorted(GSM7_EXTENSION_CHARACTERS) == sorted("\f^{}\\[~]|€")
    assert not GSM7_BASIC_CHARACTERS & GSM7_EXTENSION_CHARACTERS


def test_backtick_is_not_gsm7() -> None:
    assert analyse("Use `code`") == SmsFit(Encoding.UCS2, 10, 10, 1, ("`",))


def test_literal_escape_character_forces_ucs2() -> None:
    assert analyse("a\x1bb") == SmsFit(Encoding.UCS2, 3, 3, 1, ("\x1b",))


def test_encoding_is_a_string() -> None:
    assert isinstance(Encoding.GSM7, str)
    assert str(Encoding.GSM7) == "GSM-7"
    assert f"{Encoding.UCS2}" == "UCS-2"


def test_empty_text_is_one_empty_gsm7_message() -> None:
    assert analyse("") == SmsFit(Encoding.GSM7, 0, 0, 1, ())
    assert split_segments("") == [""]


# --- GSM-7 boundaries --------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segment_lengths"),
    [
        (1, [1]),
        (160, [160]),
        (161, [153, 8]),
        (306, [153, 153]),
        (307, [153, 153, 1]),
        (459, [153, 153, 153]),
        (460, [153, 153, 153, 1]),
    ],
)
def test_gsm7_segment_boundaries(length: int, segment_lengths: list[int]) -> None:
    text = "a" * length
    assert analyse(text) == SmsFit(Encoding.GSM7, length, length, len(segment_lengths), ())
    assert [len(segment) for segment in split_segments(text)] == segment_lengths


@pytest.mark.parametrize("char", sorted(GSM7_EXTENSION_CHARACTERS))
def test_extension_character_costs_two_septets(char: str) -> None:
    assert analyse(char) == SmsFit(Encoding.GSM7, 1, 2, 1, ())


def test_euro_and_bracket_cost_two_septets_each() -> None:
    assert analyse("Pris: 5 € [ca]").units == 17  # 14 characters + 3 escapes


def test_extension_character_filling_a_single_message_exactly() -> None:
    assert analyse("a" * 158 + "€") == SmsFit(Encoding.GSM7, 159, 160, 1, ())
    assert analyse("a" * 159 + "€") == SmsFit(Encoding.GSM7, 160, 161, 2, ())
    assert split_segments("a" * 159 + "€") == ["a" * 153, "a" * 6 + "€"]


def test_extension_character_at_boundary_moves_whole_to_next_segment() -> None:
    text = "a" * 152 + "€" + "a" * 10
    assert analyse(text) == SmsFit(Encoding.GSM7, 163, 164, 2, ())
    assert split_segments(text) == ["a" * 152, "€" + "a" * 10]


def test_extension_character_ending_exactly_at_boundary_stays() -> None:
    text = "a" * 151 + "€" + "a" * 10
    assert split_segments(text) == ["a" * 151 + "€", "a" * 10]
    assert analyse(text).segments == 2


def test_pushed_extension_character_costs_an_extra_segment() -> None:
    # 306 septets would be 2 × 153, but the € cannot straddle the boundary.
    text = "a" * 152 + "€" + "a" * 152
    assert analyse(text) == SmsFit(Encoding.GSM7, 305, 306, 3, ())
    assert split_segments(text) == ["a" * 152, "€" + "a" * 151, "a"]


def test_text_of_only_extension_characters() -> None:
    assert analyse("€" * 80) == SmsFit(Encoding.GSM7, 80, 160, 1, ())
    assert analyse("€" * 81) == SmsFit(Encoding.GSM7, 81, 162, 2, ())
    assert [len(segment) for segment in split_segments("€" * 81)] == [76, 5]


# --- UCS-2 boundaries --------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segment_lengths"),
    [
        (70, [70]),
        (71, [67, 4]),
        (134, [67, 67]),
        (135, [67, 67, 1]),
    ],
)
def test_ucs2_segment_boundaries(length: int, segment_lengths: list[int]) -> None:
    text = "ë" + "a" * (length - 1)
    assert analyse(text) == SmsFit(Encoding.UCS2, length, length, len(segment_lengths), ("ë",))
    assert [len(segment) for segment in split_segments(text)] == segment_lengths


def test_emoji_costs_two_units() -> None:
    assert analyse(EMOJI) == SmsFit(Encoding.UCS2, 1, 2, 1, (EMOJI,))
    assert analyse("a" * 68 + EMOJI) == SmsFit(Encoding.UCS2, 69, 70, 1, (EMOJI,))
    assert analyse("a" * 69 + EMOJI) == SmsFit(Encoding.UCS2, 70, 71, 2, (EMOJI,))


def test_emoji_at_boundary_is_not_split() -> None:
    text = "a" * 66 + EMOJI + "a" * 5
    assert analyse(text) == SmsFit(Encoding.UCS2, 72, 73, 2, (EMOJI,))
    assert split_segments(text) == ["a" * 66, EMOJI + "a" * 5]


def test_emoji_ending_exactly_at_boundary_stays() -> None:
    assert split_segments("a" * 65 + EMOJI + "a" * 5) == ["a" * 65 + EMOJI, "a" * 5]


def test_pushed_emoji_costs_an_extra_segment() -> None:
    # 134 units would be 2 × 67, but the surrogate pair cannot straddle the boundary.
    text = "a" * 66 + EMOJI + "a" * 66
    assert analyse(text) == SmsFit(Encoding.UCS2, 133, 134, 3, (EMOJI,))
    assert split_segments(text) == ["a" * 66, EMOJI + "a" * 65, "a"]


# --- languages ---------------------------------------------------------------


def test_lowercase_greek_forces_ucs2_and_is_named() -> None:
    assert analyse("Γειά σου") == SmsFit(Encoding.UCS2, 8, 8, 1, ("ε", "ι", "ά", "σ", "ο", "υ"))


def test_greek_capitals_of_the_gsm_alphabet_are_gsm7() -> None:
    assert analyse("ΓΔΘΛΞΠΣΦΨΩ") == SmsFit(Encoding.GSM7, 10, 10, 1, ())


def test_greek_capitals_that_look_latin_are_not_gsm7() -> None:
    # Α Ε Η Κ Μ Ρ are Greek letters, not the Latin A E H K M P of the GSM set.
    assert non_gsm_characters("ΚΑΛΗΜΕΡΑ") == ("Κ", "Α", "Η", "Μ", "Ε", "Ρ")
    assert not is_gsm7("ΚΑΛΗΜΕΡΑ")


@pytest.mark.parametrize("letter", list("åäöæøÅÄÖÆØ"))
def test_scandinavian_letters_are_gsm7(letter: str) -> None:
    assert analyse(letter) == SmsFit(Encoding.GSM7, 1, 1, 1, ())


@pytest.mark.parametrize(
    "text",
    [
        "Vi har en driftstörning. Ring oss på 0771-123 456, vardagar 8-17.",  # sv
        "Sådan hjælper du kunder i en krise. Ærø og Øresund: ring før kl. 16.",  # da
        "Vi har kommet langt på kort tid. Ring oss på 22 33 44 55 for å få hjelp.",  # nb
    ],
)
def test_scandinavian_notices_are_gsm7(text: str) -> None:
    assert analyse(text) == SmsFit(Encoding.GSM7, len(text), len(text), 1, ())


@pytest.mark.parametrize("letter", ["ë", "ï", "ó"])
def test_dutch_accented_letters_force_ucs2(letter: str) -> None:
    assert analyse(f"Ga{letter}n") == SmsFit(Encoding.UCS2, 4, 4, 1, (letter,))


def test_dutch_notice_with_e_diaeresis_is_ucs2() -> None:
    text = "Klantenservice België: bel ons."
    assert analyse(text) == SmsFit(Encoding.UCS2, 31, 31, 1, ("ë",))


def test_non_gsm_characters_are_distinct_in_first_appearance_order() -> None:
    assert non_gsm_characters("xë😀ëα😀`") == ("ë", EMOJI, "α", "`")
    assert non_gsm_characters("plain text €") == ()


# --- normalise_for_gsm -------------------------------------------------------


@pytest.mark.parametrize(
    ("char", "replacement"),
    [
        *[(quote, "'") for quote in "‘’‚‛′‹›`"],
        *[(quote, '"') for quote in "“”„‟″«»"],
        *[(dash, "-") for dash in "\u2010\u2011\u2012\u2013\u2014\u2015"],
        *[(space, " ") for space in "\u00a0\u2000\u2005\u200a\u202f\u205f\u3000"],
        *[(invisible, "") for invisible in "\u00ad\u200b\u200c\u200d\u2060\ufeff"],
        ("…", "..."),
        ("•", "-"),
        ("×", "x"),
        ("e\u0301", "é"),  # decomposed é composes to the GSM-7 letter
        ("\u2126", "Ω"),  # OHM SIGN
    ],
)
def test_normalise_maps_to_gsm7(char: str, replacement: str) -> None:
    assert not is_gsm7(char)
    assert normalise_for_gsm(char) == replacement
    assert is_gsm7(replacement)


def test_normalise_a_pasted_notice() -> None:
    pasted = "“Vi är öppna” \u2013 ring\u00a0oss\u200b… det är lugnt’"
    assert normalise_for_gsm(pasted) == '"Vi är öppna" - ring oss... det är lugnt\''
    assert analyse(normalise_for_gsm(pasted)).encoding is Encoding.GSM7


def test_normalise_is_idempotent_on_examples() -> None:
    for text in ["“Hi” – …", "e\u200b\u0301", "Γειά σου “φίλε”", "x\u00d7\u0307"]:
        once = normalise_for_gsm(text)
        assert normalise_for_gsm(once) == once


def test_normalise_composes_across_removed_invisible_character() -> None:
    assert normalise_for_gsm("Cafe\u200b\u0301") == "Café"


@pytest.mark.parametrize("text", ["Γειά σου", "België", EMOJI, "ë\u0301"])
def test_normalise_leaves_characters_without_gsm7_equivalent(text: str) -> None:
    assert normalise_for_gsm(text) == text


def test_normalise_has_no_greek_mappings() -> None:
    assert normalise_for_gsm("Γειά σου “φίλε”") == 'Γειά σου "φίλε"'
    assert analyse(normalise_for_gsm("Γειά σου “φίλε”")).encoding is Encoding.UCS2


# --- properties --------------------------------------------------------------

SPECIALS = [
    "€", "[", "|", "\f", "ë", "α", "`", "\x1b", EMOJI, "\U0001f3fd",
    "‘", "“", "–", "…", "\u00a0", "\u200b", "\u00ad", "\u0301", "\u0308", "×",
]  # fmt: skip
any_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(sorted(GSM7_BASIC_CHARACTERS)),
        st.sampled_from(sorted(GSM7_EXTENSION_CHARACTERS)),
        st.sampled_from(SPECIALS),
        st.characters(),
    ),
    max_size=500,
)
gsm7_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(sorted(GSM7_BASIC_CHARACTERS)),
        st.sampled_from(sorted(GSM7_EXTENSION_CHARACTERS)),
    ),
    max_size=700,
)
ucs2_text = st.builds(
    lambda head, tail: head + tail,
    st.text(alphabet=st.sampled_from(["a", EMOJI]), max_size=300),
    st.text(alphabet=st.sampled_from(["b", "ë", "\U0001f44d"]), min_size=1, max_size=100).filter(
        lambda tail: not is_gsm7(tail)
    ),
)
texts = st.one_of(any_text, gsm7_text, ucs2_text)


@settings(max_examples=400)
@given(texts)
def test_segments_join_back_to_the_text(text: str) -> None:
    assert "".join(split_segments(text)) == text


@settings(max_examples=400)
@given(texts)
def test_segment_count_matches_split(text: str) -> None:
    assert len(split_segments(text)) == analyse(text).segments


@settings(max_examples=400)
@given(texts)
def test_segments_fit_their_limit_and_are_full(text: str) -> None:
    fit = analyse(text)
    segments = split_segments(text)
    limit = single_limit(fit.encoding) if len(segments) == 1 else segment_limit(fit.encoding)
    assert all(units_in(segment, fit.encoding) <= limit for segment in segments)
    for segment, following in pairwise(segments):
        assert units_in(segment + following[0], fit.encoding) > limit  # greedy: nothing more fits


@settings(max_examples=400)
@given(texts)
def test_split_matches_character_by_character_reference(text: str) -> None:
    assert split_segments(text) == reference_segments(text)


@settings(max_examples=300)
@given(texts)
def test_analyse_is_consistent(text: str) -> None:
    fit = analyse(text)
    assert fit.characters == len(text)
    assert fit.encoding is (Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2)
    assert fit.units == units_in(text, fit.encoding)
    assert fit.non_gsm_characters == tuple(dict.fromkeys(c for c in text if c not in GSM7_CHARACTERS))
    assert fit.non_gsm_characters == non_gsm_characters(text)


@settings(max_examples=300)
@given(gsm7_text)
def test_normalise_never_changes_gsm7_text(text: str) -> None:
    assert normalise_for_gsm(text) == text


@settings(max_examples=400)
@given(any_text)
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise_for_gsm(text)
    assert normalise_for_gsm(once) == once


@settings(max_examples=400)
@given(any_text)
def test_normalise_never_introduces_non_gsm_characters(text: str) -> None:
    assert set(non_gsm_characters(normalise_for_gsm(text))) <= set(non_gsm_characters(text))


@pytest.mark.parametrize("char", sorted(GSM7_CHARACTERS))
def test_every_gsm7_character_is_gsm7_in_ascii_and_unicode_text(char: str) -> None:
    septets = 2 if char in GSM7_EXTENSION_CHARACTERS else 1
    assert analyse("a" + char) == SmsFit(Encoding.GSM7, 2, 1 + septets, 1, ())
    assert analyse("Ä" + char) == SmsFit(Encoding.GSM7, 2, 1 + septets, 1, ())


@pytest.mark.parametrize("char", [chr(code) for code in range(128) if chr(code) not in GSM7_CHARACTERS])
def test_every_other_ascii_character_forces_ucs2(char: str) -> None:
    assert analyse("a" + char) == SmsFit(Encoding.UCS2, 2, 2, 1, (char,))
    assert analyse("Ä" + char) == SmsFit(Encoding.UCS2, 2, 2, 1, (char,))
