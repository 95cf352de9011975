"""The stand-in's receipts: fates, signed posts, the current status for pull mode."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator

from crisiscomms.testing.standin import DEFAULT_TWILIO_SID, DEFAULT_TWILIO_TOKEN, Standin, run_standin
from crisiscomms.testing.standin_receipts import ReceiptsConfig, SendGridSigner, twilio_signature

MESSAGES = f"/2010-04-01/Accounts/{DEFAULT_TWILIO_SID}/Messages"
AUTH = (DEFAULT_TWILIO_SID, DEFAULT_TWILIO_TOKEN)


async def create(standin: Standin, http: httpx.AsyncClient, **extra: str) -> str:
    answer = await http.post(standin.url + MESSAGES + ".json", auth=AUTH,
                             data={"To": "+46701234567", "From": "+46700000000", "Body": "x", **extra})
    assert answer.status_code == 201
    return str(answer.json()["sid"])


def test_signatures_verify_with_the_sdk_helpers() -> None:
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    signature = twilio_signature("token", "https://h.example/twilio/status", params)
    assert RequestValidator("token").validate("https://h.example/twilio/status", params, signature)
    signer = SendGridSigner()
    headers = signer.headers('[{"event":"delivered"}]', 1_700_000_000)
    assert EventWebhook(signer.public_key).verify_signature(
        '[{"event":"delivered"}]', headers["X-Twilio-Email-Event-Webhook-Signature"], "1700000000")


def test_receipts_are_off_by_default_and_fetch_says_sent() -> None:
    async def scenario() -> None:
        async with run_standin() as standin, httpx.AsyncClient() as http:
            sid = await create(standin, http, StatusCallback="http://127.0.0.1:9/never")
            fetched = (await http.get(f"{standin.url}{MESSAGES}/{sid}.json", auth=AUTH)).json()
            assert (fetched["status"], fetched["error_code"]) == ("sent", None)
            assert standin.receipts.final_states() == {"sms": {}, "email": {}}

    asyncio.run(scenario())


def test_fetch_gives_the_final_status_once_its_delay_passed() -> None:
    async def scenario() -> None:
        async with run_standin() as standin, httpx.AsyncClient() as http:
            standin.receipts.configure(enabled=True, undelivered_share=1.0, failed_share=0.0, delay=0.3)
            sid = await create(standin, http)
            assert (await http.get(f"{standin.url}{MESSAGES}/{sid}.json", auth=AUTH)).json()["status"] == "sent"
            await asyncio.sleep(0.35)
            fetched = (await http.get(f"{standin.url}{MESSAGES}/{sid}.json", auth=AUTH)).json()
            assert (fetched["status"], fetched["error_code"]) == ("undelivered", 30003)
            standin.reset()
            assert standin.receipts.final_states() == {"sms": {}, "email": {}}

    asyncio.run(scenario())


def test_callbacks_are_posted_signed_to_the_status_callback() -> None:
    received: list[tuple[dict[str, str], str]] = []

    async def scenario() -> None:
        from aiohttp import web

        async def hook(request: web.Request) -> web.Response:
            received.append((dict(await request.post()), request.headers["X-Twilio-Signature"]))  # type: ignore[arg-type]
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/twilio/status", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/twilio/status"
        try:
            async with run_standin() as standin, httpx.AsyncClient() as http:
                standin.receipts.configure(enabled=True, failed_share=1.0, undelivered_share=0.0,
                                           duplicate_share=1.0)
                await create(standin, http, StatusCallback=url)
                await standin.receipts.drain()
        finally:
            await runner.cleanup()
        assert [fields["MessageStatus"] for fields, _ in received] == ["sent", "failed", "failed"]
        for fields, signature in received:
            assert RequestValidator(DEFAULT_TWILIO_TOKEN).validate(url, fields, signature)
        assert received[-1][0]["ErrorCode"] == "30007"

    asyncio.run(scenario())


def test_sendgrid_events_carry_the_custom_args_and_a_valid_signature() -> None:
    posts: list[tuple[str, str, str]] = []

    async def scenario() -> None:
        from aiohttp import web

        async def hook(request: web.Request) -> web.Response:
            posts.append((await request.text(), request.headers["X-Twilio-Email-Event-Webhook-Signature"],
                          request.headers["X-Twilio-Email-Event-Webhook-Timestamp"]))
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/sendgrid/events", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/sendgrid/events"
        try:
            async with run_standin() as standin, httpx.AsyncClient() as http:
                standin.receipts.configure(enabled=True, bounce_share=1.0, sendgrid_events_url=url)
                body = {"from": {"email": "a@example.org"}, "subject": "s",
                        "content": [{"type": "text/plain", "value": "x"}],
                        "personalizations": [{"to": [{"email": "b@example.org"}],
                                              "custom_args": {"campaign": "c1", "recipient": "r7"}}]}
                answer = await http.post(standin.url + "/v3/mail/send", json=body,
                                         headers={"Authorization": "Bearer SG.standin.sendgrid-api-key"})
                assert answer.status_code == 202
                await standin.receipts.drain()
                key = standin.receipts.public_key
                assert standin.receipts.final_states()["email"] == {("c1", "r7"): "bounce"}
        finally:
            await runner.cleanup()
        [(payload, signature, stamp)] = posts
        assert EventWebhook(key).verify_signature(payload, signature, stamp)
        events = json.loads(payload)
        assert [(e["event"], e["campaign"], e["recipient"]) for e in events] == [
            ("processed", "c1", "r7"), ("bounce", "c1", "r7")]
        assert events[0]["sg_message_id"].startswith(answer.headers["X-Message-Id"] + ".")

    asyncio.run(scenario())


@pytest.mark.parametrize(("changes", "message"), [
    ({"bounce_share": 1.5}, "bounce_share must be within [0, 1]"),
    ({"undelivered_share": 0.6, "failed_share": 0.6}, "undelivered_share + failed_share must be at most 1"),
    ({"delay": -1}, "delay must be >= 0 and sendgrid_batch >= 1"),
])
def test_bad_receipt_settings_are_refused(changes: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace("+", r"\+")):
        ReceiptsConfig(**changes)  # type: ignore[arg-type]


def test_control_endpoints_configure_and_read_the_receipts_from_another_process() -> None:
    from crisiscomms.testing.standin import standin_in_thread

    with standin_in_thread() as standin:
        configured = httpx.post(standin.url + "/_standin/receipts", json={"enabled": True, "failed_share": 1.0,
                                                                           "undelivered_share": 0.0})
        assert configured.status_code == 200 and configured.json()["enabled"] is True
        assert httpx.post(standin.url + "/_standin/receipts", json={"bounce_share": 2}).json() == {
            "error": "bounce_share must be within [0, 1]"}
        assert httpx.post(standin.url + "/_standin/receipts", json={"nonsense": 1}).status_code == 400
        answer = httpx.post(standin.url + MESSAGES + ".json", auth=AUTH,
                            data={"To": "+46701234567", "From": "+46700000000", "Body": "x"})
        assert httpx.post(standin.url + "/_standin/receipts/drain").json() == {"drained": True}
        record = httpx.get(standin.url + "/_standin/receipts").json()
        assert record["sms"] == {answer.json()["sid"]: "failed"}
        assert record["public_key"] == standin.receipts.public_key
        assert record["email"] == [] and record["answers"] == {}
