"""The stand-in's Twilio Calls API: create, list, fetch, with the same faults and record as Messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from twilio.rest import Client as TwilioClient

from crisiscomms.testing import Standin, standin_in_thread
from crisiscomms.testing.standin import DEFAULT_TWILIO_SID, DEFAULT_TWILIO_TOKEN

from .test_standin import RebasedTwilioHttpClient

SID, TOKEN = DEFAULT_TWILIO_SID, DEFAULT_TWILIO_TOKEN
CALLS = f"/2010-04-01/Accounts/{SID}/Calls"
CALLER, TO, OTHER = "+15557654321", "+15551230001", "+15551230002"
TWIML = '<Response><Say language="en-US">Shelter in place.</Say></Response>'


@pytest.fixture
def standin() -> Iterator[Standin]:
    with standin_in_thread() as running:
        yield running


@pytest.fixture
def twilio(standin: Standin) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=standin.twilio_url, auth=(SID, TOKEN), timeout=5) as client:
        yield client


def call(to: str = TO, **extra: str) -> dict[str, str]:
    return {"To": to, "From": CALLER, "Twiml": TWIML, **extra}


def test_create_answers_201_queued_and_records_the_twiml(standin: Standin, twilio: httpx.Client) -> None:
    response = twilio.post(CALLS + ".json", data=call(StatusCallback="https://hooks.example.org/calls"))
    assert response.status_code == 201
    body = response.json()
    assert body["sid"].startswith("CA") and len(body["sid"]) == 34
    assert (body["to"], body["from"], body["status"], body["direction"]) == (TO, CALLER, "queued", "outbound-api")
    assert body["uri"] == f"{CALLS}/{body['sid']}.json"
    [record] = standin.calls
    assert (record.sid, record.twiml, record.url, record.status_callback) == (
        body["sid"], TWIML, None, "https://hooks.example.org/calls")
    assert standin.snapshot()["calls"][0]["twiml"] == TWIML
    assert standin.answers[("twilio", 201)] == 1


@pytest.mark.parametrize(("form", "code"), [
    ({"From": CALLER, "Twiml": TWIML}, 21201),
    ({"To": TO, "Twiml": TWIML}, 21213),
    ({"To": TO, "From": CALLER}, 21205),
    ({"To": "12", "From": CALLER, "Twiml": TWIML}, 21211),
    ({"To": TO, "From": "Nordvind", "Twiml": TWIML}, 21212),
    ({"To": TO, "From": CALLER, "Twiml": "<Response>" + "x" * 4000 + "</Response>"}, 20001),
])
def test_unacceptable_calls_are_400(standin: Standin, twilio: httpx.Client, form: dict[str, str], code: int) -> None:
    response = twilio.post(CALLS + ".json", data=form)
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert standin.calls == []


def test_a_url_instead_of_twiml_is_accepted(standin: Standin, twilio: httpx.Client) -> None:
    assert twilio.post(CALLS + ".json", data={"To": TO, "From": CALLER, "Url": "https://x.example/t"}).status_code \
        == 201
    assert standin.calls[0].url == "https://x.example/t"


def test_list_filters_by_to_from_status_and_start_time_and_fetch_one(standin: Standin, twilio: httpx.Client) -> None:
    first = twilio.post(CALLS + ".json", data=call()).json()["sid"]
    second = twilio.post(CALLS + ".json", data=call(OTHER)).json()["sid"]
    third = twilio.post(CALLS + ".json", data=call()).json()["sid"]
    assert [c["sid"] for c in twilio.get(CALLS + ".json", params={"To": TO}).json()["calls"]] == [third, first]
    assert [c["sid"] for c in twilio.get(CALLS + ".json").json()["calls"]] == [third, second, first]
    assert twilio.get(CALLS + ".json", params={"From": "+15550000000"}).json()["calls"] == []
    assert twilio.get(CALLS + ".json", params={"Status": "completed"}).json()["calls"] == []
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert twilio.get(CALLS + ".json", params={"StartTime>": later}).json()["calls"] == []
    page = twilio.get(CALLS + ".json", params={"PageSize": 2}).json()
    assert (len(page["calls"]), page["next_page_uri"] is not None) == (2, True)
    fetched = twilio.get(f"{CALLS}/{second}.json")
    assert (fetched.status_code, fetched.json()["to"]) == (200, OTHER)
    assert twilio.get(f"{CALLS}/CA{'0' * 32}.json").json()["code"] == 20404
    assert standin.call_count_by_to() == {TO: 2, OTHER: 1}
    assert [c.sid for c in standin.calls_to(TO)] == [first, third]


def test_the_same_faults_as_messages(standin: Standin, twilio: httpx.Client) -> None:
    standin.configure(twilio_rate_cap=1)
    assert twilio.post(CALLS + ".json", data=call()).status_code == 201
    limited = twilio.post(CALLS + ".json", data=call(OTHER))
    assert (limited.status_code, limited.json()["code"], limited.headers["Retry-After"]) == (429, 20429, "1")
    standin.configure(twilio_rate_cap=None, fail_500_rate=1.0)
    assert twilio.post(CALLS + ".json", data=call(OTHER)).status_code == 500
    standin.configure(fail_500_rate=0.0, fail_429_rate=1.0)
    assert twilio.post(CALLS + ".json", data=call(OTHER)).status_code == 429
    standin.configure(fail_429_rate=0.0, unanswered_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        twilio.post(CALLS + ".json", data=call(OTHER))
    standin.configure(unanswered_rate=0.0)
    assert [c.to for c in standin.calls] == [TO, OTHER]  # the unanswered one was recorded
    assert standin.unanswered["twilio"] == 1
    wrong = httpx.post(standin.twilio_url + CALLS + ".json", data=call(), auth=(SID, "wrong"))
    assert (wrong.status_code, wrong.json()["code"]) == (401, 20003)


def test_the_twilio_sdk_places_and_lists_calls(standin: Standin) -> None:
    client = TwilioClient(SID, TOKEN, http_client=RebasedTwilioHttpClient(standin.twilio_url))
    created = client.calls.create(to=TO, from_=CALLER, twiml=TWIML)
    assert created.sid.startswith("CA") and created.status == "queued"
    listed = client.calls.list(to=TO, from_=CALLER, limit=10)
    assert [c.sid for c in listed] == [created.sid]
    assert client.calls(created.sid).fetch().to == TO
