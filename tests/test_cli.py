"""Exit codes and output formats of the command-line layer, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crisiscomms import __version__

from .conftest import DATA, run_cli

MINIMAL = str(DATA / "playbooks" / "minimal.yaml")
BROKEN = DATA / "broken"


def test_version() -> None:
    result = run_cli("--version")
    assert (result.code, result.stdout) == (0, f"crisiscomms, version {__version__}\n")


@pytest.mark.parametrize("command", ["validate", "schema", "send", "preview", "report"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.code == 0
    assert "Example" in result.stdout


def test_validate_ok_text(in_data_dir: Path) -> None:
    result = run_cli("validate", "playbooks")
    assert (result.code, result.stdout) == (0, "1 playbook checked: 0 errors, 0 warnings — valid\n")


def test_validate_error_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BROKEN)
    result = run_cli("validate", "hours-25.yaml")
    assert result.code == 1
    assert result.stdout == (
        "hours-25.yaml:17:16: error: '25:00' is not a time of day (00:00 to 24:00)\n"
        "1 playbook checked: 1 error, 0 warnings — NOT valid\n"
    )


def test_validate_github_annotations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BROKEN)
    result = run_cli("validate", "--format", "github", "hours-25.yaml")
    assert result.code == 1
    assert result.stdout == (
        "::error file=hours-25.yaml,line=17,col=16::'25:00' is not a time of day (00:00 to 24:00)\n"
    )


def test_validate_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BROKEN)
    result = run_cli("validate", "--format", "json", "hours-25.yaml", str(DATA / "playbooks" / "minimal.yaml"))
    assert result.code == 1
    report = json.loads(result.stdout)
    broken, good = report["playbooks"]
    assert broken == {
        "path": "hours-25.yaml", "id": "hours-25", "locales": [], "notices": [],
        "errors": [{"path": "hours-25.yaml", "line": 17, "column": 16, "severity": "error",
                    "message": "'25:00' is not a time of day (00:00 to 24:00)"}],
    }
    assert good["locales"] == ["en", "sv"]
    assert good["notices"] == [{"id": "outage", "severity": "critical", "channels": ["sms", "email", "banner"]}]
    assert good["errors"] == []


def test_validate_strict_fails_on_warnings(tmp_path: Path) -> None:
    text = (DATA / "playbooks" / "minimal.yaml").read_text(encoding="utf-8")
    path = tmp_path / "p.yaml"
    path.write_text(text.replace("    fallbacks: [hotline]\n", "").replace(
        "templates: ../templates", f"templates: {DATA / 'templates'}"), encoding="utf-8")
    assert run_cli("validate", str(path)).code == 0
    assert run_cli("validate", "--strict", str(path)).code == 1


def test_validate_missing_path_is_input_error() -> None:
    result = run_cli("validate", "no/such/dir")
    assert (result.code, result.stderr) == (3, "crisiscomms: no/such/dir: no such file or directory\n")


def test_validate_empty_directory(tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path))
    assert result.code == 3
    assert result.stderr == f"crisiscomms: no playbooks (*.yaml, *.yml) found in {tmp_path}\n"


def test_usage_error_exits_2() -> None:
    result = run_cli("validate", "--format", "xml")
    assert result.code == 2
    assert "Invalid value for '--format'" in result.stderr


def test_unknown_command_exits_2() -> None:
    assert run_cli("sned").code == 2


def test_schema_prints_json_schema() -> None:
    result = run_cli("schema")
    assert result.code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "crisiscomms playbook"
    assert set(schema["required"]) >= {"version", "organisation", "routes", "inquiries", "notices"}


def test_unexpected_error_writes_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import crisiscomms.validate

    def explode(paths: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(crisiscomms.validate, "validate_paths", explode)
    monkeypatch.setenv("CRISISCOMMS_CRASH_DIR", str(tmp_path))
    result = run_cli("validate")
    assert result.code == 70
    assert result.stderr.startswith("crisiscomms: internal error: RuntimeError('boom')\nThe full traceback is in ")
    (crash,) = tmp_path.iterdir()
    assert "RuntimeError: boom" in crash.read_text(encoding="utf-8")
    assert "Traceback" not in result.stderr
    assert crash.stat().st_mode & 0o777 == 0o600  # a traceback may hold addresses from the audience


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    import crisiscomms.validate

    def interrupted(paths: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(crisiscomms.validate, "validate_paths", interrupted)
    result = run_cli("validate")
    assert (result.code, result.stderr) == (130, "\ncrisiscomms: Interrupted.\n")  # click ends the ^C line


def test_send_to_missing_audience_is_input_error() -> None:
    result = run_cli("send", MINIMAL, "--notice", "outage", "--audience", "no-such.csv", "--dry-run")
    assert result.code == 3
    assert "no-such.csv" in result.stderr


def test_banner_snippet_and_assets(tmp_path: Path) -> None:
    result = run_cli("banner", "snippet", MINIMAL, "--banner-url", "/crisis/banner.json")
    assert result.code == 0
    assert result.stdout.splitlines()[-1] == (
        '<script src="/static/crisiscomms-banner.js" data-banner="/crisis/banner.json" defer></script>')
    default = run_cli("banner", "snippet", MINIMAL)
    assert 'data-banner="/banner.json"' in default.stdout  # from providers.banner.path
    assert run_cli("banner", "assets", "--out", str(tmp_path / "static")).code == 0
    assert sorted(p.name for p in (tmp_path / "static").iterdir()) == [
        "crisiscomms-banner.css", "crisiscomms-banner.js"]


@pytest.mark.parametrize("command", [("banner", "snippet"), ("banner", "assets")])
def test_banner_commands_have_help_with_an_example(command: tuple[str, str]) -> None:
    result = run_cli(*command, "--help")
    assert result.code == 0 and "Example" in result.stdout


def test_validate_strict_with_warnings_does_not_say_valid(tmp_path: Path) -> None:
    source = (DATA / "playbooks" / "minimal.yaml").read_text(encoding="utf-8")
    playbook = tmp_path / "p.yaml"
    playbook.write_text(source.replace("templates: ../templates", f"templates: {DATA / 'templates'}")
                        .replace("    fallbacks: [hotline]\n", ""), encoding="utf-8")
    strict = run_cli("validate", "--strict", str(playbook))
    assert strict.code == 1
    assert strict.stdout.endswith("1 playbook checked: 0 errors, 2 warnings — NOT valid (--strict fails on warnings)\n")
    lenient = run_cli("validate", str(playbook))
    assert lenient.code == 0
    assert lenient.stdout.endswith("1 playbook checked: 0 errors, 2 warnings — valid\n")


def test_critical_notice_behind_an_unattended_24_7_portal_is_one_error(tmp_path: Path) -> None:
    source = (DATA / "playbooks" / "minimal.yaml").read_text(encoding="utf-8")
    playbook = tmp_path / "p.yaml"
    playbook.write_text(source.replace("templates: ../templates", f"templates: {DATA / 'templates'}")
                        .replace("    live_person: true\n    hours: always", "    live_person: false\n    hours: always"),
                        encoding="utf-8")
    result = run_cli("validate", "--strict", str(playbook))
    assert (result.code, result.stdout) == (1, (
        f"{playbook}:42:15: error: critical notice 'outage' shows no route that a person answers 24/7 "
        "(open 24/7 but nobody answers: hotline; a person answers, not 24/7: chat); give one of its inquiries "
        "a route with 'live_person: true' and 'hours: always' (and no closing exceptions)\n"
        "1 playbook checked: 1 error, 0 warnings — NOT valid\n"))
