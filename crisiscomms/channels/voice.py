"""Calls through Twilio Programmable Voice: the notice read aloud, in the reader's language.

:class:`TwilioVoice` is the ``voice`` :class:`~crisiscomms.channels.base.Channel`:
one call per message (``POST .../Calls.json``), the TwiML sent inline in the
``Twiml`` parameter, so no web server is needed. It shares the SDK client,
the credentials and the classification of Twilio's answers with the SMS
channel (:mod:`crisiscomms.channels.twilio_api`).

The call (:func:`crisiscomms.speech.build_twiml`, built with the SDK's ``VoiceResponse``)::

    <Say language="sv-SE" voice="Polly.Astrid">the message</Say>
    <Pause length="1"/>
    <Say …>the message</Say>                       said twice
    <Gather numDigits="1" timeout="6" action="{replay_url}?Twiml=…" method="GET">
      <Say …>Tryck 1 för att höra meddelandet igen.</Say>
    </Gather>
    <Hangup/>

A key press fetches ``providers.voice.replay_url`` (default Twilio's echo
Twimlet, which answers with the TwiML in its ``Twiml`` parameter): the
message once more, then the call ends. Without a key press the call ends
after the prompt. Twilio takes at most :data:`TWIML_LIMIT` characters of
inline TwiML; a longer call is refused here (``validate`` reports it first).

Run-level refusals: bad credentials (401/403/20003) and a caller id Twilio
will not use (21210 not verified, 21212 invalid): every call would fail the
same way. Reconciling an uncertain call lists the calls to the number from
the caller id since the attempt (``GET .../Calls.json?To=…&From=…``): Twilio
keeps no TwiML to compare, so any call from this caller id to this number
since the attempt counts as this one.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from ..playbook import VoiceSettings
from ..render import VoiceContent
from ..speech import TWIML_LIMIT, build_twiml
from .base import ChannelContext, Message, Outcome, ProviderRejected, SendResult
from .twilio_api import RECONCILE_LIMIT, TwilioChannel, TwilioLookupFailed, body_text

log = logging.getLogger(__name__)

#: The caller id is refused: 21210 not a verified caller id, 21212 not a valid one.
CALLER_ID_CODES = frozenset({21210, 21212})


class CallLookupFailed(TwilioLookupFailed):
    """Twilio could not be asked whether a call exists (:meth:`TwilioVoice.find_sent`)."""


class TwilioVoice(TwilioChannel):
    """The ``voice`` channel: one Twilio call per :class:`Message`, from ``providers.voice.from``."""

    name: ClassVar[str] = "voice"
    max_batch: ClassVar[int] = 1
    purpose: ClassVar[str] = "place calls"
    run_level_codes: ClassVar[frozenset[int]] = CALLER_ID_CODES

    def __init__(self, settings: VoiceSettings, http: httpx.AsyncClient, *,
                 environ: Mapping[str, str] = os.environ) -> None:
        super().__init__(http, environ=environ)
        self._settings = settings

    def create_params(self, message: Message) -> dict[str, str]:
        """The keyword arguments of ``calls.create_async`` for ``message``."""
        params = {"to": message.address, "from_": self._settings.from_,
                  "twiml": build_twiml(_text_of(message), message.locale, self._settings)}
        if self._settings.status_callback is not None:
            params["status_callback"] = str(self._settings.status_callback)
        return params

    def _refusal(self, message: Message) -> SendResult | None:
        length = len(build_twiml(_text_of(message), message.locale, self._settings))
        if length <= TWIML_LIMIT:
            return None
        return SendResult(Outcome.REJECTED, code="twiml_too_long",
                          reason=f"the call's TwiML is {length} characters; Twilio takes {TWIML_LIMIT} "
                                 "(shorten voice.txt)")

    def _create(self, message: Message) -> Any:
        return self._client.calls.create_async(**self.create_params(message))

    def _run_rejected(self, status: int | None, code: int | None, reason: str) -> ProviderRejected:
        if code in CALLER_ID_CODES:
            return ProviderRejected(
                f"Twilio refuses the caller id {self._settings.from_} (providers.voice.from), code {code}: {reason}")
        return super()._run_rejected(status, code, reason)

    async def find_sent(self, message: Message, since: dt.datetime) -> str | None:
        """The sid of a call Twilio has from ``providers.voice.from`` to ``message.address``, created at or
        after ``since`` (less the skew tolerated), else None.

        Raises :class:`ProviderRejected` for bad credentials and
        :class:`CallLookupFailed` when Twilio cannot be asked: None always
        means "Twilio answered and has no such call"."""
        return await self._find_recent(
            lambda: self._client.calls.list_async(to=message.address, from_=self._settings.from_,
                                                  limit=RECONCILE_LIMIT),
            since, lambda candidate: True, what="calls", address=message.address, failure=CallLookupFailed)


def _text_of(message: Message) -> str:
    return body_text(message, VoiceContent, "a voice")


def create(context: ChannelContext) -> TwilioVoice:
    settings = context.playbook.providers.voice
    if settings is None:
        raise ProviderRejected("the playbook has no 'providers: voice' section")
    return TwilioVoice(settings, context.http, environ=context.environ)
