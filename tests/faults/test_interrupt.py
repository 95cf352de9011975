"""Ctrl-C: a real SIGINT to the CLI subprocess in the middle of a send.

README: "Ctrl-C stops dispatching, lets the requests in flight finish, writes the ledger and prints
how to resume (exit 130)". The signal is sent once the stand-in has seen a given number of requests,
so it always lands mid-send whatever the machine's speed.
"""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

from crisiscomms.testing.standin import Standin

from .conftest import (
    Run,
    assert_exactly_once,
    cli_env,
    email,
    make_project,
    phone,
    run,
    send_command,
    start,
    wait_for_requests,
)

RESUME_HINT = "Stopped by Ctrl-C. Resume where it stopped with: crisiscomms send --plan "


def interrupt_after(standin: Standin, provider: str, requests: int, command: list[str], root: Path,
                    env: dict[str, str]) -> Run:
    process = start(command, root, env)
    assert wait_for_requests(standin, provider, requests, process), "the send ended before the Ctrl-C"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    return Run(process.returncode, out, err)


def test_ctrl_c_mid_send_exits_130_says_how_to_resume_and_resume_is_exactly_once(
        tmp_path: Path, standin: Standin) -> None:
    make_project(tmp_path, 2000)
    standin.configure(latency=0.05)
    env = cli_env(standin, tmp_path / "crash")
    command = send_command("--channels", "sms", "--concurrency", "10")
    stopped = interrupt_after(standin, "twilio", 300, command, tmp_path, env)
    assert stopped.code == 130, stopped.text[-2000:]
    assert RESUME_HINT in stopped.text
    assert "Stopping: finishing the requests in flight" in stopped.stderr
    assert "Traceback" not in stopped.stdout + stopped.stderr
    sent_before_resume = len(standin.sms)
    assert 0 < sent_before_resume < 2000  # stopped mid-send (in-flight ones may still be landing)

    standin.configure(latency=0.0)
    resumed = run(command, tmp_path, env, timeout=90)
    assert resumed.code == 0, resumed.text[-2000:]
    assert "messages were accepted in an earlier run and are not sent again" in resumed.text
    assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(2000)], "SMS after Ctrl-C")
    assert not (tmp_path / "crash").exists()


def uncertain_rows(root: Path) -> int:
    """SMS rows the interrupted run left in flight (they are looked up in Twilio's list on resume)."""
    from crisiscomms.ledger import default_ledger_path

    with sqlite3.connect(default_ledger_path()) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM messages WHERE state IN ('in_flight', 'uncertain')").fetchone()
    return int(count)


def test_ctrl_c_lets_emails_in_flight_finish_so_the_resume_needs_no_resend_uncertain(
        tmp_path: Path, standin: Standin) -> None:
    make_project(tmp_path, 60)
    standin.configure(latency=0.5)  # each e-mail request is in flight for half a second
    env = cli_env(standin, tmp_path / "crash")
    # 8/s with 4 in flight, one e-mail each: requests are staggered, so at any moment some are half-way through.
    command = send_command("--channels", "email", "--concurrency", "4", "--email-rate", "8", "--email-batch-size", "1")
    stopped = interrupt_after(standin, "sendgrid", 12, command, tmp_path, env)
    assert stopped.code == 130, stopped.text[-2000:]
    assert RESUME_HINT in stopped.text
    left_in_flight = uncertain_rows(tmp_path)

    standin.configure(latency=0.0)
    resumed = run(command, tmp_path, env, timeout=90)
    assert_exactly_once(standin.email_count_by_to(), [email(i) for i in range(60)], "e-mail after Ctrl-C")
    assert (left_in_flight, resumed.code) == (0, 0), resumed.text[-1500:]
