"""An unexpected exception inside a channel (a bug, or a library surprise) mid-send.

README: exit 70, the traceback written to a file named in the message. Before the fix upstream (5b991a0)
the worker died silently: with few messages the run ended with exit 1 and "Everything was accepted by the
providers" (nothing was), with more it hung. The audience is kept smaller than the worker pool, so a
regression shows as a failure here, never as a hang.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import respx

from crisiscomms.testing.standin import Standin

from ..conftest import run_cli
from .conftest import AT, cli_env, make_project


@pytest.mark.parametrize("channel", ["sms", "email"])
def test_unexpected_exception_in_a_channel_is_an_internal_error(
        tmp_path: Path, standin: Standin, monkeypatch: pytest.MonkeyPatch, channel: str) -> None:
    make_project(tmp_path, 5)
    for name, value in cli_env(standin, tmp_path / "crash").items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    with respx.mock(using="httpx", assert_all_called=False) as mock:
        mock.route(host="127.0.0.1").mock(side_effect=RuntimeError(f"surprise in the {channel} channel"))
        result = run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT,
                         "--yes", "--channels", channel)
    assert result.code == 70, result.stdout[-1500:] + result.stderr
    assert "internal error" in result.stderr and "The full traceback is in" in result.stderr
    assert "Everything was accepted" not in result.stdout
    (crash,) = (tmp_path / "crash").iterdir()
    assert f"surprise in the {channel} channel" in crash.read_text(encoding="utf-8")
    assert standin.requests["twilio" if channel == "sms" else "sendgrid"] == 0
