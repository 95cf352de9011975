"""Broken command lines and broken suppression lists.

README, "Exit codes": 2 for usage (an unknown option, notice, locale or channel), 3 for an input that
could not be read or is invalid (playbook, template, audience file, suppression list, ledger).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from crisiscomms.ledger.base import CampaignInfo
from crisiscomms.ledger.sqlite import SqliteLedger as Ledger
from crisiscomms.testing.standin import Standin

from ..conftest import run_cli
from .conftest import AT, check, dry_run

ISO = "is not an ISO 8601 time such as 2026-11-28T03:00+01:00"


@dataclass(frozen=True)
class Usage:
    id: str
    args: tuple[str, ...]
    code: int
    line: str  # a line of the output starts with this


SEND = ("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--dry-run")
PREVIEW = ("preview", "playbooks/p.yaml", "--notice", "outage")
CASES = [
    Usage("at-garbage", (*SEND, "--at", "garbage"), 2, f"crisiscomms: --at 'garbage' {ISO}"),
    Usage("at-month-13", (*SEND, "--at", "2026-13-01"), 2, f"crisiscomms: --at '2026-13-01' {ISO}"),
    Usage("at-empty", (*SEND, "--at", ""), 2, f"crisiscomms: --at '' {ISO}"),
    Usage("at-offset-25-hours", (*SEND, "--at", "2026-11-25T12:00+25:00"), 2,
          f"crisiscomms: --at '2026-11-25T12:00+25:00' {ISO}"),
    Usage("preview-at-word", (*PREVIEW, "--at", "tomorrow"), 2, f"crisiscomms: --at 'tomorrow' {ISO}"),
    Usage("unknown-notice", ("send", "playbooks/p.yaml", "--notice", "nope", "--audience", "audience.csv",
                             "--dry-run"), 2, "crisiscomms: notice 'nope' is not in playbooks/p.yaml (its notices: outage)"),
    Usage("preview-unknown-notice", ("preview", "playbooks/p.yaml", "--notice", "nope"), 2,
          "crisiscomms: notice 'nope' is not in playbooks/p.yaml (its notices: outage)"),
    Usage("preview-unknown-locale", (*PREVIEW, "--locale", "xx"), 2,
          "crisiscomms: locale xx is not in the playbook (supported: en, sv)"),
    Usage("preview-unknown-and-known-locale", (*PREVIEW, "--locale", "sv", "--locale", "de"), 2,
          "crisiscomms: locale de is not in the playbook (supported: en, sv)"),
    Usage("channels-unknown", (*SEND, "--channels", "fax"), 2,
          "crisiscomms: --channels: unknown channel fax (channels: sms, email, banner, voice, cap)"),
    Usage("channels-one-unknown", (*SEND, "--channels", "sms,pigeon"), 2,
          "crisiscomms: --channels: unknown channel pigeon (channels: sms, email, banner, voice, cap)"),
    Usage("default-region-xx", (*SEND, "--default-region", "XX"), 2,
          "crisiscomms: --default-region 'XX' is not a two-letter country code like SE"),
    Usage("default-region-zz", (*SEND, "--default-region", "ZZ"), 2,
          "crisiscomms: --default-region 'ZZ' is not a two-letter country code like SE"),
    Usage("default-region-word", (*SEND, "--default-region", "Sweden"), 2,
          "crisiscomms: --default-region 'Sweden' is not a two-letter country code like SE"),
    Usage("concurrency-0", (*SEND, "--concurrency", "0"), 2,
          "Error: Invalid value for '--concurrency': 0 is not in the range 1<=x<=1000."),
    Usage("sms-rate-0", (*SEND, "--sms-rate", "0"), 2,
          "Error: Invalid value for '--sms-rate': 0.0 is not in the range x>=0.1."),
    Usage("format-xml", (*SEND, "--format", "xml"), 2, "Error: Invalid value for '--format': 'xml' is not one of"),
    Usage("unknown-option", (*SEND, "--bogus"), 2, "Error: No such option '--bogus'."),
    Usage("missing-audience-option", ("send", "playbooks/p.yaml", "--notice", "outage", "--dry-run"), 2,
          "Error: Missing option '--audience'."),
    Usage("missing-notice-option", ("preview", "playbooks/p.yaml"), 2, "Error: Missing option '--notice'."),
    Usage("missing-playbook-send", ("send", "missing.yaml", "--notice", "outage", "--audience", "audience.csv",
                                    "--dry-run"), 3, "crisiscomms: missing.yaml is not valid (1 error):"),
    Usage("missing-playbook-preview", ("preview", "missing.yaml", "--notice", "outage"), 3,
          "missing.yaml: error: no such file"),
    Usage("missing-playbook-validate", ("validate", "missing.yaml"), 3,
          "crisiscomms: missing.yaml: no such file or directory"),
    Usage("missing-suppression-list", (*SEND, "--suppress", "missing.txt"), 3,
          "crisiscomms: missing.txt: the suppression list does not exist."),
    Usage("skipped-out-unwritable", (*SEND, "--skipped-out", "no/such/folder/skipped.csv"), 3,
          "crisiscomms: cannot write --skipped-out no/such/folder/skipped.csv: No such file or directory"),
    Usage("preview-out-unwritable", (*PREVIEW, "--format", "html", "--out", "no/such/folder/p.html"), 3,
          "crisiscomms: cannot write no/such/folder/p.html: No such file or directory"),
    Usage("report-without-ledger", ("report", "--ledger", "missing.sqlite"), 3,
          "crisiscomms: no ledger at {cwd}/missing.sqlite; give the one the send used with --ledger, or set "
          "CRISISCOMMS_LEDGER"),
    Usage("report-not-a-database", ("report", "--ledger", "audience.csv"), 3,
          "crisiscomms: the ledger {cwd}/audience.csv is damaged or not a crisiscomms ledger (file is not a database)"),
    Usage("report-unknown-campaign", ("report", "--ledger", "ledger.sqlite", "--campaign", "nope"), 2,
          "crisiscomms: campaign 'nope' is not in {cwd}/ledger.sqlite (campaigns: testbolaget/outage)"),
    Usage("report-empty-ledger", ("report", "--ledger", "empty.sqlite"), 3,
          "crisiscomms: the ledger {cwd}/empty.sqlite has no campaigns yet"),
]


@pytest.fixture
def ledgers(project: Path) -> None:
    ledger = Ledger.open(project / "ledger.sqlite")
    ledger.ensure_campaign(CampaignInfo("testbolaget/outage", "outage", "testbolaget", "playbooks/p.yaml"))
    ledger.close()
    Ledger.open(project / "empty.sqlite").close()


def test_corpus_is_large() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_command_line(project: Path, standin: Standin, ledgers: None, case: Usage) -> None:
    result = run_cli(*case.args)
    check(result, case.code, case.line.replace("{cwd}", str(project)), standin=standin)


def test_channels_outside_the_notice(project: Path, standin: Standin) -> None:
    playbook = project / "playbooks" / "p.yaml"
    text = playbook.read_text(encoding="utf-8")
    playbook.write_text(text.replace("channels: [sms, email, banner]", "channels: [sms, email]", 1), encoding="utf-8")
    check(dry_run("--channels", "email,banner"), 2,
          "crisiscomms: --channels: notice 'outage' does not use banner (it uses sms, email)", standin=standin)


@pytest.mark.parametrize("option", ["--sms-rate", "--email-rate"])
def test_rate_that_is_not_a_number_is_a_usage_error(project: Path, standin: Standin, option: str) -> None:
    check(dry_run(option, "nan"), 2, standin=standin, contains=(option,))


@pytest.mark.parametrize("option", ["--audience", "--suppress", "--ledger", "PLAYBOOK"])
def test_a_folder_given_as_an_input_file_is_exit_3(project: Path, standin: Standin, option: str) -> None:
    (project / "folder").mkdir()
    args = ["send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT, "--dry-run"]
    if option == "PLAYBOOK":
        args[1] = "folder"
    elif option == "--audience":
        args[5] = "folder"
    else:
        args += [option, "folder"]
    check(run_cli(*args), 3, standin=standin, contains=("folder",))


# -- suppression lists -------------------------------------------------------------------------------------------

def text_dry_run(project: Path, content: bytes, *, name: str = "opt-out.txt") -> tuple[str, dict[str, int]]:
    (project / name).write_bytes(content)
    result = dry_run("--suppress", name)
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    text = run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                   "--dry-run", "--suppress", name)
    assert text.code == 0 and "Traceback" not in text.stdout + text.stderr
    return " ".join(text.stdout.split()), summary["skipped"]


@pytest.mark.parametrize(("content", "warning", "suppressed"), [
    (b"+46701000001\nnot a number\nfoo@\n# a comment\n",
     'warning: suppression list: opt-out.txt:2: "not a number" is neither a phone number nor an e-mail address', 1),
    (b"+46701000001\n\xff\xfeperson2@example.se\n",
     "warning: suppression list: opt-out.txt:2: not valid UTF-8 (byte 0xff); line skipped", 1),
    (b"+4670100\x000003\n", "warning: suppression list: opt-out.txt:1:", 0),
    (b'phone,email\n"+46701000001,person1@example.se\n+46701000002,\n',
     'warning: suppression list: opt-out.txt:2: "+46701000001,person1@example.se" is neither', 1),
    (b"", "", 0),
], ids=["bad-entries", "undecodable-line", "nul-byte", "quote-never-closed", "empty"])
def test_broken_lines_in_a_suppression_list_are_warnings_and_the_rest_applies(
        project: Path, standin: Standin, content: bytes, warning: str, suppressed: int) -> None:
    text, skipped = text_dry_run(project, content)
    assert warning in text
    assert skipped.get("suppressed", 0) == suppressed
    assert standin.requests["twilio"] + standin.requests["sendgrid"] == 0


@pytest.mark.parametrize("encoding", ["utf-16", "binary"])
def test_a_suppression_list_that_is_not_text_is_refused(project: Path, standin: Standin, encoding: str) -> None:
    content = "+46701000001\nperson2@example.se\n".encode("utf-16") if encoding == "utf-16" else bytes(range(256)) * 8
    (project / "opt-out.txt").write_bytes(content)
    check(dry_run("--suppress", "opt-out.txt"), 3, "crisiscomms: opt-out.txt:", standin=standin)
