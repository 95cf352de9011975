"""The Twilio parts both Twilio resources (Messages, Calls) share: errors, the gate, list queries and pages."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlencode

from aiohttp import web

from .common import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, JsonDict, StandinConfig, _Admission, _json

if TYPE_CHECKING:
    from .server import Standin


def _twilio_error(status: int, code: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """A Twilio REST error body (``code``, ``message``, ``more_info``, ``status``)."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return _json(status, body, headers)


def _twilio_fault(status: int, reset_at: float | None, cap: float | None) -> web.Response:
    """Twilio's answer to a request refused by the gate (401, 429 or 500)."""
    del reset_at, cap
    if status == 401:
        return _twilio_error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
    if status == 429:
        return _twilio_error(429, 20429, "Too Many Requests", {"Retry-After": "1"})
    return _twilio_error(500, 20500, "Internal Server Error")


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an HTTP Basic ``Authorization`` header."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def _twilio_authorized(request: web.Request, config: StandinConfig) -> bool:
    """Whether the request's HTTP Basic credentials are the configured ones."""
    credentials = _basic_credentials(request.headers.get("Authorization"))
    return credentials == (config.twilio_sid, config.twilio_token)


async def _twilio_gate(standin: Standin, request: web.Request) -> _Admission:
    """Run the shared gate, then check that the path names the caller's account."""
    admission = await standin._admit("twilio", _twilio_authorized(request, standin.config))
    if admission.response is None and request.match_info["sid"] != standin.config.twilio_sid:
        message = f"The requested resource {request.path} was not found"
        return _Admission(_twilio_error(404, 20404, message))
    return admission


def _form_fields(form: Mapping[str, object]) -> dict[str, str]:
    """The text fields of a form body."""
    return {key: value for key, value in form.items() if isinstance(value, str)}


class _Created(Protocol):
    @property
    def created_at(self) -> datetime: ...


_R = TypeVar("_R", bound=_Created)


class _QueryError(ValueError):
    """A list query parameter Twilio would reject."""


def _parse_when(value: str) -> date | datetime:
    """``YYYY-MM-DD`` as a date, or an ISO 8601 timestamp as an aware datetime."""
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise _QueryError(f"Invalid date value {value!r}") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _date_filters(query: Mapping[str, str], name: str = "DateSent") -> list[tuple[str, date | datetime]]:
    """``DateSent``, ``DateSent<``/``<=``, ``DateSent>``/``>=`` as (op, bound) (``name``: ``StartTime`` for calls).

    ``DateSent`` selects a whole day even when given a timestamp; the ``<``
    and ``>`` forms compare with the day, or with the instant if one is given.
    """
    ops = {name: "=", f"{name}<": "<", f"{name}<=": "<", f"{name}>": ">", f"{name}>=": ">"}
    filters: list[tuple[str, date | datetime]] = []
    for key, op in ops.items():
        if query.get(key):
            bound = _parse_when(query[key])
            if op == "=" and isinstance(bound, datetime):
                bound = bound.astimezone(UTC).date()
            filters.append((op, bound))
    return filters


def _compare(moment: datetime, bound: date | datetime) -> int:
    """-1, 0 or 1 as ``moment`` is before, at or after ``bound`` (day or instant)."""
    if isinstance(bound, datetime):
        return (moment > bound) - (moment < bound)
    day = moment.date()
    return (day > bound) - (day < bound)


def _matches(created_at: datetime, filters: Sequence[tuple[str, date | datetime]]) -> bool:
    """Whether a resource created at ``created_at`` is on / before / after every bound (inclusive)."""
    for op, bound in filters:
        order = _compare(created_at, bound)
        if (op == "=" and order != 0) or (op == "<" and order > 0) or (op == ">" and order < 0):
            return False
    return True


def _paging(query: Mapping[str, str]) -> tuple[int, int]:
    """``(page, page_size)`` from ``Page`` and ``PageSize``."""
    try:
        page = int(query.get("Page", "0"))
        size = int(query.get("PageSize", str(DEFAULT_PAGE_SIZE)))
    except ValueError as error:
        raise _QueryError("Page and PageSize must be integers") from error
    if page < 0 or not 1 <= size <= MAX_PAGE_SIZE:
        raise _QueryError(f"PageSize must be within [1, {MAX_PAGE_SIZE}] and Page >= 0")
    return page, size


def _page_body(request: web.Request, key: str, found: Sequence[_R], page: int, size: int,
               render: Callable[[_R], JsonDict]) -> JsonDict:
    """A Twilio list page of ``found`` under ``key`` ("messages", "calls"), with ``*_page_uri`` links;
    only the records on the page are rendered."""
    params = {key: value for key, value in request.query.items() if key not in ("Page", "PageSize")}

    def link(number: int) -> str:
        return f"{request.path}?{urlencode({**params, 'PageSize': size, 'Page': number})}"

    start = page * size
    chunk = found[start : start + size]
    return {
        "end": start + max(len(chunk) - 1, 0),
        "first_page_uri": link(0),
        key: [render(record) for record in chunk],
        "next_page_uri": link(page + 1) if start + size < len(found) else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": link(page - 1) if page > 0 else None,
        "start": start,
        "uri": link(page),
    }


async def _create_resource(standin: Standin, request: web.Request,
                           problem_of: Callable[[Mapping[str, str]], tuple[int, str] | None],
                           record: Callable[[Mapping[str, str], str], Any],
                           render: Callable[[Any], JsonDict]) -> web.Response | None:
    """A create: the gate, Twilio's validation, the record, then 201 (or no answer at all)."""
    fields = _form_fields(await request.post())
    admission = await _twilio_gate(standin, request)
    if admission.response is not None:
        return admission.response
    problem = problem_of(fields)
    if problem is not None:
        return _twilio_error(400, *problem)
    created = record(fields, request.match_info["sid"])
    if admission.unanswered:
        return None
    return _json(201, render(created))


async def _read_resource(standin: Standin, request: web.Request,
                         answer: Callable[[], web.Response]) -> web.Response | None:
    """A fetch or a list: the gate, then ``answer`` (or no answer at all)."""
    admission = await _twilio_gate(standin, request)
    if admission.response is not None:
        return admission.response
    if admission.unanswered:
        return None
    return answer()


def _not_found(request: web.Request) -> web.Response:
    return _twilio_error(404, 20404, f"The requested resource {request.path} was not found")


def _list_answer(request: web.Request, key: str, date_field: str,
                 find: Callable[[str | None, str | None], Sequence[_R]],
                 render: Callable[[_R], JsonDict]) -> web.Response:
    """A list page: ``find(To, From)`` newest first, filtered by the ``date_field`` bounds, in pages."""
    query = request.query
    try:
        filters = _date_filters(query, date_field)
        page, size = _paging(query)
    except _QueryError as error:
        return _twilio_error(400, 20001, str(error))
    found = [record for record in find(query.get("To"), query.get("From"))
             if not filters or _matches(record.created_at, filters)]
    return _json(200, _page_body(request, key, found, page, size, render))
