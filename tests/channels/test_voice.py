"""The voice channel: TwiML per locale, Twilio's answers classified like SMS, reconciliation by listing Calls."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from email.utils import format_datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import httpx
import pytest
import respx

from crisiscomms.channels import create_channel
from crisiscomms.channels.base import ChannelContext, Message, Outcome, ProviderRejected, SendResult
from crisiscomms.channels.http import make_http_client
from crisiscomms.channels.voice import CallLookupFailed, TwilioVoice
from crisiscomms.loader import load_playbook
from crisiscomms.playbook import VoiceSettings
from crisiscomms.render import VoiceContent
from crisiscomms.speech import build_twiml
from crisiscomms.testing.standin import DEFAULT_TWILIO_SID, DEFAULT_TWILIO_TOKEN, StandinConfig, run_standin

from ..conftest import ROOT

SID, TOKEN = DEFAULT_TWILIO_SID, DEFAULT_TWILIO_TOKEN
ENV = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}
CALLS_URL = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Calls.json"
CALLER = "+46846500410"
TO = "+46812345678"
TEXT = "Det här är Nordvind Energi med ett viktigt meddelande."

T = TypeVar("T")


def run(factory: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(factory(), timeout)

    return asyncio.run(bounded())


def settings(**values: Any) -> VoiceSettings:
    return VoiceSettings.model_validate({"from": CALLER, **values})


def message(to: str = TO, text: str = TEXT, locale: str = "sv") -> Message:
    return Message(key=f"{to}/voice", recipient_id="r1", address=to, locale=locale, body=VoiceContent(text))


def call_resource(sid: str = "CA" + "ab" * 16, to: str = TO, created: dt.datetime | None = None) -> dict[str, Any]:
    stamp = format_datetime(created or dt.datetime.now(dt.UTC))
    return {"account_sid": SID, "api_version": "2010-04-01", "date_created": stamp, "date_updated": stamp,
            "direction": "outbound-api", "from": CALLER, "sid": sid, "status": "queued", "to": to,
            "uri": f"/2010-04-01/Accounts/{SID}/Calls/{sid}.json"}


def twilio_error(status: int, code: int, text: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": text, "status": status,
                                        "more_info": f"https://www.twilio.com/docs/errors/{code}"}, headers=headers)


async def send_one(answer: httpx.Response | type[Exception], *, voice: VoiceSettings | None = None,
                   msg: Message | None = None) -> tuple[SendResult, httpx.Request | None]:
    async with make_http_client() as http:
        with respx.mock(using="httpx", assert_all_called=False) as router:
            route = router.post(CALLS_URL)
            if isinstance(answer, httpx.Response):
                route.mock(return_value=answer)
            else:
                route.mock(side_effect=answer)
            channel = TwilioVoice(voice or settings(), http, environ=ENV)
            [result] = await channel.send([msg or message()])
            return result, route.calls.last.request if route.call_count else None


def form(request: httpx.Request) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(request.content.decode()).items()}


# --------------------------------------------------------------------------
# The TwiML
# --------------------------------------------------------------------------

STORM_VOICE = load_playbook(ROOT / "playbooks" / "nordvind-storm.yaml").require().providers.voice
LOCALES = {
    "en": ("en-GB", "Polly.Amy", "To hear the message again, press 1."),
    "sv": ("sv-SE", "Polly.Astrid", "Tryck 1 för att höra meddelandet igen."),
    "da": ("da-DK", "Polly.Naja", "Tryk 1 for at høre beskeden igen."),
    "nb": ("nb-NO", "Polly.Liv", "Trykk 1 for å høre meldingen igjen."),
    "nl": ("nl-NL", "Polly.Lotte", "Druk op 1 om het bericht opnieuw te horen."),
    "el": ("el-GR", "Google.el-GR-Standard-A", "Πατήστε 1 για να ακούσετε ξανά το μήνυμα."),
}


@pytest.mark.parametrize("locale", list(LOCALES))
def test_twiml_per_locale_says_it_twice_and_offers_a_replay(locale: str) -> None:
    assert STORM_VOICE is not None
    language, voice, prompt = LOCALES[locale]
    text = f"Message in {locale} & <more>"
    root = ElementTree.fromstring(build_twiml(text, locale, STORM_VOICE))
    assert [child.tag for child in root] == ["Say", "Pause", "Say", "Gather", "Hangup"]
    first, pause, second, gather, _ = list(root)
    for say in (first, second, gather[0]):
        assert say.attrib == {"language": language, "voice": voice}
    assert first.text == second.text == text
    assert pause.attrib == {"length": "1"}
    assert {k: gather.attrib[k] for k in ("numDigits", "timeout", "method")} == {
        "numDigits": "1", "timeout": "6", "method": "GET"}
    assert gather[0].text == prompt
    action = urlsplit(gather.attrib["action"])
    assert (action.scheme, action.netloc, action.path) == ("https", "twimlets.com", "/echo")
    replay = ElementTree.fromstring(parse_qs(action.query)["Twiml"][0])
    assert [(c.tag, c.text) for c in replay] == [("Say", text), ("Hangup", None)]
    assert replay[0].attrib == {"language": language, "voice": voice}


def test_language_and_voice_follow_the_settings() -> None:
    voice = settings(languages={"en": "en-US"}, voices={"en": "woman"}, replay_url="https://hooks.example.org/again")
    root = ElementTree.fromstring(build_twiml("Hi", "en", voice))
    assert root[0].attrib == {"language": "en-US", "voice": "woman"}
    assert root[3].attrib["action"].startswith("https://hooks.example.org/again?Twiml=")
    plain = ElementTree.fromstring(build_twiml("Hi", "fi", settings()))
    assert plain[0].attrib == {"language": "fi-FI", "voice": "Polly.Suvi-Neural"}


# --------------------------------------------------------------------------
# Twilio's answers (respx)
# --------------------------------------------------------------------------


def test_201_is_accepted_with_inline_twiml_caller_id_and_callback() -> None:
    sid = "CA" + "12" * 16
    voice = settings(status_callback="https://hooks.example.org/twilio/calls")
    result, request = run(lambda: send_one(httpx.Response(201, json=call_resource(sid)), voice=voice))
    assert result == SendResult(Outcome.ACCEPTED, provider_id=sid)
    assert request is not None
    sent = form(request)
    assert sent == {"To": TO, "From": CALLER, "Twiml": build_twiml(TEXT, "sv", voice),
                    "StatusCallback": "https://hooks.example.org/twilio/calls"}
    assert sent["Twiml"].startswith('<Response><Say language="sv-SE" voice="Polly.Astrid">')
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()


def test_429_is_retry_with_retry_after() -> None:
    result, _ = run(lambda: send_one(twilio_error(429, 20429, "Too Many Requests", {"Retry-After": "3"})))
    assert (result.outcome, result.code, result.retry_after) == (Outcome.RETRY, "20429", 3.0)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_uncertain(status: int) -> None:
    result, _ = run(lambda: send_one(twilio_error(status, 20500, "Internal Server Error")))
    assert result.outcome is Outcome.UNCERTAIN


@pytest.mark.parametrize(("code", "text"), [(21211, "Invalid 'To' Phone Number"), (21215, "Geo permission"),
                                            (21216, "Account not allowed to call")])
def test_per_recipient_4xx_is_rejected(code: int, text: str) -> None:
    result, _ = run(lambda: send_one(twilio_error(400, code, text)))
    assert result == SendResult(Outcome.REJECTED, code=str(code), reason=text)


@pytest.mark.parametrize("code", [21210, 21212])
def test_a_refused_caller_id_stops_the_run(code: int) -> None:
    with pytest.raises(ProviderRejected) as caught:
        run(lambda: send_one(twilio_error(400, code, "The source phone number provided is not yet verified")))
    assert str(caught.value) == (f"Twilio refuses the caller id {CALLER} (providers.voice.from), code {code}: "
                                 "The source phone number provided is not yet verified")


def test_bad_credentials_stop_the_run_without_the_token() -> None:
    with pytest.raises(ProviderRejected) as caught:
        run(lambda: send_one(twilio_error(401, 20003, "Authenticate")))
    assert "TWILIO_AUTH_TOKEN" in str(caught.value) and TOKEN not in str(caught.value)


@pytest.mark.parametrize(("error", "outcome"), [(httpx.ConnectError, Outcome.RETRY),
                                                (httpx.ReadTimeout, Outcome.UNCERTAIN),
                                                (httpx.RemoteProtocolError, Outcome.UNCERTAIN)])
def test_transport_errors(error: type[Exception], outcome: Outcome) -> None:
    result, _ = run(lambda: send_one(error))
    assert result.outcome is outcome


def test_twiml_over_twilios_limit_is_rejected_before_any_request() -> None:
    long_text = "ord " * 1200
    result, request = run(lambda: send_one(httpx.Response(201, json=call_resource()), msg=message(text=long_text)))
    assert request is None
    assert (result.outcome, result.code) == (Outcome.REJECTED, "twiml_too_long")
    assert result.reason is not None and result.reason.endswith("characters; Twilio takes 4000 (shorten voice.txt)")


def test_missing_credentials_and_section() -> None:
    async def scenario() -> None:
        async with make_http_client() as http:
            with pytest.raises(ProviderRejected, match="TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set in "
                                                       "the environment to place calls"):
                TwilioVoice(settings(), http, environ={})
            playbook = load_playbook(ROOT / "playbooks" / "lindholmen-clinic.yaml").require()
            with pytest.raises(ProviderRejected, match="the playbook has no 'providers: voice' section"):
                create_channel("voice", ChannelContext(playbook, "clinic-closure", http, ENV))

    run(scenario)


# --------------------------------------------------------------------------
# Reconciling an uncertain call
# --------------------------------------------------------------------------


async def find(answer: httpx.Response, since: dt.datetime) -> tuple[str | None, httpx.Request]:
    async with make_http_client() as http:
        with respx.mock(using="httpx") as router:
            route = router.get(CALLS_URL).mock(return_value=answer)
            channel = TwilioVoice(settings(), http, environ=ENV)
            found = await channel.find_sent(message(), since)
            return found, route.calls.last.request


def calls_page(calls: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(200, json={"calls": calls, "page": 0, "page_size": 50, "start": 0, "end": len(calls),
                                     "first_page_uri": "/x", "next_page_uri": None, "previous_page_uri": None,
                                     "uri": "/x"})


def test_find_sent_lists_calls_to_the_number_from_the_caller_id() -> None:
    since = dt.datetime.now(dt.UTC)
    sid = "CA" + "cd" * 16
    found, request = run(lambda: find(calls_page([call_resource(sid, created=since)]), since))
    assert found == sid
    assert (request.url.params["To"], request.url.params["From"], request.url.params["PageSize"]) == (
        TO, CALLER, "50")


def test_find_sent_ignores_an_old_call_and_an_empty_list() -> None:
    since = dt.datetime.now(dt.UTC)
    assert run(lambda: find(calls_page([call_resource(created=since - dt.timedelta(hours=1))]), since))[0] is None
    assert run(lambda: find(calls_page([]), since))[0] is None


def test_find_sent_cannot_tell_raises() -> None:
    with pytest.raises(CallLookupFailed, match=r"could not list Twilio calls to \+46\*+678: HTTP 503"):
        run(lambda: find(twilio_error(503, 20503, "Service Unavailable"), dt.datetime.now(dt.UTC)))


# --------------------------------------------------------------------------
# Against the stand-in
# --------------------------------------------------------------------------


def test_end_to_end_against_the_standin() -> None:
    numbers = [f"+46812{index:05d}" for index in range(40)]

    async def scenario() -> None:
        async with run_standin(StandinConfig(latency=0.01)) as standin, make_http_client() as http:
            channel = TwilioVoice(settings(), http, environ={**ENV, "CRISISCOMMS_TWILIO_URL": standin.twilio_url})
            results = await asyncio.gather(*(channel.send([message(to)]) for to in numbers))
            assert {r.outcome for [r] in results} == {Outcome.ACCEPTED}
            calls = standin.calls
            assert sorted(c.to for c in calls) == numbers
            assert {c.from_ for c in calls} == {CALLER}
            assert calls[0].twiml == build_twiml(TEXT, "sv", settings())
            assert {r.provider_id for [r] in results} == {c.sid for c in calls}
            # Accepted but unanswered: uncertain, and reconciliation finds the call Twilio has.
            since = dt.datetime.now(dt.UTC)
            standin.configure(unanswered_rate=1.0)
            [lost] = await channel.send([message("+46899999999")])
            standin.configure(unanswered_rate=0.0)
            assert lost.outcome is Outcome.UNCERTAIN
            [record] = standin.calls_to("+46899999999")
            assert await channel.find_sent(message("+46899999999"), since) == record.sid
            assert await channel.find_sent(message("+46888888888"), since) is None
            # The same faults as Messages.
            standin.configure(fail_429_rate=1.0)
            [limited] = await channel.send([message("+46877777777")])
            assert limited.outcome is Outcome.RETRY
            standin.configure(fail_429_rate=0.0, fail_500_rate=1.0)
            [failed] = await channel.send([message("+46877777777")])
            assert failed.outcome is Outcome.UNCERTAIN
            standin.configure(fail_500_rate=0.0, rate_cap=1.0)
            first, second = await asyncio.gather(channel.send([message("+46866666666")]),
                                                 channel.send([message("+46866666667")]))
            assert sorted([first[0].outcome, second[0].outcome]) == [Outcome.ACCEPTED, Outcome.RETRY]
            assert standin.calls_to("+46877777777") == []
            assert standin.call_count_by_to()["+46899999999"] == 1

    run(scenario)
