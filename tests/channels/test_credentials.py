"""Every missing credential of a run's channels is named at once, before anything is sent."""

from __future__ import annotations

import pytest

from crisiscomms.channels import MissingCredentials, missing_credentials, require_credentials
from crisiscomms.errors import ExitCode
from crisiscomms.loader import load_playbook

from ..conftest import DATA

PLAYBOOK = load_playbook(DATA / "playbooks" / "minimal.yaml").require()
ALL = {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t", "SENDGRID_API_KEY": "SG.k"}


def test_nothing_missing() -> None:
    assert missing_credentials(["sms", "email", "banner"], PLAYBOOK, ALL) == []


def test_every_missing_name_in_channel_order() -> None:
    assert missing_credentials(["sms", "email", "banner"], PLAYBOOK, {}) == [
        "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SENDGRID_API_KEY"]
    assert missing_credentials(["email", "sms"], PLAYBOOK, {"TWILIO_AUTH_TOKEN": " ", "SENDGRID_API_KEY": ""}) == [
        "SENDGRID_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"]


def test_only_the_runs_channels_count() -> None:
    assert missing_credentials(["banner"], PLAYBOOK, {}) == []
    assert missing_credentials(["email"], PLAYBOOK, {"SENDGRID_API_KEY": "SG.k"}) == []


def test_the_error_names_all_and_exits_4() -> None:
    with pytest.raises(MissingCredentials) as raised:
        require_credentials(["sms", "email"], PLAYBOOK, {"TWILIO_ACCOUNT_SID": "AC1"})
    assert raised.value.exit_code == ExitCode.PROVIDER
    assert raised.value.names == ["TWILIO_AUTH_TOKEN", "SENDGRID_API_KEY"]
    assert str(raised.value) == (
        "missing credentials: TWILIO_AUTH_TOKEN (SMS: the Twilio auth token); SENDGRID_API_KEY (e-mail: the "
        "SendGrid API key with Mail Send permission). Export them and run again; nothing was sent and the "
        "ledger was not changed.")
