from __future__ import annotations

import pytest

from crisiscomms.locales import fallback_chain, negotiate_locale

SUPPORTED = ("en", "sv", "da", "nb", "nl", "el")


@pytest.mark.parametrize(("requested", "expected"), [
    ("sv-SE", "sv"), ("sv_FI", "sv"), ("SV", "sv"), (" sv-se ", "sv"),
    ("nb-NO", "nb"), ("no", "nb"), ("NO", "nb"), ("nn", "nb"),
    ("nl_BE", "nl"), ("nl", "nl"), ("da_DK", "da"), ("el-GR", "el"), ("el", "el"), ("en_US", "en"),
    ("pt-BR", "en"), ("", "en"), (None, "en"), ("xx", "en"), ("123", "en"),
])
def test_negotiation_table(requested: str | None, expected: str) -> None:
    assert negotiate_locale(requested, SUPPORTED, "en") == expected


def test_default_is_the_playbooks() -> None:
    assert negotiate_locale("pt-BR", SUPPORTED, "sv") == "sv"


@pytest.mark.parametrize(("requested", "expected"), [
    ("en-GB", "en_GB"), ("en_GB", "en_GB"), ("en", "en_GB"), ("en-IE", "en_GB"), ("EN", "en_GB"),
    ("sv-FI", "sv"), ("de", "sv"),
])
def test_region_variants_negotiate_both_ways(requested: str, expected: str) -> None:
    """A folder en-GB serves en-GB readers, and plain en or en-IE readers when there is no en."""
    assert negotiate_locale(requested, ("en_GB", "sv"), "sv") == expected


def test_an_exact_language_beats_a_region_variant() -> None:
    assert negotiate_locale("en-IE", ("en_GB", "en", "sv"), "sv") == "en"
    assert negotiate_locale("en-GB", ("en", "en_GB"), "en") == "en_GB"


def test_fallback_chains() -> None:
    assert fallback_chain("de", {"de": "en"}, "sv") == ["de", "en", "sv"]
    assert fallback_chain("nn", {"nn": "nb", "nb": "da"}, "sv") == ["nn", "nb", "da", "sv"]
    assert fallback_chain("de_AT", {"de": "en"}, "sv") == ["de_AT", "de", "en", "sv"]
    assert fallback_chain("de", {"de": "en", "en": "de"}, "sv") == ["de", "en", "sv"]  # a loop ends
    assert fallback_chain("fi", {}, "sv") == ["fi", "sv"]
