"""Broken templates through ``validate``, ``send --dry-run`` and ``preview``.

Each case replaces one template file of the minimal project. ``validate`` must fail (exit 1) with
``file[:line]: error: message``; ``send --dry-run`` and ``preview`` must refuse (exit 3) with
``crisiscomms: file[:line]: message``, or plan normally (exit 0) when the problem is only one of fit
(an empty or too long text is for ``validate`` to catch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from crisiscomms.testing.standin import Standin

from .conftest import TEMPLATE, check, dry_run, preview, validate

DIRECTORY = object()
RECURSION = "template failed: RecursionError: maximum recursion depth exceeded"
UNSAFE = "not allowed in a template: access to attribute"


@dataclass(frozen=True)
class Case:
    id: str
    content: str | bytes | object | None  # None: the file is deleted; DIRECTORY: replaced by a folder
    place: str  # as printed: the template file and, when it makes sense, the line
    message: str  # fragment of the message after the place
    refused_by_send: bool = True  # send --dry-run / preview exit 3 (else they plan normally, exit 0)
    file: str = TEMPLATE
    send_place: str | None = None  # when send names another place than validate
    send_message: str | None = None


T = TEMPLATE
CASES = [
    # syntax
    Case("syntax-if-without-test", "Hello\n{% if %}\n", f"{T}:2",
         "template syntax: Expected an expression, got 'end of statement block'"),
    Case("syntax-unclosed-print", "Outage {{ vars.area ", f"{T}:1",
         "template syntax: unexpected end of template, expected 'end of print statement'."),
    Case("syntax-unclosed-for", "{% for r in reach %}{{ r.label }}", f"{T}:1",
         "template syntax: Unexpected end of template. Jinja was looking for the following tags: 'endfor' or 'else'."),
    Case("syntax-stray-endfor", "Outage\n\n{% endfor %}", f"{T}:3", "template syntax: Encountered unknown tag 'endfor'."),
    Case("syntax-unknown-tag", "{% shout %}", f"{T}:1", "template syntax: Encountered unknown tag 'shout'."),
    Case("syntax-unknown-filter", "Outage in\n{{ vars.area|shout }}", f"{T}:2", "template syntax: No filter named 'shout'."),
    Case("syntax-unknown-test", "{% if vars.area is shouting %}x{% endif %}", f"{T}:1",
         "template error: \"No test named 'shouting' found.\""),
    Case("syntax-comment-never-closed", "Outage {# note", f"{T}:1", "template syntax: Missing end of comment tag"),
    Case("syntax-raw-never-closed", "{% raw %}Outage", f"{T}:1", "template syntax: Missing end of raw directive"),
    Case("syntax-bad-expression", "{{ vars.area + }}", f"{T}:1", "template syntax: unexpected 'end of print statement'"),
    # undefined
    Case("undefined-variable", "Hi {{ nobody }}", f"{T}:1", "undefined variable: 'nobody' is undefined"),
    Case("undefined-attribute", "Outage\n{{ vars.areaa }}", f"{T}:2", "undefined variable: 'vars.areaa' is undefined"),
    Case("undefined-list-element", "{{ reach[7].label }}", f"{T}:1", "undefined variable: list object has no element 7"),
    Case("recipient-in-public-banner", "Outage for {{ recipient.name }}", "templates/outage/en/banner_title.txt:1",
         "undefined variable: 'recipient' is undefined", file="templates/outage/en/banner_title.txt"),
    Case("undefined-in-sv-only", "Avbrott\n{{ vars.omrade }}", "templates/outage/sv/sms.txt:2",
         "undefined variable: 'vars.omrade' is undefined", file="templates/outage/sv/sms.txt"),
    # sandbox escapes
    Case("class-of-str", "{{ org.name.__class__ }}", f"{T}:1", f"{UNSAFE} '__class__' of 'str' object is unsafe."),
    Case("mro-subclasses", "{{ ''.__class__.__mro__[1].__subclasses__() }}", f"{T}:1",
         f"{UNSAFE} '__class__' of 'str' object is unsafe."),
    Case("lipsum-globals", "{{ lipsum.__globals__['os'] }}", f"{T}:1",
         f"{UNSAFE} '__globals__' of 'function' object is unsafe."),
    Case("cycler-globals", "{{ cycler.__init__.__globals__.os.environ }}", f"{T}:1",
         f"{UNSAFE} '__init__' of 'type' object is unsafe."),
    Case("joiner-globals", "{{ joiner.__init__.__globals__ }}", f"{T}:1",
         f"{UNSAFE} '__init__' of 'type' object is unsafe."),
    Case("namespace-globals", "{{ namespace.__init__.__globals__ }}", f"{T}:1",
         f"{UNSAFE} '__init__' of 'type' object is unsafe."),
    Case("namespace-instance-class", "{% set ns = namespace(a=1) %}{{ ns.__class__ }}", f"{T}:1",
         f"{UNSAFE} '__class__' of 'Namespace' object is unsafe."),
    Case("attr-filter", "{{ vars.area|attr('__class__') }}", f"{T}:1", f"{UNSAFE} '__class__' of 'str' object is unsafe."),
    Case("str-format-escape", "{{ 'x{0.__class__}'.format(org) }}", f"{T}:1",
         f"{UNSAFE} '__class__' of 'dict' object is unsafe."),
    Case("template-reference-private", "{{ self._TemplateReference__context }}", f"{T}:1",
         f"{UNSAFE} '_TemplateReference__context' of 'TemplateReference' object is unsafe."),
    Case("range-ten-to-the-nine", "{% for i in range(10**9) %}x{% endfor %}", f"{T}:1",
         "not allowed in a template: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000)."),
    # loading other files
    Case("include-etc-passwd", '{% include "../../etc/passwd" %}', f"{T}:1", "template not found: ../../etc/passwd"),
    Case("include-absolute-path", '{% include "/etc/passwd" %}', f"{T}:1", "template not found: /etc/passwd"),
    Case("import-the-playbook", '{% import "../playbooks/p.yaml" as p %}', f"{T}:1",
         "template not found: ../playbooks/p.yaml"),
    Case("extends-missing-layout", '{% extends "_layouts/nope.html" %}', f"{T}:1",
         "template not found: _layouts/nope.html"),
    # recursion
    Case("include-itself", '{% include "outage/en/email_subject.txt" %}', f"{T}:1", RECURSION),
    Case("extends-itself", '{% extends "outage/en/email_subject.txt" %}', f"{T}:1", RECURSION),
    Case("macro-calls-itself", "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", f"{T}:1", RECURSION),
    Case("deeply-nested-parentheses", "{{ " + "(" * 500 + "1" + ")" * 500 + " }}", T, RECURSION),
    Case("deeply-nested-ifs", "{% if 1 %}" * 2000 + "x" + "{% endif %}" * 2000, T, RECURSION),
    # runtime
    Case("division-by-zero", "{{ 1 / 0 }}", f"{T}:1", "template failed: ZeroDivisionError: division by zero"),
    # encoding and files
    Case("not-utf8", "Avbrott i Göteborg {{ vars.area }}".encode("latin-1"), T,
         "template failed: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xf6"),
    Case("utf16", "Outage {{ vars.area }}".encode("utf-16"), T,
         "template failed: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff"),
    Case("binary-garbage", bytes(range(256)) * 4, T,
         "template failed: UnicodeDecodeError: 'utf-8' codec can't decode byte 0x80"),
    Case("deleted", None, T, "missing template for notice 'outage' (email)",
         send_message="template not found: outage/en/email_subject.txt"),
    Case("directory-instead-of-file", DIRECTORY, T, "missing template for notice 'outage' (email)",
         send_message="template not found: outage/en/email_subject.txt"),
    # fit: for validate to catch; a dry run plans them
    Case("empty-subject", "", T, "the e-mail subject is empty", refused_by_send=False),
    Case("empty-sms", "   \n", "templates/outage/en/sms.txt", "the SMS is empty", refused_by_send=False,
         file="templates/outage/en/sms.txt"),
    Case("huge-sms-2mb", "Outage. " * 250_000, "templates/outage/en/sms.txt", "SMS in en is 13072 segments",
         refused_by_send=False, file="templates/outage/en/sms.txt"),
    Case("sms-forced-to-ucs2", "Ωμέγα " * 80, "templates/outage/sv/sms.txt",
         "SMS in sv is 8 segments (UCS-2, 479 characters); notice 'outage' allows 2 (sms_segments); "
         "UCS-2 because of: μ έ γ α", refused_by_send=False, file="templates/outage/sv/sms.txt"),
    Case("banner-title-too-long", "Outage " * 20, "templates/outage/en/banner_title.txt",
         "banner title is 139 characters; at most 90 fit the one-line bar", refused_by_send=False,
         file="templates/outage/en/banner_title.txt"),
]

XFAIL_VALIDATE: dict[str, pytest.MarkDecorator] = {}  # the bugs once marked here are fixed
XFAIL_SEND: dict[str, pytest.MarkDecorator] = {}


def params(xfails: dict[str, pytest.MarkDecorator]) -> list[object]:
    return [pytest.param(case, id=case.id, marks=[xfails[case.id]] if case.id in xfails else []) for case in CASES]


def install(project: Path, case: Case) -> None:
    path = project / case.file
    if case.content is None:
        path.unlink()
    elif case.content is DIRECTORY:
        path.unlink()
        path.mkdir()
    elif isinstance(case.content, bytes):
        path.write_bytes(case.content)
    else:
        assert isinstance(case.content, str)
        path.write_text(case.content, encoding="utf-8")


def test_corpus_is_large() -> None:
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", params(XFAIL_VALIDATE))
def test_validate_names_file_and_line(project: Path, standin: Standin, case: Case) -> None:
    install(project, case)
    result = validate()
    check(result, 1, f"{case.place}: error: {case.message}", standin=standin, contains=("NOT valid",))


@pytest.mark.parametrize("case", params(XFAIL_SEND))
def test_send_dry_run_refuses_with_the_place(project: Path, standin: Standin, case: Case) -> None:
    install(project, case)
    result = dry_run()
    if case.refused_by_send:
        check(result, 3, f"crisiscomms: {case.send_place or case.place}: {case.send_message or case.message}",
              standin=standin)
        assert result.stdout == ""
    else:
        check(result, 0, standin=standin, contains=('"planned": {"sms": 5, "email": 5, "banner": 1}',))


@pytest.mark.parametrize("case", params(XFAIL_SEND))
def test_preview_refuses_with_the_place(project: Path, standin: Standin, case: Case) -> None:
    install(project, case)
    result = preview()
    if case.refused_by_send:
        check(result, 3, f"crisiscomms: {case.send_place or case.place}: {case.send_message or case.message}",
              standin=standin)
    else:
        check(result, 0, standin=standin, contains=('"notice": "outage"',))
