"""What reading an audience yields: a :class:`Recipient` or a :class:`MalformedRow`, and the options that shape it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import phonenumbers

from .normalise import _timezone_name

# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Recipient:
    """One person of the audience, normalised."""

    line: int  # 1-based line of the record in the file (the CSV header is line 1)
    id: str
    name: str
    phone: str | None  # E.164, or None when empty or invalid
    phone_problem: str | None  # "invalid_phone" | "not_mobile" | None
    email: str | None  # normalised, or None
    email_problem: str | None  # "invalid_email" | None
    locale: str  # negotiated, one of the supported locales
    timezone: str  # valid IANA name
    timezone_problem: str | None  # "unknown_timezone" (default used) | None
    channels: frozenset[str] | None  # consented channels, None = all
    fields: Mapping[str, str]  # extra columns, by header spelling
    phone_detail: str = ""  # why the phone is invalid, e.g. "too short", "not valid in SE"


@dataclass(frozen=True, slots=True)
class MalformedRow:
    """A record that could not be read; the run goes on without it.

    ``reason`` does not repeat the line; ``str()`` gives ``"line 7: <reason>"``.
    """

    line: int
    reason: str
    id: str = ""  # the row's id column, when the row could be read that far

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class AudienceOptions:
    """How to interpret what a row leaves open.

    Raises :class:`ValueError` for a value that cannot be right (an unknown region
    or time zone, a default locale that is not supported): the caller validates
    the playbook and command line before it opens an audience.
    """

    default_region: str  # ISO 3166 region for national phone spellings, e.g. "SE"
    default_timezone: str  # IANA name, e.g. "Europe/Stockholm"
    supported_locales: tuple[str, ...]  # e.g. ("sv", "en")
    default_locale: str  # one of supported_locales

    def __post_init__(self) -> None:
        if self.default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {self.default_region!r}")
        if _timezone_name(self.default_timezone) != self.default_timezone:
            raise ValueError(f"unknown time zone {self.default_timezone!r}")
        if self.default_locale not in self.supported_locales:
            raise ValueError(f"default locale {self.default_locale!r} is not one of {self.supported_locales}")


Item = Recipient | MalformedRow
