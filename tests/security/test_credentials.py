"""No credential in any output, log, ledger, report, preview or file.

The credentials are distinctive random strings (the stand-in accepts exactly them). Every run goes
through the real entry point in this process with Python logging at DEBUG captured on the root
logger; afterwards stdout, stderr, every log record, and every byte of every file under the temp
folder (the SQLite ledger and its WAL, reports, previews, skipped lists, crash files, the template
cache) are searched for each credential in raw, Basic-auth, Bearer and URL-encoded form.
"""

from __future__ import annotations

import logging
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import respx

from crisiscomms.testing.standin import Standin

from ..conftest import Result, run_cli
from .conftest import AT, Credentials, environment, files_under, leaks, make_project

SEND = ("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT, "--yes",
        "--banner-out", "site/banner.json")


class Recorder:
    def __init__(self) -> None:
        self.runs: list[tuple[tuple[str, ...], Result]] = []

    def __call__(self, *args: str) -> Result:
        result = run_cli(*args)
        self.runs.append((args, result))
        return result

    def outputs(self) -> dict[str, bytes]:
        found = {}
        for number, (args, result) in enumerate(self.runs):
            name = f"run {number} ({' '.join(args[:1] + args[-3:])})"
            found[f"{name} stdout"] = result.stdout.encode()
            found[f"{name} stderr"] = result.stderr.encode()
        return found


def log_text(caplog: pytest.LogCaptureFixture) -> bytes:
    records = "\n".join(repr(vars(record)) for record in caplog.records)
    return (caplog.text + "\n" + records).encode()


@pytest.fixture
def project(tmp_path: Path, credentials: Credentials, standin: Standin, monkeypatch: pytest.MonkeyPatch,
            caplog: pytest.LogCaptureFixture) -> Path:
    root = make_project(tmp_path / "project")
    for name, value in environment(standin, credentials, tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(root)
    caplog.set_level(logging.DEBUG)
    return root


def test_no_credential_in_any_output_log_ledger_report_or_preview(
        project: Path, tmp_path: Path, credentials: Credentials, standin: Standin,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    cli = Recorder()
    standin.configure(fail_429_rate=0.03, fail_500_rate=0.15, unanswered_rate=0.1, seed=5)
    assert cli(*SEND).code == 1  # faults: some messages uncertain
    assert cli(*SEND, "--resend-uncertain").code in (0, 1)
    standin.configure(fail_429_rate=0.0, fail_500_rate=0.0, unanswered_rate=0.0)
    assert cli(*SEND, "--resend-uncertain").code == 0
    assert standin.answers[("twilio", 500)] + standin.answers[("sendgrid", 500)] > 0

    for output_format in ("table", "csv", "json"):
        assert cli("report", "--format", output_format).code == 0
        assert cli("report", "--format", output_format, "--unmasked").code == 0
    for output_format in ("text", "json", "html"):
        assert cli("preview", "playbooks/p.yaml", "--notice", "outage", "--at", AT, "--format", output_format).code == 0
        assert cli("preview", "playbooks/p.yaml", "--notice", "outage", "--at", AT, "--format", output_format,
                   "--out", f"preview.{output_format}").code == 0
    for output_format in ("text", "json", "github"):
        assert cli("validate", "playbooks", "--format", output_format).code == 0
    dry = ("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT, "--dry-run")
    assert cli(*dry, "--skipped-out", "skipped.csv").code == 0
    assert cli(*dry, "--format", "json").code == 0

    wrong_token, wrong_key = "tok" + secrets.token_hex(16), "SG." + secrets.token_urlsafe(40)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", wrong_token)
    rejected = cli(*SEND, "--channels", "sms", "--campaign", "wrong-token")
    assert rejected.code == 4 and "TWILIO_AUTH_TOKEN" in rejected.stderr
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", credentials.token)
    monkeypatch.setenv("SENDGRID_API_KEY", wrong_key)
    rejected = cli(*SEND, "--channels", "email", "--campaign", "wrong-key")
    assert rejected.code == 4 and "SENDGRID_API_KEY" in rejected.stderr
    assert standin.answers[("twilio", 401)] == 1 and standin.answers[("sendgrid", 401)] == 1

    haystacks = {**cli.outputs(), "log records": log_text(caplog), **files_under(tmp_path)}
    assert any(name.endswith("ledger.sqlite") for name in haystacks)
    assert caplog.records, "nothing was logged: the scan would prove nothing"
    needles = {**credentials.secrets, "wrong TWILIO_AUTH_TOKEN": wrong_token, "wrong SENDGRID_API_KEY": wrong_key}
    assert leaks(haystacks, needles) == []
    not_logs = {where: data for where, data in haystacks.items() if where != "log records"}
    assert leaks(not_logs, credentials.sid_forms) == []


def test_no_credential_in_the_ledger_and_wal_of_a_killed_send(tmp_path: Path, credentials: Credentials,
                                                              standin: Standin) -> None:
    """A process killed mid-send leaves the WAL un-checkpointed: its raw bytes are scanned too."""
    root = make_project(tmp_path / "project", 400)
    standin.configure(latency=0.05)
    env = {**{k: v for k, v in __import__("os").environ.items() if not k.startswith(("TWILIO_", "SENDGRID_"))},
           **environment(standin, credentials, tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "crisiscomms", *SEND, "--concurrency", "8"], cwd=root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while standin.requests["twilio"] < 100 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    out, err = process.communicate(timeout=30)
    files = files_under(tmp_path)
    assert any(name.endswith("ledger.sqlite-wal") for name in files), sorted(files)
    haystacks = {"stdout": out, "stderr": err, **files}
    assert leaks(haystacks, {**credentials.secrets, **credentials.sid_forms}) == []


def test_the_account_sid_is_not_logged(project: Path, credentials: Credentials, standin: Standin,
                                       caplog: pytest.LogCaptureFixture) -> None:
    assert run_cli(*SEND, "--channels", "sms").code == 0
    assert caplog.records
    assert leaks({"log records": log_text(caplog)}, credentials.sid_forms) == []


def test_a_crash_while_reconciling_writes_a_traceback_without_credentials(
        project: Path, tmp_path: Path, credentials: Credentials, standin: Standin,
        caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected exception (injected with respx into the HTTP layer) while uncertain SMS are looked up
    in Twilio's list is an internal error: exit 70 and a traceback file, without the credentials."""
    standin.configure(unanswered_rate=1.0)
    assert run_cli(*SEND, "--channels", "sms").code == 1  # every SMS uncertain
    with respx.mock(using="httpx", assert_all_called=False) as mock:
        mock.route(host="127.0.0.1").mock(side_effect=RuntimeError("transport exploded while reconciling"))
        result = run_cli(*SEND, "--channels", "sms")
    assert result.code == 70, result.stdout + result.stderr
    assert "The full traceback is in" in result.stderr and "Traceback" not in result.stderr
    (crash_file,) = (tmp_path / "crash").iterdir()
    assert "transport exploded while reconciling" in crash_file.read_text(encoding="utf-8")
    haystacks = {"stdout": result.stdout.encode(), "stderr": result.stderr.encode(), "log records": log_text(caplog),
                 **files_under(tmp_path)}
    assert leaks(haystacks, credentials.secrets) == []
    assert leaks({k: v for k, v in haystacks.items() if k != "log records"}, credentials.sid_forms) == []
