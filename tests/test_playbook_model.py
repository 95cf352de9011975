from __future__ import annotations

import json
from pathlib import Path

import pytest

from crisiscomms.errors import PlaybookInvalid
from crisiscomms.loader import load_playbook
from crisiscomms.playbook import playbook_json_schema

from .conftest import DATA, ROOT

MINIMAL = DATA / "playbooks" / "minimal.yaml"


def test_minimal_playbook_is_valid_and_normalised() -> None:
    loaded = load_playbook(MINIMAL)
    assert loaded.diagnostics == []
    playbook = loaded.require()
    assert playbook.routes["hotline"].phone == "+46812345678"
    assert playbook.routes["hotline"].contact == "+46812345678"
    assert playbook.route_hours["hotline"].is_always
    assert not playbook.route_hours["chat"].is_always
    assert playbook.providers.sms is not None and playbook.providers.sms.from_ == "+46700000000"
    assert playbook.notice_inquiries("outage") == ["technical", "emergency"]


def test_require_lists_every_error() -> None:
    loaded = load_playbook(DATA / "broken" / "bad-country.yaml", shown_path="bad-country.yaml")
    with pytest.raises(PlaybookInvalid) as caught:
        loaded.require()
    assert str(caught.value) == (
        "bad-country.yaml is not valid (2 errors):\n"
        "bad-country.yaml:5:12: error: 'SWE' is not a two-letter country code like SE, DK, NO, NL, GR, GB\n"
        "bad-country.yaml:25:12: error: '08-123 456 78' is not a valid phone number; write it with the "
        "country code, e.g. +46 8 123 456 78"
    )
    assert caught.value.exit_code == 3


def test_yaml_12_scalars_keep_norwegian_and_times(tmp_path: Path) -> None:
    text = MINIMAL.read_text(encoding="utf-8").replace("locales: [en, sv]", "locales: [en, sv, no]")
    text = text.replace("label: {en: Emergencies, sv: Akut fara}", "label: {en: Emergencies, sv: Akut fara, no: Akutt}")
    path = tmp_path / "p.yaml"
    path.write_text(text.replace("templates: ../templates", f"templates: {DATA / 'templates'}"), encoding="utf-8")
    loaded = load_playbook(path)
    playbook = loaded.require()
    assert "no" in playbook.organisation.locales  # 'no' stays the language code, not False
    assert playbook.inquiries["emergency"].label == {"en": "Emergencies", "sv": "Akut fara", "no": "Akutt"}


def test_uncovered_hours_warning_names_the_gap(tmp_path: Path) -> None:
    text = MINIMAL.read_text(encoding="utf-8").replace("    fallbacks: [hotline]\n", "")
    path = tmp_path / "p.yaml"
    path.write_text(text.replace("templates: ../templates", f"templates: {DATA / 'templates'}"), encoding="utf-8")
    warnings = [d.message for d in load_playbook(path).diagnostics if d.severity == "warning"]
    assert warnings == [
        "'technical': 'chat' can be closed and no fallback is open mon 20:00–tue 08:00, tue 20:00–wed 08:00, "
        "wed 20:00–thu 08:00, thu 20:00–fri 08:00, fri 20:00–sat 10:00, sat 16:00–mon 08:00 "
        "(Europe/Stockholm); add a fallback route that is open then",
        "'technical': no route for it is open at all on 2026-12-24 (holiday exceptions); add a fallback that "
        "stays open",
    ]


def test_json_schema_is_shipped_and_current() -> None:
    shipped = json.loads((ROOT / "docs" / "playbook.schema.json").read_text(encoding="utf-8"))
    assert shipped == playbook_json_schema()
    assert shipped["properties"]["routes"]["type"] == "object"
    assert "additionalProperties" in shipped["$defs"]["Route"]
