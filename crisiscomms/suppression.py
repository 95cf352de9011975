"""Suppression (opt-out) lists: addresses that must not be messaged.

A suppression file is either

* a plain list: one phone number or e-mail address per line; blank lines and
  lines starting with ``#`` are ignored (so is anything after `` #`` on a line); or
* a CSV file (comma, semicolon or tab) whose header has a ``phone``, ``email``
  or ``address`` column; every non-empty value in those columns is an entry.

An entry with an ``@`` is an e-mail address, anything else a phone number; both
are normalised exactly as the audience is (:func:`crisiscomms.audience.normalise_phone`
and :func:`~crisiscomms.audience.normalise_email`), so ``070-123 45 67`` in the
list suppresses ``+46 70 123 45 67`` in the audience. A valid number suppresses
even when it is not a mobile number.

Policy on problems: a file that cannot be opened or read raises
:class:`AudienceError` naming it — without the list the tool cannot know whom not
to message, and the operator can fix a path in seconds. A single entry that is
neither a phone number nor an e-mail address (or a line that is not UTF-8) must
not block a crisis send: it is skipped and described in :attr:`Suppression.problems`
(``file:line: "xyz" is neither a phone number nor an e-mail address``) for the
plan to show as a warning.

Only 64-bit keys (:func:`crisiscomms.audience.address_key`) are kept in memory.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Final

from crisiscomms.audience import address_key, normalise_email, normalise_phone
from crisiscomms.errors import AudienceError

__all__ = ["Suppression", "append_suppressed_phone", "load_suppression"]

_HEADER_COLUMNS: Final = frozenset({"phone", "email", "address"})
_DELIMITERS: Final = (",", ";", "\t")
_E164: Final = re.compile(r"\+[1-9][0-9]{1,14}")


class Suppression:
    """The addresses that must not be messaged, as 64-bit keys."""

    __slots__ = ("_keys", "default_region", "problems", "sources")

    def __init__(self, default_region: str) -> None:
        self.default_region = default_region
        self.problems: list[str] = []
        self.sources: list[Path] = []
        self._keys: set[int] = set()

    def contains(self, channel: str, address: str) -> bool:
        """Whether ``address`` is suppressed on ``channel``.

        ``"sms"`` checks phone numbers (E.164, or any spelling valid in the default
        region), ``"email"`` e-mail addresses (case-insensitively). Other channels
        raise :class:`ValueError`: they have no address to suppress.
        """
        return address_key(channel, address, self.default_region) in self._keys

    def __contains__(self, key: object) -> bool:
        """Whether an :func:`~crisiscomms.audience.address_key` is suppressed."""
        return key in self._keys

    def merge(self, other: Suppression) -> None:
        """Also suppress everything ``other`` suppresses."""
        self._keys |= other._keys
        self.problems.extend(other.problems)
        self.sources.extend(other.sources)

    def add_phone(self, e164: str) -> None:
        """Suppress a number, e.g. one that replied STOP (Twilio error 21610)."""
        self._keys.add(address_key("sms", e164, self.default_region))

    def add_email(self, address: str) -> None:
        """Suppress a normalised e-mail address."""
        self._keys.add(address_key("email", address))

    def add_entry(self, entry: str) -> bool:
        """Suppress a phone number or e-mail address in any spelling.

        False (and nothing suppressed) when ``entry`` is neither.
        """
        if "@" in entry:
            email, _ = normalise_email(entry)
            if email is None:
                return False
            self.add_email(email)
            return True
        e164, _ = normalise_phone(entry, self.default_region)
        if e164 is None:
            return False
        self.add_phone(e164)
        return True

    def __len__(self) -> int:
        return len(self._keys)


def load_suppression(paths: Sequence[Path], default_region: str, *, missing_ok: bool = False) -> Suppression:
    """Read every file of ``paths`` into one :class:`Suppression`.

    ``missing_ok=True`` treats a file that does not exist as empty (for the list
    :func:`append_suppressed_phone` creates on the first STOP); any other file that
    cannot be read raises :class:`AudienceError`.
    """
    suppression = Suppression(default_region)
    for path in paths:
        path = Path(path)
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed by the with-block below
        except FileNotFoundError:
            if missing_ok:
                continue
            raise AudienceError(f"{path}: the suppression list does not exist.") from None
        except IsADirectoryError:
            raise AudienceError(f"{path}: is a directory, not a suppression list.") from None
        except OSError as error:
            raise AudienceError(f"{path}: the suppression list cannot be read ({error.strerror or error}).") from None
        with file:
            try:
                _load_file(path, file, suppression)
            except OSError as error:
                raise AudienceError(
                    f"{path}: the suppression list cannot be read ({error.strerror or error})."
                ) from None
        suppression.sources.append(path)
    return suppression


def _lines(path: Path, file: BinaryIO, problems: list[str]) -> Iterator[tuple[int, str]]:
    """Decoded lines with their numbers; an undecodable line becomes a problem.

    A file that is not UTF-8 text at all (UTF-16, binary) is refused: skipping every
    line would silently message everyone who opted out."""
    decoded = undecodable = 0
    for number, raw in enumerate(file, start=1):
        if number == 1 and raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise AudienceError(f"{path}:1: the suppression list is UTF-16; save it as UTF-8 (nobody was messaged)")
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            undecodable += 1
            problems.append(f"{path}:{number}: not valid UTF-8 (byte 0x{raw[error.start]:02x}); line skipped")
            continue
        decoded += 1
        yield number, text
    if undecodable > decoded:
        raise AudienceError(f"{path}: the suppression list is not UTF-8 text; save it as UTF-8 (nobody was messaged)")


def _load_file(path: Path, file: BinaryIO, suppression: Suppression) -> None:
    problems = suppression.problems
    columns: list[int] | None = None  # CSV: the indices of the address columns
    delimiter = ","
    first = True
    for number, line in _lines(path, file, problems):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if first:
            first = False
            header = _csv_header(text)
            if header is not None:
                delimiter, columns = header
                continue
        if columns is None:
            entries = [text.split(" #", 1)[0].strip()]
        else:
            try:
                row = next(csv.reader([text], delimiter=delimiter, skipinitialspace=True))
            except csv.Error as error:
                problems.append(f"{path}:{number}: not valid CSV ({error}); line skipped")
                continue
            entries = [row[index].strip() for index in columns if index < len(row)]
            if not any(entries) and len(row) == 1:
                # A bare entry appended to a CSV list (append_suppressed_phone).
                entries = [row[0].strip()]
        for entry in entries:
            if entry and not suppression.add_entry(entry):
                problems.append(f'{path}:{number}: "{entry}" is neither a phone number nor an e-mail address')


def _csv_header(text: str) -> tuple[str, list[int]] | None:
    """``(delimiter, address column indices)`` when ``text`` is a CSV header."""
    for delimiter in _DELIMITERS:
        names = [name.strip().lower() for name in text.split(delimiter)]
        indices = [index for index, name in enumerate(names) if name in _HEADER_COLUMNS]
        if indices:
            return delimiter, indices
    return None


def append_suppressed_phone(path: Path, e164: str) -> None:
    """Append ``e164`` to the suppression list at ``path`` (created with its parents).

    Written with one ``write`` on a file opened for appending and flushed to disk:
    an opt-out must survive a crash right after it was recorded.
    """
    if _E164.fullmatch(e164) is None:
        raise ValueError(f"not an E.164 number: {e164!r}")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as file:
            needs_newline = file.tell() > 0 and not _ends_with_newline(path)
            file.write((("\n" if needs_newline else "") + e164 + "\n").encode("ascii"))
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        raise AudienceError(f"{path}: cannot add {e164} to the suppression list ({error.strerror or error}).") from None


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"
