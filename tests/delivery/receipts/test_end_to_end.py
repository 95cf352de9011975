"""End to end: the stand-in sends signed receipts to the server; the store ends with the stand-in's record."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx

from crisiscomms.channels.http import make_http_client
from crisiscomms.channels.sms import twilio_client
from crisiscomms.delivery.receipts.server import ReceiptServer, ServerConfig
from crisiscomms.delivery.receipts.store import MemoryReceiptStore, RowKey
from crisiscomms.testing.standin import (
    DEFAULT_SENDGRID_KEY,
    DEFAULT_TWILIO_SID,
    DEFAULT_TWILIO_TOKEN,
    Standin,
    run_standin,
)

SMS_COUNT = 60
EMAIL_COUNT = 40
OUR_STATE = {"delivered": "delivered", "undelivered": "undelivered", "failed": "failed", "bounce": "bounced",
             "open": "opened"}


async def send_sms(standin: Standin, http: httpx.AsyncClient, store: MemoryReceiptStore, callback: str) -> None:
    env = {"TWILIO_ACCOUNT_SID": DEFAULT_TWILIO_SID, "TWILIO_AUTH_TOKEN": DEFAULT_TWILIO_TOKEN,
           "CRISISCOMMS_TWILIO_URL": standin.twilio_url}
    client, _, _ = twilio_client(http, env)
    for index in range(SMS_COUNT):
        key = store.add_row("storm-1", "sms", f"r{index}")  # planned: no sid yet
        created = await client.messages.create_async(to=f"+4670555{index:04d}", from_="+46700000000",
                                                    body="Storm warning", status_callback=callback)
        await asyncio.sleep(0)  # let the first callback race the recording of the sid
        store.record_provider_id(key, created.sid)


async def send_email(standin: Standin, http: httpx.AsyncClient, store: MemoryReceiptStore) -> None:
    for start in range(0, EMAIL_COUNT, 10):
        people = range(start, start + 10)
        body: dict[str, Any] = {
            "from": {"email": "alerts@example.org"}, "subject": "Storm warning",
            "content": [{"type": "text/plain", "value": "Storm warning"}],
            "personalizations": [{"to": [{"email": f"p{i}@example.org"}],
                                  "custom_args": {"campaign": "storm-1", "recipient": f"r{i}"}} for i in people],
        }
        keys = [store.add_row("storm-1", "email", f"r{i}") for i in people]
        response = await http.post(standin.sendgrid_url + "/v3/mail/send", json=body,
                                   headers={"Authorization": f"Bearer {DEFAULT_SENDGRID_KEY}"})
        assert response.status_code == 202
        for key in keys:
            store.record_provider_id(key, response.headers["X-Message-Id"])


def test_receipts_from_the_stand_in_end_in_exactly_its_final_states() -> None:
    async def main() -> tuple[dict[RowKey, str | None], dict[RowKey, str], ReceiptServer, Standin]:
        store = MemoryReceiptStore()
        async with run_standin() as standin, make_http_client() as http:
            env = {"TWILIO_AUTH_TOKEN": DEFAULT_TWILIO_TOKEN,
                   "SENDGRID_WEBHOOK_PUBLIC_KEY": standin.receipts.public_key}
            server = ReceiptServer(store, ServerConfig.from_environ("http://127.0.0.1:1", env))
            await server.start()
            server.config = dataclasses.replace(server.config, public_url=server.url)
            try:
                standin.receipts.configure(enabled=True, undelivered_share=0.2, failed_share=0.1, bounce_share=0.2,
                                           open_share=0.3, delay=0.3, duplicate_share=0.4, reorder_share=0.4,
                                           sendgrid_events_url=server.url + "/sendgrid/events", sendgrid_batch=7,
                                           seed=11)
                await send_sms(standin, http, store, server.url + "/twilio/status")
                await send_email(standin, http, store)
                await standin.receipts.drain()
            finally:
                await server.stop()
            finals = standin.receipts.final_states()
            wanted: dict[RowKey, str] = {}
            for key, row in store.rows.items():
                if key.channel == "sms":
                    wanted[key] = OUR_STATE[finals["sms"][row.provider_id]]
                else:
                    wanted[key] = OUR_STATE[finals["email"][(key.campaign, key.recipient)]]
            return store.states(), wanted, server, standin

    states, wanted, server, standin = asyncio.run(main())
    assert states == wanted
    assert set(wanted.values()) == {"delivered", "undelivered", "failed", "bounced", "opened"}
    assert server.stats["twilio.events.duplicate"] > 0
    assert server.stats["sendgrid.events.duplicate"] > 0
    assert not [name for name in server.stats if ".refused." in name]
    assert set(standin.receipts.answers) == {("twilio", 200), ("sendgrid", 200)}
