"""What the Twilio channels (``sms``, ``voice``) share: the SDK over the shared httpx client, the
account from the environment, and the classification of Twilio's answers.

Pieces:

* :class:`TwilioHttpxClient` lets the twilio SDK (``create_async``,
  ``list_async``) talk through the dispatcher's shared ``httpx.AsyncClient``
  (aiohttp underneath, mockable with respx) instead of its own session.
* :class:`TwilioChannel` is the base of a channel that creates one Twilio
  resource (a Message, a Call) per message: credentials from the environment,
  one request per message, every answer classified into a
  :class:`~crisiscomms.channels.base.SendResult`, and the lookup used to
  reconcile an uncertain attempt.

Classification of a create (see ``/work/shared/facts.md``): 2xx ACCEPTED;
429 RETRY (with ``Retry-After``); 401/403/code 20003 (and a channel's own
run-level codes, e.g. a caller id Twilio refuses) raise
:class:`~crisiscomms.channels.base.ProviderRejected`; other 4xx REJECTED
(21610 also ``suppress``); 5xx and anything else UNCERTAIN (Twilio may have
created the resource, there is no idempotency key). Transport failures: the
request never left (connect error/timeout, pool timeout, proxy) RETRY; it may
have arrived (read timeout, reset, disconnect without answer) UNCERTAIN.

Credentials come only from ``TWILIO_ACCOUNT_SID`` / ``TWILIO_AUTH_TOKEN``; the
token is never stored on this module's objects nor written in any message,
repr or log line. Log lines mask phone numbers (:func:`mask_phone`).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import math
import os
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client as TwilioClient

from ..errors import ProviderError
from .base import Message, Outcome, ProviderRejected, SendResult
from .http import DEFAULT_TIMEOUT, direct_request, normalise_transport_error, transport_outcome

log = logging.getLogger("crisiscomms.channels.twilio")

TWILIO_API_BASE = "https://api.twilio.com"
SID_VARIABLE = "TWILIO_ACCOUNT_SID"
TOKEN_VARIABLE = "TWILIO_AUTH_TOKEN"
URL_VARIABLE = "CRISISCOMMS_TWILIO_URL"
ROUTING_VARIABLES = ("TWILIO_REGION", "TWILIO_EDGE")

CODE_TOO_MANY_REQUESTS = 20429
CODE_AUTHENTICATE = 20003
CODE_OPTED_OUT = 21610

#: How many recent resources to one number a reconciliation reads.
RECONCILE_LIMIT = 50
#: Clock skew tolerated between our ``since`` and Twilio's ``date_created``
#: (which has one-second resolution).
RECONCILE_SKEW = dt.timedelta(minutes=2)

# --------------------------------------------------------------------------
# Small public helpers
# --------------------------------------------------------------------------

_DIGIT = re.compile(r"\d")


def mask_phone(number: str) -> str:
    """A phone number fit for a log line: ``+46701234567`` → ``+46******567``.

    Keeps a leading ``+`` with the first two digits (roughly the country) when
    there are at least 8 digits, and the last 3 digits; every other digit
    becomes ``*``. Separators and prefixes (``whatsapp:``) are kept.
    """
    digits = _DIGIT.findall(number)
    keep_head = 2 if number.lstrip().startswith(("+", "whatsapp:+")) and len(digits) >= 8 else 0
    keep_tail = min(3, max(len(digits) - 3, 0))
    hidden = range(keep_head, len(digits) - keep_tail)
    position = -1

    def replace(match: re.Match[str]) -> str:
        nonlocal position
        position += 1
        return "*" if position in hidden else match.group(0)

    return _DIGIT.sub(replace, number)


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date), else None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - (now or dt.datetime.now(dt.UTC))).total_seconds(), 0.0)


# --------------------------------------------------------------------------
# The SDK's HTTP client over httpx
# --------------------------------------------------------------------------


@dataclass
class ResponseCapture:
    """The last Twilio response seen by requests made inside :func:`capture_response`."""

    response: TwilioResponse | None = None

    def header(self, name: str) -> str | None:
        headers = self.response.headers if self.response is not None else None
        if not headers:
            return None
        value = headers.get(name)
        return None if value is None else str(value)


_capture: contextvars.ContextVar[ResponseCapture | None] = contextvars.ContextVar(
    "crisiscomms_twilio_response_capture", default=None
)


@contextlib.contextmanager
def capture_response() -> Iterator[ResponseCapture]:
    """Collect the response of the SDK calls made in this block (e.g. to read ``Retry-After``).

    The SDK's exceptions carry status, code and message but no headers. The
    capture is a fresh object per block, held in a context variable: every
    asyncio task has its own context, so concurrent sends on one client never
    see each other's responses, and tasks the SDK might spawn inherit the same
    object. :attr:`TwilioHttpxClient.last_response` is shared and racy.
    """
    capture = ResponseCapture()
    token = _capture.set(capture)
    try:
        yield capture
    finally:
        _capture.reset(token)


class TwilioHttpxClient(AsyncHttpClient):  # type: ignore[misc]  # twilio ships no type information
    """The twilio SDK's async HTTP client, over a shared ``httpx.AsyncClient``.

    ``http`` is borrowed, not owned: closing it is its creator's business.

    * ``timeout``: the SDK passes ``timeout=None``; that means this client's
      ``timeout`` if given, else the shared client's default - never "no
      timeout" (a client whose default disables the connect or read timeout gets
      :data:`crisiscomms.channels.http.DEFAULT_TIMEOUT`).
    * ``base_url``: requests for ``https://api.twilio.com/...`` (or any other
      host the SDK builds) go to this scheme, host and port (and path prefix)
      instead, e.g. ``http://127.0.0.1:8080`` for the local stand-in. The SDK
      applies ``TWILIO_REGION`` / ``TWILIO_EDGE`` by rewriting the host; when a
      base URL is set it replaces that host too, so the override always wins
      (:class:`TwilioChannel` also leaves region and edge out of the SDK's
      environment then).
    * Transport failures propagate as httpx exceptions, normalised by
      :func:`crisiscomms.channels.http.normalise_transport_error` (the shared
      client's transport already does it; this covers other clients).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str | None = None,
        timeout: float | None = None,
        logger: logging.Logger = log,
    ) -> None:
        super().__init__(logger, True, timeout)
        self._http = http
        self._base = _parse_base_url(base_url) if base_url else None
        self.last_response: TwilioResponse | None = None

    @property
    def base_url(self) -> str | None:
        return urlunsplit(self._base) if self._base is not None else None

    def url_for(self, uri: str) -> str:
        """Where a request the SDK addressed to ``uri`` really goes."""
        if self._base is None:
            return uri
        parts = urlsplit(uri)
        prefix = self._base.path.rstrip("/")
        return urlunsplit((self._base.scheme, self._base.netloc, prefix + parts.path, parts.query, ""))

    def timeout_for(self, timeout: float | None) -> httpx.Timeout:
        """The httpx timeout of one request (``None`` from the SDK: the client's default)."""
        if timeout is None:
            timeout = self.timeout
        if timeout is not None:
            if timeout <= 0:
                raise ValueError(timeout)
            return httpx.Timeout(timeout)
        default = self._http.timeout
        if default.connect is None or default.read is None:
            return DEFAULT_TIMEOUT
        return default

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        url, request_timeout = self.url_for(uri), self.timeout_for(timeout)
        direct = None if allow_redirects else await direct_request(
            self._http, method.upper(), url, params=params, data=data,  # type: ignore[arg-type]
            headers=headers, auth=auth, timeout=request_timeout)
        if direct is not None:  # the shared aiohttp session itself: the SDK's request without httpx's models
            return self._answered(TwilioResponse(direct.status_code, direct.text, direct.headers))
        try:
            response = await self._http.request(
                method.upper(),
                url,
                params=params or None,  # type: ignore[arg-type]  # the SDK's flat scalar maps
                data=data or None,
                headers=headers,
                auth=auth,
                timeout=request_timeout,
                follow_redirects=allow_redirects,
            )
        except httpx.TransportError as error:
            raise normalise_transport_error(error) from error.__cause__ or error  # see channels.http
        return self._answered(TwilioResponse(response.status_code, response.text, response.headers))

    def _answered(self, result: TwilioResponse) -> TwilioResponse:
        self.last_response = self._test_only_last_response = result
        capture = _capture.get()
        if capture is not None:
            capture.response = result
        return result

    def __repr__(self) -> str:
        return f"TwilioHttpxClient(base_url={self.base_url!r})"


def _parse_base_url(value: str) -> SplitResult:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"not an http(s) base URL: {value!r}")
    return parts


# --------------------------------------------------------------------------
# The base of a Twilio channel
# --------------------------------------------------------------------------


class TwilioLookupFailed(ProviderError):
    """Twilio could not be asked whether a resource exists (``find_sent``).

    Raised rather than answering None, which would mean "Twilio does not have
    it" and invite a resend that may be a duplicate. The attempt stays
    uncertain; reconcile again later (or on the next run).
    """


def twilio_client(
    http: httpx.AsyncClient, environ: Mapping[str, str] = os.environ, *, purpose: str = "to send SMS"
) -> tuple[TwilioClient, TwilioHttpxClient, str]:
    """The twilio SDK client over ``http``: (client, its HTTP client, the account sid).

    Credentials come only from ``TWILIO_ACCOUNT_SID`` / ``TWILIO_AUTH_TOKEN`` in
    ``environ``; ``CRISISCOMMS_TWILIO_URL`` redirects every request (then
    ``TWILIO_REGION`` / ``TWILIO_EDGE`` are ignored). Raises
    :class:`ProviderRejected` naming what is missing.
    """
    sid = (environ.get(SID_VARIABLE) or "").strip()
    token = (environ.get(TOKEN_VARIABLE) or "").strip()
    missing = [name for name, value in ((SID_VARIABLE, sid), (TOKEN_VARIABLE, token)) if not value]
    if missing:
        raise ProviderRejected(
            f"{' and '.join(missing)} must be set in the environment {purpose} "
            f"(the Twilio account SID and auth token)"
        )
    base_url = (environ.get(URL_VARIABLE) or "").strip() or None
    try:
        http_client = TwilioHttpxClient(http, base_url=base_url)
    except ValueError:
        raise ProviderRejected(
            f"{URL_VARIABLE} must be an http(s) base URL such as http://127.0.0.1:8080"
        ) from None
    # Only what the SDK may read; never empty (the SDK would fall back to os.environ).
    wanted = (SID_VARIABLE, TOKEN_VARIABLE) + (() if base_url else ROUTING_VARIABLES)
    sdk_environment = {name: environ[name] for name in wanted if environ.get(name)}
    return TwilioClient(sid, token, http_client=http_client, environment=sdk_environment), http_client, sid


class TwilioChannel:
    """One Twilio resource per :class:`Message`; subclasses say which (``_create``) and how to look it up.

    Credentials come only from ``TWILIO_ACCOUNT_SID`` and ``TWILIO_AUTH_TOKEN``
    in ``environ`` (never from the real environment when another mapping is
    given). ``CRISISCOMMS_TWILIO_URL`` in ``environ`` redirects every request
    (e.g. to the local stand-in) and then ``TWILIO_REGION`` / ``TWILIO_EDGE``
    are ignored. ``http`` is the dispatcher's shared client; the channel never
    closes it.
    """

    name: ClassVar[str]
    max_batch: ClassVar[int] = 1
    #: What the channel sends, for messages: "send SMS", "place calls".
    purpose: ClassVar[str]
    #: Twilio codes that refuse the whole run for this channel (besides 20003).
    run_level_codes: ClassVar[frozenset[int]] = frozenset()

    def __init__(self, http: httpx.AsyncClient, *, environ: Mapping[str, str] = os.environ) -> None:
        self._client, self._http_client, self._account = twilio_client(http, environ, purpose=f"to {self.purpose}")
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={mask_sid(self._account)!r}, base_url={self._http_client.base_url!r})"

    @property
    def http_client(self) -> TwilioHttpxClient:
        return self._http_client

    # -- sending -------------------------------------------------------------

    async def send(self, batch: Sequence[Message]) -> list[SendResult]:
        """One result per message; raises :class:`ProviderRejected` on 401/403/20003."""
        return [await self._send_one(message) for message in batch]

    def _create(self, message: Message) -> Awaitable[Any]:
        raise NotImplementedError

    def _refusal(self, message: Message) -> SendResult | None:
        """A result for a message that must not reach Twilio at all, else None."""
        return None

    async def _send_one(self, message: Message) -> SendResult:
        refused = self._refusal(message)
        if refused is not None:
            return refused
        with capture_response() as capture:
            try:
                created = await self._create(message)
            except TwilioException as error:
                result = self._error_result(error, capture)
            except httpx.HTTPError as error:
                result = transport_result(error)
            except Exception:
                answered = capture.response
                if answered is None or not 200 <= answered.status_code < 300:
                    raise
                # Twilio said yes but the body could not be read: it has the resource.
                result = SendResult(Outcome.UNCERTAIN, reason=f"unreadable {answered.status_code} answer from Twilio")
            else:
                sid = getattr(created, "sid", None)
                result = (SendResult(Outcome.ACCEPTED, provider_id=str(sid)) if sid
                          else SendResult(Outcome.UNCERTAIN, reason="Twilio answered without a sid"))
        if log.isEnabledFor(logging.DEBUG):  # masking costs more than the rest of this line: only when logged
            log.debug("%s to %s: %s%s", self.name, mask_phone(message.address), result.outcome.value,
                      f" (code {result.code})" if result.code else "")
        return result

    def _error_result(self, error: TwilioException, capture: ResponseCapture) -> SendResult:
        status, code, reason = error_details(error, capture)
        if self._run_level(status, code):
            raise self._run_rejected(status, code, reason) from None
        code_text = str(code) if code is not None else None
        retry_after = parse_retry_after(capture.header("Retry-After"))
        if status == 429 or code == CODE_TOO_MANY_REQUESTS:
            return SendResult(Outcome.RETRY, code=code_text, reason=reason, retry_after=retry_after)
        if status is not None and 400 <= status < 500:
            return SendResult(Outcome.REJECTED, code=code_text, reason=reason, suppress=code == CODE_OPTED_OUT)
        # 5xx, or no usable status at all: Twilio may have created the resource.
        return SendResult(Outcome.UNCERTAIN, code=code_text, reason=reason, retry_after=retry_after)

    def _run_level(self, status: int | None, code: int | None) -> bool:
        return status in (401, 403) or code == CODE_AUTHENTICATE or code in self.run_level_codes

    def _run_rejected(self, status: int | None, code: int | None, reason: str) -> ProviderRejected:
        """The run-level refusal; a channel with its own run-level codes explains them."""
        return self._credentials_rejected(status, code)

    def _credentials_rejected(self, status: int | None, code: int | None) -> ProviderRejected:
        parts = (f"HTTP {status}" if status else "", f"code {code}" if code else "")
        answer = ", ".join(part for part in parts if part) or "no details"
        return ProviderRejected(
            f"Twilio refused the credentials ({answer}) for account {mask_sid(self._account)}: "
            f"check {SID_VARIABLE} and {TOKEN_VARIABLE}"
        )

    # -- reconciling ---------------------------------------------------------

    async def _find_recent(self, listing: Callable[[], Awaitable[list[Any]]], since: dt.datetime,
                           same: Callable[[Any], bool], *, what: str, address: str,
                           failure: type[TwilioLookupFailed]) -> str | None:
        """The sid of the first listed resource created since ``since`` (:func:`created_since`) for
        which ``same`` holds, else None; raises as :meth:`_list_recent` does."""
        where = mask_phone(address)
        for candidate in await self._list_recent(listing, what, where, failure):
            if same(candidate) and created_since(candidate, since) and getattr(candidate, "sid", None):
                log.debug("%s to %s: found %s", self.name, where, candidate.sid)
                return str(candidate.sid)
        return None

    async def _list_recent(self, listing: Callable[[], Awaitable[list[Any]]], what: str, where: str,
                           failure: type[TwilioLookupFailed]) -> list[Any]:
        """The answer of one list call; raises :class:`ProviderRejected` for bad credentials and
        ``failure`` when Twilio cannot be asked (429, 5xx, timeout)."""
        with capture_response() as capture:
            try:
                return await listing()
            except TwilioException as error:
                status, code, _ = error_details(error, capture)
                if status in (401, 403) or code == CODE_AUTHENTICATE:
                    raise self._credentials_rejected(status, code) from None
                raise failure(f"could not list Twilio {what} to {where}: HTTP {status}, code {code}") from None
            except httpx.HTTPError as error:
                raise failure(
                    f"could not list Twilio {what} to {where}: {transport_result(error).reason}") from error

    async def aclose(self) -> None:
        """Nothing to release: the httpx client belongs to the dispatcher. Idempotent."""
        self._closed = True


def body_text(message: Message, content: type[Any], what: str) -> str:
    """The text of a message whose body is a ``content`` (``SmsContent``, ``VoiceContent``) or a plain string."""
    body = message.body
    if isinstance(body, content):
        return str(body.text)
    if isinstance(body, str):
        return body
    raise TypeError(f"{what} body must be {content.__name__}, not {type(body).__name__}")


def created_since(candidate: object, since: dt.datetime) -> bool:
    """Whether a listed resource was created at or after ``since`` (less :data:`RECONCILE_SKEW`).

    A naive ``since`` is UTC; a resource without ``date_created`` counts as
    recent (a false "found" costs nothing, a false "not found" a duplicate)."""
    earliest = as_utc(since).replace(microsecond=0) - RECONCILE_SKEW
    created = getattr(candidate, "date_created", None)
    return not isinstance(created, dt.datetime) or as_utc(created) >= earliest


# --------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------

_SDK_PREFIX = re.compile(r"^Unable to [a-z ]+ record: ")


def error_details(error: TwilioException, capture: ResponseCapture) -> tuple[int | None, int | None, str]:
    """(HTTP status, Twilio error code, the provider's message) of an SDK exception."""
    answered = capture.response.status_code if capture.response is not None else None
    if isinstance(error, TwilioRestException):
        status = as_int(error.status) or answered
        return status, as_int(error.code), _SDK_PREFIX.sub("", str(error.msg or "")) or f"HTTP {status}"
    if isinstance(error, TwilioServiceException):
        status = as_int(error.status) or answered
        reason = " - ".join(str(part) for part in (error.title, error.detail) if part)
        return status, as_int(error.code), reason or f"HTTP {status}"
    return answered, None, f"Twilio client error: {type(error).__name__}"


def transport_result(error: httpx.HTTPError) -> SendResult:
    kind = type(error).__name__
    if isinstance(error, httpx.TransportError) and transport_outcome(error) is Outcome.RETRY:
        return SendResult(Outcome.RETRY, reason=f"could not reach Twilio ({kind}); nothing was sent")
    if isinstance(error, httpx.TimeoutException):
        return SendResult(Outcome.UNCERTAIN, reason=f"no answer from Twilio (timeout after sending, {kind})")
    return SendResult(Outcome.UNCERTAIN, reason=f"no answer from Twilio (connection lost after sending, {kind})")



def as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def as_utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def mask_sid(sid: str) -> str:
    return f"{sid[:2]}…{sid[-4:]}" if len(sid) > 8 else "…"

