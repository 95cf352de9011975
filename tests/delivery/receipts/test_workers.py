"""``receipts serve --workers N``: worker processes on one socket, one writer, the whole command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from crisiscomms.ledger.sqlite import SqliteLedger
from crisiscomms.testing.standin_receipts import twilio_signature

from ...ledger.backends import sql
from ...ledger_rows import NewRow, seed
from ...processes import children

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="worker processes are forked (Linux)")

TOKEN = "workers-test-token"
CAMPAIGN = "org/notice"
PEOPLE = 60


def sid(i: int) -> str:
    return f"SM{i:032x}"


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    """A ledger with PEOPLE accepted SMS, each with its sid."""
    path = tmp_path / "ledger.sqlite"
    ledger = SqliteLedger.open(path)
    seed(ledger, CAMPAIGN, [NewRow("sms", f"+4670100{i:04d}", f"r{i}", i, "sv") for i in range(PEOPLE)])
    for i in range(PEOPLE):
        sql(ledger, "UPDATE messages SET state = 'accepted', provider_id = ? WHERE recipient_id = ?", (sid(i), f"r{i}"))
    ledger.close()
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def serve(ledger_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN}
    env.pop("SENDGRID_WEBHOOK_PUBLIC_KEY", None)
    server = subprocess.Popen([sys.executable, "-m", "crisiscomms", "receipts", "serve", "--listen",
                               f"127.0.0.1:{port}", "--ledger", str(ledger_path), "--workers", "3"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/twilio/status"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    try:
        yield server, url
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate(timeout=30)


def post(url: str, i: int, status: str, client: httpx.Client) -> int:
    params = {"MessageSid": sid(i), "MessageStatus": status}
    return client.post(url, content=urlencode(params).encode(), headers={
        "X-Twilio-Signature": twilio_signature(TOKEN, url, params),
        "Content-Type": "application/x-www-form-urlencoded"}).status_code


def states(path: Path) -> dict[str, str | None]:
    ledger = SqliteLedger.open(path, create=False)
    try:
        return {row.recipient_id: row.delivery_state for row in ledger.rows(CAMPAIGN)}
    finally:
        ledger.close()


def stop(server: subprocess.Popen[str]) -> tuple[int, str]:
    server.send_signal(signal.SIGINT)
    _, err = server.communicate(timeout=60)
    return server.returncode, err


def test_three_workers_apply_every_callback_once_and_add_up_their_counts(
        serve: tuple[subprocess.Popen[str], str], ledger_path: Path) -> None:
    server, url = serve
    assert len(children(server.pid)) == 3
    with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:  # new connections: spread
        answers = [post(url, i, "delivered" if i % 4 else "undelivered", client) for i in range(PEOPLE)]
        answers += [post(url, i, "delivered" if i % 4 else "undelivered", client) for i in range(10)]  # resent
    assert set(answers) == {200}
    code, err = stop(server)
    assert code == 0, err
    assert "with 3 worker processes. Ctrl-C stops.\n" in err
    assert err.endswith(f"Stopped. twilio: requests {PEOPLE + 10}, accepted {PEOPLE + 10}, events applied {PEOPLE}, "
                        "events duplicate 10\n"), err
    assert states(ledger_path) == {f"r{i}": "delivered" if i % 4 else "undelivered" for i in range(PEOPLE)}
    assert not [line for line in err.splitlines() if "Traceback" in line]


def test_a_killed_worker_is_started_again_and_the_others_go_on(
        serve: tuple[subprocess.Popen[str], str], ledger_path: Path) -> None:
    server, url = serve
    first = children(server.pid)[0]
    time.sleep(5.5)  # older than a worker that dies right after its start (that one is not started again)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (first in children(server.pid) or len(children(server.pid)) < 3):
        time.sleep(0.1)
    assert len(children(server.pid)) == 3 and first not in children(server.pid)
    with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
        assert {post(url, i, "delivered", client) for i in range(PEOPLE)} == {200}
    code, err = stop(server)
    assert code == 0, err
    assert ("stopped (exit code -9); starting it again. The others went on receiving; what it applied is in the "
            "ledger, its counts are not in the totals.") in err
    assert set(states(ledger_path).values()) == {"delivered"}


def test_without_a_ledger_no_worker_starts_and_the_address_is_not_taken(tmp_path: Path) -> None:
    env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN}
    with socket.socket() as taken:  # the ledger is the problem said, not an address someone else holds
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = subprocess.run([sys.executable, "-m", "crisiscomms", "receipts", "serve", "--listen",
                               f"127.0.0.1:{taken.getsockname()[1]}", "--ledger", str(tmp_path / "none.sqlite"),
                               "--workers", "2"], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (
        3, f"crisiscomms: no ledger at {tmp_path / 'none.sqlite'}; give the one the send used with --ledger, or set "
           "CRISISCOMMS_LEDGER\n")


def test_a_port_in_use_is_a_usage_error(ledger_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "crisiscomms", "receipts", "serve", "--listen",
                               f"127.0.0.1:{port}", "--ledger", str(ledger_path), "--workers", "2"],
                              env={**os.environ, "TWILIO_AUTH_TOKEN": TOKEN}, capture_output=True, text=True,
                              timeout=60)
    assert (done.returncode, done.stderr) == (2, f"crisiscomms: cannot listen on 127.0.0.1:{port}: Address already "
                                                 "in use\n")
