"""The shipped example playbooks: valid without warnings, every notice renders in every locale and fits."""

from __future__ import annotations

import json

import pytest

from crisiscomms.loader import load_playbook

from .conftest import ROOT, run_cli

PLAYBOOKS = sorted((ROOT / "playbooks").glob("*.yaml"))


def test_there_are_two_different_crises_in_six_languages() -> None:
    assert len(PLAYBOOKS) >= 2
    for path in PLAYBOOKS:
        playbook = load_playbook(path).require()
        assert set(playbook.organisation.locales) >= {"en", "sv", "da", "nb", "nl", "el"}
        assert any(set(n.channels) >= {"sms", "email", "banner"} for n in playbook.notices.values())
        assert path.read_text(encoding="utf-8").startswith("# yaml-language-server: $schema=")


def test_validate_strict_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = run_cli("validate", "--strict", "playbooks")
    assert result.code == 0, result.stdout
    assert result.stdout.endswith("0 errors, 0 warnings — valid\n")


@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda p: p.stem)
@pytest.mark.parametrize("at", ["2026-12-02T12:00+01:00", "2026-12-06T03:00+01:00", "2026-12-24T15:00+01:00"])
def test_every_notice_renders_in_every_locale_at_day_and_night(path: object, at: str) -> None:
    playbook = load_playbook(path).require()  # type: ignore[arg-type]
    for notice_id, notice in playbook.notices.items():
        result = run_cli("preview", str(path), "--notice", notice_id, "--format", "json", "--at", at)
        assert result.code == 0, result.stderr
        locales = json.loads(result.stdout)["locales"]
        assert set(locales) == set(playbook.organisation.reader_locales)  # with declared fallbacks (de, fi)
        for locale, channels in locales.items():
            texts = set(notice.channels) - ({"banner"} if notice.withdraws_banner else set()) - {"cap"}
            assert set(channels) == texts  # an all-clear's banner is the withdrawal; the CAP alert: crisiscomms cap
            if "sms" in channels:
                assert channels["sms"]["segments"] <= notice.segment_budget(locale), (notice_id, locale)
                assert channels["sms"]["text"]
            if "email" in channels:
                assert channels["email"]["subject"] and channels["email"]["text"] and channels["email"]["html"]
                assert len(channels["email"]["subject"]) <= 78
            if "banner" in channels:
                assert 0 < len(channels["banner"]["title"]) <= 90
            if "voice" in channels:
                assert channels["voice"]["text"].startswith(("This is", "Det här är", "Dette er", "Dit is", "Εδώ"))


def sms_texts(path: object, notice_id: str, at: str) -> dict[str, dict[str, object]]:
    result = run_cli("preview", str(path), "--notice", notice_id, "--format", "json", "--at", at)
    assert result.code == 0, result.stderr
    return {locale: channels["sms"] for locale, channels in json.loads(result.stdout)["locales"].items()}


STORM = ROOT / "playbooks" / "nordvind-storm.yaml"
CLINIC = ROOT / "playbooks" / "lindholmen-clinic.yaml"


@pytest.mark.parametrize(("path", "notice", "at", "facts"), [
    (STORM, "storm-outage", "2026-12-05T14:00+01:00", {
        "en": ["storm", "Gothenburg and northern Halland", "Sun 6 Dec, 20:00", "+46 8 465 004 10 (24/7)"],
        "el": ["καταιγίδας", "Γκέτεμποργκ και βόρειο Χάλαντ", "Κυρ. 6/12, 20:00", "+46 8 465 004 10 (24ωρο)"]}),
    (STORM, "power-restored", "2026-12-07T10:00+01:00", {
        "en": ["Gothenburg and northern Halland", "+46 8 465 004 10 (24/7)"],
        "el": ["Γκέτεμποργκ και βόρειο Χάλαντ", "+46 8 465 004 10 (24ωρο)"]}),
    (CLINIC, "clinic-closure", "2027-01-08T10:00+01:00", {
        "en": ["pandemic", "Monday 11 January", "video or phone", "+46 31 390 06 10 (24/7)", "112"],
        "el": ["πανδημίας", "Δευτέρα 11 Ιανουαρίου", "βίντεο/τηλέφωνο", "+46 31 390 06 10 (24ωρο)", "112"]}),
    (CLINIC, "clinic-reopening", "2027-01-29T10:00+01:00", {
        "en": ["Monday 1 February", "Booked appointments still apply"],
        "el": ["Δευτέρα 1 Φεβρουαρίου", "Τα ραντεβού σας ισχύουν"]}),
])
def test_the_greek_sms_carries_the_facts_the_others_carry(path: object, notice: str, at: str,
                                                         facts: dict[str, list[str]]) -> None:
    texts = sms_texts(path, notice, at)
    for locale, wanted in facts.items():
        text = str(texts[locale]["text"])
        assert [fact for fact in wanted if fact not in text] == [], (locale, text)


@pytest.mark.parametrize(("path", "notice", "at"), [
    (STORM, "storm-outage", "2026-12-05T14:00+01:00"), (STORM, "power-restored", "2026-12-07T10:00+01:00"),
    (CLINIC, "clinic-closure", "2027-01-08T10:00+01:00"), (CLINIC, "clinic-reopening", "2027-01-29T10:00+01:00")])
def test_sms_in_latin_script_stays_gsm_7(path: object, notice: str, at: str) -> None:
    """No en dash, curly quote or other non-GSM character turns a Latin-script SMS into UCS-2."""
    for locale, sms in sms_texts(path, notice, at).items():
        if locale != "el":
            assert sms["encoding"] == "GSM-7", (locale, sms["text"])
            assert "–" not in str(sms["text"])


def test_the_reopening_sms_costs_one_segment_where_the_script_allows() -> None:
    segments = {loc: sms["segments"] for loc, sms in sms_texts(CLINIC, "clinic-reopening",
                                                               "2027-01-29T10:00+01:00").items()}
    assert segments == {"en": 1, "sv": 1, "da": 1, "nb": 1, "nl": 1, "el": 2}


def test_the_native_reviews_wording_is_in_the_shipped_texts() -> None:
    """shared/reviews/shipped-texts.md: da 1 (the call), nb 1 and nl 1 (the CAP area), en 5 (the clinic's note)."""
    voice = (ROOT / "templates" / "storm-outage" / "da" / "voice.txt").read_text(encoding="utf-8")
    assert "Stormen har slået strømmen ud i" in voice and "givet strømafbrydelser" not in voice
    storm = STORM.read_text(encoding="utf-8")
    assert "nordlige Halland" not in storm.replace("det nordlige Halland", "") and "Noord-Halland" not in storm
    clinic = CLINIC.read_text(encoding="utf-8")
    assert "en: Extended phone hours while we do not see patients in person" in clinic
    assert "{date: 12-24, hours: closed}" in clinic  # holidays recur every year, as the storm playbook's do
