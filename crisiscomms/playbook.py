"""The playbook model: what a comms team writes in YAML, as pydantic v2 types.

The YAML file is this model's serialisation; ``crisiscomms schema`` prints
the JSON Schema generated from it. Validation of single values happens here
(types, times, zones, URLs, phone numbers); cross-references and the crisis
checks that need the whole playbook live in :mod:`crisiscomms.checks`. The value
types are in :mod:`crisiscomms.playbook_fields`, the ``providers:`` settings in
:mod:`crisiscomms.provider_settings`; both are re-exported here.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .hours import (
    DatedHours,
    DayGivenTwice,
    ExceptionBound,
    OpeningHours,
    WeeklySchedule,
    dated_hours_between,
    parse_day_hours,
    zone_info,
)
from .locales import fallback_chain
from .playbook_fields import (
    CHANNELS,
    FORMAT_VERSION,
    SEVERITIES,
    CapCategory,
    ChannelName,
    CountryCode,
    EmailAddress,
    ExceptionDate,
    HttpUrl,
    Id,
    LinkKind,
    LocaleCode,
    Localized,
    NoticeMoment,
    RouteKind,
    RouteWait,
    Severity,
    TimeZoneName,
    WeeklyHours,
    _check_day_hours,
    _check_http_url,
    _located,
    _Model,
    localized_text,
    notice_moment,
    phone_to_e164,
    quiet_window,
)
from .provider_settings import (
    MAX_SMS_VALIDITY,
    BannerSettings,
    CapSettings,
    EmailSettings,
    Providers,
    SmsSettings,
    VoiceSettings,
)

__all__ = [
    "CHANNELS",
    "DEFAULT_EXERCISE_MARKERS",
    "FORMAT_VERSION",
    "MAX_SMS_VALIDITY",
    "SEVERITIES",
    "BannerSettings",
    "CapSettings",
    "ChannelName",
    "EmailSettings",
    "Escalation",
    "Exercise",
    "ExerciseRecipient",
    "HoursException",
    "Inquiry",
    "Link",
    "Notice",
    "NoticeCap",
    "Organisation",
    "Playbook",
    "Providers",
    "Route",
    "Severity",
    "SmsSettings",
    "VoiceSettings",
    "localized_text",
    "notice_moment",
    "phone_to_e164",
    "playbook_json_schema",
    "quiet_window",
]


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


class NoticeCap(_Model):
    """How a notice reads as an OASIS CAP 1.2 alert (``crisiscomms cap``, the ``cap`` channel)."""

    event: Localized | None = Field(None, description="CAP <event>, e.g. 'Power outage'; default: the banner title.")
    area: Localized | None = Field(None, description="CAP <areaDesc>: where, in words; default: no <area>.")
    category: CapCategory | None = Field(None, description="CAP <category>; default: providers.cap.category.")


Approval = Literal["required", "none"]


class NoticeAudience(_Model):
    """Whom of the audience a notice reaches: rows whose columns have one of the given values."""

    where: dict[str, list[str] | str] = Field(
        default_factory=dict,
        description="Column → value or list of values, e.g. {area: [Bergen, Voss]}; AND across columns.")

    @field_validator("where")
    @classmethod
    def _values_given(cls, value: dict[str, list[str] | str]) -> dict[str, list[str] | str]:
        for column, values in value.items():
            if not column.strip():
                raise _located("where_column", "a column name cannot be empty", (column,))
            listed = [values] if isinstance(values, str) else values
            if not listed or not all(str(v).strip() for v in listed):
                raise _located("where_values", "give at least one value, none of them empty", (column,))
        return value

    @property
    def conditions(self) -> dict[str, list[str]]:
        return {column: [values] if isinstance(values, str) else list(values) for column, values in self.where.items()}


class Escalation(_Model):
    """Where a message that did not reach its reader goes next: ``{sms: email, email: sms, after: 15m}``."""

    sms: Literal["email", "voice"] | None = Field(None, description="Fallback channel of an SMS that did not arrive.")
    email: Literal["sms", "voice"] | None = Field(None, description="Fallback channel of a bounced e-mail.")
    voice: Literal["sms", "email"] | None = Field(None, description="Fallback channel of a call nobody took.")
    after: RouteWait | None = Field(
        None, description="Also escalate messages with no receipt this long after they were sent (15m, 1h).")

    def fallback(self, channel: str) -> str | None:
        value = getattr(self, channel, None) if channel in ("sms", "email", "voice") else None
        return None if value is None else str(value)


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
    sms_segments_by_locale: dict[LocaleCode, Annotated[int, Field(ge=1, le=10)]] = Field(
        default_factory=dict,
        description="A different budget for some locales, e.g. {el: 3}: Greek is UCS-2 (67 characters a segment).")
    inquiries: list[Id] | None = Field(None, description="Inquiry types to show; default: all.")
    variables: dict[Id, Localized | int | float | bool] = Field(default_factory=dict)
    clears: Id | None = Field(
        None, description="The notice this one gives the all-clear for: its CAP alert is a Cancel of that one's.")
    cap: NoticeCap = Field(default_factory=lambda: NoticeCap.model_validate({}))
    approval: Approval | None = Field(
        None, description="'required': a second operator must approve each plan of this notice before it is sent "
                          "(default: the playbook's 'approval').")
    audience: NoticeAudience = Field(
        default_factory=NoticeAudience, description="Restrict the notice to some rows: {where: {area: [Bergen]}}.")
    escalate: Escalation | None = Field(
        None, description="Send the fallback channel's text, once, to whom the primary channel did not reach "
                          "(crisiscomms escalate).")
    banner: Literal["show", "withdraw"] = Field(
        "show", description="'withdraw' (the all-clear): the notice's banner channel takes the site banner down.")

    def segment_budget(self, locale: str) -> int:
        """Most SMS segments the text in ``locale`` may cost."""
        return self.sms_segments_by_locale.get(locale, self.sms_segments)

    @property
    def withdraws_banner(self) -> bool:
        return self.banner == "withdraw"

    @model_validator(mode="after")
    def _withdraw_needs_the_banner_channel(self) -> Notice:
        if self.withdraws_banner and "banner" not in self.channels:
            raise _located("withdraw_without_banner",
                           "'withdraw' takes the site banner down through the banner channel; "
                           "add 'banner' to 'channels'", ("banner",))
        return self

    @field_validator("channels")
    @classmethod
    def _channels_once(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for index, channel in enumerate(value):
            if channel in seen:
                raise _located("channel_twice", "channel '{channel}' is listed twice", (index,), {"channel": channel})
            seen.add(channel)
        return value


#: The marker every exercise message starts with, per locale (``exercise.marker`` overrides).
DEFAULT_EXERCISE_MARKERS: dict[str, str] = {
    "en": "EXERCISE", "sv": "ÖVNING", "da": "ØVELSE", "nb": "ØVELSE", "nn": "ØVING", "nl": "OEFENING", "el": "ΑΣΚΗΣΗ",
}


class ExerciseRecipient(_Model):
    """One person who takes part in an exercise (the crisis team, volunteers): they get every exercise message."""

    name: str = ""
    phone: str | None = Field(
        None, description="Stored as E.164; national numbers are read in the organisation's country.")
    email: EmailAddress | None = None
    locale: LocaleCode | None = Field(None, description="Default: the organisation's default locale.")
    timezone: TimeZoneName | None = None

    @field_validator("phone")
    @classmethod
    def _phone_to_e164(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else phone_to_e164(value, (info.context or {}).get("region"))

    @model_validator(mode="after")
    def _reachable(self) -> ExerciseRecipient:
        if self.phone is None and self.email is None:
            raise _located("exercise_recipient", "an exercise recipient needs 'phone' or 'email'", ())
        return self


class Exercise(_Model):
    """Rehearsals (``--exercise``): only these people are messaged, and every message says it is an exercise."""

    recipients: list[ExerciseRecipient] = Field(default_factory=list, description="Who takes part.")
    file: str | None = Field(
        None, description="Or: a CSV or JSON Lines file of who takes part, in the audience format, relative to "
                          "this file.")
    marker: Localized | None = Field(
        None, description="What every exercise message starts with; default EXERCISE, ÖVNING, ØVELSE, OEFENING, "
                          "ΑΣΚΗΣΗ by locale.")
    sendgrid_sandbox: bool = Field(False, description="Send exercise e-mail in SendGrid's sandbox mode (nothing "
                                                      "is delivered).")
    banner_path: str | None = Field(
        None, description="Where an exercise writes the banner, relative to this file; never the production path.")
    cap_path: str | None = Field(
        None, description="Where an exercise writes its CAP alert (status Exercise), relative to this file; never "
                          "providers.cap.path. Without it an exercise writes no CAP file.")

    @model_validator(mode="after")
    def _one_source(self) -> Exercise:
        if bool(self.recipients) == (self.file is not None):
            raise _located("exercise_recipients", "give the exercise's 'recipients' or a 'file' of them, not both "
                                                  "and not neither", ())
        return self


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
    exercise: Exercise | None = Field(None, description="Who takes part in rehearsals, and how they are marked.")
    suppression: list[str] = Field(default_factory=list, description="Opt-out lists, relative to this file.")
    approval: Approval = Field("none", description="'required': every notice's plans need a second operator's "
                                                   "approval before they are sent (a notice may say otherwise).")
    audience_fields: list[Id] = Field(
        default_factory=list,
        description="Extra audience columns the templates use (e.g. customer_number); "
                    "validate renders with them, send refuses an audience without them.")

    @cached_property
    def route_hours(self) -> dict[str, OpeningHours]:
        return {rid: r.opening_hours(self.organisation.timezone) for rid, r in self.routes.items()}

    def approval_required(self, notice_id: str) -> bool:
        return (self.notices[notice_id].approval or self.approval) == "required"

    def notice_inquiries(self, notice_id: str) -> list[str]:
        chosen = self.notices[notice_id].inquiries
        return list(self.inquiries) if chosen is None else chosen


def playbook_json_schema() -> dict[str, Any]:
    schema = Playbook.model_json_schema(mode="validation", by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
