"""Text from files, options and providers is printed literally: never as Rich markup, never highlighted.

``[/x]`` as an audience id used to crash ``report`` (exit 70, a closing tag with nothing to close);
``--campaign '[red]x'`` used to show the campaign as a red ``x``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from crisiscomms.console import print_report
from crisiscomms.report import ReportRow
from crisiscomms.testing.standin import Standin

from ..conftest import Result, run_cli
from .conftest import AT, Credentials, environment, make_project

MARKUP = ("[/x]", "[red]", "[bold]loud[/bold]", "[link=https://evil.example]click[/link]")
ESCAPE = "\x1b[2J"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, standin: Standin, credentials: Credentials) -> Path:
    root = make_project(tmp_path / "project", recipients=0)
    rows = ["id,name,phone,email,locale", "[/x],[red]Anna,+46701000001,anna@example.se,sv",
            f"[red]r2{ESCAPE},Bo,+46701000002,,en"]
    (root / "audience.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    for name, value in environment(standin, credentials, root).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(root)
    return root


def send(*extra: str) -> Result:
    return run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                   "--banner-out", "site/banner.json", *extra)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_campaign_name_with_markup_is_shown_as_given(project: Path) -> None:
    result = send("--dry-run", "--campaign", "[red]x")
    assert result.code == 0, result.stderr
    assert "Notice outage, campaign testbolaget/[red]x, as of" in result.stdout


def test_report_of_markup_ids_and_campaign(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    sent = send("--yes", "--campaign", "[/x][red]storm")
    assert sent.code == 0, sent.stderr
    assert "Campaign testbolaget/[/x][red]storm" in sent.stdout
    result = run_cli("report", "--campaign", "testbolaget/[/x][red]storm")
    assert result.code == 0, result.stderr
    assert "Campaign testbolaget/[/x][red]storm" in result.stdout
    assert "│ [/x]" in result.stdout and "│ [red]r2\\x1b[2J" in result.stdout
    assert "\x1b" not in result.stdout


def test_opt_out_entries_with_markup_are_shown_as_given(project: Path) -> None:
    (project / "opt-out.txt").write_text("[red]nobody[/red]\n[/x]\n", encoding="utf-8")
    result = send("--dry-run", "--suppress", "opt-out.txt")
    assert result.code == 0, result.stderr
    out = flat(result.stdout)
    assert "[red]nobody[/red]" in out and "[/x]" in out


def test_preview_of_an_organisation_and_texts_with_markup(project: Path) -> None:
    playbook = project / "playbooks" / "p.yaml"
    playbook.write_text(playbook.read_text(encoding="utf-8").replace("name: Testbolaget", "name: '[red]Test[/x]'"),
                        encoding="utf-8")
    result = run_cli("preview", "playbooks/p.yaml", "--notice", "outage", "--locale", "en", "--at", AT)
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("[red]Test[/x] — notice 'outage' (critical), as of 2026-11-25T12:00+01:00")


def rows(text: str) -> Iterator[ReportRow]:
    yield ReportRow(id=text, channel="sms", address="+4670…01", locale="sv", status="failed", provider_id=text,
                    error_code="21211", error=f"{text} is not a valid phone number{ESCAPE}", attempts=1,
                    time="2026-11-25T12:00")


@pytest.mark.parametrize("text", MARKUP)
def test_provider_error_messages_are_printed_literally(text: str) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=300, force_terminal=True, color_system="truecolor")  # highlighting on
    print_report(text, rows(text), console)
    out = buffer.getvalue()
    assert f"Campaign {text}" in out
    assert f"21211 {text} is not a valid phone number\\x1b[2J" in out
    assert ESCAPE not in out


def test_digits_in_times_are_not_highlighted() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=300, force_terminal=True, color_system="truecolor")
    print_report("c", rows("08:00 1234"), console)
    assert "08:00 1234" in buffer.getvalue()  # a highlighter would wrap the digits in colour codes


def test_validate_and_banner_commands_print_paths_and_names_literally(project: Path) -> None:
    playbook = project / "playbooks" / "[red]p[x].yaml"
    playbook.write_text((project / "playbooks" / "p.yaml").read_text(encoding="utf-8")
                        .replace("name: Testbolaget", "name: '[bold]T[/x]'"), encoding="utf-8")
    result = run_cli("validate", str(playbook))
    assert result.code == 0, result.stdout
    published = run_cli("banner", "publish", str(playbook), "--notice", "outage", "--banner-out", "[/x]b.json",
                        "--at", AT)
    assert (published.code, published.stdout) == (0, "Published notice 'outage' (critical) to [/x]b.json; it stops "
                                                     "showing Tue 1 Dec 18:00 Stockholm Time.\n")
    withdrawn = run_cli("banner", "withdraw", str(playbook), "--banner-out", f"[red]w{ESCAPE}.json")
    assert (withdrawn.code, withdrawn.stdout) == (
        0, "Withdrew the banner: [red]w\\x1b[2J.json now says there is no notice.\n")
