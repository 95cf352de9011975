"""The shared HTTP client tells "never sent" from "may have arrived", whatever aiohttp calls it."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from crisiscomms.channels.base import Outcome
from crisiscomms.channels.http import make_http_client, transport_outcome
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
