"""The ledger when the disk is read-only or full.

tests/test_sending.py already checks the exit code, the stderr sentence and "no request" for a ledger
on a read-only file system (/sys), on /dev/full and on a file that is not a database. Added here: the
``--format json`` angle (tools get an empty stdout, the message on stderr, exit 3), a ledger whose folder
cannot exist, a disk that fills up in the middle of a send, and --format json on a real send.
"""

from __future__ import annotations

import json
import resource
import signal
from pathlib import Path

import pytest

from crisiscomms.testing.standin import Standin

from ..conftest import run_cli
from .conftest import AT, assert_exactly_once, cli_env, make_project, phone, run, send_command


@pytest.fixture
def project(tmp_path: Path, standin: Standin, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_project(tmp_path, 30)
    for name, value in cli_env(standin, tmp_path / "crash").items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def send_json(*extra: str) -> tuple[int, str, str]:
    result = run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                     "--yes", "--format", "json", "--banner-out", "site/banner.json", *extra)
    return result.code, result.stdout, result.stderr


@pytest.mark.parametrize(("ledger", "why"), [
    ("/sys/crisiscomms-ledger.sqlite", "(is the folder read-only?)"),
    ("/dev/full", "the disk is full"),
])
def test_unwritable_ledger_with_json_output_gives_tools_nothing_on_stdout_and_exit_3(
        project: Path, standin: Standin, ledger: str, why: str) -> None:
    if not Path(ledger).parent.exists():
        pytest.skip(f"{Path(ledger).parent} does not exist here")
    code, stdout, stderr = send_json("--ledger", ledger)
    assert (code, stdout) == (3, "")
    assert stderr.startswith(f"crisiscomms: cannot write the ledger {ledger}: ")
    assert why in stderr and "Nothing was sent." in stderr
    assert standin.requests["twilio"] + standin.requests["sendgrid"] == 0
    assert not (project / "site").exists()  # not even the banner file


def test_ledger_in_a_folder_that_cannot_exist_is_named_as_the_ledger(project: Path, standin: Standin) -> None:
    (project / "afile").write_text("not a folder", encoding="utf-8")
    code, _stdout, stderr = send_json("--ledger", "afile/ledger.sqlite")
    assert standin.requests["twilio"] + standin.requests["sendgrid"] == 0
    assert code == 3
    assert f"cannot write the ledger {project / 'afile' / 'ledger.sqlite'}: {project / 'afile'} is a file" in stderr


def test_real_send_with_format_json_prints_one_json_object(project: Path, standin: Standin) -> None:
    code, stdout, _ = send_json("--channels", "sms")
    assert code == 0 and len(standin.sms) == 30
    json.loads(stdout)


def _fill_disk_at(limit: int) -> None:
    """In the child: writes past ``limit`` bytes fail with EFBIG (a full disk for this process)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


# Found by this suite (the send hung forever: dead workers, _feed waiting on a full queue); fixed upstream
# while it was written (5b991a0: a crashing worker ends the run). Kept as a regression test.
def test_disk_filling_up_mid_send_stops_with_exit_3_and_resume_is_exactly_once(
        tmp_path: Path, standin: Standin) -> None:
    make_project(tmp_path, 3000)
    standin.configure(latency=0.01)
    env = cli_env(standin, tmp_path / "crash")
    command = send_command("--channels", "sms", "--concurrency", "10")
    # The WAL reaches 400 kB after a few dozen commits; a fixed product stops within seconds (20 s: a guard).
    full = run(command, tmp_path, env, timeout=20, preexec_fn=lambda: _fill_disk_at(400_000))
    resumed = run(command, tmp_path, env, timeout=90)  # disk space freed: the same command again
    assert resumed.code == 0, resumed.text[-1500:]
    assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(3000)], "SMS after a full disk")
    assert full.code == 3, full.text[-1500:]
    assert "cannot write the ledger" in full.stderr and "Traceback" not in full.stderr
