from __future__ import annotations

import json
import re
from pathlib import Path

from .conftest import DATA, run_cli

PLAYBOOK = str(DATA / "playbooks" / "minimal.yaml")


def test_preview_json_shape() -> None:
    result = run_cli("preview", PLAYBOOK, "--notice", "outage", "--format", "json", "--at", "2026-11-25T12:00")
    assert result.code == 0
    preview = json.loads(result.stdout)
    assert preview["notice"] == "outage"
    assert list(preview["locales"]) == ["en", "sv"]
    sv = preview["locales"]["sv"]
    assert sv["sms"] == {
        "text": "Testbolaget: avbrott i Norra distriktet. Akut: +46 8 123 456 78 (dygnet runt). "
                "https://status.test.example",
        "encoding": "GSM-7", "characters": 106, "segments": 1}
    assert set(sv["email"]) == {"subject", "text", "html"}
    assert sv["banner"] == {"title": "Avbrott i Norra distriktet",
                            "body": "Tekniska problem: https://test.example/chat. Akut fara: +46 8 123 456 78."}


def test_preview_text_names_each_locale() -> None:
    result = run_cli("preview", PLAYBOOK, "--notice", "outage", "--locale", "sv", "--at", "2026-11-25T12:00")
    assert result.code == 0
    assert "GSM-7, 106 characters, 1 segment(s)" in result.stdout
    assert "─ sv ─" in result.stdout


def test_preview_html_is_self_contained(tmp_path: Path) -> None:
    out = tmp_path / "p.html"
    result = run_cli("preview", PLAYBOOK, "--notice", "outage", "--format", "html", "--out", str(out))
    assert result.code == 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?https?:""", page)
    assert page.count("<section aria-labelledby=") == 2 and page.count('<figure lang="sv" class="card') == 3
    assert 'sandbox=""' in page  # the e-mail is isolated


def test_preview_unknown_locale_and_notice() -> None:
    result = run_cli("preview", PLAYBOOK, "--notice", "outage", "--locale", "de")
    assert (result.code, result.stderr) == (
        2, "crisiscomms: locale de is not in the playbook (supported: en, sv)\n")
    result = run_cli("preview", PLAYBOOK, "--notice", "storm")
    assert result.code == 2
    assert result.stderr == f"crisiscomms: notice 'storm' is not in {PLAYBOOK} (its notices: outage)\n"


def test_preview_of_invalid_playbook_exits_3() -> None:
    broken = str(DATA / "broken" / "hours-25.yaml")
    result = run_cli("preview", broken, "--notice", "outage")
    assert result.code == 3
    assert result.stderr == (
        f"crisiscomms: {broken} is not valid (1 error):\n"
        f"{broken}:17:16: error: '25:00' is not a time of day (00:00 to 24:00)\n")


def test_preview_bad_at() -> None:
    result = run_cli("preview", PLAYBOOK, "--notice", "outage", "--at", "tomorrow")
    assert (result.code, result.stderr) == (
        2, "crisiscomms: --at 'tomorrow' is not an ISO 8601 time such as 2026-11-28T03:00+01:00\n")


def test_preview_shows_when_a_relative_expiry_ends_and_the_next_update(tmp_path: Path) -> None:
    from .test_render import make_project

    path = make_project(tmp_path, playbook_edit=("    expires: 2026-12-01T18:00:00+01:00\n",
                                                 "    expires: 36h\n    next_update: PT6H\n"))
    result = run_cli("preview", str(path), "--notice", "outage", "--format", "json", "--at", "2026-11-25T12:00")
    assert result.code == 0, result.stderr
    preview = json.loads(result.stdout)
    assert (preview["expires"], preview["expired"], preview["next_update"]) == (
        "2026-11-27T00:00+01:00", False, "2026-11-25T18:00+01:00")
    text = run_cli("preview", str(path), "--notice", "outage", "--locale", "en", "--at", "2026-11-25T12:00")
    assert "Expires Fri 27 Nov 00:00 Stockholm Time\nNext update Wed 25 Nov 18:00 Stockholm Time" \
        in text.stdout


def test_preview_of_an_expired_notice_says_so(tmp_path: Path) -> None:
    result = run_cli("preview", PLAYBOOK, "--notice", "outage", "--locale", "en", "--at", "2026-12-02T09:00")
    assert result.code == 0
    assert ("EXPIRED: this notice stopped being true at Tue 1 Dec 18:00 Stockholm Time, before the "
            "preview's moment (Wed 2 Dec 09:00 Stockholm Time); change 'expires' before sending it"
            ) in " ".join(result.stdout.split())
    assert json.loads(run_cli("preview", PLAYBOOK, "--notice", "outage", "--format", "json",
                              "--at", "2026-12-02T09:00").stdout)["expired"] is True
    out = tmp_path / "p.html"
    run_cli("preview", PLAYBOOK, "--notice", "outage", "--format", "html", "--out", str(out), "--at", "2026-12-02T09:00")
    assert '<p class="expired">EXPIRED: this notice stopped being true' in out.read_text(encoding="utf-8")
