"""The Twilio SMS channel: every Twilio answer, mocked with respx on the shared
aiohttp-backed httpx client, then end to end against the local stand-in."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import socket
import traceback
from collections.abc import Awaitable, Callable, Mapping
from email.utils import format_datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from httpx_aiohttp import AiohttpTransport

from crisiscomms.channels.base import Message, Outcome, ProviderRejected, SendResult
from crisiscomms.channels.http import DEFAULT_TIMEOUT, make_http_client
from crisiscomms.channels.sms import (
    NoticeExpired,
    SmsLookupFailed,
    TwilioHttpxClient,
    TwilioSms,
    mask_phone,
    parse_retry_after,
)
from crisiscomms.playbook import SmsSettings
from crisiscomms.render import SmsContent
from crisiscomms.smsenc import analyse
from crisiscomms.testing.standin import (
    DEFAULT_TWILIO_SID,
    DEFAULT_TWILIO_TOKEN,
    StandinConfig,
    run_standin,
)
from tests.conftest import ROOT

SID, TOKEN = DEFAULT_TWILIO_SID, DEFAULT_TWILIO_TOKEN
ENV = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
SENDER = "+46700000001"
TO = "+46701234567"
SERVICE = "MG" + "0123456789abcdef" * 2
TEXT = "Vi har driftstörning. Ring 08-123 45 67."

T = TypeVar("T")


def run(factory: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(factory(), timeout)

    return asyncio.run(bounded())


def settings(**values: Any) -> SmsSettings:
    values = values or {"from": SENDER}
    return SmsSettings.model_validate(values)


def message(to: str = TO, text: str = TEXT, key: str = "r1/sms") -> Message:
    return Message(key=key, recipient_id=key.split("/")[0], address=to, locale="sv",
                   body=SmsContent(text, analyse(text)))


def resource(sid: str = "SM" + "ab" * 16, to: str = TO, body: str = TEXT,
             created: dt.datetime | None = None) -> dict[str, Any]:
    stamp = format_datetime(created or dt.datetime.now(dt.UTC))
    return {
        "account_sid": SID, "api_version": "2010-04-01", "body": body, "date_created": stamp,
        "date_sent": None, "date_updated": stamp, "direction": "outbound-api", "error_code": None,
        "error_message": None, "from": SENDER, "messaging_service_sid": None, "num_media": "0",
        "num_segments": "1", "price": None, "price_unit": "USD", "sid": sid, "status": "queued",
        "subresource_uris": {}, "to": to, "uri": f"/2010-04-01/Accounts/{SID}/Messages/{sid}.json",
    }


def twilio_error(status: int, code: int, text: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
    body = {"code": code, "message": text, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}
    return httpx.Response(status, json=body, headers=headers)


async def send_one(answer: httpx.Response | type[Exception] | Exception, *, env: Mapping[str, str] = ENV,
                   sms: SmsSettings | None = None, url: str = MESSAGES_URL) -> tuple[SendResult, httpx.Request]:
    """One send through a fresh channel, Twilio's answer mocked; the result and the request sent."""
    async with make_http_client() as http:
        with respx.mock(using="httpx") as router:
            route = router.post(url)
            if isinstance(answer, httpx.Response):
                route.mock(return_value=answer)
            else:
                route.mock(side_effect=answer)
            channel = TwilioSms(sms or settings(), http, environ=env)
            [result] = await channel.send([message()])
            await channel.aclose()
            assert route.call_count == 1
            return result, route.calls.last.request


def form(request: httpx.Request) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(request.content.decode()).items()}


# --------------------------------------------------------------------------
# The shared client really is mocked
# --------------------------------------------------------------------------


def test_respx_mocks_the_aiohttp_backed_shared_client() -> None:
    async def scenario() -> None:
        async with make_http_client() as http:
            assert isinstance(http._transport, AiohttpTransport)
            with respx.mock(using="httpx") as router:
                router.get("https://api.twilio.com/ping").respond(204)
                assert (await http.get("https://api.twilio.com/ping")).status_code == 204

    run(scenario)


# --------------------------------------------------------------------------
# Twilio's answers
# --------------------------------------------------------------------------


def test_201_is_accepted_and_the_form_and_basic_auth_are_right() -> None:
    sid = "SM" + "12" * 16
    sms = settings(**{"from": SENDER, "status_callback": "https://hooks.example.org/twilio/status"})
    result, request = run(lambda: send_one(httpx.Response(201, json=resource(sid)), sms=sms))
    assert result == SendResult(Outcome.ACCEPTED, provider_id=sid)
    assert form(request) == {"To": TO, "From": SENDER, "Body": TEXT, "ValidityPeriod": "36000",
                             "StatusCallback": "https://hooks.example.org/twilio/status"}
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_messaging_service_replaces_from() -> None:
    result, request = run(lambda: send_one(httpx.Response(201, json=resource()),
                                           sms=settings(messaging_service_sid=SERVICE)))
    assert result.outcome is Outcome.ACCEPTED
    assert form(request) == {"To": TO, "MessagingServiceSid": SERVICE, "Body": TEXT, "ValidityPeriod": "36000"}


def test_invalid_number_21211_is_rejected_with_code_and_reason() -> None:
    answer = twilio_error(400, 21211, f"The 'To' number {TO} is not a valid phone number.")
    result, _ = run(lambda: send_one(answer))
    assert result.outcome is Outcome.REJECTED
    assert result.code == "21211"
    assert result.reason == f"The 'To' number {TO} is not a valid phone number."
    assert not result.suppress


def test_opted_out_21610_is_rejected_and_suppressed() -> None:
    result, _ = run(lambda: send_one(twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")))
    assert (result.outcome, result.code, result.suppress) == (Outcome.REJECTED, "21610", True)


@pytest.mark.parametrize("code", [21614, 21635, 21408, 21612])
def test_other_per_recipient_codes_are_rejected(code: int) -> None:
    result, _ = run(lambda: send_one(twilio_error(400, code, "no")))
    assert (result.outcome, result.code, result.suppress) == (Outcome.REJECTED, str(code), False)


@pytest.mark.parametrize("status", [401, 403])
def test_bad_credentials_abort_the_run_without_showing_the_token(status: int) -> None:
    with pytest.raises(ProviderRejected) as caught:
        run(lambda: send_one(twilio_error(status, 20003, "Authenticate")))
    text = str(caught.value)
    assert "TWILIO_ACCOUNT_SID" in text and "TWILIO_AUTH_TOKEN" in text
    assert TOKEN not in text and TOKEN not in repr(caught.value)
    assert TOKEN not in "".join(traceback.format_exception(caught.value))


def test_429_is_retry_with_retry_after() -> None:
    answer = twilio_error(429, 20429, "Too Many Requests", {"Retry-After": "2"})
    result, _ = run(lambda: send_one(answer))
    assert (result.outcome, result.code, result.retry_after) == (Outcome.RETRY, "20429", 2.0)


def test_429_without_retry_after_leaves_the_wait_to_the_dispatcher() -> None:
    result, _ = run(lambda: send_one(twilio_error(429, 20429, "Too Many Requests")))
    assert (result.outcome, result.retry_after) == (Outcome.RETRY, None)


def test_retry_after_of_concurrent_sends_does_not_mix() -> None:
    """Two sends on one client, answers interleaved: each sees its own Retry-After."""
    waits = {"+46700000011": (0.2, "7"), "+46700000022": (0.0, "3")}

    async def answer(request: httpx.Request) -> httpx.Response:
        delay, retry_after = waits[form(request)["To"]]
        await asyncio.sleep(delay)
        return twilio_error(429, 20429, "Too Many Requests", {"Retry-After": retry_after})

    async def scenario() -> list[list[SendResult]]:
        async with make_http_client() as http:
            with respx.mock(using="httpx") as router:
                router.post(MESSAGES_URL).mock(side_effect=answer)
                channel = TwilioSms(settings(), http, environ=ENV)
                return await asyncio.gather(*(channel.send([message(to)]) for to in waits))

    [[slow], [fast]] = run(scenario)
    assert (slow.retry_after, fast.retry_after) == (7.0, 3.0)


def test_retry_after_as_http_date() -> None:
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert parse_retry_after(format_datetime(now + dt.timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after("-5") == 0.0


@pytest.mark.parametrize("status", [500, 502, 503, 504, 529])
def test_5xx_is_uncertain(status: int) -> None:
    result, _ = run(lambda: send_one(twilio_error(status, 20500, "Internal Server Error")))
    assert result.outcome is Outcome.UNCERTAIN
    assert result.code == "20500"


def test_5xx_without_a_json_body_is_uncertain() -> None:
    result, _ = run(lambda: send_one(httpx.Response(502, text="<html>Bad Gateway</html>")))
    assert result.outcome is Outcome.UNCERTAIN


def test_rfc9457_errors_are_classified_too() -> None:
    def problem(status: int, code: int) -> httpx.Response:
        return httpx.Response(status, json={"type": f"https://www.twilio.com/docs/errors/{code}",
                                            "title": "Invalid To", "status": status, "code": code,
                                            "detail": "not a number"})

    rejected, _ = run(lambda: send_one(problem(400, 21211)))
    assert (rejected.outcome, rejected.code) == (Outcome.REJECTED, "21211")
    assert rejected.reason == "Invalid To - not a number"
    assert run(lambda: send_one(problem(429, 20429)))[0].outcome is Outcome.RETRY
    assert run(lambda: send_one(problem(503, 20503)))[0].outcome is Outcome.UNCERTAIN
    with pytest.raises(ProviderRejected):
        run(lambda: send_one(problem(401, 20003)))


def test_unreadable_success_body_is_uncertain() -> None:
    result, _ = run(lambda: send_one(httpx.Response(201, text="{not json")))
    assert result.outcome is Outcome.UNCERTAIN


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (httpx.ConnectError, Outcome.RETRY),
        (httpx.ConnectTimeout, Outcome.RETRY),
        (httpx.PoolTimeout, Outcome.RETRY),
        (httpx.ReadTimeout, Outcome.UNCERTAIN),
        (httpx.WriteTimeout, Outcome.UNCERTAIN),
        (httpx.RemoteProtocolError, Outcome.UNCERTAIN),
        (httpx.ReadError, Outcome.UNCERTAIN),
        (httpx.WriteError, Outcome.UNCERTAIN),
    ],
)
def test_transport_errors(error: type[Exception], outcome: Outcome) -> None:
    result, _ = run(lambda: send_one(error))
    assert result.outcome is outcome
    assert result.reason and (outcome is Outcome.RETRY or "no answer from Twilio" in result.reason)


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


def test_base_url_override_wins_over_region_and_edge() -> None:
    env = {**ENV, "CRISISCOMMS_TWILIO_URL": "http://127.0.0.1:9/", "TWILIO_REGION": "ie1", "TWILIO_EDGE": "dublin"}
    url = f"http://127.0.0.1:9/2010-04-01/Accounts/{SID}/Messages.json"
    result, request = run(lambda: send_one(httpx.Response(201, json=resource()), env=env, url=url))
    assert result.outcome is Outcome.ACCEPTED
    assert str(request.url) == url


def test_region_and_edge_are_honoured_without_override() -> None:
    env = {**ENV, "TWILIO_REGION": "ie1", "TWILIO_EDGE": "dublin"}
    url = f"https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
    result, _ = run(lambda: send_one(httpx.Response(201, json=resource()), env=env, url=url))
    assert result.outcome is Outcome.ACCEPTED


def test_bad_override_is_a_provider_error() -> None:
    async def scenario() -> None:
        async with make_http_client() as http:
            TwilioSms(settings(), http, environ={**ENV, "CRISISCOMMS_TWILIO_URL": "127.0.0.1:8080"})

    with pytest.raises(ProviderRejected, match="CRISISCOMMS_TWILIO_URL"):
        run(scenario)


@pytest.mark.parametrize(
    ("env", "named", "not_named"),
    [
        ({}, ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"], []),
        ({"TWILIO_ACCOUNT_SID": SID}, ["TWILIO_AUTH_TOKEN"], ["TWILIO_ACCOUNT_SID"]),
        ({"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": " "}, ["TWILIO_ACCOUNT_SID"], ["TWILIO_AUTH_TOKEN"]),
    ],
)
def test_missing_credentials(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: list[str],
                             not_named: list[str]) -> None:
    # The real environment has credentials: they must not be used.
    monkeypatch.setitem(os.environ, "TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setitem(os.environ, "TWILIO_AUTH_TOKEN", TOKEN)

    async def scenario() -> None:
        async with make_http_client() as http:
            TwilioSms(settings(), http, environ=env)

    with pytest.raises(ProviderRejected) as caught:
        run(scenario)
    text = str(caught.value)
    assert all(name in text for name in named)
    assert not any(name in text for name in not_named)
    assert TOKEN not in text


def test_repr_shows_no_secret() -> None:
    async def scenario() -> str:
        async with make_http_client() as http:
            channel = TwilioSms(settings(), http, environ=ENV)
            await channel.aclose()
            await channel.aclose()  # idempotent
            return repr(channel) + repr(channel.http_client)

    shown = run(scenario)
    assert TOKEN not in shown and SID not in shown


def test_none_timeout_means_the_client_default_never_no_timeout() -> None:
    async def scenario() -> None:
        async with make_http_client() as http:
            assert TwilioHttpxClient(http).timeout_for(None) == http.timeout
            assert TwilioHttpxClient(http, timeout=3.0).timeout_for(None) == httpx.Timeout(3.0)
        async with httpx.AsyncClient(timeout=None) as unbounded:
            assert TwilioHttpxClient(unbounded).timeout_for(None) == DEFAULT_TIMEOUT
        async with make_http_client() as http:
            with respx.mock(using="httpx") as router:
                route = router.post(MESSAGES_URL).respond(201, json=resource())
                await TwilioSms(settings(), http, environ=ENV).send([message()])
                sent = route.calls.last.request.extensions["timeout"]
                assert sent == http.timeout.as_dict()

    run(scenario)


def test_mask_phone() -> None:
    assert mask_phone("+46701234567") == "+46******567"
    assert mask_phone("+302101234567") == "+30*******567"
    assert mask_phone("whatsapp:+46701234567") == "whatsapp:+46******567"
    assert mask_phone("12345") == "***45"
    assert mask_phone("123") == "***"


# --------------------------------------------------------------------------
# Reconciling
# --------------------------------------------------------------------------


async def find(messages: list[dict[str, Any]] | httpx.Response, since: dt.datetime) -> tuple[str | None, httpx.Request]:
    answer = messages if isinstance(messages, httpx.Response) else httpx.Response(
        200, json={"messages": messages, "next_page_uri": None, "page": 0, "page_size": 50})
    async with make_http_client() as http:
        with respx.mock(using="httpx") as router:
            route = router.get(MESSAGES_URL).mock(return_value=answer)
            found = await TwilioSms(settings(), http, environ=ENV).find_sent(message(), since)
            return found, route.calls.last.request


def test_find_sent_finds_the_same_body_to_the_same_number() -> None:
    since = dt.datetime.now(dt.UTC)
    sid = "SM" + "cd" * 16
    found, request = run(lambda: find([resource("SM" + "00" * 16, body="other text", created=since),
                                       resource(sid, created=since)], since))
    assert found == sid
    assert request.url.params["To"] == TO and request.url.params["PageSize"] == "50"


def test_find_sent_ignores_a_different_body_or_an_old_message() -> None:
    since = dt.datetime.now(dt.UTC)
    assert run(lambda: find([resource(body=TEXT + " ")], since))[0] is None
    assert run(lambda: find([resource(created=since - dt.timedelta(hours=1))], since))[0] is None
    assert run(lambda: find([], since))[0] is None


def test_find_sent_cannot_tell_raises_instead_of_answering_none() -> None:
    with pytest.raises(SmsLookupFailed):
        run(lambda: find(twilio_error(503, 20503, "Service Unavailable"), dt.datetime.now(dt.UTC)))
    with pytest.raises(ProviderRejected, match="TWILIO_AUTH_TOKEN"):
        run(lambda: find(twilio_error(401, 20003, "Authenticate"), dt.datetime.now(dt.UTC)))


# --------------------------------------------------------------------------
# Against the stand-in (real HTTP over loopback, aiohttp transport)
# --------------------------------------------------------------------------


def test_end_to_end_against_the_standin() -> None:
    numbers = [f"+4670{index:07d}" for index in range(200)]

    async def scenario() -> None:
        async with run_standin(StandinConfig(latency=0.01)) as standin, make_http_client() as http:
            channel = TwilioSms(settings(), http, environ={**ENV, "CRISISCOMMS_TWILIO_URL": standin.twilio_url})
            gate = asyncio.Semaphore(50)

            async def send(to: str) -> SendResult:
                async with gate:
                    [result] = await channel.send([message(to, key=f"{to}/sms")])
                    return result

            results = await asyncio.gather(*(send(to) for to in numbers))
            assert {result.outcome for result in results} == {Outcome.ACCEPTED}
            recorded = standin.sms
            assert len(recorded) == 200
            assert {record.sid for record in recorded} == {result.provider_id for result in results}
            assert {record.to for record in recorded} == set(numbers)
            assert {(record.from_, record.body) for record in recorded} == {(SENDER, TEXT)}

            # Accepted and recorded, but the connection closes before any answer.
            since = dt.datetime.now(dt.UTC)
            lost = message("+46709999999", "Sent but unanswered", key="lost/sms")
            standin.configure(unanswered_rate=1.0)
            [uncertain] = await channel.send([lost])
            assert uncertain.outcome is Outcome.UNCERTAIN, uncertain
            standin.configure(unanswered_rate=0.0)
            [record] = standin.sms_to("+46709999999")
            assert await channel.find_sent(lost, since) == record.sid
            assert await channel.find_sent(message("+46709999999", "another text"), since) is None

            standin.configure(fail_429_rate=1.0)
            [limited] = await channel.send([message()])
            assert (limited.outcome, limited.retry_after) == (Outcome.RETRY, 1.0)
            standin.configure(fail_429_rate=0.0, fail_500_rate=1.0)
            assert (await channel.send([message()]))[0].outcome is Outcome.UNCERTAIN
            standin.configure(fail_500_rate=0.0, opted_out={TO})
            [stopped] = await channel.send([message()])
            assert (stopped.outcome, stopped.code, stopped.suppress) == (Outcome.REJECTED, "21610", True)

            wrong = TwilioSms(settings(), http, environ={
                "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "wrong-token",
                "CRISISCOMMS_TWILIO_URL": standin.twilio_url})
            with pytest.raises(ProviderRejected) as caught:
                await wrong.send([message()])
            assert "wrong-token" not in str(caught.value)
            await channel.aclose()

    run(scenario, timeout=60)


def test_read_timeout_against_the_standin_is_uncertain() -> None:
    async def scenario() -> None:
        async with run_standin(StandinConfig(latency=1.0)) as standin, \
                httpx.AsyncClient(transport=AiohttpTransport(), timeout=httpx.Timeout(0.2)) as http:
            channel = TwilioSms(settings(), http, environ={**ENV, "CRISISCOMMS_TWILIO_URL": standin.twilio_url})
            [result] = await channel.send([message()])
            assert result.outcome is Outcome.UNCERTAIN
            assert "timeout" in (result.reason or "")

    run(scenario)


def test_connection_refused_is_retry() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there

    async def scenario() -> SendResult:
        async with make_http_client() as http:
            channel = TwilioSms(settings(), http, environ={**ENV, "CRISISCOMMS_TWILIO_URL": f"http://127.0.0.1:{port}"})
            [result] = await channel.send([message()])
            return result

    assert run(scenario).outcome is Outcome.RETRY


# --------------------------------------------------------------------------
# ValidityPeriod: no stale crisis SMS
# --------------------------------------------------------------------------

NOW = dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.UTC)


async def validity_of(sms: SmsSettings, expires_at: dt.datetime | None,
                      now: dt.datetime = NOW) -> tuple[str | None, int]:
    """The ValidityPeriod form field of one send, and how many requests reached Twilio."""
    async with make_http_client() as http:
        with respx.mock(using="httpx") as router:
            route = router.post(MESSAGES_URL).respond(201, json=resource())
            channel = TwilioSms(sms, http, environ=ENV, expires_at=expires_at, notice_id="storm-outage",
                                clock=lambda: now)
            await channel.send([message()])
            return form(route.calls.last.request).get("ValidityPeriod"), route.call_count


@pytest.mark.parametrize(("validity", "expires_in", "expected"), [
    (None, None, "36000"),  # no expiry: Twilio's maximum, 10 hours
    (None, dt.timedelta(minutes=30), "1800"),  # the time left until the notice expires
    (None, dt.timedelta(minutes=30, seconds=0.9), "1800"),  # whole seconds, never past the expiry
    (None, dt.timedelta(hours=20), "36000"),  # capped at Twilio's maximum
    ("1h", None, "3600"),
    ("1h", dt.timedelta(hours=2), "3600"),
    ("1h", dt.timedelta(minutes=10), "600"),  # never longer than the notice is true
    (90, dt.timedelta(hours=2), "90"),  # a bare number is seconds
    ("1h30m", None, "5400"),
])
def test_every_sms_carries_a_validity_period(validity: str | int | None, expires_in: dt.timedelta | None,
                                             expected: str) -> None:
    values: dict[str, Any] = {"from": SENDER}
    if validity is not None:
        values["validity"] = validity
    expires_at = NOW + expires_in if expires_in is not None else None
    assert run(lambda: validity_of(settings(**values), expires_at)) == (expected, 1)


def test_an_expired_notice_is_refused_before_anything_is_sent() -> None:
    expires_at = dt.datetime(2026, 12, 6, 4, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))  # 03:00 UTC

    async def scenario() -> None:
        async with make_http_client() as http:
            TwilioSms(settings(), http, environ=ENV, expires_at=expires_at, notice_id="storm-outage",
                      clock=lambda: NOW)

    with pytest.raises(NoticeExpired) as caught:
        run(scenario)
    assert str(caught.value) == ("notice 'storm-outage' expired at 2026-12-06T04:00+01:00: no SMS is sent after a "
                                 "notice stopped being true (change its 'expires' in the playbook to send it)")
    assert caught.value.exit_code == 3
    assert isinstance(caught.value, ProviderRejected)  # the dispatcher stops the run and sends nothing more


def test_a_notice_expiring_during_the_run_stops_the_sending() -> None:
    clock = [NOW]

    async def scenario() -> int:
        async with make_http_client() as http:
            with respx.mock(using="httpx") as router:
                route = router.post(MESSAGES_URL).respond(201, json=resource())
                channel = TwilioSms(settings(), http, environ=ENV, expires_at=NOW + dt.timedelta(seconds=5),
                                    notice_id="storm-outage", clock=lambda: clock[0])
                await channel.send([message()])
                clock[0] = NOW + dt.timedelta(seconds=5)
                with pytest.raises(NoticeExpired):
                    await channel.send([message()])
                return route.call_count

    assert run(scenario) == 1


def test_the_channel_factory_uses_the_notices_expiry() -> None:
    from crisiscomms.channels.base import ChannelContext
    from crisiscomms.channels.sms import create
    from crisiscomms.loader import load_playbook

    playbook = load_playbook(ROOT / "playbooks" / "nordvind-storm.yaml").require()

    async def scenario() -> int:
        async with make_http_client() as http:
            channel = create(ChannelContext(playbook, "storm-outage", http, ENV))
            channel._clock = lambda: dt.datetime(2026, 12, 6, 18, 0, tzinfo=dt.UTC)  # 19:00 local, expires 20:00
            return channel.validity_period()

    assert run(scenario) == 3600


@pytest.mark.parametrize(("value", "message"), [
    ("0s", "must be between 1s and 10h (Twilio's limit), not 0s"),
    ("11h", "must be between 1s and 10h (Twilio's limit), not 11h"),
    ("soon", "'soon' is not a duration such as 1h, 30m, 1h30m or 45s"),
])
def test_a_bad_validity_is_refused_by_the_playbook_model(value: str, message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        settings(**{"from": SENDER, "validity": value})
    assert caught.value.errors()[0]["msg"] == message


def test_a_rehearsal_reckons_the_validity_from_its_at_moment() -> None:
    from crisiscomms.channels.base import ChannelContext
    from crisiscomms.channels.sms import create
    from crisiscomms.loader import load_playbook

    playbook = load_playbook(ROOT / "playbooks" / "nordvind-storm.yaml").require()
    at = dt.datetime(2026, 12, 6, 18, 30, tzinfo=dt.UTC)  # the notice expires at 20:00+01:00 = 19:00 UTC

    async def scenario() -> int:
        async with make_http_client() as http:
            return create(ChannelContext(playbook, "storm-outage", http, ENV, at=at)).validity_period()

    assert run(scenario) in (1799, 1800)
