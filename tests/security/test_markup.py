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


# -- cap, receipts, escalate and the exercise report ---------------------------------------------------------

CAMPAIGN = "bold-t-x/[/x][red]storm"  # the organisation '[bold]T[/x]' gives the slug bold-t-x


def hostile_playbook(project: Path) -> None:
    """An organisation named with markup, an SMS→e-mail fallback and a drill recipient named with markup."""
    playbook = project / "playbooks" / "p.yaml"
    text = playbook.read_text(encoding="utf-8")
    text = text.replace("channels: [sms, email, banner]", "channels: [sms, banner]\n    escalate: {sms: email}", 1)
    text = text.replace("name: Testbolaget", "name: '[bold]T[/x]'")
    text += 'exercise:\n  recipients:\n    - {name: "[red]Drill[/x]", phone: "+46701000009", locale: sv}\n'
    playbook.write_text(text, encoding="utf-8")


def test_cap_names_the_file_it_wrote_literally(project: Path) -> None:
    hostile_playbook(project)
    result = run_cli("cap", "playbooks/p.yaml", "--notice", "outage", "--out", f"[red]c{ESCAPE}.xml", "--at", AT)
    assert result.code == 0, result.stderr
    assert result.stderr == ("CAP 1.2 Alert (Actual) test.example.outage.20261125T110000Z written to "
                             "[red]c\\x1b[2J.xml\n")
    assert (project / f"[red]c{ESCAPE}.xml").exists()  # the file has the name given; only its display is escaped


def test_receipts_pull_and_escalate_show_campaign_and_texts_literally(project: Path, standin: Standin,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    hostile_playbook(project)
    standin.receipts.configure(enabled=True, undelivered_share=1.0, failed_share=0.0, seed=5)
    assert send("--yes", "--campaign", "[/x][red]storm").code == 0
    pulled = run_cli("receipts", "pull", "--campaign", CAMPAIGN)
    assert (pulled.code, pulled.stdout) == (0, "Asked Twilio about 2 SMS: 2 now have a final status "
                                               "(undelivered 2), 0 are still on their way.\n")
    dry = run_cli("escalate", "--campaign", CAMPAIGN, "--dry-run")
    assert dry.code == 0, dry.stderr
    assert dry.stdout.startswith("DRY RUN — nothing is sent. Escalation of campaign bold-t-x/[/x][red]storm: 1 "
                                 "fallback messages (sms->email 1).\n")
    escalated = run_cli("escalate", "--campaign", CAMPAIGN, "--yes")
    assert escalated.code == 0, escalated.stderr
    assert "Notice outage, campaign bold-t-x/[/x][red]storm, as of" in escalated.stdout
    assert "Hej [red]Anna," in escalated.stdout  # the audience's name, in the rendered sample
    assert "see who got it with: crisiscomms report --campaign bold-t-x/[/x][red]storm" in flat(escalated.stdout)
    assert [mail.to for mail in standin.emails] == ["anna@example.se"]


def test_the_exercise_report_shows_the_organisations_campaign_literally(project: Path, standin: Standin) -> None:
    hostile_playbook(project)
    drill = run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--exercise", "--at", AT, "--yes")
    assert drill.code == 0, drill.stderr
    result = run_cli("report", "--exercise", "--campaign", "bold-t-x/outage#exercise")
    assert result.code == 0, result.stderr
    assert "EXERCISE bold-t-x/outage#exercise (notice outage) — the result of the drill" in result.stdout
    assert [sms.to for sms in standin.sms] == ["+46701000009"]
