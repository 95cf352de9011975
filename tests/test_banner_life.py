"""The banner's whole life: publish without an audience, withdraw, and the all-clear that withdraws it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, run_cli

STORM = ROOT / "playbooks" / "nordvind-storm.yaml"
CLINIC = ROOT / "playbooks" / "lindholmen-clinic.yaml"
SCHEMA = ROOT / "docs" / "banner.schema.json"
AT = "2026-12-02T10:00+01:00"


def schema_errors(document: dict[str, Any]) -> list[str]:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return [error.message for error in validator.iter_errors(document)]


def read(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def test_publish_writes_the_notice_banner_without_an_audience(tmp_path: Path) -> None:
    out = tmp_path / "site" / "banner.json"
    result = run_cli("banner", "publish", str(STORM), "--notice", "storm-outage", "--banner-out", str(out),
                     "--at", AT)
    assert (result.code, result.stderr) == (0, "")
    assert result.stdout == (f"Published notice 'storm-outage' (critical) to {out}; it stops showing "
                             "Sun 6 Dec 20:00 Stockholm Time.\n")
    document = read(out)
    assert document["notice"] == {"id": "storm-outage", "severity": "critical", "issued": "2026-12-02T09:00:00Z",
                                  "expires": "2026-12-06T19:00:00Z"}
    assert schema_errors(document) == []
    assert list(tmp_path.joinpath("site").iterdir()) == [out]  # no temporary file left behind


def test_publish_is_the_same_document_a_send_writes(tmp_path: Path) -> None:
    published, sent = tmp_path / "published.json", tmp_path / "sent.json"
    assert run_cli("banner", "publish", str(STORM), "--notice", "storm-outage", "--banner-out", str(published),
                   "--at", AT).code == 0
    result = run_cli("send", str(STORM), "--notice", "storm-outage", "--audience", str(ROOT / "examples" /
                     "customers.csv"), "--channels", "banner", "--banner-out", str(sent), "--yes", "--at", AT,
                     "--ledger", str(tmp_path / "ledger.sqlite"))
    assert result.code == 0, result.stderr
    assert read(published) == read(sent)


def test_withdraw_writes_a_valid_no_notice_document(tmp_path: Path) -> None:
    out = tmp_path / "banner.json"
    assert run_cli("banner", "publish", str(STORM), "--notice", "storm-outage", "--banner-out", str(out),
                   "--at", AT).code == 0
    result = run_cli("banner", "withdraw", str(STORM), "--banner-out", str(out), "--at", "2026-12-07T09:30+01:00")
    assert (result.code, result.stdout) == (0, f"Withdrew the banner: {out} now says there is no notice.\n")
    document = read(out)
    assert document == {
        "format": "crisiscomms-banner", "version": 1,
        "organisation": {"name": "Nordvind Energi", "website": "https://nordvind.example",
                         "timezone": "Europe/Stockholm"},
        "notice": None, "withdrawn": {"at": "2026-12-07T08:30:00Z", "by": None}}
    assert schema_errors(document) == []
    assert schema_errors({**document, "withdrawn": {"at": "yesterday", "by": None}}) != []
    assert schema_errors({**document, "notice": None, "locales": {}}) != []


@pytest.mark.parametrize(("playbook", "notice"), [(STORM, "power-restored"), (CLINIC, "clinic-reopening")])
def test_the_shipped_all_clear_withdraws_the_banner_when_sent(tmp_path: Path, playbook: Path, notice: str) -> None:
    out = tmp_path / "banner.json"
    out.write_text('{"old": true}\n', encoding="utf-8")
    result = run_cli("send", str(playbook), "--notice", notice, "--audience", str(ROOT / "examples" /
                     "customers.csv"), "--channels", "banner", "--banner-out", str(out), "--yes", "--at",
                     "2026-12-07T10:00+01:00", "--ledger", str(tmp_path / "ledger.sqlite"))
    assert result.code == 0, result.stderr
    assert "Banner withdrawal (the site shows no notice) will be written to" in " ".join(result.stdout.split())
    document = read(out)
    assert (document["notice"], document["withdrawn"]) == (None, {"at": "2026-12-07T09:00:00Z", "by": notice})
    assert schema_errors(document) == []


def test_publish_of_an_all_clear_withdraws(tmp_path: Path) -> None:
    out = tmp_path / "banner.json"
    result = run_cli("banner", "publish", str(STORM), "--notice", "power-restored", "--banner-out", str(out))
    assert (result.code, result.stdout) == (
        0, f"Withdrew the banner (notice 'power-restored' is the all-clear): {out} now says there is no notice.\n")
    assert read(out)["notice"] is None


def test_preview_of_an_all_clear_says_it_withdraws_the_banner() -> None:
    result = run_cli("preview", str(STORM), "--notice", "power-restored", "--locale", "en", "--at", AT)
    assert result.code == 0, result.stderr
    assert "Website banner: withdrawn by this all-clear; after the send the site shows no notice." in \
        " ".join(result.stdout.split())
    page = run_cli("preview", str(STORM), "--notice", "power-restored", "--format", "html", "--at", AT).stdout
    assert "this all-clear <strong>withdraws</strong> the banner" in page and "ccb-document" not in page


def test_preview_banner_cards_take_the_notice_severity_colour() -> None:
    page = run_cli("preview", str(STORM), "--notice", "storm-outage", "--format", "html", "--at", AT).stdout
    assert page.count('<div class="bar sev-critical">') == 8  # six written locales, and fi, de by fallback
    assert ".bar.sev-critical {{ background: #a4161a".replace("{{", "{") in page
    assert ".bar.sev-warning { background: #ffcc33; color: #1b1f24; }" in page


def copy_of_storm(tmp_path: Path, old: str, new: str) -> Path:
    """The storm playbook with one change, placed so that its relative paths still resolve."""
    (tmp_path / "playbooks").mkdir(exist_ok=True)
    (tmp_path / "templates").symlink_to(ROOT / "templates")
    playbook = tmp_path / "playbooks" / "p.yaml"
    source = STORM.read_text(encoding="utf-8")
    assert old in source
    playbook.write_text(source.replace(old, new, 1), encoding="utf-8")
    return playbook


def test_publish_of_a_notice_without_a_banner_names_the_fix(tmp_path: Path) -> None:
    playbook = copy_of_storm(tmp_path, "channels: [sms, email, banner, voice]   # voice: landlines, and whoever "
                             "asks for calls\n", "channels: [sms, email]\n")
    result = run_cli("banner", "publish", str(playbook), "--notice", "storm-outage", "--banner-out",
                     str(tmp_path / "b.json"))
    assert (result.code, result.stderr) == (2, (
        "crisiscomms: notice 'storm-outage' does not use the banner channel (its channels: sms, email); add "
        "'banner' to its channels to publish it on the site\n"))
    assert not (tmp_path / "b.json").exists()


def test_withdraw_needs_the_banner_channel(tmp_path: Path) -> None:
    playbook = copy_of_storm(tmp_path, "channels: [sms, email, banner]\n    banner: withdraw",
                             "channels: [sms, email]\n    banner: withdraw")
    result = run_cli("validate", str(playbook))
    line = playbook.read_text(encoding="utf-8").splitlines().index("    banner: withdraw              # the all-clear: "
                                                                  "its send takes the site banner down") + 1
    assert (result.code, result.stdout) == (1, (
        f"{playbook}:{line}:13: error: 'banner': 'withdraw' takes the site banner down through the banner channel; "
        "add 'banner' to 'channels'\n1 playbook checked: 1 error, 0 warnings — NOT valid\n"))


def test_unwritable_banner_path_is_an_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "site"
    blocker.write_text("a file where the folder should be\n", encoding="utf-8")
    target = blocker / "banner.json"
    result = run_cli("banner", "withdraw", str(STORM), "--banner-out", str(target))
    assert (result.code, result.stderr) == (3, f"crisiscomms: cannot write the banner to {target}: File exists\n")
