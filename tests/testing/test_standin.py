"""Tests of the Twilio + SendGrid stand-in, with real HTTP clients and the SDKs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client as TwilioClient

from crisiscomms.testing import Standin, StandinConfig, run_standin, standin_in_thread
from crisiscomms.testing.standin import (
    DEFAULT_SENDGRID_KEY,
    DEFAULT_TWILIO_SID,
    DEFAULT_TWILIO_TOKEN,
    sms_segments,
)

SID, TOKEN, KEY = DEFAULT_TWILIO_SID, DEFAULT_TWILIO_TOKEN, DEFAULT_SENDGRID_KEY
MESSAGES = f"/2010-04-01/Accounts/{SID}/Messages.json"
MAIL_SEND = "/v3/mail/send"
SENDER = "+15557654321"
ALICE, BOB = "+15551230001", "+15551230002"
REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------


@pytest.fixture
def standin() -> Iterator[Standin]:
    """A stand-in served from a thread, default configuration."""
    with standin_in_thread() as running:
        yield running


@pytest.fixture
def twilio(standin: Standin) -> Iterator[httpx.Client]:
    """An httpx client authenticated for the Twilio stand-in."""
    with httpx.Client(base_url=standin.twilio_url, auth=(SID, TOKEN), timeout=5) as client:
        yield client


@pytest.fixture
def sendgrid(standin: Standin) -> Iterator[httpx.Client]:
    """An httpx client authenticated for the SendGrid stand-in."""
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=standin.sendgrid_url, headers=headers, timeout=5) as client:
        yield client


def sms(to: str = ALICE, body: str = "Shelter in place.", **extra: str) -> dict[str, str]:
    """A Twilio create-message form."""
    return {"To": to, "From": SENDER, "Body": body, **extra}


def mail(*recipients: str | list[str], **extra: Any) -> dict[str, Any]:
    """A SendGrid mail body with one personalization per argument."""
    personalizations = [
        {"to": [{"email": address} for address in ([r] if isinstance(r, str) else r)]} for r in recipients
    ]
    return {
        "personalizations": personalizations,
        "from": {"email": "alerts@example.org", "name": "Alerts"},
        "subject": "Boil water notice",
        "content": [{"type": "text/plain", "value": "Boil water before use."}],
        **extra,
    }


def fields_of(response: httpx.Response) -> list[str | None]:
    """The ``field`` of every SendGrid error in a response."""
    return [error["field"] for error in response.json()["errors"]]


class RebasedTwilioHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio is untyped
    """A Twilio SDK HTTP client that sends ``api.twilio.com`` calls elsewhere."""

    def __init__(self, base_url: str) -> None:
        super().__init__(timeout=5)
        self.base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> TwilioResponse:
        url = url.replace("https://api.twilio.com", self.base_url, 1)
        return super().request(method, url, *args, **kwargs)


# --------------------------------------------------------------------------
# Twilio
# --------------------------------------------------------------------------


def test_twilio_create_answers_201_with_a_realistic_resource(standin: Standin, twilio: httpx.Client) -> None:
    response = twilio.post(MESSAGES, data=sms(StatusCallback="https://cb.test/s"))

    assert response.status_code == 201
    message = response.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", message["sid"])
    assert message["account_sid"] == SID
    assert (message["to"], message["from"]) == (ALICE, SENDER)
    assert message["body"] == "Shelter in place."
    assert message["status"] == "queued"
    assert message["num_segments"] == "1"
    assert message["price"] is None
    assert message["direction"] == "outbound-api"
    assert message["api_version"] == "2010-04-01"
    assert message["uri"] == f"/2010-04-01/Accounts/{SID}/Messages/{message['sid']}.json"
    created = parsedate_to_datetime(message["date_created"])
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=1)
    [record] = standin.sms
    assert (record.sid, record.to, record.from_) == (message["sid"], ALICE, SENDER)
    assert record.status_callback == "https://cb.test/s"
    assert standin.answers[("twilio", 201)] == 1


def test_messaging_service_sends_are_accepted_and_segments_counted(
    twilio: httpx.Client,
) -> None:
    form = {"To": ALICE, "MessagingServiceSid": "MG" + "ab" * 16, "Body": "x" * 161}

    message = twilio.post(MESSAGES, data=form).json()

    assert message["status"] == "accepted"
    assert message["from"] is None
    assert message["num_segments"] == "2"


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),
        ("é" * 160, 1),
        ("ж" * 70, 1),
        ("ж" * 71, 2),
        ("🙂" * 35, 1),
        ("🙂" * 36, 2),
    ],
)
def test_sms_segments(body: str, segments: int) -> None:
    assert sms_segments(body) == segments


@pytest.mark.parametrize("number", ["+1", "5551230001", "+05551230001", "+1555abc0001"])
def test_invalid_to_is_21211(standin: Standin, twilio: httpx.Client, number: str) -> None:
    response = twilio.post(MESSAGES, data=sms(to=number))

    assert response.status_code == 400
    assert response.json() == {
        "code": 21211,
        "message": f"The 'To' number {number} is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }
    assert standin.sms == []


def test_opted_out_number_is_21610(standin: Standin, twilio: httpx.Client) -> None:
    standin.configure(opted_out={BOB})

    refused = twilio.post(MESSAGES, data=sms(to=BOB))
    accepted = twilio.post(MESSAGES, data=sms(to=ALICE))

    assert refused.status_code == 400
    assert refused.json()["code"] == 21610
    assert refused.json()["message"] == "Attempt to send to unsubscribed recipient"
    assert accepted.status_code == 201
    assert standin.sms_count_by_to() == {ALICE: 1}


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": SENDER, "Body": "b"}, 21604),
        ({"To": ALICE, "Body": "b"}, 21603),
        ({"To": ALICE, "From": SENDER}, 21602),
        ({"To": ALICE, "From": SENDER, "Body": "b" * 1601}, 21617),
        ({"To": ALICE, "From": "not a sender!", "Body": "b"}, 21212),
    ],
)
def test_unacceptable_sends_are_400(twilio: httpx.Client, form: dict[str, str], code: int) -> None:
    response = twilio.post(MESSAGES, data=form)

    assert response.status_code == 400
    assert response.json()["code"] == code


def test_body_of_1600_characters_is_accepted(twilio: httpx.Client) -> None:
    assert twilio.post(MESSAGES, data=sms(body="b" * 1600)).status_code == 201


@pytest.mark.parametrize("auth", [(SID, "wrong-token"), ("AC" + "0" * 32, TOKEN), None])
def test_twilio_wrong_credentials_are_401(standin: Standin, auth: tuple[str, str] | None) -> None:
    response = httpx.post(standin.twilio_url + MESSAGES, data=sms(), auth=auth, timeout=5)

    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert standin.sms == []
    assert standin.answers == {("twilio", 401): 1}


def test_another_accounts_path_is_404(twilio: httpx.Client) -> None:
    response = twilio.post(f"/2010-04-01/Accounts/AC{'1' * 32}/Messages.json", data=sms())

    assert response.status_code == 404
    assert response.json()["code"] == 20404


def test_list_filters_by_to_and_date(twilio: httpx.Client) -> None:
    for to in (ALICE, BOB, ALICE):
        assert twilio.post(MESSAGES, data=sms(to=to)).status_code == 201
    today = datetime.now(UTC).date()
    tomorrow = today + timedelta(days=1)

    page = twilio.get(MESSAGES, params={"To": ALICE}).json()
    # The key is literally ``DateSent>``: both raw and encoded forms parse to it.
    raw = twilio.get(f"{MESSAGES}?To=%2B{ALICE[1:]}&DateSent>={today}").json()
    encoded = twilio.get(MESSAGES, params={"To": ALICE, "DateSent>": str(today)}).json()
    later = twilio.get(MESSAGES, params={"To": ALICE, "DateSent>": str(tomorrow)}).json()
    on_day = twilio.get(MESSAGES, params={"DateSent": str(today)}).json()

    assert [m["to"] for m in page["messages"]] == [ALICE, ALICE]
    assert page["next_page_uri"] is None
    assert (page["page"], page["page_size"]) == (0, 50)
    assert len(raw["messages"]) == len(encoded["messages"]) == 2
    assert later["messages"] == []
    assert len(on_day["messages"]) == 3


def test_list_pages_and_fetch_one(twilio: httpx.Client) -> None:
    sids = [twilio.post(MESSAGES, data=sms()).json()["sid"] for _ in range(3)]

    first = twilio.get(MESSAGES, params={"To": ALICE, "PageSize": 2}).json()
    second = twilio.get(first["next_page_uri"]).json()
    fetched = twilio.get(f"/2010-04-01/Accounts/{SID}/Messages/{sids[0]}.json")

    listed = [m["sid"] for m in first["messages"] + second["messages"]]
    assert listed == sids[::-1]  # newest first, like Twilio
    assert second["next_page_uri"] is None
    assert fetched.status_code == 200
    assert fetched.json()["sid"] == sids[0]


# --------------------------------------------------------------------------
# Rate cap, injected faults, unanswered requests, latency
# --------------------------------------------------------------------------


def test_twilio_rate_cap_answers_429_with_retry_after(standin: Standin, twilio: httpx.Client) -> None:
    standin.configure(rate_cap=5)

    statuses = [twilio.post(MESSAGES, data=sms()) for _ in range(8)]

    assert [r.status_code for r in statuses] == [201] * 5 + [429] * 3
    refused = statuses[-1]
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["code"] == 20429
    assert refused.json()["message"] == "Too Many Requests"
    assert len(standin.sms) == 5


def test_sendgrid_rate_cap_answers_429_with_reset(standin: Standin, sendgrid: httpx.Client) -> None:
    standin.configure(sendgrid_rate_cap=2)

    statuses = [sendgrid.post(MAIL_SEND, json=mail(f"u{i}@example.org")) for i in range(3)]

    assert [r.status_code for r in statuses] == [202, 202, 429]
    refused = statuses[-1]
    assert refused.json() == {"errors": [{"message": "too many requests"}]}
    assert refused.headers["X-RateLimit-Limit"] == "2"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert time.time() - 1 <= int(refused.headers["X-RateLimit-Reset"]) <= time.time() + 2


def test_rate_window_frees_up_after_a_second(standin: Standin, twilio: httpx.Client) -> None:
    standin.configure(rate_cap=20)
    first = [twilio.post(MESSAGES, data=sms()).status_code for _ in range(21)]
    time.sleep(1.05)

    assert first.count(429) == 1
    assert twilio.post(MESSAGES, data=sms()).status_code == 201


def _statuses_with_faults(config: StandinConfig, count: int) -> list[int]:
    """Status codes of ``count`` sequential sends to a fresh stand-in."""
    with (
        standin_in_thread(config) as running,
        httpx.Client(base_url=running.twilio_url, auth=(SID, TOKEN), timeout=5) as client,
    ):
        return [client.post(MESSAGES, data=sms()).status_code for _ in range(count)]


def test_fail_500_rate_is_random_but_reproducible() -> None:
    config = StandinConfig(fail_500_rate=0.3, fail_429_rate=0.1, seed=7)

    first = _statuses_with_faults(config, 100)
    second = _statuses_with_faults(config, 100)

    assert first == second
    assert 15 <= first.count(500) <= 45
    assert 2 <= first.count(429) <= 20
    assert first.count(201) + first.count(500) + first.count(429) == 100


def test_injected_500_bodies_are_realistic(standin: Standin, twilio: httpx.Client, sendgrid: httpx.Client) -> None:
    standin.configure(fail_500_rate=1.0)

    from_twilio = twilio.post(MESSAGES, data=sms())
    from_sendgrid = sendgrid.post(MAIL_SEND, json=mail("a@example.org"))

    assert from_twilio.status_code == from_sendgrid.status_code == 500
    assert from_twilio.json()["code"] == 20500
    assert from_twilio.json()["message"] == "Internal Server Error"
    assert from_sendgrid.json()["errors"][0]["message"]
    assert standin.sms == [] and standin.emails == []


def test_unanswered_sms_is_recorded_but_the_client_sees_a_disconnect(standin: Standin, twilio: httpx.Client) -> None:
    standin.configure(unanswered_rate=1.0)

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        twilio.post(MESSAGES, data=sms())

    assert len(standin.sms) == 1
    assert standin.unanswered == {"twilio": 1}
    assert standin.answers == {}
    standin.configure(unanswered_rate=0.0)
    assert twilio.post(MESSAGES, data=sms()).status_code == 201  # new connection


def test_unanswered_mail_is_recorded_but_the_client_sees_a_disconnect(standin: Standin, sendgrid: httpx.Client) -> None:
    standin.configure(unanswered_rate=1.0)

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        sendgrid.post(MAIL_SEND, json=mail("a@example.org", "b@example.org"))

    assert [e.to for e in standin.emails] == ["a@example.org", "b@example.org"]
    assert standin.unanswered == {"sendgrid": 1}


def test_latency_delays_answers() -> None:
    async def scenario() -> float:
        async with (
            run_standin(StandinConfig(latency=0.1)) as running,
            httpx.AsyncClient(auth=(SID, TOKEN), timeout=5) as client,
        ):
            started = time.perf_counter()
            answers = await asyncio.gather(*(client.post(running.twilio_url + MESSAGES, data=sms()) for _ in range(20)))
            assert {a.status_code for a in answers} == {201}
            return time.perf_counter() - started

    elapsed = asyncio.run(scenario())

    assert 0.1 <= elapsed < 1.0  # concurrent requests wait in parallel


def test_run_standin_serves_in_the_callers_loop() -> None:
    async def scenario() -> tuple[int, int, Standin]:
        async with run_standin() as running:
            assert running.port > 0
            async with httpx.AsyncClient(base_url=running.url, timeout=5) as client:
                sent = await client.post(MESSAGES, data=sms(), auth=(SID, TOKEN))
                mailed = await client.post(
                    MAIL_SEND,
                    json=mail("a@example.org"),
                    headers={"Authorization": f"Bearer {KEY}"},
                )
            return sent.status_code, mailed.status_code, running

    sent, mailed, stopped = asyncio.run(scenario())

    assert (sent, mailed) == (201, 202)
    assert len(stopped.sms) == len(stopped.emails) == 1  # record outlives the server


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="fail_500_rate"):
        StandinConfig(fail_500_rate=1.5)
    with pytest.raises(ValueError, match="add up"):
        StandinConfig(fail_500_rate=0.6, unanswered_rate=0.6)
    with pytest.raises(ValueError, match="unknown"):
        StandinConfig().with_changes({"latncy": 1})


# --------------------------------------------------------------------------
# SendGrid
# --------------------------------------------------------------------------


def test_sendgrid_202_records_one_delivery_per_recipient(standin: Standin, sendgrid: httpx.Client) -> None:
    body = mail(
        "a@example.org",
        ["b@example.org", "c@example.org"],
        categories=["crisis"],
        custom_args={"campaign": "flood"},
        asm={"group_id": 42},
    )
    body["personalizations"][0]["custom_args"] = {"notice_id": "n-1"}
    body["personalizations"][1]["subject"] = "Per-person subject"

    response = sendgrid.post(MAIL_SEND, json=body)

    assert response.status_code == 202
    assert response.content == b""
    message_id = response.headers["X-Message-Id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", message_id)
    emails = standin.emails
    assert [e.to for e in emails] == ["a@example.org", "b@example.org", "c@example.org"]
    assert {e.message_id for e in emails} == {message_id}
    assert emails[0].custom_args == {"campaign": "flood", "notice_id": "n-1"}
    assert emails[1].custom_args == {"campaign": "flood"}
    assert [e.subject for e in emails] == ["Boil water notice"] + ["Per-person subject"] * 2
    assert emails[0].categories == ("crisis",)
    assert standin.email_count_by_to()["b@example.org"] == 1


@pytest.mark.parametrize("key", [None, "Bearer wrong", f"Basic {KEY}"])
def test_sendgrid_wrong_key_is_401(standin: Standin, key: str | None) -> None:
    headers = {"Authorization": key} if key else {}

    response = httpx.post(standin.sendgrid_url + MAIL_SEND, json=mail("a@example.org"), headers=headers)

    assert response.status_code == 401
    assert response.json() == {
        "errors": [
            {
                "message": "The provided authorization grant is invalid, expired, or revoked",
                "field": None,
                "help": None,
            }
        ]
    }
    assert standin.emails == []


def test_sendgrid_allows_1000_personalizations_but_not_1001(standin: Standin, sendgrid: httpx.Client) -> None:
    addresses = [f"user{i}@example.org" for i in range(1001)]

    accepted = sendgrid.post(MAIL_SEND, json=mail(*addresses[:1000]))
    refused = sendgrid.post(MAIL_SEND, json=mail(*addresses))

    assert accepted.status_code == 202
    assert refused.status_code == 400
    assert fields_of(refused) == ["personalizations"]
    assert refused.json()["errors"][0]["help"]
    assert len(standin.emails) == 1000


def test_sendgrid_refuses_more_than_1000_recipients(sendgrid: httpx.Client) -> None:
    groups = [[f"u{i}-{j}@example.org" for j in range(3)] for i in range(334)]

    response = sendgrid.post(MAIL_SEND, json=mail(*groups))

    assert response.status_code == 400
    assert "personalizations" in fields_of(response)
    assert "1000" in response.json()["errors"][0]["message"]


def test_sendgrid_refuses_the_same_address_twice(standin: Standin, sendgrid: httpx.Client) -> None:
    response = sendgrid.post(MAIL_SEND, json=mail("a@example.org", "A@Example.org"))

    assert response.status_code == 400
    assert fields_of(response) == ["personalizations.1.to"]
    assert standin.emails == []


def test_sendgrid_names_missing_fields(sendgrid: httpx.Client) -> None:
    body = {"personalizations": [{"to": [{"email": "a@example.org"}]}]}

    response = sendgrid.post(MAIL_SEND, json=body)

    assert response.status_code == 400
    assert fields_of(response) == ["from", "subject", "content"]


def test_sendgrid_flags_bad_addresses_and_bad_json(sendgrid: httpx.Client) -> None:
    bad_address = sendgrid.post(MAIL_SEND, json=mail("not-an-address"))
    bad_json = sendgrid.post(MAIL_SEND, content=b"{", headers={"Content-Type": "application/json"})

    assert fields_of(bad_address) == ["personalizations.0.to.0.email"]
    assert bad_json.status_code == 400


def test_sendgrid_sandbox_mode_validates_without_delivering(standin: Standin, sendgrid: httpx.Client) -> None:
    body = mail("a@example.org", mail_settings={"sandbox_mode": {"enable": True}})

    assert sendgrid.post(MAIL_SEND, json=body).status_code == 200
    assert standin.emails == []


# --------------------------------------------------------------------------
# Official SDKs
# --------------------------------------------------------------------------


def test_twilio_sdk_with_a_rebasing_http_client(standin: Standin) -> None:
    client = TwilioClient(SID, TOKEN, http_client=RebasedTwilioHttpClient(standin.url))

    message = client.messages.create(to=ALICE, from_=SENDER, body="Evacuate zone B.")
    listed = client.messages.list(to=ALICE, date_sent_after=datetime(2020, 1, 1))
    today = client.messages.list(date_sent=datetime.now(UTC))  # sent as a timestamp: whole day
    tomorrow = client.messages.list(date_sent=datetime.now(UTC) + timedelta(days=1))

    assert message.status == "queued"
    assert message.sid == standin.sms[0].sid
    assert [m.sid for m in listed] == [m.sid for m in today] == [message.sid]
    assert tomorrow == []


def test_twilio_sdk_with_base_url_override(standin: Standin) -> None:
    client = TwilioClient(SID, TOKEN)
    client.api.base_url = standin.twilio_url
    standin.configure(opted_out={BOB})

    message = client.messages.create(to=ALICE, from_=SENDER, body="x" * 200)
    with pytest.raises(TwilioRestException) as refused:
        client.messages.create(to=BOB, from_=SENDER, body="hi")

    assert message.num_segments == "2"
    assert (refused.value.status, refused.value.code) == (400, 21610)


def test_twilio_sdk_sees_401_and_a_disconnect(standin: Standin) -> None:
    client = TwilioClient(SID, "wrong")
    client.api.base_url = standin.twilio_url
    with pytest.raises(TwilioRestException) as refused:
        client.messages.create(to=ALICE, from_=SENDER, body="hi")
    assert (refused.value.status, refused.value.code) == (401, 20003)

    standin.configure(unanswered_rate=1.0)
    client = TwilioClient(SID, TOKEN)
    client.api.base_url = standin.twilio_url
    with pytest.raises(requests.exceptions.ConnectionError):
        client.messages.create(to=ALICE, from_=SENDER, body="hi")
    assert len(standin.sms) == 1


def test_sendgrid_sdk_against_the_standin(standin: Standin) -> None:
    client = SendGridAPIClient(KEY, host=standin.sendgrid_url)
    message = Mail(
        from_email="alerts@example.org",
        to_emails=["a@example.org", "b@example.org"],
        subject="Road closed",
        plain_text_content="Route 9 is closed.",
        is_multiple=True,
    )

    response = client.send(message)

    assert response.status_code == 202
    assert {e.message_id for e in standin.emails} == {response.headers["X-Message-Id"]}
    assert sorted(e.to for e in standin.emails) == ["a@example.org", "b@example.org"]
    # python_http_client raises its own HTTPError subclasses (UnauthorizedError, ...).
    with pytest.raises(Exception, match="HTTP Error 401") as unauthorized:
        SendGridAPIClient("wrong", host=standin.sendgrid_url).send(message)
    assert type(unauthorized.value).__name__ == "UnauthorizedError"
    with pytest.raises(Exception, match="HTTP Error 400") as invalid:
        client.send({"personalizations": [{"to": [{"email": "a@example.org"}]}]})
    errors = json.loads(vars(invalid.value)["body"])["errors"]
    assert [error["field"] for error in errors] == ["from", "subject", "content"]


# --------------------------------------------------------------------------
# Control endpoints and the command line
# --------------------------------------------------------------------------


def test_control_endpoints(standin: Standin, twilio: httpx.Client) -> None:
    twilio.post(MESSAGES, data=sms())
    record = twilio.get("/_standin/record").json()
    changed = twilio.post("/_standin/config", json={"latency": 0.01, "opted_out": [BOB]})
    bad = twilio.post("/_standin/config", json={"fail_500_rate": 3})
    reset = twilio.post("/_standin/reset")

    assert [m["to"] for m in record["sms"]] == [ALICE]
    assert record["answers"] == {"twilio": {"201": 1}}
    assert changed.json()["opted_out"] == [BOB]
    assert standin.config.latency == 0.01
    assert bad.status_code == 400
    assert reset.status_code == 200
    assert standin.sms == []
    assert standin.answers == {}


def test_command_line_prints_url_and_dumps_record_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [
        sys.executable,
        "-m",
        "crisiscomms.testing.standin",
        "--port",
        "0",
        "--latency",
        "0.01",
        "--opted-out",
        BOB,
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as process:
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], 15)
            assert ready, "the stand-in printed no URL"
            url = process.stdout.readline().strip()
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
            with httpx.Client(base_url=url, auth=(SID, TOKEN), timeout=5) as client:
                assert client.post(MESSAGES, data=sms()).status_code == 201
                assert client.post(MESSAGES, data=sms(to=BOB)).status_code == 400
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=15)
        finally:
            process.kill()

    assert process.returncode == 0, err
    assert "RuntimeWarning" not in err
    record = json.loads(out.strip().splitlines()[-1])
    assert [m["to"] for m in record["sms"]] == [ALICE]
    assert record["answers"]["twilio"] == {"201": 1, "400": 1}
