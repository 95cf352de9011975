"""The campaign as one frozen, locked plan, end to end through the real CLI against the stand-in.

Every assertion about sending counts the stand-in's record of accepted messages.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from crisiscomms.ledger import resolve_location
from crisiscomms.testing.standin import Standin

from ..conftest import Result, run_cli
from ..faults.conftest import (
    AT,
    assert_exactly_once,
    cli_env,
    make_project,
    phone,
    run,
    send_command,
    start,
    wait_for_requests,
)

PLAYBOOK = "playbooks/p.yaml"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = make_project(tmp_path / "ops", 30)
    monkeypatch.chdir(root)
    yield root


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_ledger(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test runs with the default SQLite ledger, and again with a PostgreSQL ledger (CRISISCOMMS_LEDGER)."""
    if request.param == "postgres":
        monkeypatch.setenv("CRISISCOMMS_LEDGER", request.getfixturevalue("pg_url"))
    return str(request.param)


def ledger_file() -> Path:
    return resolve_location(None, {}).path


def ledger_shown() -> str:
    return resolve_location(None, os.environ).shown()


def plan(*extra: str) -> Result:
    return run_cli("plan", PLAYBOOK, "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                   "--banner-out", "site/banner.json", *extra)


def plan_id(result: Result) -> str:
    assert result.code == 0, result.stdout + result.stderr
    return str(json.loads(result.stdout)["plan"])


def send(*extra: str) -> Result:
    return run_cli("send", PLAYBOOK, "--notice", "outage", "--audience", "audience.csv", "--at", AT, "--yes",
                   "--banner-out", "site/banner.json", *extra)


# -- one ledger, found from anywhere -------------------------------------------------------------------------


def test_same_command_from_another_folder_sends_nothing_again(any_ledger: str, project: Path, standin: Standin, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert send("--channels", "sms").code == 0
    elsewhere = tmp_path / "home"
    shutil.copytree(project, elsewhere)
    monkeypatch.chdir(elsewhere)  # cron runs in $HOME
    again = send("--channels", "sms")
    assert again.code == 0, again.stdout
    assert "Resuming: 30 messages were accepted in an earlier run" in again.stdout
    assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(30)], "SMS from two folders")


def test_ledger_location_order_and_it_is_always_shown(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                      private_ledger_home: Path) -> None:
    default = private_ledger_home / "crisiscomms" / "ledger.sqlite"
    assert f"Ledger: {default} (from the default)" in plan().stdout
    playbook = project / PLAYBOOK
    playbook.write_text(playbook.read_text(encoding="utf-8").replace(
        "providers:\n", "providers:\n  ledger: ../team/ledger.sqlite\n", 1), encoding="utf-8")
    shown = " ".join(plan().stdout.split())
    assert f"Ledger: {project / 'team' / 'ledger.sqlite'} (from the playbook (providers.ledger))" in shown
    monkeypatch.setenv("CRISISCOMMS_LEDGER", str(project / "env.sqlite"))
    assert f"Ledger: {project / 'env.sqlite'} (from CRISISCOMMS_LEDGER)" in " ".join(plan().stdout.split())
    explicit = plan("--ledger", "cli.sqlite", "--format", "json")
    assert json.loads(explicit.stdout)["ledger"] == str(project / "cli.sqlite")
    assert (project / "cli.sqlite").exists()


def test_campaign_identity_includes_the_organisation(project: Path) -> None:
    result = json.loads(plan("--format", "json").stdout)
    assert result["campaign"] == "testbolaget/outage"


def test_old_stop_file_is_imported_once_with_a_note(any_ledger: str, project: Path, standin: Standin) -> None:
    legacy = project / ".crisiscomms" / "opted-out-sms.txt"
    legacy.parent.mkdir()
    legacy.write_text(f"{phone(3)}\n{phone(4)}\n", encoding="utf-8")
    first = plan()
    assert (f"note: Imported 2 numbers that replied STOP from {legacy} into the ledger (once; the ledger's STOP "
            "list is used from now on, and that file is no longer read).") in " ".join(first.stdout.split())
    assert "Imported" not in plan().stdout
    assert send("--channels", "sms").code == 0
    assert sorted(standin.sms_count_by_to()) == sorted(phone(i) for i in range(30) if i not in (3, 4))


# -- planned once, frozen ------------------------------------------------------------------------------------


def test_plan_json_has_the_plan_id_and_the_dry_run_keys(any_ledger: str, project: Path) -> None:
    result = plan("--format", "json", "--channels", "sms,email")
    data = json.loads(result.stdout)
    dry = json.loads(send("--dry-run", "--format", "json", "--channels", "sms,email").stdout)
    assert len(data["plan"]) == 16
    assert {k: data[k] for k in dry if k != "ledger"} == {k: dry[k] for k in dry if k != "ledger"}
    assert plan_id(plan("--format", "json", "--channels", "sms,email")) == data["plan"]  # same input, same plan


def test_what_was_planned_is_sent_even_if_audience_and_templates_change(any_ledger: str, project: Path, standin: Standin) -> None:
    frozen = plan_id(plan("--format", "json", "--channels", "sms"))
    (project / "audience.csv").write_text("id,phone\nx,+46709999999\n", encoding="utf-8")
    shutil.rmtree(project / "templates")
    sent = run_cli("send", "--plan", frozen, "--yes")
    assert sent.code == 0, sent.stdout + sent.stderr
    assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(30)], "the frozen plan")
    assert "+46709999999" not in standin.sms_count_by_to()


def test_send_plan_refuses_planning_options(project: Path) -> None:
    frozen = plan_id(plan("--format", "json"))
    result = run_cli("send", "--plan", frozen, "--audience", "audience.csv")
    assert result.code == 2
    assert result.stderr == ("crisiscomms: --plan sends a frozen plan as it was planned; --audience cannot change "
                             "it (make a new plan with 'crisiscomms plan' instead)\n")


def test_unknown_plan_is_a_clear_error(any_ledger: str, project: Path) -> None:
    plan()
    result = run_cli("send", "--plan", "0123456789", "--yes")
    assert result.code == 3
    assert result.stderr == (f"crisiscomms: plan '0123456789' is not in the ledger {ledger_shown()} (crisiscomms "
                             "report lists the plans)\n")


def test_plan_show_prints_what_was_planned(any_ledger: str, project: Path) -> None:
    frozen = plan_id(plan("--format", "json", "--channels", "sms"))
    shown = run_cli("plan", "show", frozen[:8])
    assert shown.code == 0
    text = " ".join(shown.stdout.split())
    assert f"Plan {frozen} · campaign" in text
    assert "Approval: not required by the playbook." in text
    assert "sample: sms · en" in text and "sample: sms · sv" in text
    data = json.loads(run_cli("plan", "show", frozen, "--format", "json").stdout)
    assert data["plan"] == frozen and data["planned"] == {"sms": 30}
    assert set(data["samples"]) == {"en", "sv"}


# -- locked while it is sent -------------------------------------------------------------------------------------


def test_two_concurrent_sends_reach_everyone_once_and_one_is_refused(tmp_path: Path, standin: Standin) -> None:
    root = make_project(tmp_path / "ops", 400)
    standin.configure(latency=0.1)  # the send lasts ~4 s: a second process slow to start still finds it running
    env = cli_env(standin, tmp_path / "crash", CRISISCOMMS_OPERATOR="alice")
    command = send_command("--channels", "sms", "--concurrency", "10")
    first, second = start(command, root, env), start(command, root, env)
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes == [0, 75], outputs
    refused = next(out for p, out in zip((first, second), outputs, strict=True) if p.returncode == 75)
    message = " ".join(refused[1].split())
    assert "crisiscomms: campaign testbolaget/outage is being sent by alice on" in message, message
    assert "Nothing was sent." in message
    assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(400)], "two concurrent sends")


def test_kill_9_of_the_lease_holder_then_the_next_send_takes_over_exactly_once(tmp_path: Path,
                                                                             standin: Standin) -> None:
    root = make_project(tmp_path / "ops", 1000)
    standin.configure(latency=0.03)
    env = cli_env(standin, tmp_path / "crash")
    command = send_command("--channels", "sms", "--concurrency", "20")
    holder = start(command, root, env)
    assert wait_for_requests(standin, "twilio", 200, holder)
    holder.send_signal(signal.SIGKILL)
    holder.communicate()
    resumed = run(command, root, env, timeout=120)
    assert "Took over campaign" in resumed.text, resumed.text[-2000:]
    if resumed.code != 0:
        resumed = run(command, root, env, timeout=120)
    assert resumed.code == 0, resumed.text[-2000:]
    assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(1000)], "after kill -9 of the holder")


def test_report_shows_who_is_sending(tmp_path: Path, standin: Standin) -> None:
    root = make_project(tmp_path / "ops", 300)
    standin.configure(latency=0.05)
    env = cli_env(standin, tmp_path / "crash", CRISISCOMMS_OPERATOR="carol")
    sender = start(send_command("--channels", "sms", "--concurrency", "2"), root, env)
    try:
        assert wait_for_requests(standin, "twilio", 5, sender)
        report = run([*send_command()[:3], "report"], root, env, timeout=60)
        assert "is being sent by carol on" in report.text, report.text
    finally:
        sender.send_signal(signal.SIGINT)
        sender.communicate(timeout=90)


# -- changed text is never a silent re-send ------------------------------------------------------------------


def _change_text(project: Path) -> None:
    for path in (project / "templates").rglob("sms.txt"):
        path.write_text(path.read_text(encoding="utf-8") + " (corrected)", encoding="utf-8")


def test_a_changed_text_is_refused_with_the_counts_and_two_choices(project: Path, standin: Standin) -> None:
    assert send("--channels", "sms").code == 0
    _change_text(project)
    refused = send("--channels", "sms")
    assert refused.code == 5
    assert "notice outage has already reached 30 people in campaign" in refused.stderr
    assert "with a different text (sms 30)" in refused.stderr
    assert "--continue-with-new-text  those not yet reached get the new text; nobody gets a second message" in \
        refused.stderr
    assert "--resend-to-all           a correction: the 30 already reached get the new text again" in refused.stderr
    assert len(standin.sms) == 30


def test_continue_with_new_text_reaches_only_the_new_people_with_it(any_ledger: str, project: Path, standin: Standin) -> None:
    assert send("--channels", "sms").code == 0
    _change_text(project)
    with (project / "audience.csv").open("a", encoding="utf-8") as audience:
        audience.write("new1,New Person,+46709000001,,en\n")
    result = send("--channels", "sms", "--continue-with-new-text")
    assert result.code == 0, result.stdout + result.stderr
    counts = standin.sms_count_by_to()
    assert_exactly_once(counts, [*(phone(i) for i in range(30)), "+46709000001"], "continue with new text")
    newest = next(m for m in standin.sms if m.to == "+46709000001")
    assert newest.body.endswith("(corrected)")
    assert send("--channels", "sms").code == 0  # the choice is remembered: no second refusal, nothing sent
    assert len(standin.sms) == 31


def test_resend_to_all_sends_the_correction_once_to_everyone(any_ledger: str, project: Path, standin: Standin) -> None:
    assert send("--channels", "sms").code == 0
    _change_text(project)
    result = send("--channels", "sms", "--resend-to-all")
    assert result.code == 0, result.stdout + result.stderr
    assert "CORRECTION: the 30 people already reached with an earlier text get this new text as a second " \
           "message" in " ".join(result.stdout.split())
    assert set(standin.sms_count_by_to().values()) == {2}
    assert sum(m.body.endswith("(corrected)") for m in standin.sms) == 30
    assert send("--channels", "sms", "--resend-to-all").code == 0  # pressing enter twice: no third message
    assert set(standin.sms_count_by_to().values()) == {2}


# -- two-person rule -----------------------------------------------------------------------------------------


def _require_approval(project: Path) -> None:
    playbook = project / PLAYBOOK
    playbook.write_text(playbook.read_text(encoding="utf-8").replace("version: 1\n", "version: 1\napproval: required\n",
                                                                     1), encoding="utf-8")


def test_approval_required_missing_by_the_planner_and_by_another(any_ledger: str, project: Path, standin: Standin,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _require_approval(project)
    monkeypatch.setenv("CRISISCOMMS_OPERATOR", "alice")
    frozen = plan_id(plan("--format", "json", "--channels", "sms"))
    missing = run_cli("send", "--plan", frozen, "--yes")
    assert missing.code == 5
    assert missing.stderr == (
        f"crisiscomms: plan {frozen} needs the approval of a second operator before it is sent (the playbook says "
        f"approval: required). Nothing was sent. Someone other than alice reviews it with 'crisiscomms plan show "
        f"{frozen}' and runs 'crisiscomms approve {frozen}'; then send it with 'crisiscomms send --plan {frozen}'.\n")
    own = run_cli("approve", frozen, "--yes")
    assert own.code == 5
    assert own.stderr == (f"crisiscomms: plan {frozen} was planned by alice: the approval must come from another "
                          "operator (set CRISISCOMMS_OPERATOR to your own name if you share a login). Nothing was "
                          "approved.\n")
    assert standin.requests["twilio"] == 0
    monkeypatch.setenv("CRISISCOMMS_OPERATOR", "bob")
    approved = run_cli("approve", frozen, "--yes")
    assert approved.code == 0
    assert f"Approved plan {frozen} as bob at " in approved.stdout
    report = run_cli("plan", "show", frozen)
    assert "Planned by alice at" in report.stdout and "Approved by bob at" in report.stdout
    sent = run_cli("send", "--plan", frozen, "--yes")
    assert sent.code == 0, sent.stdout + sent.stderr
    assert len(standin.sms_count_by_to()) == 30
    assert "Approved by bob" in run_cli("report").stdout


def test_one_step_send_of_a_notice_needing_approval_plans_and_stops(project: Path, standin: Standin) -> None:
    _require_approval(project)
    result = send("--channels", "sms")
    assert result.code == 5
    assert "needs the approval of a second operator" in result.stderr
    assert standin.requests["twilio"] == 0


# -- ledger problems: a clear error, nothing sent ------------------------------------------------------------


def test_ledger_of_a_newer_schema_is_refused(project: Path, standin: Standin) -> None:
    ledger = project / "new.sqlite"
    with sqlite3.connect(ledger) as db:
        db.execute("PRAGMA user_version = 99")
    result = send("--ledger", str(ledger))
    assert result.code == 3
    assert result.stderr == (f"crisiscomms: the ledger {ledger} has schema version 99, newer than this crisiscomms "
                             "knows (up to 3). Nothing was sent. Upgrade crisiscomms, or use another ledger.\n")
    assert standin.requests["twilio"] + standin.requests["sendgrid"] == 0


def test_corrupt_ledger_is_a_clear_error(project: Path, standin: Standin) -> None:
    assert send("--channels", "sms").code == 0
    ledger = ledger_file()
    data = bytearray(ledger.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    ledger.write_bytes(bytes(data))
    result = send("--channels", "sms")
    assert result.code == 3
    assert result.stderr.startswith(f"crisiscomms: the ledger {ledger} is damaged or not a crisiscomms ledger")
    assert "Traceback" not in result.stderr
    assert len(standin.sms) == 30


def test_files_with_personal_data_are_private(project: Path, standin: Standin, tmp_path: Path) -> None:
    os.umask(0o022)
    with (project / "audience.csv").open("a", encoding="utf-8") as audience:
        audience.write("bad,Bad,12,,en\n")
    assert send("--channels", "sms", "--skipped-out", "skipped.csv").code == 0
    assert "bad,sms,invalid_phone" in (project / "skipped.csv").read_text(encoding="utf-8")
    for path in (ledger_file(), project / "skipped.csv"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for companion in ledger_file().parent.glob("ledger.sqlite-*"):
        assert stat.S_IMODE(companion.stat().st_mode) == 0o600, companion
    assert stat.S_IMODE(ledger_file().parent.stat().st_mode) == 0o700


def test_in_flight_marks_are_durable_against_power_loss(project: Path) -> None:
    from crisiscomms.ledger import open_ledger

    plan()
    ledger = open_ledger(resolve_location(None, {}))
    try:
        assert ledger.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL  # type: ignore[attr-defined]
        assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # type: ignore[attr-defined]
    finally:
        ledger.close()



def test_the_one_step_send_reads_the_audience_once_and_sends_what_was_confirmed(
        project: Path, standin: Standin, monkeypatch: pytest.MonkeyPatch) -> None:
    import crisiscomms.cli
    import crisiscomms.plan

    opened: list[Path] = []
    real_open = crisiscomms.plan.open_audience

    def counting_open(path: Path, options: object) -> object:
        opened.append(path)
        return real_open(path, options)  # type: ignore[arg-type]

    def edit_then_confirm(*_: object, **__: object) -> str:
        (project / "audience.csv").write_text("id,phone\nx,+46709999999\n", encoding="utf-8")
        return "30"

    monkeypatch.setattr(crisiscomms.plan, "open_audience", counting_open)
    monkeypatch.setattr(crisiscomms.cli, "_stdin_is_terminal", lambda: True)
    monkeypatch.setattr("click.prompt", edit_then_confirm)
    result = run_cli("send", PLAYBOOK, "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                     "--channels", "sms")
    assert result.code == 0, result.stdout + result.stderr
    assert opened == [Path("audience.csv")]
    assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(30)], "what was confirmed")


def test_a_status_callback_given_when_the_plan_is_sent_reaches_every_sms(project: Path, standin: Standin) -> None:
    frozen = plan_id(plan("--format", "json", "--channels", "sms"))
    sent = run_cli("send", "--plan", frozen, "--yes", "--status-callback", "https://receipts.example.org/twilio/status")
    assert sent.code == 0, sent.stdout + sent.stderr
    assert {m.status_callback for m in standin.sms} == {"https://receipts.example.org/twilio/status"}


def test_send_and_report_name_the_ledger(project: Path, standin: Standin) -> None:
    sent = send("--channels", "sms", "--format", "json")
    assert sent.code == 0, sent.stderr
    outcome = json.loads(sent.stdout)
    assert (outcome["ledger"], outcome["campaign"], len(outcome["plan"])) == (str(ledger_file()),
                                                                              "testbolaget/outage", 16)
    assert f"Ledger: {ledger_file()} (from the default)" in run_cli("report").stdout
    csv_report = run_cli("report", "--format", "csv")
    assert csv_report.stderr == f"Ledger: {ledger_file()}; campaign testbolaget/outage\n"
    assert csv_report.stdout.startswith("id,channel,address")


def test_plan_show_keeps_everything_the_plan_summary_said(project: Path) -> None:
    with (project / "audience.csv").open("a", encoding="utf-8") as audience:
        audience.write("bad,Bad,12,,en\n")
    planned = json.loads(plan("--format", "json", "--channels", "sms").stdout)
    shown = json.loads(run_cli("plan", "show", planned["plan"], "--format", "json").stdout)
    for key in ("planned", "skipped", "skipped_details", "deferred", "locales", "sms_segments", "text_locales"):
        assert shown[key] == planned[key], key


def test_send_plan_without_a_ledger_creates_none(project: Path, private_ledger_home: Path) -> None:
    result = run_cli("send", "--plan", "0123456789abcdef", "--yes")
    assert result.code == 3
    assert result.stderr == (f"crisiscomms: no ledger at {ledger_file()}; give the one the send used with --ledger, "
                             "or set CRISISCOMMS_LEDGER\n")
    assert not ledger_file().exists()
