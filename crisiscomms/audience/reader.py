"""The streaming reader: CSV and JSON Lines, line by line from the raw bytes, one record at a time."""

from __future__ import annotations

import codecs
import csv
import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Final, Literal

from crisiscomms.errors import AudienceError
from crisiscomms.locales import negotiate_locale

from .model import AudienceOptions, Item, MalformedRow, Recipient
from .normalise import (
    KNOWN_COLUMNS,
    PHONE_INVALID,
    TIMEZONE_UNKNOWN,
    _derived_id,
    _parse_channels,
    _timezone_name,
    normalise_email,
    normalise_phone,
    phone_problem_detail,
)

#: A physical line longer than this is reported as malformed, not read into memory.
MAX_LINE_BYTES: Final = 1 << 20
#: A quoted field still open after this many lines is taken for a stray quote.
MAX_RECORD_LINES: Final = 100

_CSV_SUFFIXES: Final = frozenset({".csv", ".txt"})
_JSONL_SUFFIXES: Final = frozenset({".jsonl", ".ndjson"})
_DELIMITERS: Final = (",", ";", "\t")
_HEADER_HINT: Final = 'Rename the column that holds phone numbers to "phone" or e-mail addresses to "email".'
_UTF8_HINT: Final = 'save the file as UTF-8 (in Excel: "CSV UTF-8")'

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

    def reopen(self) -> Audience:
        """This audience opened again, with a file offset of its own: the file this one reads, even when
        its path names another file by now (Linux: through ``/proc/self/fd``; elsewhere the path)."""
        same_file = Path(f"/proc/self/fd/{self._file.fileno()}")
        try:
            file: BinaryIO = open(same_file if same_file.exists() else self.path, "rb")  # noqa: SIM115 - closed by it
        except OSError as error:
            raise AudienceError(f"{self.path}: cannot be read ({error.strerror or error})") from error
        return Audience(self.path, file, self.options, format=self.format, columns=self.columns,
                        data_offset=self._data_offset, data_line=self._data_line, delimiter=self.delimiter,
                        layout=self._layout)

    @property
    def closed(self) -> bool:
        return self._file.closed

    # -- iteration

    def __iter__(self) -> Iterator[Item]:
        options = self.options
        for record in self.records():
            assert record is not None
            yield record if isinstance(record, MalformedRow) else make_recipient(options, record[0], record[1])

    def records(self, wanted: Callable[[int], bool] | None = None) -> Iterator[Record | None]:
        """The records as written, in file order: ``(line, RawRecipient)`` or a :class:`MalformedRow`.

        Iterating the audience is these records, each normalised with :func:`make_recipient`; planning
        on several cores reads them in every worker and normalises only its own share: ``wanted(index)``
        False (index: the record's place, from 0) lets a CSV record be None instead of its values."""
        if self._iterating:
            raise RuntimeError("this audience is already being iterated")
        if self._file.closed:
            raise ValueError("the audience file is closed")
        self._iterating = True
        self._file.seek(self._data_offset)
        try:
            if self.format == "csv":
                make = self._csv_record
                for index, row in enumerate(self._csv_rows()):  # a record's values only where they are wanted
                    if isinstance(row, MalformedRow):
                        yield row
                    else:
                        yield make(row[1], row[0]) if wanted is None or wanted(index) else None
            else:
                yield from self._jsonl_rows()
        except OSError as error:
            raise AudienceError(f"{self.path}: reading failed ({error.strerror or error})") from error
        finally:
            self._iterating = False

    def _csv_rows(self) -> Iterator[tuple[int, list[str]] | MalformedRow]:
        """Each CSV record: its first line and its fields, or why it is malformed (blank rows left out)."""
        assert self._layout is not None and self.delimiter is not None
        lines = _Lines(self._file, self._data_line)
        reader = csv.reader(lines, delimiter=self.delimiter, skipinitialspace=True)
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
            if self._empty(row):
                continue  # a row of empty fields, as spreadsheets leave behind
            yield start, row

    def _empty(self, row: list[str]) -> bool:
        layout = self._layout
        assert layout is not None
        return ((layout.phone < 0 or not row[layout.phone]) and (layout.email < 0 or not row[layout.email])
                and not "".join(row).strip())

    def _csv_record(self, row: list[str], line: int) -> Record:
        layout = self._layout
        assert layout is not None
        return line, RawRecipient(
            row[layout.id] if layout.id >= 0 else "",
            row[layout.name] if layout.name >= 0 else "",
            row[layout.phone] if layout.phone >= 0 else "",
            row[layout.email] if layout.email >= 0 else "",
            row[layout.locale] if layout.locale >= 0 else "",
            row[layout.timezone] if layout.timezone >= 0 else "",
            row[layout.channels] if layout.channels >= 0 else "",
            {name: row[index].strip() for index, name in layout.extras},
        )

    def _jsonl_rows(self) -> Iterator[Record]:
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
            yield self._jsonl_record(value, start)

    def _jsonl_record(self, obj: dict[str, Any], line: int) -> Record:
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
        return line, RawRecipient(get("id", ""), get("name", ""), get("phone", ""), get("email", ""),
                                  get("locale", ""), get("timezone", ""), get("channels", ""), extras)


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


#: One record of the file as written: its first line and its values, or why it could not be read.
Record = tuple[int, RawRecipient] | MalformedRow


def make_recipient(options: AudienceOptions, line: int, raw: RawRecipient) -> Recipient | MalformedRow:
    """Normalise one person the way an audience row is: phone, e-mail, locale, time zone, channels."""
    channels: frozenset[str] | None = None
    if raw.channels:
        parsed = _parse_channels(raw.channels)
        if isinstance(parsed, str):
            return MalformedRow(line, parsed, raw.id.strip())
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
        dict(raw.fields),
        phone_problem_detail(raw.phone, options.default_region) if phone_problem == PHONE_INVALID else "",
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
