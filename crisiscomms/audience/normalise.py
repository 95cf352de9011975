"""Normalisation of one audience value: phone (phonenumbers), e-mail (email-validator), time zone, channels, id."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, DOT_ATOM_TEXT
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, ValidationResult

PHONE_INVALID: Final = "invalid_phone"
PHONE_NOT_MOBILE: Final = "not_mobile"
EMAIL_INVALID: Final = "invalid_email"
TIMEZONE_UNKNOWN: Final = "unknown_timezone"

#: Channel names a ``channels`` column may list.
CHANNELS: Final = frozenset({"sms", "email", "banner", "voice"})
#: Column names with a meaning; any other column is an extra field.
KNOWN_COLUMNS: Final = ("id", "name", "phone", "email", "locale", "timezone", "channels")

# -------------------------------------------------------------------- normalisers

_NOT_MOBILE_TYPES: Final = frozenset(
    {
        PhoneNumberType.FIXED_LINE,
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.UAN,
        PhoneNumberType.VOICEMAIL,
        PhoneNumberType.PAGER,
    }
)
_E164_FORMAT: Final = PhoneNumberFormat.E164
_UNKNOWN_TYPE: Final = PhoneNumberType.UNKNOWN
# Separators phonenumbers itself treats as punctuation (its VALID_PUNCTUATION);
# dropping them first spares its parser the slow Unicode digit scan over them.
_SEPARATORS: Final = str.maketrans("", "", " -./()\u00a0")
_PLAIN_NUMBER: Final = re.compile(r"\+?[0-9]+")

# Keep the compiled metadata patterns instead of going through re.compile's
# cache for each of the ~15 pattern matches per number (about 3 µs a number).
phonenumbers.enable_pattern_cache()


def _classify(text: str, region: str | None) -> tuple[phonenumbers.PhoneNumber, int] | None:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    kind = phonenumbers.number_type(number)
    return None if kind == _UNKNOWN_TYPE else (number, kind)


def normalise_phone(raw: str, default_region: str) -> tuple[str | None, str | None]:
    """Return ``(e164, problem)`` for one phone spelling.

    Empty → ``(None, None)``; not a valid number → ``(None, "invalid_phone")``;
    a valid number that cannot take SMS → ``(e164, "not_mobile")``; else
    ``(e164, None)``. One parse, one ``number_type``, one format.
    """
    text = raw.strip()
    if not text:
        return None, None
    compact = text.translate(_SEPARATORS)
    found = _classify(compact if _PLAIN_NUMBER.fullmatch(compact) else text, default_region)
    if found is None:
        # "00" is the international prefix of most, not all, regions: accept it
        # everywhere, but only where the national reading gave nothing valid.
        if not compact.startswith("00"):
            return None, PHONE_INVALID
        found = _classify("+" + compact[2:], None)
        if found is None:
            return None, PHONE_INVALID
    number, kind = found
    e164 = phonenumbers.format_number(number, _E164_FORMAT)
    return e164, (PHONE_NOT_MOBILE if kind in _NOT_MOBILE_TYPES else None)


# ASCII local part @ ASCII host name: the shape of nearly every address.
_SIMPLE_EMAIL: Final = re.compile(r"([^@\s\"\\<>()\[\],;:]{1,64})@([A-Za-z0-9.-]{1,253})")
_EMAIL_MAX: Final = 254


_PARSE_PROBLEMS: Final = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_LENGTH_PROBLEMS: Final = {
    ValidationResult.TOO_SHORT: "too short for {region}",
    ValidationResult.TOO_LONG: "too long for {region}",
    ValidationResult.INVALID_LENGTH: "wrong number of digits for {region}",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "a local number without its area code in {region}",
}


def phone_problem_detail(raw: str, default_region: str) -> str:
    """Why :func:`normalise_phone` called ``raw`` invalid, in phonenumbers' own terms.

    ``"too short for SE"``, ``"not valid in SE"``, ``"unknown country code +999"``…
    Called only for the rows that are invalid, so the common path pays nothing.
    """
    text = raw.strip()
    compact = text.translate(_SEPARATORS)
    if compact.startswith("00") and _PLAIN_NUMBER.fullmatch(compact):
        text = "+" + compact[2:]
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException as error:
        return _PARSE_PROBLEMS.get(error.error_type, "not a phone number")
    region = phonenumbers.region_code_for_country_code(number.country_code or 0)
    if region == phonenumbers.UNKNOWN_REGION:
        return f"unknown country code +{number.country_code}"
    shown = "+1" if number.country_code == 1 else region
    if region == "001":  # non-geographic (satellite, global services)
        shown = f"+{number.country_code}"
    reason = phonenumbers.is_possible_number_with_reason(number)
    template = _LENGTH_PROBLEMS.get(reason)
    if template is not None:
        return template.format(region=shown)
    if reason == ValidationResult.INVALID_COUNTRY_CODE:
        return f"unknown country code +{number.country_code}"
    return f"not valid in {shown}"


@lru_cache(maxsize=8192)
def _email_domain(domain: str) -> tuple[str, int] | None:
    """The library's normalised domain and the UTF-8 length of its longest form.

    ``None`` when the library rejects ``x@domain`` for any reason; the caller
    then asks the library about the whole address.
    """
    try:
        checked = validate_email("x@" + domain, check_deliverability=False)
    except EmailNotValidError:
        return None
    longest = max(len(checked.domain.encode("utf-8")), len(checked.ascii_domain), len(domain))
    return checked.domain, longest


def normalise_email(raw: str) -> tuple[str | None, str | None]:
    """Return ``(normalised, problem)``: ``(None, None)`` when empty,
    ``(None, "invalid_email")`` when :func:`email_validator.validate_email` rejects it.
    """
    text = raw.strip()
    if not text:
        return None, None
    simple = _SIMPLE_EMAIL.fullmatch(text)
    if simple is not None:
        local, domain = simple.group(1), simple.group(2)
        known = _email_domain(domain)
        if known is not None and DOT_ATOM_TEXT.match(local) is not None and len(local) + 1 + known[1] <= _EMAIL_MAX:
            # What validate_email does for such an address: the dot-atom local
            # part unchanged (RFC 2142 role names lower-cased), the domain as
            # the library normalises it, the same length limits.
            if local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
                local = local.lower()
            return local + "@" + known[0], None
    try:
        return validate_email(text, check_deliverability=False).normalized, None
    except EmailNotValidError:
        return None, EMAIL_INVALID


@lru_cache(maxsize=1024)
def _timezone_name(raw: str) -> str | None:
    """The IANA name ``raw`` stands for, or None. Memoised: few distinct values."""
    name = raw.strip()
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return _timezones_by_lower_name().get(name.lower())
    return name


@lru_cache(maxsize=1)
def _timezones_by_lower_name() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


@lru_cache(maxsize=256)
def _parse_channels(raw: str) -> frozenset[str] | str | None:
    """``frozenset`` of channels, ``None`` for all, or a ``str`` reason when unknown."""
    names = [part.strip().lower() for part in raw.replace(",", ";").split(";")]
    chosen = frozenset(name for name in names if name)
    if not chosen:
        return None
    unknown = sorted(chosen - CHANNELS)
    if unknown:
        listed = ", ".join(f'"{name}"' for name in unknown)
        plural = "s" if len(unknown) > 1 else ""
        return f'unknown channel{plural} {listed} in "channels" (known: {", ".join(sorted(CHANNELS))})'
    return chosen


def _derived_id(phone: str | None, email: str | None, line: int) -> str:
    if phone is None and email is None:
        return f"line-{line}"
    key = f"{phone or ''}|{(email or '').lower()}".encode()
    return "r-" + hashlib.blake2b(key, digest_size=8).hexdigest()
