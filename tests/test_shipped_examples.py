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
        assert any(set(n.channels) == {"sms", "email", "banner"} for n in playbook.notices.values())
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
            assert set(channels) == set(notice.channels)
            if "sms" in channels:
                assert channels["sms"]["segments"] <= notice.sms_segments, (notice_id, locale)
                assert channels["sms"]["text"]
            if "email" in channels:
                assert channels["email"]["subject"] and channels["email"]["text"] and channels["email"]["html"]
                assert len(channels["email"]["subject"]) <= 78
            if "banner" in channels:
                assert 0 < len(channels["banner"]["title"]) <= 90
