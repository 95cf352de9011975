"""Streaming reader of the audience file of ``crisiscomms send --audience FILE``.

The package: :mod:`.reader` (CSV and JSON Lines, line by line), :mod:`.normalise`
(one value at a time: phone, e-mail, time zone, channels, id), :mod:`.dedupe`
(64-bit address keys and the set of those seen) and :mod:`.model` (what a row
becomes). Everything is importable from ``crisiscomms.audience``.

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
      second pass. Unparseable or invalid → ``phone_problem="invalid_phone"``,
      ``phone=None`` and ``phone_detail`` saying why in phonenumbers' own terms
      ("too short for SE", "not valid in SE", "unknown country code").
      Types that cannot receive SMS — FIXED_LINE, TOLL_FREE,
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

from .dedupe import KeySet, SeenAddresses, address_key
from .model import AudienceOptions, Item, MalformedRow, Recipient
from .normalise import (
    CHANNELS,
    EMAIL_INVALID,
    KNOWN_COLUMNS,
    PHONE_INVALID,
    PHONE_NOT_MOBILE,
    TIMEZONE_UNKNOWN,
    normalise_email,
    normalise_phone,
    phone_problem_detail,
)
from .reader import MAX_LINE_BYTES, MAX_RECORD_LINES, Audience, RawRecipient, Record, make_recipient, open_audience

__all__ = [
    "CHANNELS",
    "EMAIL_INVALID",
    "KNOWN_COLUMNS",
    "MAX_LINE_BYTES",
    "MAX_RECORD_LINES",
    "PHONE_INVALID",
    "PHONE_NOT_MOBILE",
    "TIMEZONE_UNKNOWN",
    "Audience",
    "AudienceOptions",
    "Item",
    "KeySet",
    "MalformedRow",
    "RawRecipient",
    "Recipient",
    "Record",
    "SeenAddresses",
    "address_key",
    "make_recipient",
    "normalise_email",
    "normalise_phone",
    "open_audience",
    "phone_problem_detail",
]
