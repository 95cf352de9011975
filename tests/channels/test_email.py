"""The SendGrid e-mail channel: request body, answer classification, splitting.

respx mocks the shared httpx client (``respx.mock(using="httpx")``); the last
tests talk to the local SendGrid stand-in over loopback with the real
aiohttp-backed client. Sync tests drive coroutines with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import aiohttp
import httpx
import pytest
import respx

from crisiscomms.channels.base import Channel, Message, Outcome, ProviderRejected, SendResult
from crisiscomms.channels.email import SendGridEmail
from crisiscomms.channels.http import make_http_client
from crisiscomms.playbook import EmailSettings
from crisiscomms.render import EmailContent
from crisiscomms.testing.standin import DEFAULT_SENDGRID_KEY, Standin, StandinConfig, standin_in_thread

SECRET = "SG.test-key.do-not-print-me-0123456789"
ENV = {"SENDGRID_API_KEY": SECRET}
URL = "https://api.sendgrid.com/v3/mail/send"
EU = "https://api.eu.sendgrid.com/v3/mail/send"
CONTENT = EmailContent("Power outage in Solna", "Crews are on site.\n", "<p>Crews are on site.</p>\n")
OTHER = EmailContent("Strömavbrott i Solna", "Vi är på plats.\n", "<p>Vi är på plats.</p>\n")

T = TypeVar("T")


def settings(**changes: Any) -> EmailSettings:
    data: dict[str, Any] = {"from": "alerts@example.org", "from_name": "Example Power",
                            "reply_to": "help@example.org", "unsubscribe_group": 4242}
    data.update(changes)
    return EmailSettings.model_validate({k: v for k, v in data.items() if v is not None})


def message(n: int, content: EmailContent = CONTENT, address: str | None = None) -> Message:
    return Message(key=f"r{n}/email", recipient_id=f"r{n}", address=address or f"user{n}@example.org",
                   locale="en", body=content, custom_args={"campaign": "c-1", "recipient": f"r{n}"})


def messages(count: int, content: EmailContent = CONTENT) -> list[Message]:
    return [message(n, content) for n in range(count)]


def run_channel(
    work: Callable[[SendGridEmail], Awaitable[T]],
    *,
    environ: Mapping[str, str] = ENV,
    email_settings: EmailSettings | None = None,
) -> T:
    """Build the channel on a fresh shared client, run ``work``, close everything."""

    async def main() -> T:
        async with make_http_client() as http:
            channel = SendGridEmail(email_settings or settings(), http, category="outage-solna", environ=environ)
            try:
                return await asyncio.wait_for(work(channel), timeout=30)
            finally:
                await channel.aclose()

    return asyncio.run(main())


def send(batch: Sequence[Message], **kwargs: Any) -> list[SendResult]:
    return run_channel(lambda channel: channel.send(batch), **kwargs)


def body_of(call: Any) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(call.request.content)
    return payload


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(using="httpx", assert_all_mocked=True, assert_all_called=False) as router:
        yield router


# --------------------------------------------------------------------------
# Construction
# --------------------------------------------------------------------------


def test_is_a_channel() -> None:
    async def build() -> Channel:
        async with make_http_client() as http:
            return SendGridEmail(settings(), http, category="n", environ=ENV)

    channel = asyncio.run(build())
    assert channel.name == "email" and channel.max_batch == 1000
    assert SECRET not in repr(channel) and SECRET not in str(channel)


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(ProviderRejected, match="SENDGRID_API_KEY"):
        send(messages(1), environ={})
    with pytest.raises(ProviderRejected, match="SENDGRID_API_KEY"):
        send(messages(1), environ={"SENDGRID_API_KEY": "  "})


def test_key_comes_only_from_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", SECRET)
    with pytest.raises(ProviderRejected, match="SENDGRID_API_KEY"):
        send(messages(1), environ={})


def test_bad_url_override_is_refused() -> None:
    with pytest.raises(ProviderRejected, match="CRISISCOMMS_SENDGRID_URL"):
        send(messages(1), environ={**ENV, "CRISISCOMMS_SENDGRID_URL": "ftp://example.org"})


# --------------------------------------------------------------------------
# Accepted, and what was sent
# --------------------------------------------------------------------------


def test_202_accepts_every_message_with_the_message_id(mock: respx.MockRouter) -> None:
    route = mock.post(URL).mock(return_value=httpx.Response(202, headers={"X-Message-Id": "msg-abc"}))
    results = send(messages(3))
    assert results == [SendResult(Outcome.ACCEPTED, provider_id="msg-abc")] * 3
    assert route.call_count == 1
    request = route.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.headers["Content-Type"] == "application/json"


def test_body_has_one_personalization_per_recipient(mock: respx.MockRouter) -> None:
    route = mock.post(URL).mock(return_value=httpx.Response(202, headers={"X-Message-Id": "m"}))
    send(messages(3))
    body = body_of(route.calls[0])
    assert body["personalizations"] == [
        {"to": [{"email": f"user{n}@example.org"}], "custom_args": {"campaign": "c-1", "recipient": f"r{n}"}}
        for n in range(3)
    ]
    assert body["from"] == {"email": "alerts@example.org", "name": "Example Power"}
    assert body["reply_to"] == {"email": "help@example.org"}
    assert body["subject"] == "Power outage in Solna"
    assert body["content"] == [
        {"type": "text/plain", "value": "Crews are on site.\n"},
        {"type": "text/html", "value": "<p>Crews are on site.</p>\n"},
    ]
    assert body["categories"] == ["outage-solna"]
    assert body["asm"] == {"group_id": 4242}
    assert "mail_settings" not in body  # never sandbox mode: it answers 200 and sends nothing


def test_body_without_optional_settings(mock: respx.MockRouter) -> None:
    route = mock.post(URL).mock(return_value=httpx.Response(202))
    results = send(messages(1), email_settings=settings(from_name=None, reply_to=None, unsubscribe_group=None))
    body = body_of(route.calls[0])
    assert body["from"] == {"email": "alerts@example.org"}
    assert "reply_to" not in body and "asm" not in body
    assert results == [SendResult(Outcome.ACCEPTED, provider_id=None)]


def test_addresses_are_sent_verbatim(mock: respx.MockRouter) -> None:
    """The helpers' constructors run parseaddr on a nameless address; we must not."""
    route = mock.post(URL).mock(return_value=httpx.Response(202))
    send([message(0, address='"a,b"@example.org')])
    assert body_of(route.calls[0])["personalizations"][0]["to"] == [{"email": '"a,b"@example.org'}]


def test_eu_region_uses_the_eu_host(mock: respx.MockRouter) -> None:
    route = mock.post(EU).mock(return_value=httpx.Response(202, headers={"X-Message-Id": "eu"}))
    assert send(messages(1), email_settings=settings(region="eu"))[0].provider_id == "eu"
    assert route.call_count == 1


def test_url_override_wins_over_region(mock: respx.MockRouter) -> None:
    route = mock.post("http://127.0.0.1:9/v3/mail/send").mock(return_value=httpx.Response(202))
    env = {**ENV, "CRISISCOMMS_SENDGRID_URL": "http://127.0.0.1:9/"}
    assert send(messages(1), environ=env, email_settings=settings(region="eu"))[0].outcome is Outcome.ACCEPTED
    assert route.call_count == 1


# --------------------------------------------------------------------------
# Refusals and failures
# --------------------------------------------------------------------------


def test_400_rejects_with_field_and_message(mock: respx.MockRouter) -> None:
    errors = {"errors": [{"message": "The from email does not contain a valid address.", "field": "from.email",
                          "help": "http://sendgrid.com/docs#message.from"}]}
    mock.post(URL).mock(return_value=httpx.Response(400, json=errors))
    results = send(messages(2))
    assert [r.outcome for r in results] == [Outcome.REJECTED] * 2
    assert all(r.code == "400" for r in results)
    assert results[0].reason is not None
    assert "from.email" in results[0].reason and "does not contain a valid address" in results[0].reason


def test_400_naming_one_personalization_rejects_only_that_recipient(mock: respx.MockRouter) -> None:
    errors = {"errors": [{"message": "Does not contain a valid address.",
                          "field": "personalizations.1.to.0.email", "help": None}]}
    mock.post(URL).mock(return_value=httpx.Response(400, json=errors))
    results = send(messages(3))
    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.REJECTED, Outcome.RETRY]
    assert results[1].reason is not None and "personalizations.1.to.0.email" in results[1].reason


def test_401_names_the_variable_and_hides_the_key(mock: respx.MockRouter) -> None:
    body = {"errors": [{"message": "The provided authorization grant is invalid, expired, or revoked",
                        "field": None, "help": None}]}
    mock.post(URL).mock(return_value=httpx.Response(401, json=body))
    with pytest.raises(ProviderRejected) as caught:
        send(messages(2))
    text = str(caught.value) + repr(caught.value) + repr(caught.value.args)
    assert "SENDGRID_API_KEY" in text and SECRET not in text


def test_403_mentions_permission_and_sender(mock: respx.MockRouter) -> None:
    body = {"errors": [{"message": "The from address does not match a verified Sender Identity.",
                        "field": "from", "help": None}]}
    mock.post(URL).mock(return_value=httpx.Response(403, json=body))
    with pytest.raises(ProviderRejected) as caught:
        send(messages(1))
    text = str(caught.value)
    assert "SENDGRID_API_KEY" in text and "Mail Send" in text and "alerts@example.org" in text
    assert SECRET not in text


def test_413_is_rejected_as_too_large(mock: respx.MockRouter) -> None:
    mock.post(URL).mock(return_value=httpx.Response(413, text="Request Entity Too Large"))
    results = send(messages(2))
    assert {(r.outcome, r.code) for r in results} == {(Outcome.REJECTED, "413")}
    assert results[0].reason is not None and "too large" in results[0].reason


def test_other_4xx_is_rejected(mock: respx.MockRouter) -> None:
    mock.post(URL).mock(return_value=httpx.Response(404, json={"errors": [{"message": "not found"}]}))
    assert [(r.outcome, r.code) for r in send(messages(1))] == [(Outcome.REJECTED, "404")]


def test_429_retries_after_the_rate_limit_reset(mock: respx.MockRouter) -> None:
    reset = int(time.time()) + 30
    headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    mock.post(URL).mock(return_value=httpx.Response(429, headers=headers, json={"errors": [{"message": "x"}]}))
    results = send(messages(2))
    assert [r.outcome for r in results] == [Outcome.RETRY] * 2
    assert results[0].retry_after is not None and 25 <= results[0].retry_after <= 31


def test_429_in_the_past_or_with_retry_after(mock: respx.MockRouter) -> None:
    route = mock.post(URL)
    route.side_effect = [
        httpx.Response(429, headers={"X-RateLimit-Reset": str(int(time.time()) - 100)}),
        httpx.Response(429, headers={"Retry-After": "7", "X-RateLimit-Reset": str(int(time.time()) + 60)}),
        httpx.Response(429),
    ]
    assert send(messages(1))[0].retry_after == 0.0
    assert send(messages(1))[0].retry_after == 7.0
    assert send(messages(1))[0] == SendResult(Outcome.RETRY, code="429", reason="SendGrid rate limit")


def test_500_is_uncertain(mock: respx.MockRouter) -> None:
    mock.post(URL).mock(return_value=httpx.Response(500, json={"errors": [{"message": "internal"}]}))
    results = send(messages(2))
    assert {(r.outcome, r.code) for r in results} == {(Outcome.UNCERTAIN, "500")}


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (httpx.ConnectError("refused"), Outcome.RETRY),
        (httpx.ConnectTimeout("connect timeout"), Outcome.RETRY),
        (httpx.PoolTimeout("pool"), Outcome.RETRY),
        (httpx.ReadTimeout("read timeout"), Outcome.UNCERTAIN),
        (httpx.RemoteProtocolError("peer closed"), Outcome.UNCERTAIN),
        (httpx.ReadError("reset"), Outcome.UNCERTAIN),
        (httpx.WriteError("broken pipe"), Outcome.UNCERTAIN),
        (httpx.WriteTimeout("write timeout"), Outcome.UNCERTAIN),
    ],
)
def test_transport_errors(mock: respx.MockRouter, error: Exception, outcome: Outcome) -> None:
    mock.post(URL).mock(side_effect=error)
    results = send(messages(2))
    assert [r.outcome for r in results] == [outcome] * 2
    assert all(SECRET not in (r.reason or "") for r in results)


@pytest.mark.parametrize(
    ("cause", "outcome"),
    [
        (aiohttp.ServerDisconnectedError(), Outcome.UNCERTAIN),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), Outcome.UNCERTAIN),
        (aiohttp.ConnectionTimeoutError("connect"), Outcome.RETRY),
    ],
)
def test_connect_timeout_from_httpx_aiohttp_is_judged_by_its_cause(cause: Exception, outcome: Outcome) -> None:
    """httpx-aiohttp maps every aiohttp ClientConnectionError to httpx.ConnectTimeout, including
    ServerDisconnectedError after the request was written (SendGrid may have queued it).
    respx replaces ``__cause__`` when it re-raises, so this uses httpx.MockTransport."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout(str(cause), request=request) from cause

    async def main() -> list[SendResult]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await SendGridEmail(settings(), http, category="n", environ=ENV).send(messages(2))

    assert [r.outcome for r in asyncio.run(main())] == [outcome] * 2


# --------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------


def test_2500_identical_messages_make_three_requests(mock: respx.MockRouter) -> None:
    ids = iter(["m1", "m2", "m3"])
    route = mock.post(URL).mock(side_effect=lambda request: httpx.Response(202, headers={"X-Message-Id": next(ids)}))
    batch = messages(2500)
    results = send(batch)
    sizes = [len(body_of(call)["personalizations"]) for call in route.calls]
    assert sizes == [1000, 1000, 500]
    assert [r.provider_id for r in results] == ["m1"] * 1000 + ["m2"] * 1000 + ["m3"] * 500
    sent = [p["to"][0]["email"] for call in route.calls for p in body_of(call)["personalizations"]]
    assert sent == [m.address for m in batch]  # order kept: results line up with messages


def test_duplicate_address_goes_to_a_separate_request(mock: respx.MockRouter) -> None:
    ids = iter(["first", "second"])
    route = mock.post(URL).mock(side_effect=lambda request: httpx.Response(202, headers={"X-Message-Id": next(ids)}))
    batch = [message(0), message(1), message(2, address="USER0@example.org"), message(3)]
    results = send(batch)
    bodies = [body_of(call) for call in route.calls]
    assert [[p["to"][0]["email"] for p in b["personalizations"]] for b in bodies] == [
        ["user0@example.org", "user1@example.org", "user3@example.org"], ["USER0@example.org"]]
    assert [r.provider_id for r in results] == ["first", "first", "second", "first"]


def test_mixed_content_is_split_by_content(mock: respx.MockRouter) -> None:
    ids = iter(["en", "sv"])
    route = mock.post(URL).mock(side_effect=lambda request: httpx.Response(202, headers={"X-Message-Id": next(ids)}))
    batch = [message(0), message(1, OTHER), message(2)]
    results = send(batch)
    assert [body_of(call)["subject"] for call in route.calls] == [CONTENT.subject, OTHER.subject]
    assert [r.provider_id for r in results] == ["en", "sv", "en"]


def test_429_stops_the_rest_of_the_batch(mock: respx.MockRouter) -> None:
    route = mock.post(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "3"}))
    results = send([message(0), message(1, OTHER)])
    assert route.call_count == 1
    assert [(r.outcome, r.retry_after) for r in results] == [(Outcome.RETRY, 3.0)] * 2


def test_unsendable_messages_are_rejected_locally(mock: respx.MockRouter) -> None:
    route = mock.post(URL).mock(return_value=httpx.Response(202, headers={"X-Message-Id": "ok"}))
    huge = Message("big/email", "big", "big@example.org", "en", CONTENT, {"blob": "x" * 10_000})
    results = send([message(0), message(1, address="not-an-address"), huge])
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.REJECTED, Outcome.REJECTED]
    assert len(body_of(route.calls[0])["personalizations"]) == 1


def test_find_sent_and_aclose() -> None:
    async def work(channel: SendGridEmail) -> str | None:
        found = await channel.find_sent(message(0), dt.datetime.now(dt.UTC))
        await channel.aclose()
        await channel.aclose()
        return found

    assert run_channel(work) is None


# --------------------------------------------------------------------------
# Against the local stand-in (loopback, real aiohttp transport)
# --------------------------------------------------------------------------


def standin_env(standin: Standin) -> dict[str, str]:
    return {"SENDGRID_API_KEY": DEFAULT_SENDGRID_KEY, "CRISISCOMMS_SENDGRID_URL": standin.sendgrid_url}


def test_standin_2000_recipients_in_two_requests() -> None:
    batch = messages(2000)
    with standin_in_thread(StandinConfig()) as standin:
        results = send(batch, environ=standin_env(standin))
        records = standin.emails
        assert standin.requests["sendgrid"] == 2
        assert standin.answers[("sendgrid", 202)] == 2
    assert len(records) == 2000
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert len({r.provider_id for r in results}) == 2
    # each personalization holds exactly one recipient, with that recipient's own custom_args
    assert Counter((r.message_id, r.personalization) for r in records).most_common(1)[0][1] == 1
    by_address = {r.to: r for r in records}
    assert len(by_address) == 2000
    for sent, result in zip(batch, results, strict=True):
        record = by_address[sent.address]
        assert record.kind == "to"
        assert record.custom_args == {"campaign": "c-1", "recipient": sent.recipient_id}
        assert record.message_id == result.provider_id
        assert record.subject == CONTENT.subject and record.categories == ("outage-solna",)


def test_standin_wrong_key_is_provider_rejected() -> None:
    with standin_in_thread() as standin:
        env = {**standin_env(standin), "SENDGRID_API_KEY": SECRET}
        with pytest.raises(ProviderRejected) as caught:
            send(messages(1), environ=env)
        assert standin.emails == []
    assert "SENDGRID_API_KEY" in str(caught.value) and SECRET not in str(caught.value)


def test_standin_dropped_answer_is_uncertain_not_retry() -> None:
    with standin_in_thread(StandinConfig(unanswered_rate=1.0)) as standin:
        results = send(messages(2), environ=standin_env(standin))
        recorded = len(standin.emails)
    assert recorded == 2  # SendGrid took them ...
    assert [r.outcome for r in results] == [Outcome.UNCERTAIN] * 2  # ... so resending would duplicate


def test_refused_connection_is_retry() -> None:
    """Through the real client a refused connection arrives as httpx.ConnectTimeout
    caused by aiohttp.ClientConnectorError: never sent, safe to retry."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**ENV, "CRISISCOMMS_SENDGRID_URL": f"http://127.0.0.1:{port}"}
    results = send(messages(2), environ=env)
    assert [r.outcome for r in results] == [Outcome.RETRY] * 2


def test_standin_rate_cap_gives_retry_after() -> None:
    with standin_in_thread(StandinConfig(sendgrid_rate_cap=1)) as standin:
        results = send([message(0), message(1, OTHER)], environ=standin_env(standin))
    assert results[0].outcome is Outcome.ACCEPTED
    assert results[1].outcome is Outcome.RETRY and results[1].code == "429"
    assert results[1].retry_after is not None and 0 <= results[1].retry_after <= 2.5


def test_sandbox_mode_is_asked_for_and_its_200_is_accepted(mock: respx.MockRouter) -> None:
    route = mock.post(URL).mock(return_value=httpx.Response(200))

    async def work() -> list[SendResult]:
        async with make_http_client() as http:
            channel = SendGridEmail(settings(), http, category="outage-solna", environ=ENV, sandbox=True)
            return await channel.send(messages(2))

    results = asyncio.run(work())
    assert body_of(route.calls[0])["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert results == [SendResult(Outcome.ACCEPTED, code="sandbox",
                                  reason="SendGrid sandbox mode: validated and accepted, not delivered")] * 2


def test_a_200_without_sandbox_mode_is_uncertain(mock: respx.MockRouter) -> None:
    mock.post(URL).mock(return_value=httpx.Response(200))
    results = send(messages(1))
    assert results == [SendResult(Outcome.UNCERTAIN, code="200",
                                  reason="unexpected answer HTTP 200 from SendGrid (expected 202)")]
