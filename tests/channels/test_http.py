"""The shared HTTP client tells "never sent" from "may have arrived", whatever aiohttp calls it."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from crisiscomms.channels.base import Outcome
from crisiscomms.channels.http import DEFAULT_TIMEOUT, direct_request, form_encode, make_http_client, transport_outcome
from crisiscomms.testing.standin import StandinConfig, run_standin


def test_unanswered_request_is_uncertain_not_a_connect_failure() -> None:
    async def scenario() -> tuple[type[BaseException], int]:
        async with run_standin(StandinConfig(unanswered_rate=1.0)) as standin:
            async with make_http_client() as http:
                sid, token = standin.config.twilio_sid, standin.config.twilio_token
                with pytest.raises(httpx.TransportError) as caught:
                    await http.post(f"{standin.twilio_url}/2010-04-01/Accounts/{sid}/Messages.json",
                                    data={"To": "+46701234567", "From": "+46700000000", "Body": "x"},
                                    auth=(sid, token))
            return type(caught.value), len(standin.sms)

    error_type, recorded = asyncio.run(scenario())
    assert recorded == 1  # the stand-in took the message, then hung up
    assert error_type is httpx.RemoteProtocolError
    assert transport_outcome(error_type("x")) is Outcome.UNCERTAIN


def test_refused_connection_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nobody listens there

    async def scenario() -> httpx.TransportError:
        async with make_http_client() as http:
            try:
                await http.get(f"http://127.0.0.1:{port}/")
            except httpx.TransportError as error:
                return error
        raise AssertionError("connected to a closed port")

    error = asyncio.run(scenario())
    assert isinstance(error, httpx.ConnectError)
    assert transport_outcome(error) is Outcome.RETRY


# -- the direct path (the Twilio channel's hot path skips httpx's models) ---------------------------------------

form_values = st.one_of(st.text(), st.integers(), st.booleans(), st.none(), st.lists(st.text(), max_size=3))


@given(st.dictionaries(st.text(min_size=1), form_values, max_size=6))
def test_the_direct_form_is_byte_for_byte_what_httpx_sends(values: dict[str, object]) -> None:
    assert form_encode(values).encode() == httpx.Request("POST", "http://x", data=values).content  # type: ignore[arg-type]


def direct(http: httpx.AsyncClient, url: str, auth: tuple[str, str] = ("AC1", "secret"), **data: str) -> object:
    return direct_request(http, "POST", url, params=None, data=data, headers={"Accept": "application/json"},
                          auth=auth, timeout=DEFAULT_TIMEOUT)


def test_the_direct_path_sends_the_same_request_without_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("went through httpx")

    async def scenario() -> tuple[object, list[dict[str, str]]]:
        async with run_standin() as standin, make_http_client() as http:
            sid, token = standin.config.twilio_sid, standin.config.twilio_token
            monkeypatch.setattr(httpx.AsyncClient, "send", refuse)
            response = await direct_request(
                http, "POST", f"{standin.twilio_url}/2010-04-01/Accounts/{sid}/Messages.json", params=None,
                data={"To": "+46701234567", "From": "+46700000000", "Body": "Hej & å 😀"}, headers=None,
                auth=(sid, token), timeout=DEFAULT_TIMEOUT)
            return response, [{"To": m.to, "Body": m.body} for m in standin.sms]

    response, recorded = asyncio.run(scenario())
    assert getattr(response, "status_code", None) == 201
    assert recorded == [{"To": "+46701234567", "Body": "Hej & å 😀"}]


def test_under_respx_the_direct_path_steps_aside() -> None:
    async def scenario() -> object:
        async with make_http_client() as http:
            with respx.mock(using="httpx"):
                return await direct(http, "https://api.twilio.com/x")

    assert asyncio.run(scenario()) is None


def test_direct_failures_are_the_httpx_errors_the_channels_classify() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> tuple[type[BaseException], type[BaseException]]:
        async with run_standin(StandinConfig(unanswered_rate=1.0)) as standin, make_http_client() as http:
            sid, token = standin.config.twilio_sid, standin.config.twilio_token
            with pytest.raises(httpx.TransportError) as unanswered:
                await direct(http, f"{standin.twilio_url}/2010-04-01/Accounts/{sid}/Messages.json", (sid, token),
                             To="+46701234567", From="+46700000000", Body="x")
            with pytest.raises(httpx.TransportError) as refused:
                await direct(http, f"http://127.0.0.1:{port}/")
        return type(unanswered.value), type(refused.value)

    unanswered, refused = asyncio.run(scenario())
    assert unanswered is httpx.RemoteProtocolError  # may have arrived: uncertain, never resent blindly
    assert refused is httpx.ConnectError  # never left: retried


def test_the_request_headers_replace_the_clients_defaults_whatever_their_case() -> None:
    from aiohttp import web

    seen: list[list[str]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.headers.getall("User-Agent"))
        return web.Response(status=201, text="{}")

    async def scenario() -> None:
        app = web.Application()
        app.router.add_post("/m", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with make_http_client() as http:
                await direct_request(http, "POST", f"http://127.0.0.1:{port}/m", params=None, data={"To": "x"},
                                     headers={"User-Agent": "twilio-python"}, auth=None, timeout=DEFAULT_TIMEOUT)
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
    assert seen == [["twilio-python"]]
