"""Baseline clients for the send benchmarks, each run as its own process by ``bench/run.py``.

    python bench/clients.py MODE --url STANDIN_URL --count N [--concurrency 100]

Modes (credentials from TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN / SENDGRID_API_KEY):

* ``raw-aiohttp``: aiohttp ``ClientSession`` firing Twilio "create message" form POSTs,
  ``--concurrency`` workers over one connector of that size: what this machine can do.
* ``httpx-aiohttp``: the same requests through ``httpx.AsyncClient`` over the
  ``httpx_aiohttp`` transport (crisiscomms' HTTP stack, without the Twilio SDK) - diagnostic.
* ``httpx-native``: the same through plain ``httpx.AsyncClient`` (httpcore), the stack
  crisiscomms does not use - diagnostic.
* ``twilio-async``: the Twilio SDK's ``messages.create_async`` over crisiscomms' own
  ``TwilioHttpxClient`` (its SMS channel minus ledger, plan and dispatcher) - diagnostic.
* ``twilio-sync``: a plain loop over the Twilio SDK's ``client.messages.create`` with
  ``client.api.base_url`` pointed at the stand-in.
* ``sendgrid-sync``: a plain loop over ``SendGridAPIClient(key, host=url).send(mail)``.
* ``apprise``: Apprise's Twilio plugin (one ``notify`` to ``--count`` targets, the way
  Apprise sends to many), its URL pointed at the stand-in; ``--no-throttle`` turns off
  the plugin's built-in 0.2 s pause between requests. Runs under any Python that has
  ``apprise`` (it imports nothing else from this repository).

Prints one JSON object: ``{"mode", "count", "ok", "statuses", "seconds"}`` (``seconds``:
the client's own wall time from the first request to the last answer).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

#: The Swedish storm SMS crisiscomms renders for the shipped playbook (237 characters, 2 segments).
SMS_BODY = (
    "Nordvind Energi: Stormen har orsakat strömavbrott i Göteborg och norra Halland. Strömmen beräknas "
    "vara tillbaka senast sön 6 dec kl. 20. Fara, t.ex. nedriven ledning? Ring +46 8 465 004 10 "
    "(dygnet runt). Läs mer: nordvind.example/avbrott"
)
MESSAGING_SERVICE = "MG3f9d2c1b0a8e7d6c5b4a39281706f5e4"  # the shipped playbook's
FROM_NUMBER = "+46700000000"


def number(index: int) -> str:
    """A distinct Swedish mobile number per index."""
    return f"+4670{index:07d}"


def _credentials() -> tuple[str, str]:
    return os.environ["TWILIO_ACCOUNT_SID"], os.environ["TWILIO_AUTH_TOKEN"]


def _form(index: int) -> dict[str, str]:
    return {"To": number(index), "MessagingServiceSid": MESSAGING_SERVICE, "Body": SMS_BODY}


async def _workers(count: int, concurrency: int, one: Callable[[int], Any]) -> None:
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            await one(index)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def raw_aiohttp(url: str, count: int, concurrency: int) -> Counter[str]:
    import aiohttp

    sid, token = _credentials()
    endpoint = f"{url}/2010-04-01/Accounts/{sid}/Messages.json"
    statuses: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode("ascii")}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(index: int) -> None:
            async with session.post(endpoint, data=_form(index)) as response:
                await response.read()
                statuses[str(response.status)] += 1

        await _workers(count, concurrency, one)
    return statuses


async def httpx_aiohttp(url: str, count: int, concurrency: int) -> Counter[str]:
    import httpx
    from httpx_aiohttp import AiohttpTransport

    sid, token = _credentials()
    endpoint = f"{url}/2010-04-01/Accounts/{sid}/Messages.json"
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(transport=AiohttpTransport(limits=limits), auth=(sid, token)) as client:

        async def one(index: int) -> None:
            response = await client.post(endpoint, data=_form(index))
            statuses[str(response.status_code)] += 1

        await _workers(count, concurrency, one)
    return statuses


async def httpx_native(url: str, count: int, concurrency: int) -> Counter[str]:
    import httpx

    sid, token = _credentials()
    endpoint = f"{url}/2010-04-01/Accounts/{sid}/Messages.json"
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, auth=(sid, token)) as client:

        async def one(index: int) -> None:
            response = await client.post(endpoint, data=_form(index))
            statuses[str(response.status_code)] += 1

        await _workers(count, concurrency, one)
    return statuses


async def twilio_async(url: str, count: int, concurrency: int) -> Counter[str]:
    from twilio.rest import Client

    from crisiscomms.channels.http import make_http_client
    from crisiscomms.channels.sms import TwilioHttpxClient

    sid, token = _credentials()
    statuses: Counter[str] = Counter()
    async with make_http_client(max_connections=concurrency) as http:
        client = Client(sid, token, http_client=TwilioHttpxClient(http, base_url=url),
                        environment={"TWILIO_ACCOUNT_SID": sid, "TWILIO_AUTH_TOKEN": token})

        async def one(index: int) -> None:
            try:
                await client.messages.create_async(to=number(index), messaging_service_sid=MESSAGING_SERVICE,
                                                   body=SMS_BODY)
                statuses["201"] += 1
            except Exception as error:  # counted, not raised
                statuses[type(error).__name__] += 1

        await _workers(count, concurrency, one)
    return statuses


def twilio_sync(url: str, count: int) -> Counter[str]:
    from twilio.rest import Client

    sid, token = _credentials()
    client = Client(sid, token)
    client.api.base_url = url
    statuses: Counter[str] = Counter()
    for index in range(count):
        try:
            client.messages.create(to=number(index), messaging_service_sid=MESSAGING_SERVICE, body=SMS_BODY)
            statuses["201"] += 1
        except Exception as error:  # counted, not raised
            statuses[type(error).__name__] += 1
    return statuses


def sendgrid_sync(url: str, count: int) -> Counter[str]:
    from sendgrid import SendGridAPIClient
    from sendgrid.helpers.mail import Mail

    client = SendGridAPIClient(os.environ["SENDGRID_API_KEY"], host=url)
    statuses: Counter[str] = Counter()
    for index in range(count):
        mail = Mail(from_email="driftinfo@nordvind.example", to_emails=f"kund{index}@example.se",
                    subject="Strömavbrott efter stormen: så når du oss",
                    plain_text_content="Hej! " + SMS_BODY, html_content=f"<p>Hej!</p><p>{SMS_BODY}</p>")
        try:
            response = client.send(mail)
            statuses[str(response.status_code)] += 1
        except Exception as error:  # counted, not raised
            statuses[type(error).__name__] += 1
    return statuses


def apprise_twilio(url: str, count: int, *, throttle: bool) -> Counter[str]:
    import apprise  # type: ignore[import-not-found]  # optional, often in another venv
    from apprise.plugins.twilio import NotifyTwilio  # type: ignore[import-not-found]

    sid, token = _credentials()
    NotifyTwilio.notify_sms_url = url + "/2010-04-01/Accounts/{sid}/Messages.json"
    # Apprise accepts only [a-z0-9] tokens; the stand-in's default token has dashes.
    NotifyTwilio.template_tokens["auth_token"]["regex"] = (r"^[a-z0-9-]+$", "i")
    if not throttle:
        NotifyTwilio.request_rate_per_sec = 0
    targets = "/".join(number(i).lstrip("+") for i in range(count))
    notifier = apprise.Apprise()
    if not notifier.add(f"twilio://{sid}:{token}@{FROM_NUMBER.lstrip('+')}/{targets}"):
        raise SystemExit("apprise refused the twilio:// URL")
    ok = notifier.notify(body=SMS_BODY)
    return Counter({"notify_ok" if ok else "notify_failed": 1})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Baseline clients for bench/run.py")
    parser.add_argument("mode", choices=["raw-aiohttp", "httpx-aiohttp", "httpx-native", "twilio-async", "twilio-sync",
                                         "sendgrid-sync", "apprise"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--no-throttle", action="store_true", help="apprise: no pause between requests")
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    started = time.perf_counter()
    if args.mode == "raw-aiohttp":
        statuses = asyncio.run(raw_aiohttp(url, args.count, args.concurrency))
    elif args.mode == "httpx-aiohttp":
        statuses = asyncio.run(httpx_aiohttp(url, args.count, args.concurrency))
    elif args.mode == "httpx-native":
        statuses = asyncio.run(httpx_native(url, args.count, args.concurrency))
    elif args.mode == "twilio-async":
        statuses = asyncio.run(twilio_async(url, args.count, args.concurrency))
    elif args.mode == "twilio-sync":
        statuses = twilio_sync(url, args.count)
    elif args.mode == "sendgrid-sync":
        statuses = sendgrid_sync(url, args.count)
    else:
        statuses = apprise_twilio(url, args.count, throttle=not args.no_throttle)
    seconds = time.perf_counter() - started
    ok = sum(n for status, n in statuses.items() if status in ("201", "202", "notify_ok"))
    print(json.dumps({"mode": args.mode, "count": args.count, "ok": ok, "statuses": dict(statuses),
                      "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
