"""``validate``'s template checks: the note about e-mails that cannot share SendGrid requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from crisiscomms.validate import validate_file

from .conftest import ROOT, run_cli
from .test_render import make_project


def notes(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.chdir(path.parent.parent)
    return [d.as_text() for d in validate_file(path).diagnostics if d.severity == "note"]


def test_a_filter_on_a_recipient_value_is_a_note_naming_the_template_and_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_project(tmp_path, {"outage/sv/email.txt": "Hej!\n\n{{ recipient.name|title }}\n"})
    result = validate_file(path)
    assert result.errors == [] and result.warnings == []
    assert notes(path, monkeypatch) == [
        "templates/outage/sv/email.txt:3: note: personalised e-mails cannot share SendGrid requests: the template applies "
        "the filter 'title' to 'recipient.name', which substitution cannot reproduce; each distinct e-mail goes as "
        "a request of its own"]


def test_a_layout_shared_by_every_language_gets_one_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_project(tmp_path, {"_layouts/email.html": "{% if recipient.name|length > 20 %}Hi{% endif %}"
                                                         "{% block content %}{% endblock %}"})
    assert notes(path, monkeypatch) == [
        "templates/_layouts/email.html:1: note: personalised e-mails cannot share SendGrid requests: the template applies "
        "the filter 'length' to 'recipient.name', which substitution cannot reproduce; each distinct e-mail goes "
        "as a request of its own"]


def test_the_shipped_playbooks_have_no_such_note() -> None:
    result = run_cli("validate", str(ROOT / "playbooks"))
    assert result.code == 0
    assert "cannot share SendGrid requests" not in result.stdout + result.stderr
