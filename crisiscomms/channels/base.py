"""The one small interface every delivery channel implements.

A channel turns planned messages into provider requests and reports, for
each message, one :class:`SendResult`. It knows nothing of the ledger, the
plan or the terminal: the dispatcher decides what to retry, what to record
and when to stop. A problem with the whole run (bad credentials, a sender
the provider refuses) is raised as :class:`ProviderRejected` instead.

Adding a channel: one module in this package implementing :class:`Channel`
with a ``create(context: ChannelContext) -> Channel`` function, one line in
:data:`crisiscomms.channels.REGISTRY`, one test module.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..errors import ProviderError

if TYPE_CHECKING:
    import httpx

    from ..playbook import Playbook


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"  # the provider took it (Twilio 201, SendGrid 202)
    REJECTED = "rejected"  # permanent for this recipient: never retry (4xx other than 429)
    RETRY = "retry"  # certainly not sent, safe to retry (429, connection refused)
    UNCERTAIN = "uncertain"  # may have been sent (timeout after sending, reset, 5xx)


@dataclass(frozen=True)
class Message:
    """One planned message, as a channel sees it."""

    key: str  # unique in the campaign: "<recipient id>/<channel>"
    recipient_id: str
    address: str  # E.164 number or e-mail address
    locale: str
    body: Any  # SmsContent, EmailContent, the banner document; a BodyFingerprint when reconciling
    custom_args: Mapping[str, str] = field(default_factory=dict)  # campaign and recipient ids


@dataclass(frozen=True)
class BodyFingerprint:
    """A short hash of a message's text: what the ledger keeps to reconcile an uncertain send by body."""

    digest: str

    @classmethod
    def of(cls, text: str) -> BodyFingerprint:
        return cls(hashlib.sha256(text.encode("utf-8")).hexdigest()[:32])

    def matches(self, text: str) -> bool:
        return BodyFingerprint.of(text) == self


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider_id: str | None = None
    code: str | None = None  # the provider's error code, e.g. "21211"
    reason: str | None = None  # the provider's message, or what went wrong
    retry_after: float | None = None  # seconds, from Retry-After / X-RateLimit-Reset
    suppress: bool = False  # the recipient opted out (Twilio 21610): never message again


@dataclass(frozen=True)
class ChannelContext:
    """What a channel's ``create`` gets: the playbook's settings, the shared HTTP client, the environment.

    ``at`` is the moment a rehearsal (``send --at``) plays; None: real time. Channels that reckon with
    time (the SMS validity until the notice expires) count from it as the run goes on."""

    playbook: Playbook
    notice_id: str
    http: httpx.AsyncClient
    environ: Mapping[str, str]
    at: dt.datetime | None = None
    planned_at: dt.datetime | None = None  # the plan's moment: an expiry written as a duration counts from it
    exercise: bool = False  # an exercise's send: e-mail may go to SendGrid's sandbox (exercise.sendgrid_sandbox)


class ProviderRejected(ProviderError):
    """The provider refused the run as a whole (credentials, sender, account)."""


class Channel(Protocol):
    """A delivery channel. Instances are used from one event loop."""

    name: ClassVar[str]
    max_batch: ClassVar[int]  # messages with the same request content one request may carry

    async def send(self, batch: Sequence[Message]) -> list[SendResult]:
        """Send ``batch`` (the same :func:`~crisiscomms.content.request_key` when ``max_batch > 1``); one
        result per message, same order.

        Raises :class:`ProviderRejected` for run-level refusals (401/403)."""
        ...

    async def find_sent(self, message: Message, since: dt.datetime) -> str | None:
        """The provider id of ``message`` if the provider already has it (reconciling an
        uncertain attempt), else None. Channels that cannot tell return None."""
        ...

    async def aclose(self) -> None:
        ...
