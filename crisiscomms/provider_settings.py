"""Provider settings of a playbook (``providers:``): senders, quiet hours, rates, output paths.
Credentials never live here; they come from the environment."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .playbook_fields import (
    CapCategory,
    CountryCode,
    EmailAddress,
    HttpUrl,
    LocaleCode,
    _check_language_tag,
    _located,
    _Model,
    phone_to_e164,
    quiet_window,
)

MAX_SMS_VALIDITY = 36_000  # seconds: Twilio's ValidityPeriod is 1 to 36,000 (10 hours)
_DURATION_PART = re.compile(r"(\d+)\s*(h|m|s)")
_DURATION_UNITS = {"h": 3600, "m": 60, "s": 1}


def validity_seconds(value: str) -> int:
    """``"1h"``, ``"90m"``, ``"1h30m"``, ``"45s"`` → seconds. Raises ValueError."""
    text = value.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"'{value}' is not a duration such as 1h, 30m, 1h30m or 45s")
    return sum(int(number) * _DURATION_UNITS[unit] for number, unit in parts)


def _check_sms_validity(value: str) -> str:
    try:
        seconds = validity_seconds(value)
    except ValueError as error:
        raise PydanticCustomError("bad_duration", str(error)) from None
    if not 1 <= seconds <= MAX_SMS_VALIDITY:
        raise PydanticCustomError("bad_validity", "must be between 1s and 10h (Twilio's limit), "
                                  "not {value}", {"value": value})
    return value


def _seconds_as_text(value: object) -> object:
    return f"{value}s" if isinstance(value, int) and not isinstance(value, bool) else value


SmsValidity = Annotated[str, BeforeValidator(_seconds_as_text), AfterValidator(_check_sms_validity),
                        Field(examples=["1h", "30m"])]


class SmsSettings(_Model):
    """Twilio sender settings. Credentials come from the environment, never from here."""

    from_: str | None = Field(None, alias="from", description="Sender number (E.164) or alphanumeric sender id.")
    messaging_service_sid: str | None = Field(None, pattern=r"^MG[0-9a-fA-F]{32}$")
    status_callback: HttpUrl | None = Field(
        None, description="Where Twilio reports delivery (crisiscomms receipts serve's /twilio/status).")
    receipts: bool = Field(
        False, description="Delivery receipts are expected: validate warns when no status_callback is set.")
    validity: SmsValidity | None = Field(
        None, description="Most time an SMS may wait at Twilio before it is dropped (1s-10h, e.g. '1h'); "
                          "default and upper bound: the time left until the notice expires.")
    quiet_hours: str = Field(
        "21:00-08:00", description="No non-critical SMS in this local-time window; 'none' to disable.")
    smart_encoding: bool = Field(False, description="Replace curly quotes, dashes and odd spaces by GSM-7 equivalents.")
    segment_prices: dict[CountryCode, float] = Field(default_factory=dict, description="Price per segment by country.")
    currency: str = "EUR"
    rate: float | None = Field(None, gt=0, description="Messages per second at most.")

    @property
    def validity_seconds(self) -> int | None:
        return validity_seconds(self.validity) if self.validity is not None else None

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


class VoiceSettings(_Model):
    """Twilio Programmable Voice: calls that read the notice aloud. Credentials come from the environment."""

    from_: str = Field(alias="from", description="Caller id: a Twilio number of the account, E.164.")
    languages: dict[LocaleCode, Annotated[str, AfterValidator(_check_language_tag)]] = Field(
        default_factory=dict, description="<Say language> per locale, e.g. {en: en-US}; default sv-SE, en-GB …")
    voices: dict[LocaleCode, str] = Field(
        default_factory=dict,
        description="<Say voice> per locale, e.g. {sv: Polly.Astrid, el: Google.el-GR-Standard-A}.")
    max_seconds: int = Field(60, ge=10, le=600, description="Longest one reading of the message may take.")
    words_per_minute: dict[LocaleCode, int] = Field(
        default_factory=dict, description="Speaking rate per locale for the length check; default 150 (en) …")
    status_callback: HttpUrl | None = Field(
        None, description="Twilio posts the call's outcome here (completed, busy, no-answer, failed).")
    replay_url: HttpUrl = Field(
        "https://twimlets.com/echo",
        description="Where 'press 1 to hear it again' goes: a URL answering with the TwiML in its Twiml "
                    "parameter (Twilio's echo Twimlet), so no web server of yours is needed.")
    quiet_hours: str = Field(
        "21:00-08:00", description="No non-critical calls in this local-time window; 'none' to disable.")
    rate: float | None = Field(None, gt=0, description="Calls started per second at most.")

    @field_validator("from_")
    @classmethod
    def _caller_id_e164(cls, value: str) -> str:
        return phone_to_e164(value, None)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_shape(cls, value: str) -> str:
        quiet_window(value)
        return value


class CapSettings(_Model):
    """OASIS CAP 1.2 output: who the alerts come from and where the ``cap`` channel writes them."""

    path: str | None = Field(None, description="Output file of the cap channel, relative to the playbook.")
    sender: str | None = Field(
        None, pattern=r"^[^\s,<&]+$",
        description="CAP <sender> (no spaces or commas), e.g. alerts@nordvind.example; default: the website's host.")
    category: CapCategory = Field("Other", description="CAP <category> of every notice (Infra for a utility).")
    languages: dict[LocaleCode, Annotated[str, AfterValidator(_check_language_tag)]] = Field(
        default_factory=dict, description="BCP 47 tag per locale, e.g. {en: en-US}; default sv-SE, da-DK, en-GB …")


class Providers(_Model):
    sms: SmsSettings | None = None
    email: EmailSettings | None = None
    banner: BannerSettings | None = None
    voice: VoiceSettings | None = None
    cap: CapSettings | None = None
    ledger: str | None = Field(
        default=None, description="The send ledger: a file relative to this playbook. --ledger and CRISISCOMMS_LEDGER "
                          "come first; default: a per-user file under the user state directory.")
