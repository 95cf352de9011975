"""Rendering: sandbox, escaping, locale fallback, channel fit, reuse of reader-independent renders."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from crisiscomms.loader import load_playbook
from crisiscomms.render import BannerContent, EmailContent, NoticeRenderer, SmsContent
from crisiscomms.template_store import TemplateRenderError
from crisiscomms.validate import validate_file

from .conftest import DATA

STOCKHOLM = dt.timezone(dt.timedelta(hours=1))
WEDNESDAY_NOON = dt.datetime(2026, 11, 25, 12, tzinfo=STOCKHOLM)
SUNDAY_NIGHT = dt.datetime(2026, 11, 29, 3, tzinfo=STOCKHOLM)


def make_project(tmp_path: Path, templates: dict[str, str] | None = None, playbook_edit: tuple[str, str] | None = None
                 ) -> Path:
    """A copy of the minimal playbook and its templates, with some files replaced."""
    shutil.copytree(DATA / "templates", tmp_path / "templates")
    (tmp_path / "playbooks").mkdir()
    text = (DATA / "playbooks" / "minimal.yaml").read_text(encoding="utf-8")
    if playbook_edit:
        text = text.replace(*playbook_edit)
    path = tmp_path / "playbooks" / "p.yaml"
    path.write_text(text, encoding="utf-8")
    for name, source in (templates or {}).items():
        target = tmp_path / "templates" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
    return path


def renderer_for(path: Path, at: dt.datetime = WEDNESDAY_NOON) -> NoticeRenderer:
    loaded = load_playbook(path)
    return NoticeRenderer.for_playbook(loaded.require(), loaded.base_dir, "outage", at)


def recipient(name: str = "Anna", locale: str = "en") -> dict[str, str]:
    return {"id": "r1", "name": name, "locale": locale, "timezone": "Europe/Stockholm"}


def template_errors(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.chdir(path.parent.parent)
    return [d.as_text() for d in validate_file(path).diagnostics if d.severity == "error"]


@pytest.mark.parametrize(("source", "message"), [
    ("{{ org.name.__class__ }}", "not allowed in a template: access to attribute '__class__' of 'str' object is "
                                 "unsafe."),
    ("{{ org.__class__.__mro__ }}", "not allowed in a template: access to attribute '__class__' of 'dict' object is "
                                    "unsafe."),
    ("{{ cycler.__init__.__globals__ }}", "not allowed in a template: access to attribute '__init__' of 'type' "
                                          "object is unsafe."),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "not allowed in a template: access to attribute "
                                                       "'__class__' of 'str' object is unsafe."),
    ("{% for i in range(10**9) %}{% endfor %}", "not allowed in a template: Range too big. The sandbox blocks "
                                                "ranges larger than MAX_RANGE (100000)."),
    ("{{ recipient.name|attr('__class__') }}", "not allowed in a template: access to attribute '__class__' of "
                                               "'str' object is unsafe."),
])
def test_sandbox_escapes_fail_cleanly_with_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str,
                                                 message: str) -> None:
    path = make_project(tmp_path, {"outage/en/email_subject.txt": f"Hello\n{source}\n"})
    assert template_errors(path, monkeypatch) == [f"templates/outage/en/email_subject.txt:2: error: {message}"]


def test_templates_cannot_load_files_outside_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secret.txt").write_text("TOKEN", encoding="utf-8")
    path = make_project(tmp_path, {"outage/en/email_subject.txt": '{% include "../secret.txt" %}'})
    assert template_errors(path, monkeypatch) == [
        "templates/outage/en/email_subject.txt:1: error: template not found: ../secret.txt"]


def test_syntax_error_and_undefined_variable_are_located(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_project(tmp_path, {"outage/sv/sms.txt": "Hej\n{% if %}\n",
                                   "outage/sv/banner_title.txt": "Avbrott\n{{ vars.areaa }}"})
    assert template_errors(path, monkeypatch) == [
        "templates/outage/sv/banner_title.txt:2: error: undefined variable: 'vars.areaa' is undefined",
        "templates/outage/sv/sms.txt:2: error: template syntax: Expected an expression, got 'end of statement block'",
    ]


def test_html_is_escaped_text_is_not(tmp_path: Path) -> None:
    renderer = renderer_for(make_project(tmp_path))
    content = renderer.render("email", "en", "Europe/Stockholm", recipient("<script>alert(1)</script>"))
    assert isinstance(content, EmailContent)
    assert "<p>Hello &lt;script&gt;alert(1)&lt;/script&gt;</p>" in content.html
    assert "<script>" not in content.html
    assert content.text.startswith("Hello <script>alert(1)</script>,")


def test_missing_locale_template_falls_back_with_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_project(tmp_path)
    (tmp_path / "templates" / "outage" / "sv" / "banner_body.txt").unlink()
    monkeypatch.chdir(tmp_path)
    result = validate_file(path)
    assert [d.as_text() for d in result.diagnostics] == [
        "templates/outage/sv/banner_body.txt: warning: missing; sv readers get the whole en banner "
        "(templates/outage/en/), so that no message mixes languages; add the files, or declare it in "
        "organisation.locale_fallbacks"]
    banner = renderer_for(path).render("banner", "sv", "Europe/Stockholm", None)
    assert isinstance(banner, BannerContent)
    # The whole banner is the English one (title too): never a Swedish title over an English body.
    assert (banner.title, banner.text_locale) == ("Outage in Northern district", "en")
    assert banner.body == "Technical problems: https://test.example/chat. Emergencies: +46 8 123 456 78."


def test_sms_over_budget_names_locale_count_and_characters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    greek = "Σας ενημερώνουμε για διακοπή ρεύματος στην περιοχή σας. " * 3
    path = make_project(tmp_path, {"outage/sv/sms.txt": greek})
    assert template_errors(path, monkeypatch) == [
        "templates/outage/sv/sms.txt: error: SMS in sv is 3 segments (UCS-2, 167 characters); notice 'outage' "
        "allows 2 (sms_segments); UCS-2 because of: α ς ε ν η μ ρ ώ ο υ γ ι …"]


def test_a_locale_may_have_its_own_sms_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    greek = "Σας ενημερώνουμε για διακοπή ρεύματος στην περιοχή σας. " * 3
    raised = ("    expires:", "    sms_segments_by_locale: {sv: 3}\n    expires:")
    path = make_project(tmp_path, {"outage/sv/sms.txt": greek}, raised)
    assert template_errors(path, monkeypatch) == []
    path = make_project(tmp_path / "b", {"outage/sv/sms.txt": greek * 2}, raised)
    assert template_errors(path, monkeypatch) == [
        "templates/outage/sv/sms.txt: error: SMS in sv is 5 segments (UCS-2, 335 characters); notice 'outage' "
        "allows 3 (sms_segments_by_locale); UCS-2 because of: α ς ε ν η μ ρ ώ ο υ γ ι …"]


def test_a_budget_for_an_unknown_locale_is_an_error(tmp_path: Path) -> None:
    path = make_project(tmp_path, playbook_edit=("    expires:", "    sms_segments_by_locale: {de: 3}\n    expires:"))
    result = validate_file(path)
    assert [d.as_text() for d in result.diagnostics] == [
        f"{path}:44:30: error: 'de' is not one of the organisation's locales (en, sv)"]


def test_smart_encoding_keeps_sms_gsm7(tmp_path: Path) -> None:
    path = make_project(tmp_path, {"outage/en/sms.txt": "“Storm” — call us… {{ reach[0].best.hours }}"})
    content = renderer_for(path).render("sms", "en", "Europe/Stockholm", recipient())
    assert isinstance(content, SmsContent)
    assert content.text == '"Storm" - call us... Mon-Fri 08:00 - 20:00, Sat 10:00 - 16:00'
    assert content.fit.encoding.value == "GSM-7"


def test_routes_open_and_closed_with_fallback(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    open_context = renderer_for(path, WEDNESDAY_NOON).shared_context("sv", "Europe/Stockholm")
    technical = open_context["reach"][0]
    assert (technical["best_open"], technical["use"]["id"], technical["best"]["closes"]) == (True, "chat", "20:00")
    closed_context = renderer_for(path, SUNDAY_NIGHT).shared_context("sv", "Europe/Stockholm")
    technical = closed_context["reach"][0]
    assert technical["best_open"] is False
    assert technical["alternative"]["id"] == "hotline"
    assert technical["use"]["id"] == "hotline"
    assert technical["best"]["opens"] == "i morgon kl. 08:00"  # Sunday 03:00: CLDR's word for tomorrow
    assert technical["best"]["hours"] == "mån–fre 08:00–20:00, lör 10:00–16:00"


def test_hours_show_zone_when_reader_is_elsewhere(tmp_path: Path) -> None:
    context = renderer_for(make_project(tmp_path)).shared_context("en", "Europe/London")
    assert context["reach"][0]["best"]["hours"] == "Mon–Fri 08:00\u2009–\u200920:00, Sat 10:00\u2009–\u200916:00 " \
                                                   "(Sweden Time)"
    assert context["reach"][0]["best"]["closes"] == "19:00"  # 20:00 in Stockholm is 19:00 in London


def test_reader_independent_renders_are_reused(tmp_path: Path) -> None:
    renderer = renderer_for(make_project(tmp_path))
    first = renderer.render("sms", "en", "Europe/Stockholm", recipient("A"))
    second = renderer.render("sms", "en", "Europe/Stockholm", recipient("B"))
    assert first is second  # sms.txt never mentions recipient
    email_a = renderer.render("email", "en", "Europe/Stockholm", recipient("A"))
    email_b = renderer.render("email", "en", "Europe/Stockholm", recipient("B"))
    assert email_a != email_b


def test_render_error_is_a_template_error(tmp_path: Path) -> None:
    path = make_project(tmp_path, {"outage/en/sms.txt": "{{ nope }}"})
    with pytest.raises(TemplateRenderError) as caught:
        renderer_for(path).render("sms", "en", "Europe/Stockholm", recipient())
    assert caught.value.exit_code == 3
    assert str(caught.value).endswith("outage/en/sms.txt:1: undefined variable: 'nope' is undefined")


def test_date_filters_use_reader_locale_and_zone(tmp_path: Path) -> None:
    path = make_project(tmp_path, {"outage/sv/email_subject.txt": "Gäller till {{ notice.expires|datetime }}",
                                   "outage/en/email_subject.txt": "Until {{ notice.expires|date }} "
                                                                  "{{ notice.expires|time }}"})
    renderer = renderer_for(path)
    sv = renderer.render("email", "sv", "Europe/Stockholm", recipient(locale="sv"))
    en = renderer.render("email", "en", "Europe/London", recipient())
    assert sv.subject == "Gäller till 1 dec. 2026 18:00"  # type: ignore[union-attr]
    assert en.subject == "Until Dec 1, 2026 17:00"  # type: ignore[union-attr]


def test_special_hours_midnight_close_and_shortcuts(tmp_path: Path) -> None:
    path = make_project(tmp_path, playbook_edit=(
        "      - date: 2026-12-24\n        hours: closed",
        "      - date: 2026-12-24\n        hours: closed\n"
        "      - from: 2026-11-23\n        to: 2026-11-27\n        hours: \"08:00-24:00\"\n"
        "        note: {en: Extended storm hours, sv: Förlängda öppettider under stormen}"))
    context = renderer_for(path, WEDNESDAY_NOON).shared_context("sv", "Europe/Stockholm")
    chat = context["reach"][0]["best"]
    assert chat["special"] == {"hours": "08:00–24:00", "period": "23–27 nov.", "now": True,
                               "note": "Förlängda öppettider under stormen"}
    assert chat["closes"] == "24:00"
    assert context["hotline"]["id"] == "hotline"
    assert context["status_link"]["url"] == "https://status.test.example"


def test_templates_cannot_change_what_the_next_reader_sees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shared context (reach, links, vars) is reused across readers: a template must not be able to mutate it."""
    path = make_project(tmp_path, {"outage/en/email_subject.txt": "{{ links.append(recipient.name) }}"})
    assert template_errors(path, monkeypatch) == [
        "templates/outage/en/email_subject.txt:1: error: not allowed in a template: access to attribute 'append' "
        "of 'list' object is unsafe."]


STORM_EXTENSION = """    exceptions:
      - from: 2026-10-14T06:00
        to: "2026-10-15T18:00"
        hours: always
        note: {en: Open around the clock during the storm, sv: Öppet dygnet runt under stormen}
"""


def test_open_until_honours_a_timed_exception(tmp_path: Path) -> None:
    """Regression: a 24/7 extension 14 Oct 06:00 - 15 Oct 18:00; at 23:30 the e-mail said "Open now, until 22:00"."""
    path = make_project(tmp_path, playbook_edit=(
        '      mon-fri: "08:00-20:00"\n      sat: "10:00-16:00"\n    exceptions:\n      - date: 2026-12-24\n'
        '        hours: closed\n', '      daily: "08:00-22:00"\n' + STORM_EXTENSION))
    late = dt.datetime(2026, 10, 14, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    view = renderer_for(path, late).shared_context("en", "Europe/Stockholm")["reach"][0]["best"]
    assert (view["open_now"], view["closes"], view["opens"]) == (True, "tomorrow at 22:00", None)
    assert view["today"] == "06:00\u2009–\u200924:00"
    assert view["special"] == {"hours": "24/7", "period": "Oct 14, 06:00\u2009–\u2009Oct 15, 18:00",
                               "note": "Open around the clock during the storm", "now": True}
    early = dt.datetime(2026, 10, 14, 5, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    before = renderer_for(path, early).shared_context("sv", "Europe/Stockholm")["reach"][0]["best"]
    assert (before["open_now"], before["opens"]) == (False, "i dag kl. 06:00")
    assert before["special"]["now"] is False and before["special"]["note"] == "Öppet dygnet runt under stormen"
