"""The one HTTP client every provider channel shares.

httpx's API with aiohttp underneath (``httpx-aiohttp``): httpx's own async
transport is several times slower at high concurrency (see
``docs/benchmarks.md``). Tests mock it with ``respx.mock(using="httpx")``.
"""

from __future__ import annotations

import httpx
from httpx_aiohttp import AiohttpTransport

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
DEFAULT_TIMEOUT = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)


def make_http_client(*, max_connections: int = 100) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` over aiohttp, with real timeouts and a bounded pool."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        timeout=DEFAULT_TIMEOUT,
        follow_redirects=False,
        headers={"User-Agent": "crisiscomms"},
    )
