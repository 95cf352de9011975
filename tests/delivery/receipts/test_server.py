"""The receipts server: signatures checked with the real SDK helpers, refusals change nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from crisiscomms.delivery.receipts.server import (
    MAX_SENDGRID_BYTES,
    MAX_TWILIO_BYTES,
    ReceiptServer,
    ServerConfig,
)
from crisiscomms.delivery.receipts.store import MemoryReceiptStore, RowKey
from crisiscomms.errors import UsageError
from crisiscomms.testing.standin_receipts import SendGridSigner, twilio_signature

TOKEN = "test-twilio-auth-token"
SID = "SM" + "7f" * 16
SIGNER = SendGridSigner()


@dataclasses.dataclass
class Harness:
    server: ReceiptServer
    store: MemoryReceiptStore
    http: aiohttp.ClientSession
    sms_row: RowKey
    mail_row: RowKey

    @property
    def twilio_url(self) -> str:
        return self.server.config.public_url + "/twilio/status"

    async def twilio(self, params: Mapping[str, str], *, signature: str | None = "sign", url: str | None = None,
                     token: str = TOKEN, body: bytes | None = None) -> int:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature == "sign":
            signature = twilio_signature(token, url or self.twilio_url, params)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        data = body if body is not None else urlencode(params).encode()
        async with self.http.post(self.server.url + "/twilio/status", data=data, headers=headers) as response:
            return response.status

    async def sendgrid(self, events: object, *, signer: SendGridSigner | None = SIGNER, timestamp: int | None = None,
                       payload: str | None = None, signed_payload: str | None = None) -> int:
        text = payload if payload is not None else json.dumps(events)
        headers = {"Content-Type": "application/json"}
        if signer is not None:
            headers.update(signer.headers(signed_payload if signed_payload is not None else text, timestamp))
        async with self.http.post(self.server.url + "/sendgrid/events", data=text.encode("utf-8"),
                                  headers=headers) as response:
            return response.status

    def sms_state(self) -> str | None:
        return self.store.states()[self.sms_row]

    def mail_state(self) -> str | None:
        return self.store.states()[self.mail_row]


def run(test: Callable[[Harness], Awaitable[None]], *, public_url: str | None = None,
        environ: Mapping[str, str] | None = None) -> ReceiptServer:
    async def main() -> ReceiptServer:
        store = MemoryReceiptStore()
        sms_row = store.add_row("c1", "sms", "r1", SID)
        mail_row = store.add_row("c1", "email", "r1", "X1")
        env = environ if environ is not None else {"TWILIO_AUTH_TOKEN": TOKEN,
                                                   "SENDGRID_WEBHOOK_PUBLIC_KEY": SIGNER.public_key}
        config = ServerConfig.from_environ(public_url or "http://127.0.0.1:1", env)
        server = ReceiptServer(store, config)
        await server.start()
        if public_url is None:
            server.config = dataclasses.replace(config, public_url=server.url)
        try:
            async with aiohttp.ClientSession() as http:
                await test(Harness(server, store, http, sms_row, mail_row))
        finally:
            await server.stop()
        return server

    return asyncio.run(main())


def callback(status: str, code: str | None = None, sid: str = SID) -> dict[str, str]:
    params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "AccountSid": "AC" + "1" * 32,
              "To": "+46701234567", "From": "+46700000000"}
    if code:
        params["ErrorCode"] = code
    return params


def event(kind: str, event_id: str, *, campaign: str = "c1", recipient: str = "r1", at: int | None = None,
          **extra: Any) -> dict[str, Any]:
    return {"event": kind, "sg_event_id": event_id, "sg_message_id": "X1.filter0001.0", "email": "a@example.org",
            "timestamp": at or int(time.time()), "campaign": campaign, "recipient": recipient, **extra}


# -- Twilio ---------------------------------------------------------------------------------------


def test_a_signed_twilio_callback_is_applied() -> None:
    async def test(h: Harness) -> None:
        assert await h.twilio(callback("undelivered", "30003")) == 200
        assert h.sms_state() == "undelivered"
        receipt = h.store.receipt(h.sms_row)
        assert receipt is not None and receipt.code == "30003"

    server = run(test)
    assert server.stats["twilio.events.applied"] == 1


@pytest.mark.parametrize(("case", "expected_reason"), [
    ("unsigned", "twilio.refused.unsigned"),
    ("forged", "twilio.refused.forged"),
    ("wrong_url", "twilio.refused.forged"),
    ("tampered", "twilio.refused.forged"),
])
def test_refused_twilio_callbacks_change_nothing(case: str, expected_reason: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    async def test(h: Harness) -> None:
        params = callback("failed", "30007")
        if case == "unsigned":
            status = await h.twilio(params, signature=None)
        elif case == "forged":
            status = await h.twilio(params, token="not-the-token")
        elif case == "wrong_url":
            status = await h.twilio(params, url="https://attacker.example/twilio/status")
        else:
            signature = twilio_signature(TOKEN, h.twilio_url, callback("delivered"))
            status = await h.twilio(params, signature=signature)
        assert status == 403
        assert h.sms_state() is None

    caplog.set_level(logging.WARNING, "crisiscomms.delivery.receipts.server")
    server = run(test)
    assert server.stats[expected_reason] == 1
    assert server.stats["twilio.accepted"] == 0
    assert "receipts: refused POST /twilio/status from 127.0.0.1 with 403:" in caplog.text
    assert TOKEN not in caplog.text


def test_behind_a_proxy_the_signature_is_checked_against_the_public_url() -> None:
    async def test(h: Harness) -> None:
        assert await h.twilio(callback("delivered"), url="https://receipts.example.org/hooks/twilio/status") == 200
        assert h.sms_state() == "delivered"
        assert await h.twilio(callback("read"), url=h.server.url + "/twilio/status") == 403

    run(test, public_url="https://receipts.example.org/hooks/")


def test_a_replayed_twilio_callback_is_a_duplicate_and_cannot_turn_the_state_back() -> None:
    async def test(h: Harness) -> None:
        sent = callback("sent")
        assert await h.twilio(sent) == 200
        assert await h.twilio(callback("delivered")) == 200
        assert await h.twilio(sent) == 200  # captured and replayed later
        assert h.sms_state() == "delivered"

    server = run(test)
    assert (server.stats["twilio.events.applied"], server.stats["twilio.events.duplicate"]) == (2, 1)


def test_a_callback_for_an_unknown_sid_waits_for_the_send() -> None:
    async def test(h: Harness) -> None:
        other = "SM" + "3c" * 16
        assert await h.twilio(callback("delivered", sid=other)) == 200
        key = h.store.add_row("c1", "sms", "r2")
        h.store.record_provider_id(key, other)
        assert h.store.states()[key] == "delivered"

    run(test)


def test_oversized_and_malformed_twilio_requests() -> None:
    async def test(h: Harness) -> None:
        big = callback("delivered") | {"Body": "x" * MAX_TWILIO_BYTES}
        assert await h.twilio(big) == 413
        assert await h.twilio(callback("exploded")) == 400
        assert await h.twilio({"MessageStatus": "delivered"}) == 400
        assert await h.twilio({}, signature="c2lnbmF0dXJl", body=b"\xff\xfe=\x00") == 400
        assert h.sms_state() is None

    server = run(test)
    assert server.stats["twilio.refused.oversized"] == 1
    assert server.stats["twilio.refused.malformed"] == 3


def test_without_a_token_the_twilio_endpoint_refuses_everything() -> None:
    async def test(h: Harness) -> None:
        assert await h.twilio(callback("delivered")) == 403
        assert await h.sendgrid([event("delivered", "e1")]) == 200

    server = run(test, environ={"SENDGRID_WEBHOOK_PUBLIC_KEY": SIGNER.public_key})
    assert server.stats["twilio.refused.not_configured"] == 1


# -- SendGrid -------------------------------------------------------------------------------------


def test_signed_sendgrid_events_are_applied_once_each() -> None:
    async def test(h: Harness) -> None:
        batch = [event("processed", "e1"), event("delivered", "e2"), event("unsubscribe", "e3"),
                 event("bounce", "e4", campaign="other"), {"event": "delivered"}]
        assert await h.sendgrid(batch) == 200
        assert h.mail_state() == "delivered"
        assert await h.sendgrid(batch[:2]) == 200  # SendGrid resends

    server = run(test)
    assert server.stats["sendgrid.events.applied"] == 2
    assert server.stats["sendgrid.events.duplicate"] == 2
    assert server.stats["sendgrid.events.unmatched"] == 1
    assert server.stats["sendgrid.events.ignored"] == 1
    assert server.stats["sendgrid.events.malformed"] == 1


@pytest.mark.parametrize(("case", "reason"), [
    ("unsigned", "sendgrid.refused.unsigned"),
    ("other_key", "sendgrid.refused.forged"),
    ("tampered", "sendgrid.refused.forged"),
    ("stale", "sendgrid.refused.stale"),
    ("future", "sendgrid.refused.stale"),
    ("bad_timestamp", "sendgrid.refused.unsigned"),
    ("bad_signature", "sendgrid.refused.forged"),
])
def test_refused_sendgrid_posts_change_nothing(case: str, reason: str) -> None:
    async def test(h: Harness) -> None:
        batch = [event("bounce", "e9")]
        if case == "unsigned":
            status = await h.sendgrid(batch, signer=None)
        elif case == "other_key":
            status = await h.sendgrid(batch, signer=SendGridSigner())
        elif case == "tampered":
            status = await h.sendgrid(batch, signed_payload=json.dumps([event("delivered", "e9")]))
        elif case == "stale":
            status = await h.sendgrid(batch, timestamp=int(time.time()) - 301)
        elif case == "future":
            status = await h.sendgrid(batch, timestamp=int(time.time()) + 301)
        else:
            payload = json.dumps(batch)
            headers = SIGNER.headers(payload)
            if case == "bad_timestamp":
                headers["X-Twilio-Email-Event-Webhook-Timestamp"] = "yesterday"
            else:
                headers["X-Twilio-Email-Event-Webhook-Signature"] = "%%%not base64"
            async with h.http.post(h.server.url + "/sendgrid/events", data=payload, headers=headers) as response:
                status = response.status
        assert status == 403
        assert h.mail_state() is None

    server = run(test)
    assert server.stats[reason] == 1


def test_a_signature_within_the_clock_bound_is_fresh() -> None:
    async def test(h: Harness) -> None:
        assert await h.sendgrid([event("delivered", "e1")], timestamp=int(time.time()) - 290) == 200

    run(test)


def test_oversized_and_malformed_sendgrid_posts() -> None:
    async def test(h: Harness) -> None:
        huge = [event("delivered", f"e{i}", padding="x" * 1000) for i in range(MAX_SENDGRID_BYTES // 1000)]
        assert await h.sendgrid(huge) == 413
        assert await h.sendgrid(None, payload="[{") == 400
        assert await h.sendgrid({"event": "delivered"}) == 400
        assert h.mail_state() is None

    server = run(test)
    assert server.stats["sendgrid.refused.oversized"] == 1
    assert server.stats["sendgrid.refused.malformed"] == 2


# -- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "environ", "message"), [
    ("http://x", {}, "receipts serve needs TWILIO_AUTH_TOKEN (Twilio status callbacks) and/or "
                     "SENDGRID_WEBHOOK_PUBLIC_KEY (SendGrid's signed Event Webhook) in the environment"),
    ("http://x", {"SENDGRID_WEBHOOK_PUBLIC_KEY": "bm90IGEga2V5"},
     "SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA public key (copy the verification key shown under "
     "Mail Settings → Event Webhook → Signature verification)"),
    ("ftp://x", {"TWILIO_AUTH_TOKEN": "t"}, "--public-url 'ftp://x' must be the http(s) address Twilio and "
                                            "SendGrid call, such as https://receipts.example.org (no query)"),
    ("https://x/?a=1", {"TWILIO_AUTH_TOKEN": "t"}, "--public-url 'https://x/?a=1' must be the http(s) address "
     "Twilio and SendGrid call, such as https://receipts.example.org (no query)"),
])
def test_configuration_errors(url: str, environ: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        ServerConfig.from_environ(url, environ)
    assert str(caught.value) == message


def test_the_config_repr_shows_no_secret() -> None:
    config = ServerConfig.from_environ("https://x", {"TWILIO_AUTH_TOKEN": TOKEN,
                                                     "SENDGRID_WEBHOOK_PUBLIC_KEY": SIGNER.public_key})
    assert TOKEN not in repr(config)
    assert config.endpoints == ["/twilio/status", "/twilio/call-status", "/sendgrid/events"]


# -- a flood --------------------------------------------------------------------------------------


def test_a_flood_of_garbage_does_not_crash_the_server_and_changes_nothing() -> None:
    async def test(h: Harness) -> None:
        garbage: list[tuple[str, bytes, dict[str, str]]] = [
            ("/twilio/status", b"", {}),
            ("/twilio/status", urlencode(callback("failed")).encode(), {"X-Twilio-Signature": "AAAA"}),
            ("/twilio/status", b"%ff%fe&&==", {"X-Twilio-Signature": "AAAA"}),
            ("/sendgrid/events", b"[]", {}),
            ("/sendgrid/events", b"\x00" * 3000, {"X-Twilio-Email-Event-Webhook-Signature": "AAAA",
                                                  "X-Twilio-Email-Event-Webhook-Timestamp": str(int(time.time()))}),
            ("/nowhere", b"x", {}),
        ]
        semaphore = asyncio.Semaphore(50)

        async def one(index: int) -> int:
            path, body, headers = garbage[index % len(garbage)]
            async with semaphore, h.http.post(h.server.url + path, data=body, headers=headers) as response:
                return response.status

        started = time.monotonic()
        statuses = await asyncio.gather(*(one(i) for i in range(3000)))
        assert time.monotonic() - started < 60
        assert set(statuses) <= {400, 403, 404}
        assert h.sms_state() is None and h.mail_state() is None
        async with h.http.get(h.server.url + "/health") as response:
            assert response.status == 200
        assert await h.twilio(callback("delivered")) == 200  # still serving real receipts

    server = run(test)
    assert server.stats["twilio.requests"] == 1501
    assert server.stats["twilio.accepted"] == 1


def test_a_store_failure_answers_503_so_the_provider_retries() -> None:
    from crisiscomms.errors import LedgerError

    async def test(h: Harness) -> None:
        def broken(events: object) -> object:
            raise LedgerError("cannot write the ledger x.sqlite: disk I/O error")

        h.store.apply = broken  # type: ignore[method-assign,assignment]
        assert await h.twilio(callback("delivered")) == 503

    server = run(test)
    assert server.stats["twilio.store_failed"] == 1


def test_refusals_are_logged_at_most_once_per_kind_and_second(caplog: pytest.LogCaptureFixture) -> None:
    from crisiscomms.delivery.receipts.server import _ThrottledLog

    class FakeRequest:
        method, path, remote = "POST", "/twilio/status\x1b[2J", "10.0.0.1"

    now = [100.0]
    throttled = _ThrottledLog(clock=lambda: now[0])
    caplog.set_level(logging.WARNING, "crisiscomms.delivery.receipts.server")
    for _ in range(50):
        throttled.refused("twilio.refused.forged", "forged: no", FakeRequest(), 403)  # type: ignore[arg-type]
    throttled.refused("twilio.refused.stale", "stale: old", FakeRequest(), 403)  # type: ignore[arg-type]
    now[0] += 1.5
    throttled.refused("twilio.refused.forged", "forged: no", FakeRequest(), 403)  # type: ignore[arg-type]
    assert [record.getMessage() for record in caplog.records] == [
        "receipts: refused POST /twilio/status\\x1b[2J from 10.0.0.1 with 403: forged: no",
        "receipts: refused POST /twilio/status\\x1b[2J from 10.0.0.1 with 403: stale: old",
        "receipts: refused POST /twilio/status\\x1b[2J from 10.0.0.1 with 403: forged: no (+49 more in the last second)",
    ]


# -- calls ----------------------------------------------------------------------------------------

CALL_SID = "CA" + "3c" * 16


def test_call_status_callbacks_are_verified_and_end_in_the_right_state() -> None:
    async def test(h: Harness) -> None:
        call_row = h.store.add_row("c1", "voice", "r2", CALL_SID)
        url = h.server.config.public_url + "/twilio/call-status"

        async def post(params: dict[str, str], *, signed: bool = True) -> int:
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            if signed:
                headers["X-Twilio-Signature"] = twilio_signature(TOKEN, url, params)
            async with h.http.post(h.server.url + "/twilio/call-status", data=urlencode(params).encode(),
                                   headers=headers) as response:
                return response.status

        busy = {"CallSid": CALL_SID, "CallStatus": "busy", "AccountSid": "AC" + "1" * 32, "To": "+4685550000"}
        assert await post(busy, signed=False) == 403
        assert h.store.states()[call_row] is None
        assert await post(busy) == 200
        assert h.store.states()[call_row] == "undelivered"
        receipt = h.store.receipt(call_row)
        assert receipt is not None and receipt.reason == "the line was busy"
        assert await post({**busy, "CallStatus": "ringing"}) == 200  # late and lower: the final state stays
        assert h.store.states()[call_row] == "undelivered"
        assert await post({**busy, "CallSid": "SM" + "3c" * 16}) == 400

    run(test)


def test_a_callback_signed_for_the_other_spelling_of_the_url_is_still_accepted() -> None:
    async def test(h: Harness) -> None:  # the SDK accepts the URL with and without the default port
        assert await h.twilio(callback("sent"), url="https://receipts.example.org:443/twilio/status") == 200
        assert await h.twilio(callback("delivered"), url="https://receipts.example.org/twilio/status") == 200
        assert h.sms_state() == "delivered"
        unknown = {"X-Twilio-Signature": "AAAA", "X-Twilio-Webhooks-Signature-Settings": "algorithm=HMAC_MD5"}
        async with h.http.post(h.server.url + "/twilio/status", data=urlencode(callback("read")).encode(),
                               headers=unknown) as response:
            assert response.status == 403

    server = run(test, public_url="https://receipts.example.org")
    assert (server.stats["twilio.events.applied"], server.stats["twilio.refused.forged"]) == (2, 1)


class _StoreWithAWriter(MemoryReceiptStore):
    """A memory store that, like the SQLite one, opens a writer for the server's writer thread."""

    threads: list[str]

    def open_writer(self) -> tuple[MemoryReceiptStore, Callable[[], None]]:
        import threading

        self.threads = [f"open {threading.current_thread().name}"]
        outer = self

        class Writer(MemoryReceiptStore):
            def apply(self, events: Any) -> Any:
                outer.threads.append(f"apply {threading.current_thread().name}")
                return outer.apply(events)

        return Writer(), lambda: self.threads.append(f"close {threading.current_thread().name}")


def test_a_store_that_opens_a_writer_is_written_from_the_writer_thread_only() -> None:
    async def main() -> tuple[_StoreWithAWriter, int]:
        store = _StoreWithAWriter()
        store.add_row("c1", "sms", "r1", SID)
        server = ReceiptServer(store, ServerConfig.from_environ("http://127.0.0.1:1", {"TWILIO_AUTH_TOKEN": TOKEN}))
        await server.start()
        server.config = dataclasses.replace(server.config, public_url=server.url)
        url = server.url + "/twilio/status"
        try:
            async with aiohttp.ClientSession() as http:
                statuses = await asyncio.gather(*(http.post(url, data=urlencode(callback(status)).encode(), headers={
                    "X-Twilio-Signature": twilio_signature(TOKEN, url, callback(status))})
                    for status in ("sent", "delivered", "read")))
                for response in statuses:
                    assert response.status == 200
                    response.release()
        finally:
            await server.stop()
        return store, server.stats["twilio.events.applied"]

    store, applied = asyncio.run(main())
    assert applied == 3
    assert store.states() == {RowKey("c1", "sms", "r1"): "opened"}
    assert {entry.split(" ", 1)[1].rsplit("_", 1)[0] for entry in store.threads} == {"receipts-writer"}
    assert store.threads[0].startswith("open ") and store.threads[-1].startswith("close ")


def test_unknown_paths_and_methods_are_answered_without_touching_anything() -> None:
    async def test(h: Harness) -> None:
        answers = []
        for method, path in (("GET", "/nothing"), ("POST", "/twilio/status/x"), ("GET", "/twilio/status"),
                             ("PUT", "/sendgrid/events"), ("DELETE", "/health"), ("GET", "/health"),
                             ("HEAD", "/health")):
            async with h.http.request(method, h.server.url + path) as response:
                answers.append((method, path, response.status, response.headers.get("Allow")))
        assert answers == [("GET", "/nothing", 404, None), ("POST", "/twilio/status/x", 404, None),
                           ("GET", "/twilio/status", 405, "POST"), ("PUT", "/sendgrid/events", 405, "POST"),
                           ("DELETE", "/health", 405, "GET, HEAD"), ("GET", "/health", 200, None),
                           ("HEAD", "/health", 200, None)]
        assert (h.sms_state(), h.mail_state()) == (None, None)

    server = run(test)
    assert not any(name.endswith((".accepted", ".applied")) for name in server.stats)
