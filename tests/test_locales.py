from __future__ import annotations

import pytest

from crisiscomms.locales import negotiate_locale

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
