"""The building blocks of the playbook model: checked value types (ids, zones, locales, URLs, phone
numbers, hours), text per locale, the strict base model, and errors that point below the model raising them."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from .durations import DURATION_PATTERN, looks_like_duration, parse_duration
from .hours import (
    ExceptionBound,
    is_valid_timezone,
    parse_day_hours,
    parse_day_spec,
    zone_info,
)
from .locales import is_known_locale

FORMAT_VERSION = 1
SEVERITIES = ("info", "warning", "critical")
CHANNELS = ("sms", "email", "banner", "voice", "cap")

Severity = Literal["info", "warning", "critical"]
ChannelName = Literal["sms", "email", "banner", "voice", "cap"]
CapCategory = Literal["Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
                      "CBRNE", "Other"]
RouteKind = Literal["phone", "sms", "chat", "portal", "email", "social", "web"]
LinkKind = Literal["self_help", "public_assistance", "status", "other"]

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise PydanticCustomError(
            "bad_id", "'{value}' is not a usable id; use lower-case letters, digits, '-' and '_'",
            {"value": value})
    return value


def _check_timezone(value: str) -> str:
    if not is_valid_timezone(value):
        raise PydanticCustomError(
            "bad_timezone", "'{value}' is not an IANA time zone; write it like Europe/Stockholm",
            {"value": value})
    return value


def _check_locale(value: str) -> str:
    if not is_known_locale(value):
        raise PydanticCustomError(
            "bad_locale", "'{value}' is not a language code; use codes like en, sv, da, nb, nl, el",
            {"value": value})
    return value.replace("-", "_")


def _check_http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/?#]+\.[^\s/?#]+([/?#]\S*)?$", value):
        raise PydanticCustomError(
            "bad_url", "'{value}' is not a web address; it must start with https:// (or http://)",
            {"value": value})
    return value


def _check_country(value: str) -> str:
    upper = value.upper()
    if upper not in phonenumbers.SUPPORTED_REGIONS:
        raise PydanticCustomError(
            "bad_country", "'{value}' is not a two-letter country code like SE, DK, NO, NL, GR, GB",
            {"value": value})
    return upper


def _check_email(value: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise PydanticCustomError(
            "bad_email", "'{value}' is not an e-mail address: {reason}",
            {"value": value, "reason": str(error)}) from None


def _check_day_spec(value: str) -> str:
    try:
        parse_day_spec(value)
    except ValueError as error:
        raise PydanticCustomError("bad_days", str(error)) from None
    return value


def _check_day_hours(value: str) -> str:
    try:
        parse_day_hours(value)
    except ValueError as error:
        raise PydanticCustomError("bad_hours", str(error)) from None
    return value


def _check_language_tag(value: str) -> str:
    if not re.fullmatch(r"[a-z]{2,3}(-[A-Z][a-z]{3})?-[A-Z]{2}", value):
        raise PydanticCustomError(
            "bad_language_tag", "'{value}' is not a BCP 47 language tag with a region, like en-GB or sv-SE",
            {"value": value})
    return value


Id = Annotated[str, AfterValidator(_check_id)]
TimeZoneName = Annotated[str, AfterValidator(_check_timezone), Field(examples=["Europe/Stockholm"])]
LocaleCode = Annotated[str, AfterValidator(_check_locale), Field(examples=["en", "sv", "el"])]
HttpUrl = Annotated[str, AfterValidator(_check_http_url), Field(examples=["https://example.org/status"])]
CountryCode = Annotated[str, AfterValidator(_check_country), Field(examples=["SE"])]
EmailAddress = Annotated[str, AfterValidator(_check_email)]
DaySpec = Annotated[str, AfterValidator(_check_day_spec)]
DayRanges = Annotated[str, AfterValidator(_check_day_hours), Field(examples=["08:00-20:00", "closed"])]


def _by_python_type(value: Any) -> str:
    return "mapping" if isinstance(value, dict) else "text"


Localized = Annotated[
    Annotated[str, Tag("text")] | Annotated[dict[LocaleCode, str], Tag("mapping")],
    Discriminator(_by_python_type),
    Field(description="Text per locale ({en: ..., sv: ...}), or one text for every locale."),
]

Always = Literal["always", "24/7"]
WeeklyHours = Annotated[
    Annotated[Always, Tag("text")] | Annotated[dict[DaySpec, DayRanges], Tag("mapping")],
    Discriminator(_by_python_type),
    Field(description="'always', or days to hours: {mon-fri: '08:00-20:00', sat: closed}. "
                      "Days not named are closed."),
]


def localized_text(value: str | dict[str, str], locale: str, default_locale: str, chain: Sequence[str] = ()) -> str:
    """The text of ``value`` for ``locale``, else the first of ``chain`` it has, else the default locale's."""
    if isinstance(value, str):
        return value
    for code in (locale, *chain, default_locale):
        if value.get(code):
            return value[code]
    return next(iter(value.values()), "")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def phone_to_e164(value: str, region: str | None) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise PydanticCustomError(
            "bad_phone",
            "'{value}' is not a valid phone number{where}; write it with the country code, e.g. +46 8 123 456 78",
            {"value": value, "where": f" in {region}" if region else ""})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def quiet_window(value: str) -> tuple[int, int] | None:
    """``"21:00-08:00"`` → (1260, 480) minutes; may wrap midnight; ``"none"`` → None."""
    from .hours import parse_clock

    if value.strip().lower() == "none":
        return None
    parts = [p for p in re.split(r"\s*-\s*", value.strip()) if p]
    if len(parts) != 2:
        raise PydanticCustomError("bad_quiet_hours", "write quiet hours as HH:MM-HH:MM, e.g. 21:00-08:00, or 'none'")
    try:
        start, end = parse_clock(parts[0]) % 1440, parse_clock(parts[1]) % 1440
    except ValueError as error:
        raise PydanticCustomError("bad_quiet_hours", str(error)) from None
    if start == end:
        raise PydanticCustomError("bad_quiet_hours", "quiet hours start and end at the same time; use 'none' instead")
    return start, end


def _located(
    kind: str, message: str, subpath: tuple[str | int, ...], context: dict[str, Any] | None = None
) -> PydanticCustomError:
    """An error whose place is ``subpath`` below the model that raised it."""
    return PydanticCustomError(kind, message, {**(context or {}), "subpath": subpath})


# What ExceptionBound reads, for JSON Schema (ECMA-262 has no (?P<name>) groups).
EXCEPTION_BOUND_SCHEMA_PATTERN = r"^(\d{4}-)?\d{2}-\d{2}([T ]\d{1,2}:\d{2}(:00)?(Z|[+-]\d{2}:?\d{2})?)?$"


def _exception_bound(value: Any) -> Any:
    """YAML gives a date or date-time object, or text; keep the text form ``ExceptionBound`` reads."""
    if isinstance(value, dt.datetime):
        text = value.replace(tzinfo=None).isoformat(timespec="minutes")
        offset = value.strftime("%z") if value.tzinfo is not None else ""
        value = f"{text}{offset[:3]}:{offset[3:]}" if offset else text
    elif isinstance(value, dt.date):
        value = value.isoformat()
    if not isinstance(value, str):
        return value  # pydantic says it is not text
    try:
        ExceptionBound.parse(value)
    except ValueError as error:
        raise PydanticCustomError("bad_exception_date", str(error)) from None
    return value.strip()


ExceptionDate = Annotated[
    str, BeforeValidator(_exception_bound),
    WithJsonSchema({"type": "string", "pattern": EXCEPTION_BOUND_SCHEMA_PATTERN,
                    "examples": ["2026-12-24", "2026-10-14T06:00", "12-25"]}),
]


def _duration_text(value: Any) -> Any:
    if isinstance(value, str) and not value.strip().upper().startswith("P"):
        try:
            return parse_duration(value)
        except ValueError as error:
            raise PydanticCustomError("bad_duration", str(error)) from None
    return value


RouteWait = Annotated[
    dt.timedelta, BeforeValidator(_duration_text),
    WithJsonSchema({"type": "string", "minLength": 2, "pattern": DURATION_PATTERN, "examples": ["25m", "PT25M"]}),
]


def _moment_or_duration(value: Any) -> Any:
    """A duration written as text (``36h``, ``PT36H``) becomes a timedelta; dates and times pass on."""
    if isinstance(value, str) and looks_like_duration(value):
        try:
            return parse_duration(value)
        except ValueError as error:
            raise PydanticCustomError("bad_duration", str(error)) from None
    return value


NoticeMoment = Annotated[
    dt.datetime | dt.date | dt.timedelta, BeforeValidator(_moment_or_duration),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"},
                              {"type": "string", "minLength": 2, "pattern": DURATION_PATTERN}],
                    "examples": ["2026-12-06T20:00:00+01:00", "36h", "PT36H"]}),
]


def notice_moment(value: dt.datetime | dt.date | dt.timedelta | None, planned_at: dt.datetime,
                  timezone: str) -> dt.datetime | None:
    """The moment ``value`` means for a plan made at ``planned_at``: a duration counts from then,
    a day means its end, a time without an offset is the organisation's local time."""
    zone = zone_info(timezone)
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        return planned_at + value
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    return dt.datetime.combine(value + dt.timedelta(days=1), dt.time(0), zone)
