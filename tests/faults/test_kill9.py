"""``kill -9`` of the sending process at random (seeded) moments, then a resume: still exactly once.

The CLI runs as a subprocess against the stand-in (a thread of this process, with latency so that
requests are really in flight when the process dies). The "moments" are seeded random numbers of
requests the stand-in has seen, plus a seeded random delay, so they do not depend on machine speed.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from crisiscomms.testing.standin import Standin

from .conftest import assert_exactly_once, cli_env, make_project, phone, run, send_command, start, wait_for_requests

RECIPIENTS = 5000


@pytest.mark.parametrize("seed", [20261125, 3])
def test_kill_9_at_random_moments_then_resume_sends_every_sms_exactly_once(tmp_path: Path, standin: Standin,
                                                                          seed: int) -> None:
    make_project(tmp_path, RECIPIENTS)
    standin.configure(latency=0.03)  # ~20 requests in flight at --concurrency 20
    env = cli_env(standin, tmp_path / "crash")
    command = send_command("--channels", "sms", "--concurrency", "20")
    rng = random.Random(seed)
    killed_mid_send = 0

    # The first kill lands at a random moment of start-up (import, plan, ledger), before or just after the
    # first request; the others at random points of the send itself.
    early = start(command, tmp_path, env)
    time.sleep(rng.uniform(0.2, 2.5))
    early.kill()
    early.communicate()

    for _ in range(3):
        seen = standin.requests["twilio"]
        target = seen + rng.randint(150, 1100)
        process = start(command, tmp_path, env)
        if wait_for_requests(standin, "twilio", target, process):
            time.sleep(rng.uniform(0.0, 0.15))
            process.send_signal(signal.SIGKILL)
        _out, err = process.communicate(timeout=60)
        if process.returncode == -signal.SIGKILL:
            killed_mid_send += 1
        else:  # finished before the kill: possible only if the plan was almost done already
            assert process.returncode in (0, 1), err[-2000:]
    assert killed_mid_send >= 2, "the kills must land while messages are in flight"
    assert 0 < len(standin.sms) < RECIPIENTS + 100, len(standin.sms)

    for _ in range(3):  # the documented resume: the same command again until it is complete
        final = run(command, tmp_path, env, timeout=90)
        if final.code == 0:
            break
        assert final.code == 1, final.text[-2000:]
    assert final.code == 0, final.text[-2000:]

    assert_exactly_once(standin.sms_count_by_to(), [phone(i) for i in range(RECIPIENTS)], "SMS after kill -9")
    assert standin.answers[("twilio", 200)] > 0  # uncertain SMS were looked up in Twilio's list, not resent blindly
    assert not (tmp_path / "crash").exists()
