"""Tests of crisiscomms.audience: formats, malformed rows, normalisation, dedupe keys."""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crisiscomms import audience
from crisiscomms.audience import (
    Audience,
    AudienceOptions,
    MalformedRow,
    Recipient,
    SeenAddresses,
    address_key,
    normalise_email,
    normalise_phone,
    open_audience,
)
from crisiscomms.errors import AudienceError, ExitCode

DATA = Path(__file__).parent / "data" / "audience"
OPTIONS = AudienceOptions(
    default_region="SE",
    default_timezone="Europe/Stockholm",
    supported_locales=("en", "sv", "el", "nb"),
    default_locale="en",
)
HEADER = "id,name,phone,email,locale,timezone,channels,city\n"


def read(path: Path, options: AudienceOptions = OPTIONS) -> list[Recipient | MalformedRow]:
    with open_audience(path, options) as opened:
        return list(opened)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def recipients(items: list[Recipient | MalformedRow]) -> list[Recipient]:
    return [item for item in items if isinstance(item, Recipient)]


def malformed(items: list[Recipient | MalformedRow]) -> list[MalformedRow]:
    return [item for item in items if isinstance(item, MalformedRow)]


def one(tmp_path: Path, row: str, header: str = HEADER) -> Recipient:
    items = read(write(tmp_path, "one.csv", header + row + "\n"))
    assert len(items) == 1
    item = items[0]
    assert isinstance(item, Recipient), item
    return item


# ----------------------------------------------------------------- CSV formats


def test_bom_and_semicolon_file() -> None:
    with open_audience(DATA / "bom_semicolon.csv", OPTIONS) as opened:
        assert opened.delimiter == ";"
        assert opened.columns == ("id", "Name", "Phone", "Email", "Locale", "Timezone", "Postort")
        assert opened.extra_columns == ("Postort",)
        items = list(opened)
    assert items == [
        Recipient(
            line=2,
            id="1",
            name="Åsa Öberg",
            phone="+46701234567",
            phone_problem=None,
            email=None,
            email_problem=None,
            locale="sv",
            timezone="Europe/Stockholm",
            timezone_problem=None,
            channels=None,
            fields={"Postort": "Göteborg"},
        ),
        Recipient(
            line=3,
            id="2",
            name="Νίκος",
            phone="+306912345678",
            phone_problem=None,
            email="Nikos@example.gr",
            email_problem=None,
            locale="el",
            timezone="Europe/Stockholm",
            timezone_problem=None,
            channels=None,
            fields={"Postort": "Αθήνα"},
        ),
    ]


def test_comma_file() -> None:
    with open_audience(DATA / "comma.csv", OPTIONS) as opened:
        assert opened.delimiter == ","
        assert opened.extra_columns == ()
        items = list(opened)
    assert [(r.line, r.id, r.phone, r.email, r.locale, r.channels) for r in recipients(items)] == [
        (2, "1", "+46701234567", "Anna.Svensson@example.com", "sv", frozenset({"sms", "email"})),
        (3, "2", "+46701234568", "bo@example.org", "en", frozenset({"banner"})),
        (5, "3", None, "cia@example.org", "en", None),  # line 4 is blank
    ]
    assert malformed(items) == []


def test_tab_delimiter_is_detected(tmp_path: Path) -> None:
    path = write(tmp_path, "tabs.txt", "name\tphone\nAnna\t0701234567\n")
    with open_audience(path, OPTIONS) as opened:
        assert opened.delimiter == "\t"
        [item] = list(opened)
    assert isinstance(item, Recipient) and item.phone == "+46701234567"


def test_delimiter_is_the_one_that_finds_known_columns(tmp_path: Path) -> None:
    # Splitting on the comma gives two columns, neither known; the semicolon finds three.
    path = write(tmp_path, "a.csv", "name;phone;Ort, Län\nAnna;0701234567;Umeå, Västerbotten\n")
    with open_audience(path, OPTIONS) as opened:
        assert opened.delimiter == ";"
        assert opened.extra_columns == ("Ort, Län",)
        [item] = list(opened)
    assert isinstance(item, Recipient) and item.fields == {"Ort, Län": "Umeå, Västerbotten"}


def test_quoted_multiline_field_keeps_line_numbers() -> None:
    items = read(DATA / "multiline.csv")
    assert [(item.line, type(item).__name__) for item in items] == [
        (2, "Recipient"),
        (5, "Recipient"),
        (6, "MalformedRow"),
        (7, "Recipient"),
    ]
    first, second, bad, fourth = items
    assert isinstance(first, Recipient) and first.fields == {"note": "first\nsecond\nthird"}
    assert isinstance(second, Recipient) and second.id == "2"
    assert bad == MalformedRow(6, "3 fields where the header has 5")
    assert isinstance(fourth, Recipient) and fourth.fields == {"note": "x\r\ny"}


def test_wrong_field_count_is_malformed_with_exact_reason(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", HEADER + "1,Anna,0701234567,,,,,Umeå,extra\n2,Bo\n3,Cia,0701234569,,,,,,\n")
    items = read(path)
    assert items[:2] == [
        MalformedRow(2, "9 fields where the header has 8"),
        MalformedRow(3, "2 fields where the header has 8"),
    ]
    # Empty fields beyond the header (a spreadsheet's trailing separators) are harmless.
    assert isinstance(items[2], Recipient) and items[2].id == "3"
    assert str(items[0]) == "line 2: 9 fields where the header has 8"


def test_undecodable_line_is_malformed_and_reading_goes_on() -> None:
    items = read(DATA / "bad_bytes.csv")
    assert [item.line for item in items] == [2, 3, 4]
    assert items[1] == MalformedRow(3, "not valid UTF-8 (byte 0xff at column 4)")
    assert str(items[1]) == "line 3: not valid UTF-8 (byte 0xff at column 4)"
    assert isinstance(items[0], Recipient) and isinstance(items[2], Recipient)
    assert items[2].email == "cia@example.org"


def test_undecodable_column_counts_characters_not_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"name,phone\n" + "Åsa Ö".encode() + b"\xe4,0701234567\n")
    assert read(path) == [MalformedRow(2, "not valid UTF-8 (byte 0xe4 at column 6)")]


def test_undecodable_line_inside_a_quoted_field(tmp_path: Path) -> None:
    content = b'name,phone,note\nAnna,0701234567,"one\ntw\xff\nthree"\nBo,0701234568,x\n'
    items = read(write(tmp_path, "a.csv", content))
    assert items[0] == MalformedRow(2, "not valid UTF-8 (byte 0xff at line 3, column 3)")
    # The rest of the broken record is read as what it looks like; then all is well.
    assert items[-1] == one_recipient_like(items[-1], line=5, phone="+46701234568")


def one_recipient_like(item: Recipient | MalformedRow, *, line: int, phone: str) -> Recipient | MalformedRow:
    assert isinstance(item, Recipient) and item.line == line and item.phone == phone
    return item


def test_stray_quote_at_end_of_file_does_not_swallow_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'name,phone\nAnna,"0701234567\nBo,0701234568\nCia,0701234569\n')
    items = read(path)
    assert items[0] == MalformedRow(
        2,
        "a quoted field opened on this line is not closed before the end of the file;"
        " reading goes on with the next line",
    )
    assert [(r.line, r.phone) for r in recipients(items)] == [(3, "+46701234568"), (4, "+46701234569")]


def test_quoted_field_closing_on_the_last_line_without_newline(tmp_path: Path) -> None:
    closed = read(write(tmp_path, "a.csv", 'name,phone,note\nA,0701234567,"x\ny"'))
    assert [(r.line, r.fields) for r in recipients(closed)] == [(2, {"note": "x\ny"})]
    unclosed = read(write(tmp_path, "b.csv", 'name,phone,note\nA,0701234567,"x\ny'))
    assert unclosed == [
        MalformedRow(
            2,
            "a quoted field opened on this line is not closed before the end of the file;"
            " reading goes on with the next line",
        ),
        MalformedRow(3, "1 field where the header has 3"),
    ]


def test_stray_quote_is_given_up_after_max_record_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audience.reader, "MAX_RECORD_LINES", 3)
    rows = "".join(f"P{i},07012345{i:02d}\n" for i in range(10))
    path = write(tmp_path, "a.csv", 'name,phone\nAnna,"0701234567\n' + rows)
    items = read(path)
    assert items[0] == MalformedRow(
        2, "a quoted field opened on this line is not closed within 3 lines; reading goes on with the next line"
    )
    assert [r.line for r in recipients(items)] == list(range(3, 13))


def test_overlong_line_is_malformed_without_reading_it_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audience.reader, "MAX_LINE_BYTES", 64)
    path = write(tmp_path, "a.csv", "name,phone\n" + "x" * 200 + ",0701234567\nBo,0701234568\n")
    items = read(path)
    assert items[0] == MalformedRow(2, "longer than 64 bytes")
    assert isinstance(items[1], Recipient) and items[1].line == 3


def test_blank_and_empty_rows_are_skipped_silently(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "name;phone;city\n\n   \n;;\n\r\nBo;0701234568;x\n")
    items = read(path)
    assert len(items) == 1
    assert isinstance(items[0], Recipient) and items[0].line == 6


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "name,phone\r\nAnna,070-123 45 67\r\nBo,0701234568\r\n")
    assert [(r.line, r.name, r.phone) for r in recipients(read(path))] == [
        (2, "Anna", "+46701234567"),
        (3, "Bo", "+46701234568"),
    ]


def test_audience_iterates_again_but_not_twice_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "name,phone\nAnna,0701234567\nBo,0701234568\n")
    with open_audience(path, OPTIONS) as opened:
        assert list(opened) == list(opened)
        first = iter(opened)
        next(first)
        with pytest.raises(RuntimeError, match="already being iterated"):
            next(iter(opened))
    assert opened.closed


# ------------------------------------------------------------ file-level errors


def test_missing_phone_and_email_header_is_an_audience_error() -> None:
    path = DATA / "missing_header.csv"
    with pytest.raises(AudienceError) as caught:
        open_audience(path, OPTIONS)
    assert str(caught.value) == (
        f'{path}:1: the header has no "phone" or "email" column (found: id, name, mobile).'
        ' Rename the column that holds phone numbers to "phone" or e-mail addresses to "email".'
    )
    assert caught.value.exit_code == ExitCode.INPUT


def test_header_is_checked_before_any_row_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "audience.csv", "\n\nID ; Namn ; Mobil\n1;A;0701234567\n")
    with pytest.raises(AudienceError) as caught:
        open_audience(path, OPTIONS)
    assert str(caught.value) == (
        f'{path}:3: the header has no "phone" or "email" column (found: ID, Namn, Mobil).'
        ' Rename the column that holds phone numbers to "phone" or e-mail addresses to "email".'
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "{path}: the audience file is empty."),
        (b"\xef\xbb\xbf\n  \n", "{path}: the audience file is empty."),
        (
            "name,phone\n".encode("utf-16"),
            '{path}: the file is UTF-16 encoded; save the file as UTF-8 (in Excel: "CSV UTF-8").',
        ),
        (
            b"namn,t\xe4lefon,phone\n",
            "{path}:1: the header is not valid UTF-8 (byte 0xe4 at column 7); save the file as UTF-8"
            ' (in Excel: "CSV UTF-8").',
        ),
        (
            b"name,phone\rAnna,0701234567\r",
            "{path}: the lines end in a carriage return only (old Mac format);"
            " save the file as CSV UTF-8 with ordinary line endings.",
        ),
        (
            b"name,phone,Phone\n",
            '{path}:1: the header has the column "Phone" twice (columns 2 and 3).',
        ),
    ],
)
def test_unusable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = write(tmp_path, "audience.csv", content)
    with pytest.raises(AudienceError) as caught:
        open_audience(path, OPTIONS)
    assert str(caught.value) == message.format(path=path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(AudienceError) as caught:
        open_audience(missing, OPTIONS)
    assert str(caught.value) == f"{missing}: the audience file does not exist."
    with pytest.raises(AudienceError) as caught:
        open_audience(tmp_path, OPTIONS)
    assert str(caught.value) == f"{tmp_path}: is a directory, not an audience file."


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    assert read(write(tmp_path, "a.csv", "name,email\n")) == []


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown phone region 'XX'"):
        AudienceOptions("XX", "Europe/Stockholm", ("en",), "en")
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Atlantis'"):
        AudienceOptions("SE", "Europe/Atlantis", ("en",), "en")
    with pytest.raises(ValueError, match="default locale 'sv' is not one of"):
        AudienceOptions("SE", "Europe/Stockholm", ("en",), "sv")


# ----------------------------------------------------------------- JSON Lines


def test_jsonl_good_and_bad_lines() -> None:
    with open_audience(DATA / "audience.jsonl", OPTIONS) as opened:
        assert opened.format == "jsonl"
        assert opened.columns == ("id", "name", "phone", "email", "locale", "Postort")
        assert opened.extra_columns == ("Postort",)
        items = list(opened)
    assert malformed(items) == [
        MalformedRow(4, "not valid JSON (Expecting value at column 1)"),
        MalformedRow(5, "a JSON array, not a JSON object"),
        MalformedRow(6, 'the value of "tags" is a JSON array; only strings, numbers and null are allowed'),
        MalformedRow(7, 'unknown channel "fax" in "channels" (known: banner, email, sms, voice)', id="d4"),
    ]
    anna, bo, eve = recipients(items)
    assert (anna.line, anna.id, anna.phone, anna.locale, anna.fields) == (
        1,
        "a1",
        "+46701234567",
        "sv",
        {"Postort": "Umeå"},
    )
    # A number as a JSON number (country code without "+"), null, booleans.
    assert (bo.line, bo.id, bo.phone, bo.email, bo.fields) == (3, "2", "+46701234568", None, {"Medlem": "true"})
    assert (eve.line, eve.email, eve.timezone, eve.phone) == (8, "Eve@example.org", "America/New_York", None)


def test_jsonl_first_object_needs_phone_or_email(tmp_path: Path) -> None:
    path = write(tmp_path, "people.jsonl", '{"id": 1, "mobile": "0701234567"}\n')
    with pytest.raises(AudienceError) as caught:
        open_audience(path, OPTIONS)
    assert str(caught.value) == (
        f'{path}:1: the first object has no "phone" or "email" key (found: id, mobile).'
        ' Rename the key that holds phone numbers to "phone" or e-mail addresses to "email".'
    )


def test_jsonl_first_line_must_be_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, "people.ndjson", "\n[1, 2]\n")
    with pytest.raises(AudienceError) as caught:
        open_audience(path, OPTIONS)
    assert str(caught.value) == (
        f"{path}:2: the first line is a JSON array, not a JSON object;"
        " a JSON Lines audience has one JSON object per line."
    )
    path = write(tmp_path, "people.jsonl", "phone\n")
    with pytest.raises(AudienceError) as caught:
        open_audience(path, OPTIONS)
    assert str(caught.value) == (
        f"{path}:1: the first line is not valid JSON (Expecting value);"
        " a JSON Lines audience has one JSON object per line."
    )


def test_jsonl_undecodable_and_duplicate_keys(tmp_path: Path) -> None:
    content = b'{"phone": "0701234567"}\n{"phone": "07\xff"}\n{"phone": "1", " PHONE": "2"}\n'
    assert read(write(tmp_path, "a.jsonl", content))[1:] == [
        MalformedRow(2, "not valid UTF-8 (byte 0xff at column 14)"),
        MalformedRow(3, 'two keys mean "phone"'),
    ]


def test_format_is_sniffed_for_other_extensions(tmp_path: Path) -> None:
    with open_audience(write(tmp_path, "a.dat", '  {"email": "a@example.org"}\n'), OPTIONS) as opened:
        assert opened.format == "jsonl"
    with open_audience(write(tmp_path, "b.dat", "email\na@example.org\n"), OPTIONS) as opened:
        assert opened.format == "csv"


# -------------------------------------------------------------- normalisation


@pytest.mark.parametrize("spelling", ["070-123 45 67", "+46 70 123 45 67", "0046701234567", "(070) 123.45.67"])
def test_swedish_mobile_spellings(spelling: str) -> None:
    assert normalise_phone(spelling, "SE") == ("+46701234567", None)


def test_phone_classification(tmp_path: Path) -> None:
    assert normalise_phone("08-123 456 78", "SE") == ("+46812345678", "not_mobile")
    assert normalise_phone("020-123456", "SE") == ("+4620123456", "not_mobile")  # toll free
    assert normalise_phone("garbage", "SE") == (None, "invalid_phone")
    assert normalise_phone("070-123", "SE") == (None, "invalid_phone")
    assert normalise_phone("  ", "SE") == (None, None)
    # NANP numbers are FIXED_LINE_OR_MOBILE: allowed.
    assert normalise_phone("(650) 253-0000", "US") == ("+16502530000", None)
    # "00" is international even where the region's own prefix is "011".
    assert normalise_phone("0046701234567", "US") == ("+46701234567", None)
    recipient = one(tmp_path, ",Anna,08-123 456 78,,,,,")
    assert (recipient.phone, recipient.phone_problem) == ("+46812345678", "not_mobile")
    recipient = one(tmp_path, ",Anna,garbage,,,,,")
    assert (recipient.phone, recipient.phone_problem) == (None, "invalid_phone")


@pytest.mark.parametrize(
    ("region", "kind", "problem"),
    [
        ("GB", phonenumbers.PhoneNumberType.MOBILE, None),
        ("GB", phonenumbers.PhoneNumberType.FIXED_LINE, "not_mobile"),
        ("GB", phonenumbers.PhoneNumberType.TOLL_FREE, "not_mobile"),
        ("GB", phonenumbers.PhoneNumberType.PREMIUM_RATE, "not_mobile"),
        ("SE", phonenumbers.PhoneNumberType.SHARED_COST, "not_mobile"),
        ("GB", phonenumbers.PhoneNumberType.PAGER, "not_mobile"),
        ("GB", phonenumbers.PhoneNumberType.UAN, "not_mobile"),
        ("GB", phonenumbers.PhoneNumberType.VOIP, None),
        ("GB", phonenumbers.PhoneNumberType.PERSONAL_NUMBER, None),
        ("SE", phonenumbers.PhoneNumberType.VOICEMAIL, "not_mobile"),
        ("US", phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE, None),
    ],
)
def test_number_types(region: str, kind: int, problem: str | None) -> None:
    example = phonenumbers.example_number_for_type(region, kind)
    assert example is not None
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert normalise_phone(e164, "SE") == (e164, problem)


def reference_phone(raw: str, region: str) -> tuple[str | None, str | None]:
    """normalise_phone spelled out with the library's own validity check."""
    text = raw.strip()
    if not text:
        return None, None
    candidates: list[tuple[str, str | None]] = [(text, region)]
    compact = re.sub(r"[ \-./()\u00a0]", "", text)
    if compact.startswith("00"):
        candidates.append(("+" + compact[2:], None))
    for candidate, where in candidates:
        try:
            number = phonenumbers.parse(candidate, where)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            kind = phonenumbers.number_type(number)
            mobile = kind not in audience.normalise._NOT_MOBILE_TYPES
            return phonenumbers.format_number(number, 0), None if mobile else "not_mobile"
    return None, "invalid_phone"


_phone_texts = st.one_of(
    st.text(alphabet="0123456789+ -./()x", max_size=22),
    st.builds(
        lambda prefix, groups, separator: prefix + separator.join(groups),
        st.sampled_from(["", "0", "+46", "0046", "+1", "+44 (0)", "+30", "00", "+"]),
        st.lists(st.text(alphabet="0123456789", min_size=1, max_size=4), min_size=1, max_size=5),
        st.sampled_from(["", " ", "-", ".", "/", " - ", "\u00a0"]),
    ),
)


@settings(max_examples=600, deadline=None)
@given(_phone_texts, st.sampled_from(["SE", "US", "GB", "DE", "GR", "NO"]))
def test_phone_shortcuts_match_the_library(raw: str, region: str) -> None:
    # Dropping separators before parsing and reading validity from number_type
    # must not change any answer.
    assert normalise_phone(raw, region) == reference_phone(raw, region)


def test_email_normalisation(tmp_path: Path) -> None:
    assert normalise_email(" Anna.Svensson@Example.COM ") == ("Anna.Svensson@example.com", None)
    assert normalise_email("POSTMASTER@Example.com") == ("postmaster@example.com", None)
    assert normalise_email("a@xn--bcher-kva.de") == ("a@bücher.de", None)
    assert normalise_email("åsa@exempel.se") == ("åsa@exempel.se", None)
    assert normalise_email("anna@") == (None, "invalid_email")
    assert normalise_email("anna.example.com") == (None, "invalid_email")
    assert normalise_email("anna..b@example.com") == (None, "invalid_email")
    assert normalise_email("a" * 70 + "@" + "b" * 60 + "." + "c" * 60 + "." + "d" * 60 + ".se") == (
        None,
        "invalid_email",
    )
    assert normalise_email("") == (None, None)
    recipient = one(tmp_path, ",Anna,,Anna@EXAMPLE.org,,,,")
    assert (recipient.email, recipient.email_problem) == ("Anna@example.org", None)
    recipient = one(tmp_path, ",Anna,,anna@@example.org,,,,")
    assert (recipient.email, recipient.email_problem) == (None, "invalid_email")


def reference_email(raw: str) -> tuple[str | None, str | None]:
    text = raw.strip()
    if not text:
        return None, None
    try:
        return validate_email(text, check_deliverability=False).normalized, None
    except EmailNotValidError:
        return None, "invalid_email"


_email_texts = st.one_of(
    st.text(alphabet="aZ09.-_+!#%'*/=?^`{|}~@\"\\()<>[],;: éüß\u0301", max_size=30),
    st.builds(
        lambda local, domain: f"{local}@{domain}",
        st.text(alphabet="aZ09.-_+!#'é\"", min_size=0, max_size=70),
        st.sampled_from(
            [
                "example.com",
                "EXAMPLE.com",
                "xn--bcher-kva.de",
                "a.b",
                "localhost",
                "example",
                "1.2.3.4",
                "ex_ample.com",
                "-example.com",
                "example..com",
                ("x" * 63 + ".") * 3 + "com",
                "bücher.de",
                "a.test",
                "example.com.",
            ]
        ),
    ),
)


@settings(max_examples=800, deadline=None)
@given(_email_texts)
def test_email_shortcut_matches_the_library(raw: str) -> None:
    assert normalise_email(raw) == reference_email(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("el-GR", "el"), ("sv_FI", "sv"), ("pt-BR", "en"), ("", "en"), ("NO", "nb"), ("SV", "sv")],
)
def test_locales(tmp_path: Path, raw: str, expected: str) -> None:
    assert one(tmp_path, f",Anna,0701234567,,{raw},,,").locale == expected


def test_timezones(tmp_path: Path) -> None:
    empty = one(tmp_path, ",Anna,0701234567,,,,,")
    assert (empty.timezone, empty.timezone_problem) == ("Europe/Stockholm", None)
    unknown = one(tmp_path, ",Anna,0701234567,,,Mars/Phobos,,")
    assert (unknown.timezone, unknown.timezone_problem) == ("Europe/Stockholm", "unknown_timezone")
    other = one(tmp_path, ",Anna,0701234567,,,Europe/Athens,,")
    assert (other.timezone, other.timezone_problem) == ("Europe/Athens", None)
    wrong_case = one(tmp_path, ",Anna,0701234567,,,europe/oslo,,")
    assert (wrong_case.timezone, wrong_case.timezone_problem) == ("Europe/Oslo", None)
    directory = one(tmp_path, ",Anna,0701234567,,,Europe,,")
    assert directory.timezone_problem == "unknown_timezone"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"sms,email"', frozenset({"sms", "email"})),
        ("SMS; Banner", frozenset({"sms", "banner"})),
        ("email", frozenset({"email"})),
        ("", None),
        ('" ; "', None),
    ],
)
def test_channels_column(tmp_path: Path, raw: str, expected: frozenset[str] | None) -> None:
    assert one(tmp_path, f",Anna,0701234567,,,,{raw},").channels == expected


def test_unknown_channels_make_the_row_malformed(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", HEADER + ',Anna,0701234567,,,,"sms,fax,pigeon",\n')
    assert read(path) == [MalformedRow(2, 'unknown channels "fax", "pigeon" in "channels" (known: banner, email, sms, voice)')]


def test_extra_columns_are_fields(tmp_path: Path) -> None:
    header = "Phone, Kundnummer ,Postort,,NAME\n"
    path = write(tmp_path, "a.csv", header + "0701234567, 42 , Umeå ,ignored,Anna\n")
    with open_audience(path, OPTIONS) as opened:
        assert opened.columns == ("Phone", "Kundnummer", "Postort", "", "NAME")
        assert opened.extra_columns == ("Kundnummer", "Postort")
        [item] = list(opened)
    assert isinstance(item, Recipient)
    assert (item.name, dict(item.fields)) == ("Anna", {"Kundnummer": "42", "Postort": "Umeå"})


def test_derived_ids(tmp_path: Path) -> None:
    def expected(key: str) -> str:
        return "r-" + hashlib.blake2b(key.encode(), digest_size=8).hexdigest()

    header = "name,phone,email\n"
    path = write(
        tmp_path,
        "a.csv",
        header + "Anna,070-123 45 67,Anna@Example.org\nAnna,+46701234567,anna@example.ORG\n"
        "Bo,,bo@example.org\nCia,garbage,\n",
    )
    anna1, anna2, bo, cia = recipients(read(path))
    assert anna1.id == anna2.id == expected("+46701234567|anna@example.org")
    assert bo.id == expected("|bo@example.org")
    assert cia.id == "line-5"
    assert re.fullmatch(r"r-[0-9a-f]{16}", bo.id)


def test_id_column_wins(tmp_path: Path) -> None:
    assert one(tmp_path, " K-17 ,Anna,0701234567,,,,,").id == "K-17"


# ---------------------------------------------------------------------- dedupe


def test_seen_addresses_dedupes_spellings_and_case() -> None:
    seen = SeenAddresses(default_region="SE")
    assert seen.add("sms", "+46701234567") is True
    assert seen.add("sms", "070-123 45 67") is False
    assert seen.add("sms", "+46 70 123 45 67") is False
    assert seen.add("email", "Anna@example.org") is True
    assert seen.add("email", "anna@EXAMPLE.org") is False
    assert seen.add("sms", "+46701234568") is True
    assert seen.seen("email", "ANNA@example.org")
    assert len(seen) == 3


def test_address_key_is_64_bit_and_per_channel() -> None:
    key = address_key("sms", "+46701234567")
    assert 0 <= key < 2**64
    assert key == int.from_bytes(hashlib.blake2b(b"sms\x00+46701234567", digest_size=8).digest(), "big")
    assert address_key("sms", "0701234567", "SE") == key
    assert address_key("email", "A@example.org") == address_key("email", "a@example.org")
    with pytest.raises(ValueError, match="has no address"):
        address_key("banner", "x")


# ------------------------------------------------------------ robustness


_ROW_BYTES = st.binary(max_size=300) | st.lists(
    st.sampled_from(
        [
            b",",
            b";",
            b'"',
            b"\n",
            b"\r\n",
            b"\r",
            b"\xff",
            b"\xc3",
            b"\xa5",
            b"{",
            b"0701234567",
            b"a@b.se",
            b" ",
            b"sms",
            b"x",
        ]
    ),
    max_size=40,
).map(b"".join)


def _items(content: bytes, name: str) -> Iterator[Recipient | MalformedRow]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_bytes(content)
        with open_audience(path, OPTIONS) as opened:
            yield from opened


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ROW_BYTES)
def test_arbitrary_bytes_after_a_valid_header_never_raise(body: bytes) -> None:
    for header, name in [(HEADER.encode(), "a.csv"), (b"name;phone;channels\r\n", "b.csv")]:
        lines = header.count(b"\n") + body.count(b"\n") + 1
        for item in _items(header + body, name):
            assert isinstance(item, Recipient | MalformedRow)
            assert 2 <= item.line <= lines


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ROW_BYTES)
def test_arbitrary_bytes_after_a_valid_jsonl_line_never_raise(body: bytes) -> None:
    for item in _items(b'{"phone": "0701234567"}\n' + body, "a.jsonl"):
        assert isinstance(item, Recipient | MalformedRow)


def test_streaming_does_not_read_ahead(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "name,phone\n" + "".join(f"P{i},0701{i:06d}\n" for i in range(5000)))
    with open_audience(path, OPTIONS) as opened:
        assert isinstance(opened, Audience)
        rows = iter(opened)
        next(rows)
        # Only the buffered reader's read-ahead is in memory, never the file.
        assert opened._file.tell() < 20_000


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=300))
def test_keyset_behaves_like_a_set(keys: list[int]) -> None:
    from crisiscomms.audience import KeySet

    compact, reference = KeySet(capacity=4), set()
    for key in keys:
        assert compact.add(key) == ((key or 1) not in reference)
        reference.add(key or 1)
    assert len(compact) == len(reference)
    assert all(key in compact for key in keys)


@pytest.mark.parametrize(("raw", "detail"), [
    ("12", "too short for SE"),
    ("+46 8 123", "too short for SE"),
    ("0701234567890123", "too long for SE"),
    ("+999 123 456", "unknown country code"),
    ("00999 123 456", "unknown country code"),
    ("071 234 56 78", "not valid in SE"),
    ("call me", "not a phone number"),
    ("+1 555 0100", "a local number without its area code in +1"),
])
def test_phone_problem_detail_says_why(raw: str, detail: str) -> None:
    assert normalise_phone(raw, "SE") == (None, "invalid_phone")
    assert audience.phone_problem_detail(raw, "SE") == detail


def test_invalid_phone_row_carries_its_detail(tmp_path: Path) -> None:
    person = one(tmp_path, "1,A,12,a@example.se,sv,,,")
    assert (person.phone, person.phone_problem, person.phone_detail) == (None, "invalid_phone", "too short for SE")
    assert one(tmp_path, "1,A,070-123 45 67,,sv,,,").phone_detail == ""
