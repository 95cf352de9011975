"""SMS through Twilio's Messages API: the twilio SDK over the shared httpx client.

:class:`TwilioSms` is the ``sms`` :class:`~crisiscomms.channels.base.Channel`:
one message per request. What it shares with the voice channel (the SDK's
HTTP client over httpx, credentials from the environment, the classification
of Twilio's answers) lives in :mod:`crisiscomms.channels.twilio_api`; the
names are re-exported here for the modules and tests that import them from
this one.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import httpx

from ..errors import ExitCode
from ..playbook import MAX_SMS_VALIDITY, Playbook, SmsSettings
from ..render import SmsContent, notice_expiry
from .base import BodyFingerprint, ChannelContext, Message, ProviderRejected
from .twilio_api import (
    CODE_AUTHENTICATE,
    CODE_OPTED_OUT,
    CODE_TOO_MANY_REQUESTS,
    RECONCILE_LIMIT,
    RECONCILE_SKEW,
    ROUTING_VARIABLES,
    SID_VARIABLE,
    TOKEN_VARIABLE,
    TWILIO_API_BASE,
    URL_VARIABLE,
    ResponseCapture,
    TwilioChannel,
    TwilioHttpxClient,
    TwilioLookupFailed,
    body_text,
    capture_response,
    mask_phone,
    parse_retry_after,
    twilio_client,
)

__all__ = [
    "CODE_AUTHENTICATE",
    "CODE_OPTED_OUT",
    "CODE_TOO_MANY_REQUESTS",
    "RECONCILE_LIMIT",
    "RECONCILE_SKEW",
    "ROUTING_VARIABLES",
    "SID_VARIABLE",
    "TOKEN_VARIABLE",
    "TWILIO_API_BASE",
    "URL_VARIABLE",
    "NoticeExpired",
    "ResponseCapture",
    "SmsLookupFailed",
    "TwilioHttpxClient",
    "TwilioSms",
    "capture_response",
    "mask_phone",
    "parse_retry_after",
    "twilio_client",
]

log = logging.getLogger(__name__)

#: Permanent for one recipient (facts.md); every other 4xx is REJECTED as well.
RECIPIENT_PERMANENT_CODES = frozenset({21211, 21408, 21610, 21612, 21614, 21635})


def _real_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class NoticeExpired(ProviderRejected):
    """The notice stopped being true: no SMS of it may be sent (or arrive) any more."""

    exit_code = ExitCode.INPUT

    def __init__(self, notice_id: str, expires_at: dt.datetime) -> None:
        name = f"notice '{notice_id}'" if notice_id else "the notice"
        super().__init__(f"{name} expired at {expires_at.isoformat(timespec='minutes')}: no SMS is sent after a "
                         f"notice stopped being true (change its 'expires' in the playbook to send it)")
        self.expires_at = expires_at


class SmsLookupFailed(TwilioLookupFailed):
    """Twilio could not be asked whether a message exists (:meth:`TwilioSms.find_sent`)."""


class TwilioSms(TwilioChannel):
    """The ``sms`` channel: one Twilio message per :class:`Message`.

    ``settings`` gives the sender (``from`` or ``messaging_service_sid``) and an
    optional status callback; see :class:`~crisiscomms.channels.twilio_api.TwilioChannel`
    for credentials and the environment.
    """

    name: ClassVar[str] = "sms"
    max_batch: ClassVar[int] = 1
    purpose: ClassVar[str] = "send SMS"

    def __init__(
        self,
        settings: SmsSettings,
        http: httpx.AsyncClient,
        *,
        environ: Mapping[str, str] = os.environ,
        expires_at: dt.datetime | None = None,
        notice_id: str = "",
        clock: Callable[[], dt.datetime] = _real_now,
    ) -> None:
        self._expires_at = expires_at
        self._notice_id = notice_id
        self._clock = clock
        self._settings = settings
        self.validity_period()  # an expired notice is refused before anything is set up
        super().__init__(http, environ=environ)

    def create_params(self, message: Message) -> dict[str, str]:
        """The keyword arguments of ``messages.create_async`` for ``message``."""
        params = {"to": message.address, "body": _text_of(message)}
        if self._settings.messaging_service_sid:
            params["messaging_service_sid"] = self._settings.messaging_service_sid
        elif self._settings.from_:
            params["from_"] = self._settings.from_
        if self._settings.status_callback is not None:
            params["status_callback"] = str(self._settings.status_callback)
        params["validity_period"] = str(self.validity_period())
        return params

    def validity_period(self) -> int:
        """Twilio's ``ValidityPeriod`` for an SMS created now: the seconds left until the notice
        expires, at most ``providers.sms.validity`` and Twilio's maximum (10 hours).

        Raises :class:`NoticeExpired` when the notice has already expired."""
        limits = [MAX_SMS_VALIDITY]
        if self._settings.validity_seconds is not None:
            limits.append(self._settings.validity_seconds)
        if self._expires_at is not None:
            left = math.floor((self._expires_at - self._clock()).total_seconds())
            if left < 1:
                raise NoticeExpired(self._notice_id, self._expires_at)
            limits.append(left)
        return min(limits)

    def _create(self, message: Message) -> Any:
        return self._client.messages.create_async(**self.create_params(message))

    async def find_sent(self, message: Message, since: dt.datetime) -> str | None:
        """The sid of a message Twilio has to ``message.address`` with the same body, created
        at or after ``since`` (less :data:`RECONCILE_SKEW`), else None.

        Lists the newest :data:`RECONCILE_LIMIT` messages to the number
        (``GET .../Messages.json?To=...``) and compares ``date_created``
        locally: a ``DateSent`` filter would leave out messages still queued
        (no ``date_sent`` yet) and is exposed to clock skew, and a missed match
        means a duplicate SMS. A naive ``since`` is taken as UTC; a listed
        message without ``date_created`` counts as recent (a false "found"
        costs nothing, a false "not found" costs a duplicate).

        Raises :class:`ProviderRejected` for bad credentials and
        :class:`SmsLookupFailed` when Twilio cannot be asked (429, 5xx, timeout):
        None always means "Twilio answered and has no such message".
        """
        wanted = message.body if isinstance(message.body, BodyFingerprint) else BodyFingerprint.of(_text_of(message))

        def same_body(candidate: Any) -> bool:
            body = getattr(candidate, "body", None)
            return isinstance(body, str) and wanted.matches(body)

        return await self._find_recent(
            lambda: self._client.messages.list_async(to=message.address, limit=RECONCILE_LIMIT), since, same_body,
            what="messages", address=message.address, failure=SmsLookupFailed)


def _text_of(message: Message) -> str:
    return body_text(message, SmsContent, "an SMS")


def required_environment(playbook: Playbook) -> dict[str, str]:
    """What a real SMS run needs from the environment (see :func:`crisiscomms.channels.missing_credentials`)."""
    return {SID_VARIABLE: "SMS: the Twilio account SID", TOKEN_VARIABLE: "SMS: the Twilio auth token"}


def create(context: ChannelContext) -> TwilioSms:
    settings = context.playbook.providers.sms
    if settings is None:
        raise ProviderRejected("the playbook has no 'providers: sms' section")
    notice = context.playbook.notices[context.notice_id]
    planned_at = context.planned_at or context.at or _real_now()
    return TwilioSms(settings, context.http, environ=context.environ, notice_id=context.notice_id,
                     expires_at=notice_expiry(context.playbook, notice, planned_at), clock=_clock_from(context.at))


def _clock_from(at: dt.datetime | None) -> Callable[[], dt.datetime]:
    """Real time, or for a rehearsal the ``--at`` moment moving on as real time passes."""
    if at is None:
        return _real_now
    started = _real_now()
    return lambda: at + (_real_now() - started)
