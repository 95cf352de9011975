"""The exercise report: per channel the time from the start to the last accepted message, failures and
deliveries (where the ledger keeps receipts), marked EXERCISE; as a table, JSON and CSV — from the ledger
the stand-in's exercise run left."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from crisiscomms.ledger import resolve_location
from crisiscomms.testing.standin import (
    Standin,
)

from .campaign.test_exercise_send import AT, write_project
from .conftest import Result, run_cli

EXERCISE_CAMPAIGN = "testbolaget/outage#exercise"


@pytest.fixture
def exercised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, standin: Standin) -> Path:
    """An exercise, then the real send of the same notice (which must not mix into the exercise's figures)."""
    monkeypatch.chdir(tmp_path)
    write_project(tmp_path)
    result = run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--exercise", "--at", AT, "--yes")
    assert result.code == 0, result.stdout + result.stderr
    real = run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                   "--yes", "--channels", "sms")
    assert real.code == 0, real.stdout + real.stderr
    return tmp_path


def report(*extra: str) -> Result:
    return run_cli("report", *extra)


def test_the_exercise_report_in_json(exercised: Path, standin: Standin) -> None:
    result = report("--exercise", "--format", "json")
    assert result.code == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout)
    assert (figures["campaign"], figures["notice"], figures["exercise"]) == (EXERCISE_CAMPAIGN, "outage", True)
    assert set(figures["channels"]) == {"banner", "cap", "email", "sms", "voice"}
    sms = figures["channels"]["sms"]
    assert {k: sms[k] for k in ("messages", "accepted", "failed", "rejected", "uncertain", "waiting")} == \
        {"messages": 1, "accepted": 1, "failed": 0, "rejected": 0, "uncertain": 0, "waiting": 0}
    started = dt.datetime.fromisoformat(figures["started_at"])
    last = dt.datetime.fromisoformat(sms["last_accepted_at"])
    assert 0 <= sms["seconds_to_last_accepted"] == round((last - started).total_seconds(), 1) < 60
    assert figures["seconds_to_last_accepted"] >= sms["seconds_to_last_accepted"]
    has_receipts = sms["deliveries"] is not None
    assert (sms["delivered"] is None) is not has_receipts
    assert len(figures["plans"]) == 1
    assert figures["skipped"] == {"no_address": 1, "not_mobile": 1, "reached_by_sms": 1}  # as planned: no e-mail
    # for the duty manager, whose landline is called and not texted; the mobile is texted, not called


def test_the_exercise_report_counts_failures_and_receipts(exercised: Path, standin: Standin) -> None:
    ledger = resolve_location(None, {}).path
    with sqlite3.connect(ledger) as db:
        db.execute("UPDATE messages SET state = 'failed', permanent = 1, error_code = '21211' "
                   "WHERE campaign = ? AND channel = 'voice'", (EXERCISE_CAMPAIGN,))
        columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
        if "delivery_state" not in columns:  # a ledger from before delivery receipts: give it the column
            db.execute("ALTER TABLE messages ADD COLUMN delivery_state TEXT")
        db.execute("UPDATE messages SET delivery_state = 'delivered' WHERE campaign = ? AND channel = 'sms'",
                   (EXERCISE_CAMPAIGN,))
        db.execute("UPDATE messages SET delivery_state = 'bounce' WHERE campaign = ? AND channel = 'email'",
                   (EXERCISE_CAMPAIGN,))
    figures = json.loads(report("--exercise", "--format", "json").stdout)["channels"]
    assert (figures["voice"]["rejected"], figures["voice"]["accepted"]) == (1, 0)
    assert (figures["sms"]["delivered"], figures["sms"]["deliveries"]) == (1, {"delivered": 1})
    assert (figures["email"]["delivered"], figures["email"]["deliveries"]) == (0, {"bounce": 1})


def test_the_exercise_report_as_a_table_and_csv(exercised: Path, standin: Standin) -> None:
    table = report("--exercise")
    assert table.code == 0, table.stdout + table.stderr
    assert f"EXERCISE {EXERCISE_CAMPAIGN} (notice outage) — the result of the drill" in table.stdout
    assert "time: from the start of the exercise to the channel's last accepted message." in table.stdout
    header = next(line for line in table.stdout.splitlines() if line.startswith("channel"))
    assert header.split() == ["channel", "messages", "accepted", "time", "failed", "uncertain", "waiting",
                              "delivered"]
    sms = next(line for line in table.stdout.splitlines() if line.startswith("sms "))
    assert sms.split()[:3] == ["sms", "1", "1"] and sms.split()[-4:] == ["0", "0", "0", "-"]
    assert "delivered: - where the ledger has no delivery receipts for the channel." in table.stdout
    rows = report("--exercise", "--format", "csv").stdout.splitlines()
    assert rows[0] == ("campaign,channel,messages,accepted,failed,rejected,uncertain,waiting,first_request_at,"
                       "last_accepted_at,seconds_to_last_accepted,delivered")
    assert [row.split(",")[1] for row in rows[1:]] == ["banner", "cap", "email", "sms", "voice"]


def test_a_report_of_the_exercise_campaign_is_marked(exercised: Path, standin: Standin) -> None:
    table = report("--campaign", EXERCISE_CAMPAIGN)
    assert table.code == 0, table.stdout + table.stderr
    assert f"EXERCISE {EXERCISE_CAMPAIGN} (notice outage)" in table.stdout
    csv_run = report("--campaign", EXERCISE_CAMPAIGN, "--format", "csv")
    assert f"campaign {EXERCISE_CAMPAIGN} (EXERCISE)" in csv_run.stderr
    real = report("--campaign", "testbolaget/outage")
    assert "EXERCISE" not in real.stdout


def test_report_exercise_of_a_real_campaign_is_refused(exercised: Path, standin: Standin) -> None:
    result = report("--exercise", "--campaign", "testbolaget/outage")
    assert result.code == 2
    assert "campaign 'testbolaget/outage' is not an exercise" in result.stderr
