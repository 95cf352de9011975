"""Streaming reader of the audience file of ``crisiscomms send --audience FILE``.

One call opens the file and checks its header; iterating the result yields one
:class:`Recipient` or :class:`MalformedRow` per record, lazily, so memory does not
grow with the length of the file. A row that cannot be understood is reported and
skipped; only a file that cannot be read at all raises :class:`AudienceError`.

Formats
    * CSV (``.csv``, ``.txt``): UTF-8 with or without a BOM. The delimiter
      (comma, semicolon or tab) is the one that splits the header line into the
      most recognised column names. Quoted fields may span lines; a record keeps
      the line number of its first line (the header is line 1).
    * JSON Lines (``.jsonl``, ``.ndjson``): one object per line; values are
      strings, numbers, booleans or null. The first object stands for the header.
    * Any other extension: ``{`` as the first non-blank character means JSON Lines,
      anything else CSV.

Columns (case-insensitive, surrounding spaces ignored): ``id``, ``name``,
``phone``, ``email``, ``locale``, ``timezone``, ``channels``. A ``phone`` or an
``email`` column is required. Every other column is an extra field the templates
see under its header spelling (values are strings, surrounding spaces removed).

Decoding is done line by line from the raw bytes, so one line that is not valid
UTF-8 becomes a :class:`MalformedRow` and reading goes on with the next line.

Normalisation, per row
    * ``phone``: parsed once with :mod:`phonenumbers` (the caller's default region
      for national spellings; ``+`` and ``00`` prefixes parse internationally),
      classified once with ``number_type`` and formatted once as E.164.
      ``number_type(n) != UNKNOWN`` is exactly ``is_valid_number(n)`` (both look up
      the same region metadata and run the same matcher), so validity costs no
      second pass. Unparseable or invalid → ``phone_problem="invalid_phone"`` and
      ``phone=None``. Types that cannot receive SMS — FIXED_LINE, TOLL_FREE,
      PREMIUM_RATE, SHARED_COST, UAN, VOICEMAIL, PAGER — keep their E.164 in
      ``phone`` and get ``phone_problem="not_mobile"``. MOBILE,
      FIXED_LINE_OR_MOBILE (the whole NANP), VOIP and PERSONAL_NUMBER are allowed:
      many of them receive SMS, and the provider rejects the others per message
      (Twilio 21614), which costs less than silently dropping a reachable person.
    * ``email``: :func:`email_validator.validate_email` with
      ``check_deliverability=False``; its ``normalized`` form (domain lower-cased,
      IDNA decoded; the local part keeps its case). Invalid →
      ``email_problem="invalid_email"``. The common case (an ASCII dot-atom local
      part and an ASCII host name) is answered with the library's own local-part
      rule and a memoised call of the library per *domain*, which a whole
      audience shares; the result is identical to the full call (a property test
      holds the two together) and anything unusual takes the full call.
    * ``locale``: :func:`crisiscomms.locales.negotiate_locale`.
    * ``timezone``: an IANA name checked with :mod:`zoneinfo` (memoised; a
      wrong-case spelling such as ``europe/stockholm`` is corrected). Empty → the
      default time zone. Unknown → the default time zone and
      ``timezone_problem="unknown_timezone"`` so the plan can count such rows.
    * ``channels``: the channels the person agreed to, separated by ``;`` or
      ``,``; ``None`` (every channel of the notice) when the column is absent or
      empty. An unknown channel name makes the row malformed.
    * ``id``: the ``id`` column when present and not empty. Otherwise derived:
      ``"r-"`` + 16 hex digits of BLAKE2b (64 bits) over ``"<E.164>|<email lower-cased>"``
      (an invalid address contributes an empty string), so the same person gets
      the same id in every run and in every order of the file; 64 bits keep the
      chance of two different people sharing an id below 1 in 30 million for a
      million rows. A row with neither a usable phone nor email gets
      ``"line-<n>"``, which is only as stable as the file's line order.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
from array import array
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Final, Literal
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, DOT_ATOM_TEXT
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from crisiscomms.errors import AudienceError
from crisiscomms.locales import negotiate_locale

__all__ = [
    "CHANNELS",
    "EMAIL_INVALID",
    "KNOWN_COLUMNS",
    "PHONE_INVALID",
    "PHONE_NOT_MOBILE",
    "TIMEZONE_UNKNOWN",
    "Audience",
    "AudienceOptions",
    "MalformedRow",
    "RawRecipient",
    "Recipient",
    "SeenAddresses",
    "address_key",
    "make_recipient",
    "normalise_email",
    "normalise_phone",
    "open_audience",
]

PHONE_INVALID: Final = "invalid_phone"
PHONE_NOT_MOBILE: Final = "not_mobile"
EMAIL_INVALID: Final = "invalid_email"
TIMEZONE_UNKNOWN: Final = "unknown_timezone"

#: Channel names a ``channels`` column may list.
CHANNELS: Final = frozenset({"sms", "email", "banner", "voice"})
#: Column names with a meaning; any other column is an extra field.
KNOWN_COLUMNS: Final = ("id", "name", "phone", "email", "locale", "timezone", "channels")

#: A physical line longer than this is reported as malformed, not read into memory.
MAX_LINE_BYTES: Final = 1 << 20
#: A quoted field still open after this many lines is taken for a stray quote.
MAX_RECORD_LINES: Final = 100

_CSV_SUFFIXES: Final = frozenset({".csv", ".txt"})
_JSONL_SUFFIXES: Final = frozenset({".jsonl", ".ndjson"})
_DELIMITERS: Final = (",", ";", "\t")
_HEADER_HINT: Final = 'Rename the column that holds phone numbers to "phone" or e-mail addresses to "email".'
_UTF8_HINT: Final = 'save the file as UTF-8 (in Excel: "CSV UTF-8")'


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


@dataclass(frozen=True, slots=True)
class MalformedRow:
    """A record that could not be read; the run goes on without it.

    ``reason`` does not repeat the line; ``str()`` gives ``"line 7: <reason>"``.
    """

    line: int
    reason: str

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


# ------------------------------------------------------------------ dedupe keys

_PHONE_CHANNELS: Final = frozenset({"sms", "voice"})
_EMAIL_CHANNELS: Final = frozenset({"email"})
_E164: Final = re.compile(r"\+[1-9][0-9]{1,14}")


def address_key(channel: str, address: str, default_region: str | None = None) -> int:
    """A 64-bit key (BLAKE2b, 8 bytes) of ``address`` on ``channel``.

    ``"email"``: the address lower-cased (pass the normalised form, e.g.
    :attr:`Recipient.email`; the key only folds case). ``"sms"``: the E.164 number;
    another spelling is normalised first (a national one needs ``default_region``),
    and what does not parse is keyed by its digits. The channel is part of the key,
    so the same number on two channels gives two keys.
    """
    text = address.strip()
    if channel in _EMAIL_CHANNELS:
        canonical = text.lower()
    elif channel in _PHONE_CHANNELS:
        if _E164.fullmatch(text) is not None:
            canonical = text
        else:
            e164, _ = normalise_phone(text, default_region or "ZZ")
            canonical = e164 or "".join(ch for ch in text if ch.isdigit() or ch == "+")
    else:
        raise ValueError(f"channel {channel!r} has no address to key (use 'sms' or 'email')")
    digest = hashlib.blake2b(f"{channel}\x00{canonical}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class KeySet:
    """A set of non-zero 64-bit keys in one flat array (open addressing, linear probing).

    About 13 bytes a key at most (8-byte slots, at least half free), against
    about 78 for a Python ``set`` of ints: a million recipients on two channels
    fit in ~32 MB instead of ~156 MB.
    """

    __slots__ = ("_count", "_mask", "_slots")

    def __init__(self, capacity: int = 1 << 16) -> None:
        size = 1 << max(4, (capacity - 1).bit_length())
        self._slots = array("Q", bytes(8 * size))
        self._mask = size - 1
        self._count = 0

    def add(self, key: int) -> bool:
        """Insert ``key``; True when it was not there yet."""
        key = key or 1  # 0 marks an empty slot
        slots, mask = self._slots, self._mask
        index = key & mask
        while True:
            found = slots[index]
            if found == 0:
                break
            if found == key:
                return False
            index = (index + 1) & mask
        slots[index] = key
        self._count += 1
        if self._count * 2 > mask:
            self._grow()
        return True

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        key = key or 1
        slots, mask = self._slots, self._mask
        index = key & mask
        while (found := slots[index]) != 0:
            if found == key:
                return True
            index = (index + 1) & mask
        return False

    def _grow(self) -> None:
        old = self._slots
        self.__init__(2 * len(old))  # type: ignore[misc]
        for key in old:
            if key:
                self.add(key)

    def __len__(self) -> int:
        return self._count


class SeenAddresses:
    """Addresses already planned, by channel; keeps only 64-bit keys (see :class:`KeySet`)."""

    __slots__ = ("_keys", "_region")

    def __init__(self, default_region: str | None = None) -> None:
        self._keys = KeySet()
        self._region = default_region

    def add(self, channel: str, address: str) -> bool:
        """Record ``address``; True when it had not been seen on ``channel``."""
        return self._keys.add(address_key(channel, address, self._region))

    def seen(self, channel: str, address: str) -> bool:
        return address_key(channel, address, self._region) in self._keys

    def __len__(self) -> int:
        return len(self._keys)


# ----------------------------------------------------------------- line reading


class _BadLine(Exception):
    """A physical line that cannot be handed to the parser."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


class _RecordTooLong(Exception):
    """A record pulled more than MAX_RECORD_LINES lines."""


def _decode_error_reason(raw: bytes, error: UnicodeDecodeError, line: int | None) -> str:
    column = len(raw[: error.start].decode("utf-8", errors="replace")) + 1
    where = f"line {line}, column {column}" if line is not None else f"column {column}"
    return f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at {where})"


class _Lines:
    """Decoded physical lines of a binary file, one at a time, for ``csv.reader``.

    An iterator class rather than a generator so that it can raise for one line
    (undecodable, too long, record too long) and go on with the next. It keeps
    the lines of the current record so that they can be read again when the
    record turns out to be a stray quote.
    """

    __slots__ = ("_file", "_next_line", "_record", "_replay", "eof", "record_start")

    def __init__(self, file: BinaryIO, first_line: int) -> None:
        self._file = file
        self._next_line = first_line
        self._replay: deque[tuple[int, str]] = deque()
        self._record: list[tuple[int, str]] = []
        self.record_start = first_line
        self.eof = False

    def begin_record(self) -> int:
        """Forget the previous record; return the line number the next one starts on."""
        self._record = []
        self.eof = False
        self.record_start = self._replay[0][0] if self._replay else self._next_line
        return self.record_start

    def replay_after_first(self) -> None:
        """Read the current record's lines after its first one again."""
        self._replay.extendleft(reversed(self._record[1:]))
        self._record = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if len(self._record) >= MAX_RECORD_LINES:
            raise _RecordTooLong
        if self._replay:
            item = self._replay.popleft()
            self._record.append(item)
            return item[1]
        raw = self._file.readline(MAX_LINE_BYTES)
        if not raw:
            self.eof = True
            raise StopIteration
        number = self._next_line
        self._next_line = number + 1
        if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
            _skip_rest_of_line(self._file)
            raise _BadLine(number, f"longer than {MAX_LINE_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            where = None if number == self.record_start else number
            raise _BadLine(number, _decode_error_reason(raw, error, where)) from None
        self._record.append((number, text))
        return text


def _skip_rest_of_line(file: BinaryIO) -> None:
    while True:
        chunk = file.readline(MAX_LINE_BYTES)
        if not chunk or chunk.endswith(b"\n"):
            return


# --------------------------------------------------------------------- audience


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each known column sits in a CSV row (-1: absent)."""

    width: int
    id: int
    name: int
    phone: int
    email: int
    locale: int
    timezone: int
    channels: int
    extras: tuple[tuple[int, str], ...]


class Audience:
    """The opened audience file: iterate it for ``Recipient | MalformedRow``.

    A context manager that closes the file. Iteration streams from the first data
    line; a finished iteration may be started again, two at once may not.
    """

    def __init__(
        self,
        path: Path,
        file: BinaryIO,
        options: AudienceOptions,
        *,
        format: Literal["csv", "jsonl"],
        columns: tuple[str, ...],
        data_offset: int,
        data_line: int,
        delimiter: str | None = None,
        layout: _Layout | None = None,
    ) -> None:
        self.path = path
        self.format = format
        self.columns = columns
        self.delimiter = delimiter
        self.options = options
        self.extra_columns: tuple[str, ...] = tuple(
            name for name in columns if name and name.lower() not in KNOWN_COLUMNS
        )
        self._file = file
        self._data_offset = data_offset
        self._data_line = data_line
        self._layout = layout
        self._iterating = False

    # -- context manager

    def __enter__(self) -> Audience:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed

    # -- iteration

    def __iter__(self) -> Iterator[Item]:
        if self._iterating:
            raise RuntimeError("this audience is already being iterated")
        if self._file.closed:
            raise ValueError("the audience file is closed")
        self._iterating = True
        self._file.seek(self._data_offset)
        rows = self._csv_rows() if self.format == "csv" else self._jsonl_rows()
        try:
            yield from rows
        except OSError as error:
            raise AudienceError(f"{self.path}: reading failed ({error.strerror or error})") from error
        finally:
            self._iterating = False

    def _csv_rows(self) -> Iterator[Item]:
        assert self._layout is not None and self.delimiter is not None
        lines = _Lines(self._file, self._data_line)
        reader = csv.reader(lines, delimiter=self.delimiter, skipinitialspace=True)
        make = self._csv_recipient
        width = self._layout.width
        while True:
            start = lines.begin_record()
            try:
                row = next(reader)
            except StopIteration:
                return
            except _BadLine as bad:
                yield MalformedRow(start, bad.reason)
                continue
            except _RecordTooLong:
                lines.replay_after_first()
                yield MalformedRow(
                    start,
                    f"a quoted field opened on this line is not closed within"
                    f" {MAX_RECORD_LINES} lines; reading goes on with the next line",
                )
                continue
            except csv.Error as error:
                yield MalformedRow(start, f"not valid CSV ({error})")
                continue
            if lines.eof:
                # csv.reader only asks for a line after the end of a record when
                # a quoted field is still open: it ran into the end of the file.
                lines.replay_after_first()
                yield MalformedRow(
                    start,
                    "a quoted field opened on this line is not closed before the end"
                    " of the file; reading goes on with the next line",
                )
                continue
            if len(row) != width:
                if not any(field.strip() for field in row):
                    continue  # blank line
                if len(row) < width or any(field.strip() for field in row[width:]):
                    count = len(row)
                    plural = "" if count == 1 else "s"
                    yield MalformedRow(start, f"{count} field{plural} where the header has {width}")
                    continue
            item = make(row, start)
            if item is not None:
                yield item

    def _csv_recipient(self, row: list[str], line: int) -> Item | None:
        layout = self._layout
        assert layout is not None
        phone_raw = row[layout.phone] if layout.phone >= 0 else ""
        email_raw = row[layout.email] if layout.email >= 0 else ""
        if not phone_raw and not email_raw and not "".join(row).strip():
            return None  # a row of empty fields, as spreadsheets leave behind
        return self._recipient(
            line,
            row[layout.id] if layout.id >= 0 else "",
            row[layout.name] if layout.name >= 0 else "",
            phone_raw,
            email_raw,
            row[layout.locale] if layout.locale >= 0 else "",
            row[layout.timezone] if layout.timezone >= 0 else "",
            row[layout.channels] if layout.channels >= 0 else "",
            {name: row[index].strip() for index, name in layout.extras},
        )

    def _jsonl_rows(self) -> Iterator[Item]:
        lines = _Lines(self._file, self._data_line)
        while True:
            start = lines.begin_record()
            try:
                text = next(lines)
            except StopIteration:
                return
            except _BadLine as bad:
                yield MalformedRow(start, bad.reason)
                continue
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except RecursionError:
                yield MalformedRow(start, "not valid JSON (nested too deeply)")
                continue
            except ValueError as error:
                reason = (
                    f"not valid JSON ({error.msg} at column {error.colno})"
                    if isinstance(error, json.JSONDecodeError)
                    else f"not valid JSON ({error})"
                )
                yield MalformedRow(start, reason)
                continue
            if not isinstance(value, dict):
                yield MalformedRow(start, f"{_json_kind(value)}, not a JSON object")
                continue
            yield self._jsonl_recipient(value, start)

    def _jsonl_recipient(self, obj: dict[str, Any], line: int) -> Item:
        known: dict[str, str] = {}
        extras: dict[str, str] = {}
        for key, value in obj.items():
            if value is None:
                text = ""
            elif isinstance(value, str):
                text = value
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int):
                text = str(value)
            elif isinstance(value, float):
                text = str(int(value)) if value.is_integer() else repr(value)
            else:
                return MalformedRow(
                    line,
                    f'the value of "{key}" is {_json_kind(value)}; only strings, numbers and null are allowed',
                )
            canonical = _canonical_key(key)
            if canonical is None:
                extras[key.strip()] = text.strip()
            elif canonical in known:
                return MalformedRow(line, f'two keys mean "{canonical}"')
            else:
                known[canonical] = text
        get = known.get
        return self._recipient(
            line,
            get("id", ""),
            get("name", ""),
            get("phone", ""),
            get("email", ""),
            get("locale", ""),
            get("timezone", ""),
            get("channels", ""),
            extras,
        )

    def _recipient(
        self,
        line: int,
        id_raw: str,
        name: str,
        phone_raw: str,
        email_raw: str,
        locale_raw: str,
        timezone_raw: str,
        channels_raw: str,
        fields: dict[str, str],
    ) -> Item:
        return make_recipient(self.options, line, RawRecipient(id_raw, name, phone_raw, email_raw, locale_raw,
                                                               timezone_raw, channels_raw, fields))


@dataclass(frozen=True, slots=True)
class RawRecipient:
    """One person as written (an audience row, an exercise entry), before normalisation."""

    id: str = ""
    name: str = ""
    phone: str = ""
    email: str = ""
    locale: str = ""
    timezone: str = ""
    channels: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)


def make_recipient(options: AudienceOptions, line: int, raw: RawRecipient) -> Recipient | MalformedRow:
    """Normalise one person the way an audience row is: phone, e-mail, locale, time zone, channels."""
    channels: frozenset[str] | None = None
    if raw.channels:
        parsed = _parse_channels(raw.channels)
        if isinstance(parsed, str):
            return MalformedRow(line, parsed)
        channels = parsed
    phone, phone_problem = normalise_phone(raw.phone, options.default_region)
    email, email_problem = normalise_email(raw.email)
    timezone_problem = None
    if raw.timezone:
        timezone = _timezone_name(raw.timezone)
        if timezone is None:
            timezone = options.default_timezone
            timezone_problem = TIMEZONE_UNKNOWN
    else:
        timezone = options.default_timezone
    id_text = raw.id.strip()
    return Recipient(
        line,
        id_text or _derived_id(phone, email, line),
        raw.name.strip(),
        phone,
        phone_problem,
        email,
        email_problem,
        negotiate_locale(raw.locale, tuple(options.supported_locales), options.default_locale),
        timezone,
        timezone_problem,
        channels,
        raw.fields,
    )


@lru_cache(maxsize=1024)
def _canonical_key(key: str) -> str | None:
    name = key.strip().lower()
    return name if name in KNOWN_COLUMNS else None


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str):
        return "a JSON string"
    if isinstance(value, bool):
        return "a JSON boolean"
    if value is None:
        return "JSON null"
    return "a JSON number"


# ------------------------------------------------------------------------ opening


def open_audience(path: Path, options: AudienceOptions) -> Audience:
    """Open ``path`` and check its header; rows are read when the result is iterated.

    Raises :class:`AudienceError` when the file does not exist, is a directory,
    cannot be read, is empty, is not UTF-8 in its header, or has no ``phone`` or
    ``email`` column (no ``phone`` or ``email`` key in the first JSON object).
    """
    path = Path(path)
    try:
        file: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by the returned Audience
    except FileNotFoundError:
        raise AudienceError(f"{path}: the audience file does not exist.") from None
    except IsADirectoryError:
        raise AudienceError(f"{path}: is a directory, not an audience file.") from None
    except OSError as error:
        raise AudienceError(f"{path}: the audience file cannot be read ({error.strerror or error}).") from None
    try:
        return _open(path, file, options)
    except BaseException:
        file.close()
        raise


def _open(path: Path, file: BinaryIO, options: AudienceOptions) -> Audience:
    try:
        head = file.read(4)
        file.seek(0)
    except OSError as error:
        raise AudienceError(f"{path}: the audience file cannot be read ({error.strerror or error}).") from None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise AudienceError(f"{path}: the file is UTF-16 encoded; {_UTF8_HINT}.")
    offset = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    file.seek(offset)

    # The first non-blank line: the CSV header, or the first JSON object.
    line = 0
    while True:
        start = file.tell()
        raw = file.readline(MAX_LINE_BYTES)
        if not raw:
            raise AudienceError(f"{path}: the audience file is empty.")
        line += 1
        if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise AudienceError(f"{path}:{line}: the first line is longer than {MAX_LINE_BYTES} bytes.")
        if raw.strip():
            break

    suffix = path.suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        is_jsonl = True
    elif suffix in _CSV_SUFFIXES:
        is_jsonl = False
    else:
        is_jsonl = raw.lstrip().startswith(b"{")

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        what = "first line" if is_jsonl else "header"
        raise AudienceError(
            f"{path}:{line}: the {what} is {_decode_error_reason(raw, error, None)}; {_UTF8_HINT}."
        ) from None

    if is_jsonl:
        return _open_jsonl(path, file, options, text, line, start)
    return _open_csv(path, file, options, text, line, file.tell())


def _open_jsonl(path: Path, file: BinaryIO, options: AudienceOptions, text: str, line: int, start: int) -> Audience:
    try:
        first = json.loads(text)
    except ValueError as error:
        detail = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        raise AudienceError(
            f"{path}:{line}: the first line is not valid JSON ({detail});"
            " a JSON Lines audience has one JSON object per line."
        ) from None
    if not isinstance(first, dict):
        raise AudienceError(
            f"{path}:{line}: the first line is {_json_kind(first)}, not a JSON object;"
            " a JSON Lines audience has one JSON object per line."
        )
    columns = tuple(str(key).strip() for key in first)
    found = {name.lower() for name in columns}
    if "phone" not in found and "email" not in found:
        raise AudienceError(
            f'{path}:{line}: the first object has no "phone" or "email" key'
            f" (found: {', '.join(columns) or 'no keys'})."
            ' Rename the key that holds phone numbers to "phone" or e-mail addresses to "email".'
        )
    return Audience(path, file, options, format="jsonl", columns=columns, data_offset=start, data_line=line)


def _split_header(text: str, delimiter: str) -> list[str]:
    return [name.strip() for name in next(csv.reader([text], delimiter=delimiter), [])]


def _open_csv(path: Path, file: BinaryIO, options: AudienceOptions, text: str, line: int, data_offset: int) -> Audience:
    body = text.rstrip("\r\n")
    if "\r" in body:
        raise AudienceError(
            f"{path}: the lines end in a carriage return only (old Mac format);"
            " save the file as CSV UTF-8 with ordinary line endings."
        )
    try:
        candidates = [(delimiter, _split_header(body, delimiter)) for delimiter in _DELIMITERS]
    except csv.Error as error:
        raise AudienceError(f"{path}:{line}: the header is not valid CSV ({error}).") from None

    def score(candidate: tuple[str, list[str]]) -> tuple[int, int]:
        names = candidate[1]
        return sum(name.lower() in KNOWN_COLUMNS for name in names), len(names)

    delimiter, columns = max(candidates, key=score)  # max keeps the first of equals
    lowered = [name.lower() for name in columns]
    if "phone" not in lowered and "email" not in lowered:
        raise AudienceError(
            f'{path}:{line}: the header has no "phone" or "email" column'
            f" (found: {', '.join(name for name in columns if name) or 'no names'}). {_HEADER_HINT}"
        )
    seen: dict[str, int] = {}
    for index, name in enumerate(columns):
        if not name:
            continue
        key = name.lower() if name.lower() in KNOWN_COLUMNS else name
        if key in seen:
            raise AudienceError(
                f'{path}:{line}: the header has the column "{name}" twice (columns {seen[key] + 1} and {index + 1}).'
            )
        seen[key] = index

    def at(name: str) -> int:
        return seen.get(name, -1)

    layout = _Layout(
        width=len(columns),
        id=at("id"),
        name=at("name"),
        phone=at("phone"),
        email=at("email"),
        locale=at("locale"),
        timezone=at("timezone"),
        channels=at("channels"),
        extras=tuple((index, name) for index, name in enumerate(columns) if name and name.lower() not in KNOWN_COLUMNS),
    )
    return Audience(
        path,
        file,
        options,
        format="csv",
        columns=tuple(columns),
        data_offset=data_offset,
        data_line=line + 1,
        delimiter=delimiter,
        layout=layout,
    )
