"""The one HTTP client every provider channel shares.

httpx's API with aiohttp underneath (``httpx-aiohttp``): httpx's own async
transport is several times slower at high concurrency (see
``docs/benchmarks.md``). Tests mock it with ``respx.mock(using="httpx")``.

For the hottest path (one Twilio request per SMS) :func:`direct_request`
skips httpx's request and response models and talks to the transport's aiohttp
session itself — but only when the transport httpx would use for that URL *is*
this client's aiohttp transport; under respx (or any other transport) it
returns None and the caller goes through httpx as usual. Its failures are the
same httpx exceptions :func:`normalise_transport_error` gives, so the channels
classify them the same way.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote_plus

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from multidict import CIMultiDict, CIMultiDictProxy

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


# -- the direct path ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DirectResponse:
    status_code: int
    text: str
    headers: CIMultiDictProxy[str]


FormValue = str | int | float | bool | None | Sequence[str | int | float | bool | None]


async def direct_request(http: httpx.AsyncClient, method: str, url: str, *,
                         params: Mapping[str, FormValue] | None, data: Mapping[str, FormValue] | None,
                         headers: Mapping[str, str] | None, auth: tuple[str, str] | None,
                         timeout: httpx.Timeout) -> DirectResponse | None:
    """The request on the aiohttp session under ``http``, or None when ``http`` would not use it for ``url``."""
    transport = _own_transport(http)
    if transport is None:
        return None
    session = transport.client if isinstance(transport.client, aiohttp.ClientSession) else transport.get_client()
    transport.client = session
    query = form_encode(params) if params else ""
    body = form_encode(data).encode() if data else None
    merged = CIMultiDict(http.headers)  # the client's defaults; the request's own headers replace them
    merged.update(headers or {})
    if body is not None:
        merged["Content-Type"] = "application/x-www-form-urlencoded"
    if auth is not None:
        merged["Authorization"] = aiohttp.encode_basic_auth(*auth)
    try:
        async with session.request(method, f"{url}?{query}" if query else url, data=body, headers=merged,
                                   allow_redirects=False, timeout=_aiohttp_timeout(timeout)) as response:
            raw = await response.read()
            return DirectResponse(response.status, raw.decode(response.charset or "utf-8", "replace"),
                                  response.headers)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise _as_httpx_error(error, httpx.Request(method, url)) from error


_TRANSPORT_FOR_URL = httpx.AsyncClient._transport_for_url


def _own_transport(http: httpx.AsyncClient) -> TruthfulAiohttpTransport | None:
    """This client's aiohttp transport, if httpx would use it for every URL: no mounts, and nobody (respx)
    has replaced how httpx picks a transport. (Asking ``_transport_for_url`` itself would parse each URL.)"""
    if httpx.AsyncClient._transport_for_url is not _TRANSPORT_FOR_URL or http._mounts:
        return None
    transport = http._transport
    return transport if isinstance(transport, TruthfulAiohttpTransport) else None


def form_encode(values: Mapping[str, FormValue]) -> str:
    """``application/x-www-form-urlencoded`` exactly as httpx encodes a ``data=``/``params=`` mapping."""
    pairs: list[str] = []
    for key, value in values.items():
        for item in value if isinstance(value, list | tuple) else (value,):
            pairs.append(f"{_quoted(str(key))}={_quoted(_primitive(item))}")
    return "&".join(pairs)


@functools.lru_cache(maxsize=4096)
def _quoted(text: str) -> str:
    """Keys, senders, callback URLs and the texts of a notice repeat in every request: quote each once."""
    return quote_plus(text)


def _primitive(value: str | int | float | bool | None) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def _aiohttp_timeout(timeout: httpx.Timeout) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(connect=timeout.connect, sock_connect=timeout.connect, sock_read=timeout.read)


def _as_httpx_error(error: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception the transport would have raised for this aiohttp failure (then normalised)."""
    if isinstance(error, TimeoutError) and not isinstance(error, aiohttp.ClientError):
        return httpx.ReadTimeout(f"{type(error).__name__}: {error}", request=request)
    carrier = httpx.TransportError(str(error) or type(error).__name__, request=request)
    carrier.__cause__ = error
    normalised = normalise_transport_error(carrier)
    if normalised is carrier:
        return httpx.RemoteProtocolError(f"{type(error).__name__}: {error}", request=request)
    return normalised
