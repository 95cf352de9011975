"""The one HTTP client every provider channel shares.

httpx's API with aiohttp underneath (``httpx-aiohttp``): httpx's own async
transport is several times slower at high concurrency (see
``docs/benchmarks.md``). Tests mock it with ``respx.mock(using="httpx")``.
"""

from __future__ import annotations

import logging

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from .base import Outcome

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
DEFAULT_TIMEOUT = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)


# httpx logs every request URL at INFO, and Twilio's URLs contain the account SID: keep it out of logs.
logging.getLogger("httpx").setLevel(logging.WARNING)


def make_http_client(*, max_connections: int = 100) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` over aiohttp, with real timeouts and a bounded pool."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(
        transport=TruthfulAiohttpTransport(limits=limits),
        timeout=DEFAULT_TIMEOUT,
        follow_redirects=False,
        headers={"User-Agent": "crisiscomms"},
    )


class TruthfulAiohttpTransport(AiohttpTransport):
    """``AiohttpTransport`` whose exceptions say what happened to the request.

    ``httpx_aiohttp`` maps every ``aiohttp.ClientConnectionError`` to
    ``httpx.ConnectTimeout``: also a server that read the whole request and
    closed the connection without answering. A channel classifying by type would
    then retry a message that may have been sent. This re-maps by the aiohttp
    cause (see :func:`normalise_transport_error`), so every channel gets it right.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response: httpx.Response = await super().handle_async_request(request)
        except httpx.TransportError as error:
            normalised = normalise_transport_error(error)
            if normalised is error:
                raise
            raise normalised from error
        except (aiohttp.ClientError, TimeoutError) as error:  # not mapped by httpx_aiohttp
            escaped = httpx.ReadTimeout if isinstance(error, TimeoutError) else httpx.RemoteProtocolError
            raise escaped(f"{type(error).__name__}: {error}", request=request) from error
        return response


def normalise_transport_error(error: httpx.TransportError) -> httpx.TransportError:
    """The httpx exception that says what really happened, from the aiohttp ``__cause__``.

    * could not connect at all → ``ConnectError``; connect/pool timeout → ``ConnectTimeout``;
    * socket read timeout → ``ReadTimeout``; disconnected without an answer →
      ``RemoteProtocolError``; reset or any other error after connecting → ``ReadError``.
    """
    cause = error.__cause__
    mapped: type[httpx.TransportError] | None = None
    if isinstance(cause, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        mapped = httpx.ProxyError
    elif isinstance(cause, aiohttp.ClientConnectorError):
        mapped = httpx.ConnectError
    elif isinstance(cause, aiohttp.ConnectionTimeoutError):
        mapped = httpx.ConnectTimeout
    elif isinstance(cause, aiohttp.ServerTimeoutError):
        mapped = httpx.ReadTimeout
    elif isinstance(cause, aiohttp.ServerDisconnectedError):
        mapped = httpx.RemoteProtocolError
    elif isinstance(cause, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError):
        mapped = httpx.ReadError
    if mapped is None or type(error) is mapped:
        return error
    return mapped(str(error) or type(cause).__name__, request=_request_of(error))


def _request_of(error: httpx.RequestError) -> httpx.Request | None:
    try:
        return error.request
    except RuntimeError:  # the exception carries no request
        return None


NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)


def transport_outcome(error: httpx.TransportError) -> Outcome:
    """RETRY only when the request certainly never left; otherwise it may have arrived: UNCERTAIN."""
    return Outcome.RETRY if isinstance(error, NOT_SENT_ERRORS) else Outcome.UNCERTAIN
