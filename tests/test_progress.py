"""Progress of a send: plain lines for cron and logs (at least every few seconds), on stderr."""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from crisiscomms.campaign.send import Preparation
from crisiscomms.ledger.base import PlanHeader
from crisiscomms.plan import PlanSummary
from crisiscomms.progress import SendProgress, _Tally
from crisiscomms.testing.standin import Standin

from .conftest import run_cli
from .faults.conftest import AT, make_project


def preparation(**decisions: int) -> Preparation:
    header = PlanHeader("p" * 16, "org/n", "n", "org", "v1", AT, AT, "alice", tuple(decisions), False, None, None,
                        sum(decisions.values()), 0, "{}")
    return Preparation(header, PlanSummary("n", "org/n", tuple(decisions)), decisions=Counter({(c, "send"): n for c, n in decisions.items()}))


def test_a_plain_line_names_done_total_rate_problems_and_eta_per_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("crisiscomms.progress.time.monotonic", lambda: clock[0])
    tally = _Tally(Counter({"sms": 6000, "email": 10}))
    tally.add("sms", "accepted", 1200)
    tally.add("sms", "failed", 3)
    tally.add("email", "accepted", 10)
    clock[0] += 6.0
    assert tally.plain_line() == ("progress: sms 1,203/6,000 (20%), 200/s, 3 failed, ETA 24 s; "
                                  "email 10/10 (100%), 2/s, done")
    assert _Tally(Counter({"voice": 5})).plain_line() == "progress: voice 0/5 (0%), 0/s"  # no rate yet: no ETA
    slow = _Tally(Counter({"sms": 100_000}))
    slow.add("sms", "accepted", 10)
    clock[0] += 1.0
    assert slow.plain_line() == "progress: sms 10/100,000 (0%), 10/s, ETA 2 h 46 min"


def test_without_a_terminal_a_line_comes_at_least_every_interval_and_at_the_end() -> None:
    out = io.StringIO()
    console = Console(file=out, highlight=False)  # not a terminal: cron, a pipe, a log file
    with SendProgress(preparation(sms=4), console, every=0.05) as progress:
        progress("sms", "accepted", 1)
        time.sleep(0.3)  # nothing happens meanwhile: the lines still come
        progress("sms", "accepted", 3)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3, lines
    assert lines[0].startswith("progress: sms 1/4 (25%), ")
    assert lines[-1].startswith("progress: sms 4/4 (100%), ") and lines[-1].endswith(", done")


def test_a_send_without_a_terminal_writes_progress_lines_to_stderr_not_stdout(
        tmp_path: Path, standin: Standin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(make_project(tmp_path / "ops", 5))
    result = run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                     "--channels", "sms", "--yes", "--format", "json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["counts"]["sms"]["accepted"] == 5  # stdout: only the JSON
    assert "progress: sms 5/5 (100%), " in result.stderr
    text = run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                   "--channels", "sms", "--yes", "--campaign", "second")
    assert text.code == 0
    assert "progress: sms 5/5 (100%), " in text.stderr and "progress:" not in text.stdout
