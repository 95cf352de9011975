"""Language fallbacks: declared chains, whole messages in one language, region variants, and where it shows."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from crisiscomms.render import EmailContent, SmsContent

from .conftest import run_cli
from .test_render import make_project, renderer_for

AT = "2026-11-25T12:00+01:00"
WEDNESDAY_NOON = dt.datetime(2026, 11, 25, 12, tzinfo=dt.timezone(dt.timedelta(hours=1)))
THREE_LOCALES = ("  default_locale: en\n  locales: [en, sv]\n", "  default_locale: en\n  locales: [en, sv, nb]\n")


def declared(fallbacks: str) -> tuple[str, str]:
    return THREE_LOCALES[0], THREE_LOCALES[1] + f"  locale_fallbacks: {fallbacks}\n"


def test_a_declared_fallback_is_a_note_and_strict_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_project(tmp_path, playbook_edit=declared("{nb: sv}"))
    monkeypatch.chdir(tmp_path)
    result = run_cli("validate", str(path), "--strict")
    assert result.code == 0, result.stdout
    assert ("templates/outage/nb/sms.txt: note: missing; nb readers get the whole sv SMS (templates/outage/sv/), "
            "so that no message mixes languages; as declared in organisation.locale_fallbacks") in result.stdout
    assert ": warning:" not in result.stdout


def test_an_undeclared_missing_locale_still_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_project(tmp_path, playbook_edit=THREE_LOCALES)
    monkeypatch.chdir(tmp_path)
    result = run_cli("validate", str(path), "--strict")
    assert result.code == 1
    assert ("templates/outage/nb/sms.txt: warning: missing; nb readers get the whole en SMS (templates/outage/en/), "
            "so that no message mixes languages; add the files, or declare it in organisation.locale_fallbacks"
            ) in result.stdout


def test_everything_in_a_message_follows_the_text_actually_used(tmp_path: Path) -> None:
    """A nb reader given the Swedish text gets Swedish hours, days and lang attribute: never nb words in it."""
    path = make_project(tmp_path, playbook_edit=declared("{nb: sv}"))
    renderer = renderer_for(path, WEDNESDAY_NOON)
    sms = renderer.render("sms", "nb", "Europe/Stockholm", None)
    assert isinstance(sms, SmsContent) and sms.text_locale == "sv"
    assert sms.text == ("Testbolaget: avbrott i Norra distriktet. Akut: +46 8 123 456 78 (dygnet runt). "
                        "https://status.test.example")
    email = renderer.render("email", "nb", "Europe/Stockholm", {"name": "Kari", "locale": "nb"})
    assert isinstance(email, EmailContent) and email.text_locale == "sv"
    assert '<html lang="sv">' in email.html
    assert "mån–fre 08:00–20:00" in email.text and "man." not in email.text


def test_a_fallback_for_an_unwritten_language(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """{de: sv}: German readers get the Swedish text (not the default English), and validate notes it."""
    path = make_project(tmp_path, playbook_edit=("  locales: [en, sv]\n", "  locales: [en, sv]\n"
                                                 "  locale_fallbacks: {de: sv}\n"))
    monkeypatch.chdir(tmp_path)
    result = run_cli("validate", str(path), "--strict")
    assert result.code == 0
    assert "playbooks/p.yaml:9:26: note: de readers get the sv text (declared here)\n" in result.stdout
    sms = renderer_for(path, WEDNESDAY_NOON).render("sms", "de", "Europe/Stockholm", None)
    assert isinstance(sms, SmsContent) and sms.text_locale == "sv"
    audience = tmp_path / "a.csv"
    audience.write_text("id,phone,email,locale\n1,+46701234567,a@example.org,de-AT\n2,+46701234568,,sv\n"
                        "3,+46701234569,,de\n", encoding="utf-8")
    dry = run_cli("send", str(path), "--notice", "outage", "--audience", str(audience), "--dry-run",
                  "--format", "json", "--at", AT, "--channels", "sms,email")
    assert json.loads(dry.stdout)["text_locales"] == {"de": {"sv": 3}, "sv": {"sv": 1}}
    text = run_cli("send", str(path), "--notice", "outage", "--audience", str(audience), "--dry-run", "--at", AT,
                   "--channels", "sms,email")
    assert "Fallback: 3 messages to de readers use the sv text" in text.stdout
    preview = json.loads(run_cli("preview", str(path), "--notice", "outage", "--locale", "de", "--format", "json",
                                 "--at", AT).stdout)
    assert preview["fallbacks"] == {"de": {"sms": "sv", "email": "sv", "banner": "sv"}}
    out = tmp_path / "p.html"
    run_cli("preview", str(path), "--notice", "outage", "--format", "html", "--out", str(out), "--locale", "de",
            "--at", AT)
    page = out.read_text(encoding="utf-8")
    assert '<h2 id="h-de">de <span class="fallback">fallback: shown in Swedish</span></h2>' in page
    assert '<figure lang="sv" class="card sms">' in page
    shown = run_cli("preview", str(path), "--notice", "outage", "--locale", "de", "--at", AT)
    assert "fallback: shown in Swedish" in shown.stdout


def test_a_region_folder_serves_its_language(tmp_path: Path) -> None:
    """A folder en-GB (hyphen or underscore) serves en-GB readers, and en and en-IE readers when no en exists."""
    path = make_project(tmp_path)
    text = path.read_text(encoding="utf-8").replace("{en: ", "{en-GB: ").replace(
        "  default_locale: en\n  locales: [en, sv]\n", "  default_locale: sv\n  locales: [en-GB, sv]\n")
    path.write_text(text, encoding="utf-8")
    shutil.move(tmp_path / "templates" / "outage" / "en", tmp_path / "templates" / "outage" / "en-GB")
    renderer = renderer_for(path, WEDNESDAY_NOON)
    from crisiscomms.locales import negotiate_locale

    readers = renderer.playbook.organisation.reader_locales
    assert [negotiate_locale(tag, readers, "sv") for tag in ("en-GB", "en", "en-IE", "en_US")] == ["en_GB"] * 4
    sms = renderer.render("sms", "en_GB", "Europe/Stockholm", None)
    assert isinstance(sms, SmsContent) and sms.text_locale == "en_GB"
    assert sms.text.startswith("Testbolaget: outage in Northern district. Emergencies: +46 8 123 456 78 (24/7).")
    assert renderer.template_names("sms", "en_GB") == [("outage/en-GB/sms.txt", False)]


def test_the_banner_document_says_whose_text_each_locale_has(tmp_path: Path) -> None:
    import jsonschema

    from crisiscomms.banner import build_banner_document

    from .conftest import ROOT

    path = make_project(tmp_path, playbook_edit=(
        THREE_LOCALES[0], THREE_LOCALES[1] + "  locale_fallbacks: {nb: sv, de: en}\n"))
    text = path.read_text(encoding="utf-8").replace(
        "      - date: 2026-12-24\n        hours: closed\n",
        "      - date: 12-24\n        hours: closed\n      - from: 2026-10-14T06:00\n        to: 2026-10-15T18:00\n"
        "        hours: always\n")
    path.write_text(text, encoding="utf-8")
    document = build_banner_document(renderer_for(path, WEDNESDAY_NOON))
    assert document["locales"]["nb"] == dict(document["locales"]["sv"], lang="sv")
    assert "lang" not in document["locales"]["sv"]
    assert document["locale_fallbacks"] == {"nb": "sv", "de": "en"}
    assert [(e["from"], e["to"]) for e in document["routes"]["chat"]["hours"]["exceptions"]] == [
        ("12-24", "12-24"), ("2026-10-14T06:00", "2026-10-15T18:00")]
    schema = json.loads((ROOT / "docs" / "banner.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)


def test_github_annotations_mark_a_declared_fallback_as_a_notice(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_project(tmp_path, playbook_edit=declared("{nb: sv}"))
    monkeypatch.chdir(tmp_path)
    result = run_cli("validate", str(path), "--strict", "--format", "github")
    assert result.code == 0
    assert result.stdout.startswith("::notice file=templates/outage/nb/")
