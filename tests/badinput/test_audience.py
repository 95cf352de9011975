"""Broken audience files through ``send --dry-run`` (and a few through a real ``send``).

A file that cannot be used at all is refused with exit 3 and ``crisiscomms: FILE[:LINE]: reason``.
A broken row is skipped: the run goes on (exit 0) and ``--skipped-out`` names its line and reason.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from crisiscomms.testing.standin import Standin

from ..conftest import run_cli
from .conftest import AT, check, dry_run

HEADER = b"id,name,phone,email,locale\n"
ANNA = b"r1,Anna,+46701000001,anna@example.se,en\n"
BO = b"r2,Bo,+46701000002,bo@example.se,sv\n"
NO_COLUMN = 'the header has no "phone" or "email" column'
UTF8_HINT = 'save the file as UTF-8 (in Excel: "CSV UTF-8").'
JSONL_HINT = "a JSON Lines audience has one JSON object per line."
MIB = 1024 * 1024


@dataclass(frozen=True)
class FileCase:
    id: str
    content: bytes
    message: str  # the line printed on stderr after "crisiscomms: "
    name: str = "aud.csv"


FILE_CASES = [
    FileCase("no-phone-or-email-column", b"id,name,mobile,mail\nr1,A,+46701000001,a@example.se\n",
             f"aud.csv:1: {NO_COLUMN} (found: id, name, mobile, mail). Rename the column that holds phone numbers "
             'to "phone" or e-mail addresses to "email".'),
    FileCase("utf16-with-bom", (HEADER + ANNA).decode().encode("utf-16"),
             f"aud.csv: the file is UTF-16 encoded; {UTF8_HINT}"),
    FileCase("utf16-little-endian-bom-only", b"\xff\xfe" + (HEADER + ANNA).decode().encode("utf-16-le"),
             f"aud.csv: the file is UTF-16 encoded; {UTF8_HINT}"),
    FileCase("utf16-without-bom", (HEADER + ANNA).decode().encode("utf-16-be"), f"aud.csv:1: {NO_COLUMN}"),
    FileCase("binary-garbage", bytes(range(256)) * 50, f"aud.csv:1: {NO_COLUMN}"),
    FileCase("empty", b"", "aud.csv: the audience file is empty."),
    FileCase("only-blank-lines", b"\n  \n\t\n", "aud.csv: the audience file is empty."),
    FileCase("header-line-over-1-mib", b"phone," + b"x" * (2 * MIB) + b"\n" + ANNA,
             f"aud.csv:1: the first line is longer than {MIB} bytes."),
    FileCase("pipe-delimiter", b"id|name|phone|email\nr1|A|+46701000001|a@example.se\n",
             f"aud.csv:1: {NO_COLUMN} (found: id|name|phone|email)."),
    FileCase("duplicate-known-column", b"id,phone,Phone,email\nr1,+46701000001,+46701000002,a@example.se\n",
             'aud.csv:1: the header has the column "Phone" twice (columns 2 and 3).'),
    FileCase("duplicate-extra-column", b"id,phone,email,x,x\nr1,+46701000001,a@example.se,1,2\n",
             'aud.csv:1: the header has the column "x" twice (columns 4 and 5).'),
    FileCase("cr-only-line-ends", (HEADER + ANNA + BO).replace(b"\n", b"\r"),
             "aud.csv: the lines end in a carriage return only (old Mac format); save the file as CSV UTF-8 with "
             "ordinary line endings."),
    FileCase("latin1-header", "id,namn på kund,phone,email\nr1,Asa,+46701000001,a@example.se\n".encode("latin-1"),
             f"aud.csv:1: the header is not valid UTF-8 (byte 0xe5 at column 10); {UTF8_HINT}"),
    FileCase("jsonl-first-line-array", b'[1, 2, 3]\n{"phone": "+46701000001"}\n',
             f"aud.jsonl:1: the first line is a JSON array, not a JSON object; {JSONL_HINT}", "aud.jsonl"),
    FileCase("jsonl-first-line-number", b"42\n",
             f"aud.jsonl:1: the first line is a JSON number, not a JSON object; {JSONL_HINT}", "aud.jsonl"),
    FileCase("jsonl-first-line-string", b'"+46701000001"\n',
             f"aud.jsonl:1: the first line is a JSON string, not a JSON object; {JSONL_HINT}", "aud.jsonl"),
    FileCase("jsonl-not-json", b"{phone: 1}\n",
             "aud.jsonl:1: the first line is not valid JSON (Expecting property name enclosed in double quotes); "
             + JSONL_HINT, "aud.jsonl"),
    FileCase("jsonl-no-phone-or-email-key", b'{"mobile": "+46701000001"}\n',
             'aud.jsonl:1: the first object has no "phone" or "email" key (found: mobile). Rename the key that holds '
             'phone numbers to "phone" or e-mail addresses to "email".', "aud.jsonl"),
    FileCase("sniffed-jsonl-array-in-txt", b'[{"phone": "+46701000001"}]\n', f"aud.data:1: {NO_COLUMN}", "aud.data"),
]


@dataclass(frozen=True)
class RowCase:
    id: str
    content: bytes
    skipped: set[tuple[str, str, str, str]]  # (line, channel, reason, detail) rows of --skipped-out
    planned: dict[str, int] = field(default_factory=dict)  # sms / email
    name: str = "aud.csv"


def malformed(line: int, detail: str) -> set[tuple[str, str, str, str]]:
    return {(str(line), channel, "malformed_row", detail) for channel in ("sms", "email")}


ROW_CASES = [
    RowCase("data-line-over-1-mib", HEADER + ANNA + b"r2,B," + b"9" * (2 * MIB) + b",b@example.se,en\n" + BO,
            malformed(3, f"longer than {MIB} bytes"), {"sms": 2, "email": 2}),
    RowCase("quote-never-closed", HEADER + ANNA + b'r2,"Bob,+46701000002,b@example.se,en\n' + BO,
            malformed(3, "a quoted field opened on this line is not closed before the end of the file; reading goes "
                         "on with the next line"), {"sms": 2, "email": 2}),
    RowCase("quote-never-closed-in-a-long-file",
            HEADER + b'r0,"Stray,+46701000000,s@example.se,en\n'
            + b"".join(b"r%d,P,+467010%05d,p%d@example.se,en\n" % (i, i, i) for i in range(1, 151)),
            malformed(2, "a quoted field opened on this line is not closed within 100 lines; reading goes on with "
                         "the next line"), {"sms": 150, "email": 150}),
    RowCase("too-many-fields", HEADER + b"r1,A,+46701000001,a@example.se,en,extra,more\n" + BO,
            malformed(2, "7 fields where the header has 5"), {"sms": 1, "email": 1}),
    RowCase("too-few-fields", HEADER + b"r1,A\n" + BO, malformed(2, "2 fields where the header has 5"),
            {"sms": 1, "email": 1}),
    RowCase("row-not-utf8", HEADER + b"r1,\xff\xfe,+46701000001,a@example.se,en\n" + BO,
            malformed(2, "not valid UTF-8 (byte 0xff at column 4)"), {"sms": 1, "email": 1}),
    RowCase("latin1-row", HEADER + "r1,Åsa,+46701000001,a@example.se,en\n".encode("latin-1") + BO,
            malformed(2, "not valid UTF-8 (byte 0xc5 at column 4)"), {"sms": 1, "email": 1}),
    RowCase("nul-bytes", HEADER + b"r1,A\x00na,+46701000001,a@example.se,en\nr2,B,+467010\x0000002,b@example.se,en\n",
            {("3", "sms", "invalid_phone", "not a phone number")}, {"sms": 1, "email": 2}),
    RowCase("bom-in-the-middle", HEADER + ANNA + b"\xef\xbb\xbf" + BO, set(), {"sms": 2, "email": 2}),
    RowCase("crlf-line-ends", (HEADER + ANNA + BO).replace(b"\n", b"\r\n"), set(), {"sms": 2, "email": 2}),
    RowCase("header-only", HEADER, set(), {"sms": 0, "email": 0}),
    RowCase("invalid-and-fixed-line-phones", HEADER + b"r1,A,12,a@example.se,en\nr2,B,+46 8 123 456 78,b@example.se,en\n",
            {("2", "sms", "invalid_phone", "too short for SE"), ("3", "sms", "not_mobile", "")}, {"sms": 0, "email": 2}),
    RowCase("invalid-email", HEADER + b"r1,A,+46701000001,not-an-email,en\n", {("2", "email", "invalid_email", "")},
            {"sms": 1, "email": 0}),
    RowCase("unknown-channel", b"id,phone,email,channels\nr1,+46701000001,a@example.se,fax\n",
            malformed(2, 'unknown channel "fax" in "channels" (known: banner, email, sms, voice)'), {"sms": 0, "email": 0}),
    RowCase("quote-splits-header", b'"id,"phone,email\nr1,+46701000001,a@example.se\n',
            malformed(2, "3 fields where the header has 2"), {"sms": 0, "email": 0}),
    RowCase("jsonl-arrays-numbers-nested-objects",
            b'{"phone": "+46701000001", "email": "a@example.se"}\n[1, 2]\n7\n{"phone": {"n": 1}}\n"str"\nnull\n'
            b'{"phone": "+46701000002", "email": "b@example.se"}\n{broken\n',
            malformed(2, "a JSON array, not a JSON object") | malformed(3, "a JSON number, not a JSON object")
            | malformed(4, 'the value of "phone" is a JSON object; only strings, numbers and null are allowed')
            | malformed(5, "a JSON string, not a JSON object") | malformed(6, "JSON null, not a JSON object")
            | malformed(8, "not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
            {"sms": 2, "email": 2}, "aud.jsonl"),
    RowCase("jsonl-nested-100000-deep", b'{"phone": "+46701000001"}\n' + b"[" * 100_000 + b"]" * 100_000 + b"\n",
            malformed(2, "not valid JSON (nested too deeply)") | {("1", "email", "no_address", "")},
            {"sms": 1, "email": 0}, "aud.jsonl"),
    RowCase("jsonl-keys-meaning-the-same", b'{"phone": "+46701000001", "Phone": "+46701000002"}\n',
            malformed(1, 'two keys mean "phone"'), {"sms": 0, "email": 0}, "aud.jsonl"),
    RowCase("jsonl-row-not-utf8", b'{"phone": "+46701000001"}\n{"phone": "\xff"}\n',
            malformed(2, "not valid UTF-8 (byte 0xff at column 12)") | {("1", "email", "no_address", "")},
            {"sms": 1, "email": 0}, "aud.jsonl"),
]


def test_corpus_is_large() -> None:
    assert len(FILE_CASES) + len(ROW_CASES) >= 35


@pytest.mark.parametrize("case", FILE_CASES, ids=lambda c: c.id)
def test_unusable_file_is_refused_with_exit_3(project: Path, standin: Standin, case: FileCase) -> None:
    (project / case.name).write_bytes(case.content)
    result = dry_run(audience=case.name)
    check(result, 3, f"crisiscomms: {case.message}", standin=standin)
    assert result.stdout == ""


@pytest.mark.parametrize("case", ROW_CASES, ids=lambda c: c.id)
def test_broken_rows_are_skipped_with_line_and_reason(project: Path, standin: Standin, case: RowCase) -> None:
    (project / case.name).write_bytes(case.content)
    result = dry_run("--channels", "sms,email", "--skipped-out", "skipped.csv", audience=case.name)
    check(result, 0, standin=standin)
    summary = json.loads(result.stdout)
    assert summary["planned"] == case.planned
    with (project / "skipped.csv").open(encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["line", "id", "channel", "reason", "detail"]
    assert {(line, channel, reason, detail) for line, _, channel, reason, detail in rows[1:]} == case.skipped


def test_audience_without_a_column_the_templates_use(project: Path, standin: Standin) -> None:
    playbook = project / "playbooks" / "p.yaml"
    playbook.write_text(playbook.read_text(encoding="utf-8") + "audience_fields: [account]\n", encoding="utf-8")
    check(dry_run(), 3, "crisiscomms: audience.csv:1: the templates use the column(s) account, which the audience "
                        "file lacks (see 'audience_fields' in the playbook)", standin=standin)


def test_missing_audience_file(project: Path, standin: Standin) -> None:
    check(dry_run(audience="missing.csv"), 3, "crisiscomms: missing.csv: the audience file does not exist.",
          standin=standin)


def test_dev_zero_as_audience_is_refused_without_reading_it_all(project: Path, standin: Standin) -> None:
    check(dry_run(audience="/dev/zero"), 3, f"crisiscomms: /dev/zero:1: the first line is longer than {MIB} bytes.",
          standin=standin)


@pytest.mark.parametrize("case", [c for c in FILE_CASES if c.id in {"no-phone-or-email-column", "utf16-with-bom",
                                                                     "binary-garbage", "jsonl-first-line-array"}],
                         ids=lambda c: c.id)
def test_a_real_send_refuses_before_any_request(project: Path, standin: Standin, case: FileCase) -> None:
    (project / case.name).write_bytes(case.content)
    result = run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", case.name, "--at", AT, "--yes")
    check(result, 3, f"crisiscomms: {case.message}", standin=standin)
    from crisiscomms.ledger import resolve_location

    with sqlite3.connect(resolve_location(None, {}).path) as ledger:
        assert ledger.execute("SELECT COUNT(*) FROM messages").fetchone() == (0,)
