"""What a call can say: languages Twilio speaks, voices, the length of a reading; and validate's checks of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from crisiscomms.playbook import VoiceSettings
from crisiscomms.render import spoken_digits
from crisiscomms.speech import say_language, say_voice, spoken_seconds, spoken_words, voice_problem

from .conftest import ROOT, run_cli

STORM = ROOT / "playbooks" / "nordvind-storm.yaml"


def settings(**values: object) -> VoiceSettings:
    return VoiceSettings.model_validate({"from": "+46812345678", **values})


@pytest.mark.parametrize(("locale", "language", "voice"), [
    ("sv", "sv-SE", "Polly.Astrid"), ("da", "da-DK", "Polly.Naja"), ("nb", "nb-NO", "Polly.Liv"),
    ("nl", "nl-NL", "Polly.Lotte"), ("el", "el-GR", "Google.el-GR-Standard-A"), ("en", "en-GB", "Polly.Amy"),
    ("en_US", "en-US", "Polly.Joanna"),
])
def test_default_language_and_voice_per_locale(locale: str, language: str, voice: str) -> None:
    assert (say_language(locale, settings()), say_voice(locale, settings())) == (language, voice)
    assert voice_problem(language, voice) is None


def test_problems_twilio_would_have() -> None:
    assert voice_problem("xx-XX", None) is not None and voice_problem("xx-XX", None).startswith(  # type: ignore[union-attr]
        "Twilio <Say> cannot speak xx-XX (crisiscomms knows: ")
    assert voice_problem("el-GR", "Polly.Astrid") == (
        "Amazon Polly has no el-GR voice at Twilio; use a Google voice such as Google.el-GR-Standard-A")
    assert voice_problem("sv-SE", "Google.da-DK-Standard-A") == "voice Google.da-DK-Standard-A does not speak sv-SE"
    assert voice_problem("sv-SE", "Astrid") == (
        "'Astrid' is not a Twilio voice (man, woman, Polly.<name> or Google.<language>-<name>)")
    assert voice_problem("sv-SE", "woman") is None


def test_length_counts_digits_one_by_one() -> None:
    assert spoken_words("Ring 08 465") == 6
    assert spoken_seconds("ord " * 150, 150) == 60
    assert spoken_seconds("ord " * 151, 150) == 61
    assert spoken_digits("+46 8 465 004 10") == "+ 4 6, 8, 4 6 5, 0 0 4, 1 0"
    assert spoken_digits("112") == "1 1 2"


def variant(tmp_path: Path, old: str, new: str) -> Path:
    text = STORM.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "storm.yaml"
    path.write_text(text.replace(old, new) + f"templates: {ROOT / 'templates'}\n", encoding="utf-8")
    return path


def line_of(path: Path, fragment: str) -> int:
    return next(n for n, row in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if fragment in row)


def test_validate_refuses_a_locale_twilio_cannot_speak(tmp_path: Path) -> None:
    path = variant(tmp_path, "      el: Google.el-GR-Standard-A\n", "      el: Polly.Astrid\n")
    result = run_cli("validate", str(path))
    assert result.code == 1
    assert (f"storm.yaml:{line_of(path, 'el: Polly.Astrid')}:11: error: calls in 'el': Amazon Polly has no el-GR "
            "voice at Twilio; use a Google voice such as Google.el-GR-Standard-A") in result.stdout
    unknown = variant(tmp_path, "    languages: {en: en-GB}", "    languages: {en: en-ZA}")
    result = run_cli("validate", str(unknown))
    assert result.code == 1 and "calls in 'en': Twilio <Say> cannot speak en-ZA" in result.stdout


def test_validate_checks_how_long_a_call_takes(tmp_path: Path) -> None:
    path = variant(tmp_path, "    max_seconds: 60 ", "    max_seconds: 20 ")
    result = run_cli("validate", str(path))
    assert result.code == 1
    assert ("templates/storm-outage/sv/voice.txt: error: voice message in sv takes about 33 seconds to say "
            "(140 words a minute); at most 20 (providers.voice.max_seconds) - it is said twice") in result.stdout
    faster = variant(tmp_path, "    max_seconds: 60 ",
                     "    words_per_minute: {sv: 300, en: 300, da: 300, nb: 300, nl: 300, el: 300}\n"
                     "    max_seconds: 20 ")
    assert run_cli("validate", str(faster)).code == 0


def test_a_bad_caller_id_or_quiet_hours_name_their_place(tmp_path: Path) -> None:
    path = variant(tmp_path, '    from: "+46 8 465 004 10"', '    from: "12"')
    result = run_cli("validate", str(path))
    assert result.code == 1
    assert f"storm.yaml:{line_of(path, 'from: ' + chr(34) + '12')}:11: error:" in result.stdout
    assert "'12' is not a valid phone number" in result.stdout
