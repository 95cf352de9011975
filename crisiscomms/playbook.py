"""The playbook model: what a comms team writes in YAML, as pydantic v2 types.

The YAML file is this model's serialisation; ``crisiscomms schema`` prints
the JSON Schema generated from it. Validation of single values happens here
(types, times, zones, URLs, phone numbers); cross-references and the crisis
checks that need the whole playbook live in :mod:`crisiscomms.checks`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from functools import cached_property
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
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .durations import DURATION_PATTERN, looks_like_duration, parse_duration
from .hours import (
    DatedHours,
    DayGivenTwice,
    ExceptionBound,
    OpeningHours,
    WeeklySchedule,
    dated_hours_between,
    is_valid_timezone,
    parse_day_hours,
    parse_day_spec,
    zone_info,
)
from .locales import fallback_chain, is_known_locale

FORMAT_VERSION = 1
SEVERITIES = ("info", "warning", "critical")
CHANNELS = ("sms", "email", "banner")

Severity = Literal["info", "warning", "critical"]
ChannelName = Literal["sms", "email", "banner"]
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


class Organisation(_Model):
    """Who speaks: the name customers know, and where and how it works."""

    name: str = Field(min_length=1)
    website: HttpUrl
    country: CountryCode = Field(description="Default region for phone numbers without +country code.")
    timezone: TimeZoneName
    default_locale: LocaleCode
    locales: list[LocaleCode] = Field(min_length=1, description="Every language the notices are written in.")
    locale_fallbacks: dict[LocaleCode, LocaleCode] = Field(
        default_factory=dict,
        description="Whose text a reader gets when their language has none, before the default locale: "
                    "{de: en, nn: nb}. A fallback declared here is intentional (validate notes it, no warning).")

    @property
    def reader_locales(self) -> list[str]:
        """Locales a reader can be given: those written, and those with a declared fallback."""
        return [*self.locales, *(code for code in self.locale_fallbacks if code not in self.locales)]

    def text_chain(self, locale: str) -> list[str]:
        """The written locales whose text a ``locale`` reader gets, best first (ends with the default)."""
        chain = fallback_chain(locale, self.locale_fallbacks, self.default_locale)
        return [code for code in chain if code in self.locales] or [self.default_locale]


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


class HoursException(_Model):
    """Hours that replace the weekly ones for a while (holidays, extended crisis hours).

    ``date`` is one day; ``from``/``to`` a period, each a day (``to`` inclusive) or a local date and
    time (``2026-10-14T06:00``). Without a year (``12-25``, ``from: 12-24``) it recurs every year."""

    day: ExceptionDate | None = Field(None, alias="date", description="A single day: 2026-12-24, or 12-25 every year.")
    from_: ExceptionDate | None = Field(
        None, alias="from", description="Start: a day (2026-12-24), a local time (2026-10-14T06:00), or 12-24.")
    to: ExceptionDate | None = Field(
        None, description="End: a day (inclusive) or a local time (2026-10-15T18:00), or 12-26.")
    hours: Annotated[str, AfterValidator(_check_day_hours)] = Field(
        description="'closed', 'always', or ranges like '07:00-23:00', applying between the two ends.")
    note: Localized | None = None

    @model_validator(mode="after")
    def _one_period(self) -> HoursException:
        if self.day is not None and (self.from_ is not None or self.to is not None):
            raise _located("exception_period", "give either 'date' or 'from'/'to', not both", ("date",))
        if self.day is None and (self.from_ is None or self.to is None):
            raise _located("exception_period", "give 'date' for one day, or both 'from' and 'to'", ())
        if self.day is not None and ExceptionBound.parse(self.day).minute is not None:
            raise _located("exception_period", "'date' is a whole day; for a time of day use 'from' and 'to'",
                           ("date",))
        try:
            self.dated_hours("UTC")
        except ValueError as error:
            raise _located("exception_period", str(error), ("to",)) from None
        return self

    def dated_hours(self, timezone: str) -> DatedHours:
        """The exception in the route's ``timezone`` (a bound with a UTC offset is converted to it)."""
        first = self.day or self.from_
        last = self.day or self.to
        assert first is not None and last is not None
        return dated_hours_between(ExceptionBound.parse(first), ExceptionBound.parse(last),
                                   parse_day_hours(self.hours), zone_info(timezone))


class Route(_Model):
    """One way to reach the organisation: a phone line, chat, portal, ..."""

    kind: RouteKind
    label: Localized | None = Field(None, description="What customers call it, e.g. 'Outage hotline'.")
    phone: str | None = Field(None, description="For kind phone or sms; stored as E.164.")
    url: HttpUrl | None = Field(None, description="For chat, portal, social and web.")
    email: EmailAddress | None = None
    live_person: bool = Field(False, description="True when a person answers (not a bot or a form).")
    hours: WeeklyHours
    timezone: TimeZoneName | None = Field(
        None, description="When the route's hours are not in the organisation's zone.")
    exceptions: list[HoursException] = Field(default_factory=list)
    callback: str | None = Field(
        None, description="Where a call-back is booked: a web address, or a phone number (stored as E.164).",
        examples=["https://example.org/callback", "+46 8 123 456 78"])
    wait: RouteWait | None = Field(
        None, description="The expected wait (25m, 1h, PT25M); `send --wait ROUTE=25m` overrides it at plan time.")

    @field_validator("callback")
    @classmethod
    def _callback_url_or_phone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value.strip().lower().startswith(("http://", "https://")):
            return None if value is None else _check_http_url(value.strip())
        return phone_to_e164(value, (info.context or {}).get("region"))

    @field_validator("phone")
    @classmethod
    def _phone_to_e164(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        region = (info.context or {}).get("region")
        return phone_to_e164(value, region)

    @model_validator(mode="after")
    def _contact_for_kind(self) -> Route:
        needed = {"phone": "phone", "sms": "phone", "email": "email"}.get(self.kind, "url")
        if getattr(self, needed) is None:
            raise _located(
                "missing_contact", "a {kind} route needs '{field}'", (), {"kind": self.kind, "field": needed})
        if not isinstance(self.hours, str):
            try:
                WeeklySchedule.from_mapping({k: parse_day_hours(v) for k, v in self.hours.items()})
            except DayGivenTwice as error:
                raise _located("day_twice", str(error), ("hours", error.spec)) from None
        return self

    def opening_hours(self, organisation_timezone: str) -> OpeningHours:
        return _opening_hours(self, self.timezone or organisation_timezone)

    @property
    def contact(self) -> str:
        """The number, address or URL a customer uses."""
        return self.phone or self.email or self.url or ""


def _opening_hours(route: Route, timezone: str) -> OpeningHours:
    if isinstance(route.hours, str):
        weekly = WeeklySchedule.always()
    else:
        weekly = WeeklySchedule.from_mapping({k: parse_day_hours(v) for k, v in route.hours.items()})
    exceptions = tuple(e.dated_hours(timezone) for e in route.exceptions)
    return OpeningHours(weekly, exceptions, timezone)


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


class Inquiry(_Model):
    """A kind of customer need, and the route that serves it best."""

    label: Localized
    best: Id = Field(description="Id of the route that serves this need best.")
    fallbacks: list[Id] = Field(default_factory=list, description="Routes to use, in order, when 'best' is closed.")


class Link(_Model):
    """A helpful resource: self-help, public assistance, a status page."""

    title: Localized
    url: HttpUrl
    kind: LinkKind = "other"


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


class Notice(_Model):
    """One message to send: what it says is in its templates."""

    severity: Severity
    channels: list[ChannelName] = Field(min_length=1)
    templates: Id | None = Field(None, description="Template set (folder under templates/); default: the notice id.")
    expires: NoticeMoment | None = Field(
        None, description="When the notice stops being true: a moment (2026-12-06T20:00:00+01:00), a day "
                          "(the end of it), or a duration from when the plan is made (36h, 90m, 2d, PT36H).")
    next_update: NoticeMoment | None = Field(
        None, description="When readers will hear more: a moment, or a duration from when the plan is made (6h).")
    sms_segments: int = Field(2, ge=1, le=10, description="Most SMS segments a rendered text may cost in any locale.")
    inquiries: list[Id] | None = Field(None, description="Inquiry types to show; default: all.")
    variables: dict[Id, Localized | int | float | bool] = Field(default_factory=dict)

    @field_validator("channels")
    @classmethod
    def _channels_once(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for index, channel in enumerate(value):
            if channel in seen:
                raise _located("channel_twice", "channel '{channel}' is listed twice", (index,), {"channel": channel})
            seen.add(channel)
        return value


class SmsSettings(_Model):
    """Twilio sender settings. Credentials come from the environment, never from here."""

    from_: str | None = Field(None, alias="from", description="Sender number (E.164) or alphanumeric sender id.")
    messaging_service_sid: str | None = Field(None, pattern=r"^MG[0-9a-fA-F]{32}$")
    status_callback: HttpUrl | None = None
    quiet_hours: str = Field(
        "21:00-08:00", description="No non-critical SMS in this local-time window; 'none' to disable.")
    smart_encoding: bool = Field(False, description="Replace curly quotes, dashes and odd spaces by GSM-7 equivalents.")
    segment_prices: dict[CountryCode, float] = Field(default_factory=dict, description="Price per segment by country.")
    currency: str = "EUR"
    rate: float | None = Field(None, gt=0, description="Messages per second at most.")

    @model_validator(mode="after")
    def _one_sender(self) -> SmsSettings:
        if (self.from_ is None) == (self.messaging_service_sid is None):
            raise _located("sender", "give exactly one of 'from' and 'messaging_service_sid'", ())
        return self

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_shape(cls, value: str) -> str:
        if value.strip().lower() != "none":
            quiet_window(value)
        return value


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


class EmailSettings(_Model):
    """SendGrid sender settings."""

    from_: EmailAddress = Field(alias="from")
    from_name: str | None = None
    reply_to: EmailAddress | None = None
    unsubscribe_group: int | None = Field(None, ge=1, description="SendGrid unsubscribe group id (asm.group_id).")
    region: Literal["global", "eu"] = Field("global", description="'eu' sends through SendGrid's EU host.")
    rate: float | None = Field(None, gt=0, description="Requests per second at most.")


class BannerSettings(_Model):
    """Where the site banner JSON is written."""

    path: str = Field(description="Output file, relative to the playbook.")


class Providers(_Model):
    sms: SmsSettings | None = None
    email: EmailSettings | None = None
    banner: BannerSettings | None = None


class Playbook(_Model):
    """A crisis playbook: who we are, how to reach us, and what to say."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True,
        json_schema_extra={"title": "crisiscomms playbook", "$comment": "Generated by `crisiscomms schema`."},
    )

    version: Literal[1] = Field(description="Format version of this file.")
    organisation: Organisation
    templates: str = Field("../templates", description="Template folder, relative to this file.")
    routes: dict[Id, Route] = Field(min_length=1)
    inquiries: dict[Id, Inquiry] = Field(min_length=1)
    links: list[Link] = Field(default_factory=list)
    notices: dict[Id, Notice] = Field(min_length=1)
    providers: Providers = Field(default_factory=Providers)
    suppression: list[str] = Field(default_factory=list, description="Opt-out lists, relative to this file.")
    audience_fields: list[Id] = Field(
        default_factory=list,
        description="Extra audience columns the templates use (e.g. customer_number); "
                    "validate renders with them, send refuses an audience without them.")

    @cached_property
    def route_hours(self) -> dict[str, OpeningHours]:
        return {rid: r.opening_hours(self.organisation.timezone) for rid, r in self.routes.items()}

    def notice_inquiries(self, notice_id: str) -> list[str]:
        chosen = self.notices[notice_id].inquiries
        return list(self.inquiries) if chosen is None else chosen


def _located(
    kind: str, message: str, subpath: tuple[str | int, ...], context: dict[str, Any] | None = None
) -> PydanticCustomError:
    """An error whose place is ``subpath`` below the model that raised it."""
    return PydanticCustomError(kind, message, {**(context or {}), "subpath": subpath})


def playbook_json_schema() -> dict[str, Any]:
    schema = Playbook.model_json_schema(mode="validation", by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema

