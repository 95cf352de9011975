"""E-mail through SendGrid's v3 mail/send API.

One request carries up to 1,000 recipients of identical content, each in a
personalization of their own (nobody sees another's address), with the
recipient's ``custom_args`` so events can be traced back to the campaign and
the recipient. Personalised e-mails (``Hello {{ recipient.name }}``) share a
request too: the body carries their shared rendering and each personalization
the recipient's ``substitutions`` (:mod:`crisiscomms.substitutions`; packing
within SendGrid's limits: :mod:`.email_batch`). The body is built with SendGrid's ``Mail`` helper and posted
with the shared httpx client (sendgrid's own client uses urllib, which
neither shares our connection pool nor can be mocked with respx).

What SendGrid's answers mean here (see ``docs`` and ``/work/shared/facts.md``):

* 202: queued; every message of the request gets the ``X-Message-Id``.
* 200: sandbox mode (``mail_settings.sandbox_mode.enable``, an exercise with
  ``exercise.sendgrid_sandbox: true``): validated, nothing sent — accepted here
  only when this channel asked for the sandbox, else uncertain.
* 400: SendGrid validated the request and sent nothing. Errors that point at
  particular personalizations reject those recipients and leave the others
  safe to retry; any other 400 rejects the whole request.
* 401/403: the key (or the sender) is refused: :class:`ProviderRejected`.
* 413 and other 4xx: rejected. 429: retry after ``X-RateLimit-Reset``.
* 5xx, and a connection lost after the request may have been written:
  uncertain. SendGrid has no idempotency key, so resending may duplicate.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from sendgrid.helpers.mail import (
    Asm,
    Category,
    CustomArg,
    From,
    GroupId,
    HtmlContent,
    Mail,
    MailSettings,
    Personalization,
    PlainTextContent,
    ReplyTo,
    SandBoxMode,
    Subject,
    Substitution,
    To,
)

from ..playbook import EmailSettings, Playbook
from ..render import EmailContent
from .base import ChannelContext, Message, Outcome, ProviderRejected, SendResult
from .email_batch import MAX_PERSONALIZATIONS, Packer, Request
from .http import normalise_transport_error, transport_outcome

__all__ = ["SendGridEmail"]

log = logging.getLogger(__name__)

API_KEY_VARIABLE = "SENDGRID_API_KEY"
URL_VARIABLE = "CRISISCOMMS_SENDGRID_URL"
GLOBAL_URL = "https://api.sendgrid.com"
EU_URL = "https://api.eu.sendgrid.com"
SEND_PATH = "/v3/mail/send"

MAX_CUSTOM_ARGS_BYTES = 10_000  # per personalization (SendGrid: "may not exceed 10,000 bytes")
MAX_REASON = 1000  # characters of a provider's error text kept in a result

_PERSONALIZATION_FIELD = re.compile(r"^personalizations\.(\d+)(?:\.|$)")


class SendGridEmail:
    """The ``email`` channel: SendGrid v3 mail/send over the shared httpx client."""

    name: ClassVar[str] = "email"
    max_batch: ClassVar[int] = MAX_PERSONALIZATIONS

    def __init__(
        self,
        settings: EmailSettings,
        http: httpx.AsyncClient,
        *,
        category: str,
        environ: Mapping[str, str] = os.environ,
        sandbox: bool = False,
    ) -> None:
        key = (environ.get(API_KEY_VARIABLE) or "").strip()
        if not key:
            raise ProviderRejected(f"{API_KEY_VARIABLE} is not set: export the SendGrid API key (Mail Send permission)")
        if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
            raise ProviderRejected(f"{API_KEY_VARIABLE} contains characters an API key cannot have; check its value")
        self._settings = settings
        self._http = http
        self._category = category
        self.sandbox = sandbox  # SendGrid validates every request and delivers nothing (an exercise)
        self._key = key
        self._headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        self.url = _base_url(environ, settings.region) + SEND_PATH

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, category={self._category!r}, sandbox={self.sandbox!r})"

    # -- Channel -----------------------------------------------------------

    async def send(self, batch: Sequence[Message]) -> list[SendResult]:
        """One result per message, in order. Splits ``batch`` into requests of identical
        content, at most 1,000 recipients and no address twice; raises
        :class:`ProviderRejected` on 401/403 (results of earlier requests of this batch are
        then lost: the dispatcher must treat the whole batch as attempted)."""
        results: list[SendResult | None] = [None] * len(batch)
        throttled: SendResult | None = None
        for request in self._plan(batch, results):
            if throttled is not None:  # SendGrid just said 429: the rest of this batch would be refused too
                for index in request.indices:
                    results[index] = throttled
                continue
            answers = await self._post(request, [batch[i] for i in request.indices])
            for index, answer in zip(request.indices, answers, strict=True):
                results[index] = answer
            first = answers[0]
            if first.outcome is Outcome.RETRY and first.code == "429":
                throttled = SendResult(Outcome.RETRY, code="429", retry_after=first.retry_after,
                                       reason="not sent: SendGrid's rate limit was reached by another request")
        done = [r for r in results if r is not None]
        assert len(done) == len(batch), "every message has a result"
        return done

    async def find_sent(self, message: Message, since: dt.datetime) -> str | None:
        """Always None: SendGrid cannot tell cheaply whether a message went out.

        The only way to ask is the Email Activity API (``GET /v3/messages``): a paid
        add-on, needing an extra key permission, strictly rate-limited and only
        eventually consistent (events show up after a delay), so a miss would not
        prove that nothing was sent. Uncertain e-mails stay uncertain; the dispatcher
        resends them only with ``--resend-uncertain``.
        """
        del message, since
        return None

    async def aclose(self) -> None:
        """Nothing to close: the httpx client is shared and owned by the dispatcher."""

    # -- planning ----------------------------------------------------------

    def _plan(self, batch: Sequence[Message], results: list[SendResult | None]) -> list[Request]:
        """Group by request content (identical e-mails, or one shared rendering with substitutions),
        then pack each group into requests within SendGrid's limits (:mod:`.email_batch`).
        Messages that cannot be sent get their result now."""
        packer = Packer()
        for index, message in enumerate(batch):
            content = message.body
            if not isinstance(content, EmailContent):
                raise TypeError(f"message {message.key}: the email channel needs EmailContent, "
                                f"not {type(content).__name__}")
            problem = _local_problem(message)
            if problem is not None:
                results[index] = problem
                continue
            packer.add(index, message, content, _address_key(message.address))
        return packer.requests()

    # -- one request -------------------------------------------------------

    def mail_body(self, content: EmailContent, messages: Sequence[Message], *,
                  substituted: bool = False) -> dict[str, Any]:
        """The JSON body for ``messages`` (distinct addresses, at most 1,000): one
        personalization per recipient, in the order of ``messages``; ``substituted``: ``content``
        is their shared rendering and each personalization carries the recipient's substitutions."""
        settings = self._settings
        mail = Mail()
        mail.from_email = _email(From, settings.from_, settings.from_name)
        if settings.reply_to is not None:
            mail.reply_to = _email(ReplyTo, settings.reply_to)
        mail.subject = Subject(content.subject)
        mail.add_content(PlainTextContent(content.text))  # the helper keeps text/plain first anyway
        mail.add_content(HtmlContent(content.html))
        mail.add_category(Category(self._category))
        if settings.unsubscribe_group is not None:
            mail.asm = Asm(GroupId(settings.unsubscribe_group))
        if self.sandbox:
            mail_settings = MailSettings()
            mail_settings.sandbox_mode = SandBoxMode(True)
            mail.mail_settings = mail_settings
        for message in messages:
            personalization = Personalization()
            personalization.add_to(_email(To, message.address.strip()))
            for key, value in message.custom_args.items():
                personalization.add_custom_arg(CustomArg(str(key), str(value)))
            if substituted:
                for key, value in _substitutions(message):
                    personalization.add_substitution(Substitution(key, value))
            # add_personalization inserts at index 0 by default (reversing the order): append explicitly
            mail.add_personalization(personalization, index=len(mail.personalizations or ()))
        body: dict[str, Any] = mail.get()
        return body

    async def _post(self, request: Request, messages: Sequence[Message]) -> list[SendResult]:
        body = self.mail_body(request.content, messages, substituted=request.substituted)
        order = _personalization_order(body, messages)
        try:
            response = await self._http.post(self.url, json=body, headers=self._headers)
        except httpx.TransportError as error:
            outcome = transport_outcome(normalise_transport_error(error))
            log.debug("sendgrid: %d recipients: %s (%s)", len(messages), type(error).__name__, outcome)
            reason = self._scrub(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
            if outcome is Outcome.UNCERTAIN:
                reason = f"may have been sent: {reason}"
            return [SendResult(outcome, reason=reason)] * len(messages)
        log.debug("sendgrid: %d recipients: HTTP %d", len(messages), response.status_code)
        return self._classify(response, messages, order)

    def _classify(self, response: httpx.Response, messages: Sequence[Message], order: list[int]) -> list[SendResult]:
        status = response.status_code
        count = len(messages)
        if status == 202:
            return [SendResult(Outcome.ACCEPTED, provider_id=response.headers.get("X-Message-Id"))] * count
        if status == 200 and self.sandbox:
            return [SendResult(Outcome.ACCEPTED, code="sandbox",
                               reason="SendGrid sandbox mode: validated and accepted, not delivered")] * count
        errors = _errors(response)
        if status == 401:
            raise ProviderRejected(self._scrub(
                f"SendGrid refused the API key (HTTP 401): check {API_KEY_VARIABLE} "
                f"(complete, current, not revoked){_said(errors)}"))
        if status == 403:
            raise ProviderRejected(self._scrub(
                f"SendGrid refused to send (HTTP 403): check {API_KEY_VARIABLE} — the key needs the Mail Send "
                f"permission — and that the sender {self._settings.from_} is a verified Sender Identity "
                f"(single sender or authenticated domain){_said(errors)}"))
        if status == 429:
            wait = _retry_after(response.headers)
            return [SendResult(Outcome.RETRY, code="429", reason="SendGrid rate limit", retry_after=wait)] * count
        if status == 400:
            return self._bad_request(errors, count, order)
        if status == 413:
            reason = "message too large (SendGrid accepts less than 30 MB per request)"
            return [SendResult(Outcome.REJECTED, code="413", reason=reason)] * count
        if 400 <= status < 500:
            reason = self._scrub(_joined(errors) or f"HTTP {status}")
            return [SendResult(Outcome.REJECTED, code=str(status), reason=reason)] * count
        if status >= 500:
            reason = self._scrub(f"may have been sent: SendGrid answered HTTP {status}: {_joined(errors) or '-'}")
            return [SendResult(Outcome.UNCERTAIN, code=str(status), reason=reason)] * count
        # 200 is sandbox mode (nothing sent), 1xx/3xx should not happen: flag, never resend blindly.
        reason = f"unexpected answer HTTP {status} from SendGrid (expected 202)"
        return [SendResult(Outcome.UNCERTAIN, code=str(status), reason=reason)] * count

    def _bad_request(self, errors: list[_Error], count: int, order: list[int]) -> list[SendResult]:
        """SendGrid validated the request and sent nothing. If every error names a
        personalization, only those recipients are rejected; the others may retry."""
        blamed: dict[int, list[_Error]] = {}
        for error in errors:
            match = _PERSONALIZATION_FIELD.match(error.field or "")
            if match is None or int(match.group(1)) >= len(order):
                blamed = {}
                break
            blamed.setdefault(order[int(match.group(1))], []).append(error)
        if not blamed:
            reason = self._scrub(_joined(errors) or "HTTP 400 Bad Request")
            return [SendResult(Outcome.REJECTED, code="400", reason=reason)] * count
        others = SendResult(Outcome.RETRY, code="400", retry_after=0.0,
                            reason="not sent: SendGrid refused the request because of other recipients in it")
        return [
            SendResult(Outcome.REJECTED, code="400", reason=self._scrub(_joined(blamed[i]))) if i in blamed else others
            for i in range(count)
        ]

    def _scrub(self, text: str) -> str:
        """Belt and braces: the key's value never leaves this object."""
        return text.replace(self._key, "***")[:MAX_REASON]


@dataclass(frozen=True)
class _Error:
    message: str
    field: str | None

    def text(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def _base_url(environ: Mapping[str, str], region: str) -> str:
    override = (environ.get(URL_VARIABLE) or "").strip()
    if not override:
        return EU_URL if region == "eu" else GLOBAL_URL
    try:
        url = httpx.URL(override)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ProviderRejected(f"{URL_VARIABLE} must be an http(s) URL such as {GLOBAL_URL}")
    return override.rstrip("/")


def _email(kind: Any, address: str, name: str | None = None) -> Any:
    """A To/From/ReplyTo with exactly this address: the helpers' constructors run
    ``email.utils.parseaddr`` on a nameless address, which mangles some valid ones
    (``"a,b"@example.org`` loses its address)."""
    value = kind()
    value.email = address
    if name:
        value.name = name
    return value


def _address_key(address: str) -> str:
    """SendGrid compares recipients case-insensitively."""
    return address.strip().lower()


def _local_problem(message: Message) -> SendResult | None:
    """Problems that would make SendGrid refuse the whole request: refuse one message instead."""
    address = message.address.strip()
    if "@" not in address or any(c.isspace() for c in address):
        return SendResult(Outcome.REJECTED, code="address", reason=f"not an e-mail address: {address!r}")
    size = len(json.dumps({str(k): str(v) for k, v in message.custom_args.items()},
                          ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size >= MAX_CUSTOM_ARGS_BYTES:
        return SendResult(Outcome.REJECTED, code="custom_args",
                          reason=f"custom_args are {size} bytes; SendGrid allows less than {MAX_CUSTOM_ARGS_BYTES}")
    return None


def _substitutions(message: Message) -> tuple[tuple[str, str], ...]:
    personalised = message.body.personalised if isinstance(message.body, EmailContent) else None
    return personalised.substitutions if personalised is not None else ()


def _personalization_order(body: Mapping[str, Any], messages: Sequence[Message]) -> list[int]:
    """For each personalization of ``body``, the index of its message in ``messages``
    (addresses are distinct within a request), whatever order the helper used."""
    position = {_address_key(m.address): i for i, m in enumerate(messages)}
    order = [position[_address_key(p["to"][0]["email"])] for p in body["personalizations"]]
    if sorted(order) != list(range(len(messages))):
        raise AssertionError("the mail body does not have one personalization per message")
    return order


def _errors(response: httpx.Response) -> list[_Error]:
    """SendGrid's ``{"errors": [{"message", "field", "help"}]}``, or the raw text."""
    try:
        payload = response.json()
    except (ValueError, UnicodeDecodeError):
        text = response.text.strip()
        return [_Error(text[:MAX_REASON], None)] if text else []
    entries = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        return []
    errors: list[_Error] = []
    for entry in entries:
        if isinstance(entry, dict):
            field_name = entry.get("field")
            errors.append(_Error(str(entry.get("message") or "error"),
                                 str(field_name) if field_name not in (None, "") else None))
        else:
            errors.append(_Error(str(entry), None))
    return errors


def _joined(errors: Sequence[_Error]) -> str:
    return "; ".join(error.text() for error in errors)


def _said(errors: Sequence[_Error]) -> str:
    joined = _joined(errors)
    return f". SendGrid said: {joined}" if joined else ""


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait: ``Retry-After`` (seconds or HTTP date) if given, else
    ``X-RateLimit-Reset`` (epoch seconds) minus now; never negative."""
    now = time.time()
    value = headers.get("Retry-After")
    if value:
        seconds = _number(value)
        if seconds is None:
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
            except (TypeError, ValueError, IndexError, OverflowError):
                seconds = None
        if seconds is not None:
            return max(0.0, seconds)
    reset = _number(headers.get("X-RateLimit-Reset") or "")
    return max(0.0, reset - now) if reset is not None else None


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def required_environment(playbook: Playbook) -> dict[str, str]:
    """What a real e-mail run needs from the environment (see :func:`crisiscomms.channels.missing_credentials`)."""
    return {API_KEY_VARIABLE: "e-mail: the SendGrid API key with Mail Send permission"}


def create(context: ChannelContext) -> SendGridEmail:
    settings = context.playbook.providers.email
    if settings is None:
        raise ProviderRejected("the playbook has no 'providers: email' section")
    exercise = context.playbook.exercise
    sandbox = context.exercise and exercise is not None and exercise.sendgrid_sandbox
    return SendGridEmail(settings, context.http, category=context.notice_id, environ=context.environ,
                         sandbox=sandbox)
