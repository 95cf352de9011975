"""Planning on several cores (``--jobs``): the same plan as one process, item for item; failures of a worker."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import crisiscomms.plan_jobs as plan_jobs
from crisiscomms.errors import TemplateError
from crisiscomms.ledger import resolve_location
from crisiscomms.plan import Planner
from crisiscomms.testing.standin import Standin

from .conftest import ROOT, Result, run_cli
from .processes import children

STORM = ROOT / "playbooks" / "nordvind-storm.yaml"
AT = "2026-12-02T23:30+01:00"  # inside the SMS quiet hours: deferrals are part of what must match

pytestmark = pytest.mark.skipif(not plan_jobs.can_fork(), reason="--jobs needs fork (Linux)")


def messy_audience(folder: Path, people: int = 400) -> tuple[Path, Path]:
    """An audience with every kind of row a plan treats differently, and an opt-out list beside it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "name", "phone", "email", "locale", "timezone", "channels", "area"])
    spellings = ["070-{a}{b} {c}", "+46 70 {a} {b} {c}", "0046 70{a}{b}{c}", "+46 (0)70 {a} {b} {c}"]
    locales = ["sv-SE", "en", "nb-NO", "da", "nl_BE", "el-GR", "fi", "de", "pt-BR", ""]
    zones = ["", "Europe/Stockholm", "europe/oslo", "Asia/Tokyo", "America/New_York", "Mars/Olympus"]
    for i in range(people):
        a, b, c = f"{100 + i % 900:03d}", f"{i % 100:02d}", f"{(i * 7) % 100:02d}"
        number = spellings[i % 4].format(a=a, b=b, c=c)
        mail = f"Person.{i}@Example.SE"
        if i % 23 == 5:
            number = "12"  # invalid
        elif i % 29 == 3:
            number = f"08-{a} {b} {c}"  # a fixed line: no SMS, a call
        elif i % 31 == 7:
            number = ""
        if i % 19 == 4:
            mail = "not-an-email"
        consent = ["", "", "", "sms", "email;voice", "voice"][i % 6]
        writer.writerow([f"c{i}", "" if i % 11 == 0 else f"Näme {i} <b>&", number, mail, locales[i % len(locales)],
                         zones[i % len(zones)], consent, ["Bergen", "Voss", "Oslo"][i % 3]])
        if i % 37 == 9:  # the same person again, later, in another spelling and case
            writer.writerow([f"again{i}", "Again", f"+4670{a}{b}{c}", mail.upper(), "sv", "", "", "Oslo"])
        if i % 41 == 2:
            writer.writerow(["broken", "only", "three"])  # malformed: too few fields
        if i % 43 == 1:
            writer.writerow([f"x{i}", "Bad", "0701234567", "x@example.se", "sv", "", "fax", "Oslo"])  # unknown channel
        if i % 47 == 6:
            out.write("\n")  # a blank line
        if i % 53 == 8:
            out.write(",,,,,,,\n")  # a row of empty fields, as spreadsheets leave behind (not a record)
    path = folder / "audience.csv"
    path.write_bytes(out.getvalue().encode("utf-8") + b'c-bad,\xff\xfe,0701234599,bad@example.se,sv,,,Oslo\n'
                     + b'c-quote,"Open quote,0701234598,q@example.se,sv,,,Oslo\nc-after,After,0701234597,'
                     + b'after@example.se,sv,,,Oslo\n')
    opt_out = folder / "opt-out.txt"
    opt_out.write_text("# opted out\n+46 70 105 05 35\nPERSON.12@example.se\n", encoding="utf-8")
    return path, opt_out


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 7 records, so that a few hundred rows make many blocks for each worker."""
    monkeypatch.setattr(plan_jobs, "BLOCK_RECORDS", 7)


def dry_run(audience: Path, opt_out: Path, skipped: Path, notice: str, *extra: str) -> tuple[int, str, str]:
    result = run_cli("send", str(STORM), "--notice", notice, "--audience", str(audience), "--at", AT,
                     "--suppress", str(opt_out), "--dry-run", "--format", "json", "--skipped-out", str(skipped), *extra)
    return result.code, result.stdout, skipped.read_text(encoding="utf-8")


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize(("notice", "channels", "reasons"), [
    ("storm-outage", "sms,email,voice", {"duplicate", "invalid_phone", "invalid_email", "not_mobile", "no_address",
                                         "not_consented", "malformed_row", "suppressed", "reached_by_sms"}),
    ("power-restored", "sms,email", {"duplicate", "invalid_phone", "not_consented", "malformed_row"}),
])
def test_a_dry_run_on_several_cores_is_the_dry_run_of_one(tmp_path: Path, notice: str, channels: str,
                                                          reasons: set[str]) -> None:
    audience, opt_out = messy_audience(tmp_path)
    one = dry_run(audience, opt_out, tmp_path / "one.csv", notice, "--jobs", "1", "--channels", channels)
    assert one[0] == 0
    summary = json.loads(one[1])
    assert set(summary["skipped"]) >= reasons
    assert (summary["deferred"]["sms"] > 0) == (notice == "power-restored")  # 23:30: quiet hours for info SMS
    for jobs in ("2", "3", "5"):
        assert dry_run(audience, opt_out, tmp_path / f"jobs-{jobs}.csv", notice, "--jobs", jobs,
                       "--channels", channels) == one


def plan_rows(plan_id: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(resolve_location(None, os.environ).path) as db:
        return db.execute("SELECT seq, channel, address, recipient_id, line, locale, timezone, not_before, view "
                          "FROM plan_rows JOIN plans ON plans.key = plan_rows.plan WHERE plans.id = ? ORDER BY seq",
                          (plan_id,)).fetchall()


def plan_skips(plan_id: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(resolve_location(None, os.environ).path) as db:
        return db.execute("SELECT line, recipient_id, channel, reason, detail FROM plan_skips JOIN plans "
                          "ON plans.key = plan_skips.plan WHERE plans.id = ? ORDER BY plan_skips.rowid",
                          (plan_id,)).fetchall()


@pytest.mark.usefixtures("small_blocks")
def test_a_plan_on_several_cores_has_the_same_rows_in_the_same_order(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    audience, opt_out = messy_audience(tmp_path)
    ids = []
    for jobs, state in (("1", "one"), ("3", "three")):
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / state))  # a ledger each: the same plan is kept once
        result = run_cli("plan", str(STORM), "--notice", "storm-outage", "--audience", str(audience), "--at", AT,
                         "--suppress", str(opt_out), "--channels", "sms,email,voice", "--format", "json",
                         "--jobs", jobs)
        assert result.code == 0, result.stdout + result.stderr
        plan_id = json.loads(result.stdout)["plan"]
        ids.append((plan_id, plan_rows(plan_id), plan_skips(plan_id)))
    (first, rows, skips), (second, rows_again, skips_again) = ids
    assert first == second  # the plan id is the hash of every row and skip, in order
    assert rows == rows_again and len(rows) > 500
    assert skips == skips_again and len(skips) > 100


@pytest.mark.usefixtures("small_blocks")
def test_a_send_planned_on_several_cores_reaches_each_person_once(tmp_path: Path, standin: Standin) -> None:
    audience, opt_out = messy_audience(tmp_path, people=120)
    argv = ("send", str(STORM), "--notice", "storm-outage", "--audience", str(audience), "--suppress", str(opt_out),
            "--channels", "sms,email", "--ignore-quiet-hours", "--yes", "--jobs", "2")
    first = run_cli(*argv)
    assert first.code == 0, first.stdout + first.stderr
    planned = json.loads(run_cli("send", str(STORM), "--notice", "storm-outage", "--audience", str(audience),
                                 "--suppress", str(opt_out), "--channels", "sms,email", "--ignore-quiet-hours",
                                 "--dry-run", "--format", "json", "--jobs", "1").stdout)["planned"]
    assert len(standin.sms) == planned["sms"] and set(standin.sms_count_by_to().values()) == {1}
    assert sum(standin.email_count_by_to().values()) == planned["email"]
    assert set(standin.email_count_by_to().values()) == {1}
    again = run_cli(*argv)  # pressed twice: the same plan, nothing more at the stand-in
    assert again.code == 0, again.stdout + again.stderr
    assert len(standin.sms) == planned["sms"] and set(standin.email_count_by_to().values()) == {1}


def plan_with_a_worker_that(act: Callable[[], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    """``plan --jobs 2`` where the worker preparing line 40 calls ``act`` first."""
    audience, _ = messy_audience(tmp_path, people=60)
    real = Planner.prepare

    def acting(self: Planner, row: object) -> list[tuple[object, ...]]:
        if getattr(row, "line", 0) == 40:
            act()
        return real(self, row)  # type: ignore[arg-type]

    monkeypatch.setattr(Planner, "prepare", acting)
    return run_cli("plan", str(STORM), "--notice", "storm-outage", "--audience", str(audience), "--at", AT,
                   "--channels", "sms,email", "--jobs", "2")


@pytest.mark.usefixtures("small_blocks")
def test_an_error_in_a_worker_stops_the_plan_with_that_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail() -> None:
        raise TemplateError("templates/sms.txt:3: 'recipient' is undefined")

    result = plan_with_a_worker_that(fail, tmp_path, monkeypatch)
    assert (result.code, result.stderr) == (3, "crisiscomms: templates/sms.txt:3: 'recipient' is undefined\n")
    assert not resolve_location(None, os.environ).path.exists() or plan_count() == 0


def plan_count() -> int:
    with sqlite3.connect(resolve_location(None, os.environ).path) as db:
        return int(db.execute("SELECT count(*) FROM plans").fetchone()[0])


@pytest.mark.usefixtures("small_blocks")
def test_a_worker_killed_stops_the_plan_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = plan_with_a_worker_that(lambda: os.kill(os.getpid(), signal.SIGKILL), tmp_path, monkeypatch)
    assert result.code == 1
    assert result.stderr.startswith("crisiscomms: planning stopped: worker process ")
    assert result.stderr.endswith(" ended without finishing its share (killed by SIGKILL); nothing was planned or sent. "
                                  "Run the command again; --jobs 1 plans in one process\n")
    assert plan_count() == 0


def test_jobs_by_default_one_per_core_for_a_big_file_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    small.write_bytes(b"x" * 1000)
    big.write_bytes(b"x" * plan_jobs.AUTO_MIN_BYTES)
    monkeypatch.setattr(plan_jobs, "usable_cores", lambda: 6)
    assert (plan_jobs.jobs_for(None, small), plan_jobs.jobs_for(None, big)) == (1, 6)
    assert (plan_jobs.jobs_for(3, small), plan_jobs.jobs_for(99, big)) == (3, plan_jobs.MAX_JOBS)
    assert plan_jobs.jobs_for(None, tmp_path / "missing.csv") == 1
    monkeypatch.setattr(plan_jobs, "can_fork", lambda: False)
    assert plan_jobs.jobs_for(4, big) == 1


def test_jobs_is_a_planning_option(tmp_path: Path) -> None:
    result = run_cli("send", "--plan", "abc", "--jobs", "2")
    assert result.code == 2
    assert "--jobs cannot change it" in result.stderr
    zero = run_cli("send", str(STORM), "--notice", "storm-outage", "--audience", "a.csv", "--jobs", "0", "--dry-run")
    assert zero.code == 2 and "Invalid value for '--jobs'" in zero.stderr


@pytest.mark.postgres
@pytest.mark.usefixtures("small_blocks")
def test_a_plan_on_several_cores_into_the_team_ledger_is_the_same_plan(tmp_path: Path, pg_url: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Forked while the team ledger's connection pool and its threads are open: the same plan id as one
    process on a SQLite ledger, and the ledger still usable after the workers have gone."""
    audience, opt_out = messy_audience(tmp_path, people=150)
    argv = ("plan", str(STORM), "--notice", "storm-outage", "--audience", str(audience), "--at", AT,
            "--suppress", str(opt_out), "--channels", "sms,email,voice", "--format", "json")
    on_file = run_cli(*argv, "--jobs", "1")
    assert on_file.code == 0, on_file.stdout + on_file.stderr
    monkeypatch.setenv("CRISISCOMMS_LEDGER", pg_url)
    on_team = run_cli(*argv, "--jobs", "3")
    assert on_team.code == 0, on_team.stdout + on_team.stderr
    plan_id = json.loads(on_team.stdout)["plan"]
    assert plan_id == json.loads(on_file.stdout)["plan"]
    shown = run_cli("plan", "show", plan_id, "--format", "json")
    assert shown.code == 0, shown.stdout + shown.stderr


@pytest.mark.usefixtures("small_blocks")
def test_workers_read_the_file_the_planner_opened_even_when_its_path_is_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audience, opt_out = messy_audience(tmp_path, people=200)
    expected = dry_run(audience, opt_out, tmp_path / "before.csv", "storm-outage", "--jobs", "1")
    other = tmp_path / "other.csv"
    other.write_text("id,name,phone,email,locale,timezone,channels,area\nz,Zed,0701234567,z@example.se,sv,,,Oslo\n",
                     encoding="utf-8")
    real_jobs_for = plan_jobs.jobs_for

    def replacing(requested: int | None, path: Path) -> int:  # after the planner opened the file, before the fork
        other.replace(path)
        return real_jobs_for(requested, path)

    monkeypatch.setattr(plan_jobs, "jobs_for", replacing)
    assert dry_run(audience, opt_out, tmp_path / "after.csv", "storm-outage", "--jobs", "2") == expected
    assert audience.read_text(encoding="utf-8").startswith("id,name,phone,email,locale,timezone,channels,area\nz,")


def test_ctrl_c_while_workers_plan_stops_them_all_and_writes_no_plan(tmp_path: Path) -> None:
    """Ctrl-C reaches the terminal's whole process group: the planner stops its workers, exits 130, and
    the ledger holds no plan."""
    rows = ["id,name,phone,email"] + [f"c{i},P {i},+4670{1000000 + i},p{i}@example.se" for i in range(200_000)]
    (tmp_path / "audience.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISISCOMMS_", "PYTEST_"))}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), CRISISCOMMS_CRASH_DIR=str(tmp_path / "crash"))
    planner = subprocess.Popen([sys.executable, "-m", "crisiscomms", "plan", str(STORM), "--notice", "storm-outage",
                                "--audience", "audience.csv", "--at", AT, "--channels", "sms,email", "--jobs", "2"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60  # a guard for a broken run only
        while len(workers := children(planner.pid)) < 2:
            assert planner.poll() is None, planner.communicate()
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.05)
        time.sleep(0.5)  # well into the plan
        os.killpg(planner.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        _, err = planner.communicate(timeout=60)
    finally:
        if planner.poll() is None:
            planner.kill()
    assert planner.returncode == 130, err
    assert all(not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
               for pid in workers)
    ledger = tmp_path / "state" / "crisiscomms" / "ledger.sqlite"
    if ledger.exists():
        with sqlite3.connect(ledger) as db:
            assert db.execute("SELECT count(*) FROM plans WHERE id IS NOT NULL").fetchone()[0] == 0


def test_jobs_without_fork_plans_in_one_process_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audience, _ = messy_audience(tmp_path, people=30)
    monkeypatch.setattr("crisiscomms.processes.can_fork", lambda: False)
    monkeypatch.setattr(plan_jobs, "can_fork", lambda: False)
    result = run_cli("send", str(STORM), "--notice", "storm-outage", "--audience", str(audience), "--at", AT,
                     "--dry-run", "--format", "json", "--jobs", "3")
    assert result.code == 0
    assert result.stderr == "--jobs 3: worker processes need fork (Linux); planning in one process.\n"
    assert json.loads(result.stdout)["planned"]["sms"] > 0
