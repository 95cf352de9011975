"""Property tests through the real CLI: random Jinja-ish text in a template never makes ``validate``
crash, and random bytes after a valid audience header never make ``send --dry-run`` crash.

The template alphabet is chosen so that no example can ask for unbounded work (no ``*``, ``**``,
``range``, ``%`` or digits that could build big numbers; loops only over two-element lists), so every
example finishes quickly; what is fuzzed is the parser, the sandbox and the error reporting.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crisiscomms.testing.standin import Standin

from .conftest import check, dry_run, validate

TOKENS = [
    "{{", "}}", "{%", "%}", "{#", "#}", "{{-", "-}}", "{%-", "-%}", "\n", " ", "'", '"', "(", ")", "[", "]", ".", ",",
    " ~ ", " + ", " - ", " / ", " and ", " or ", " not ", " is defined", " 1 ", " 2 ", "|upper", "|e", "|safe",
    "|length", "|default('x')", "|join(', ')", "|datetime", "|date", "|time", "|nosuch", "|attr('x')",
    "{{ vars.area }}", "{{ org.name }}", "{{ recipient.name }}", "{{ nope }}", "{{ reach[0].best.contact }}",
    "{{ notice.expires|datetime }}", "{{ hotline.contact }}", "{{ links[0].url }}", "{{ 1 / 0 }}",
    "{% if vars.area %}", "{% if ", "{% elif nope %}", "{% else %}", "{% endif %}",
    "{% for r in reach %}", "{% for i in [1, 2] %}", "{{ loop.index }}", "{% endfor %}",
    "{% raw %}", "{% endraw %}", "{% set v = 'x' %}", "{{ v }}", "{% set ns = namespace(a=1) %}", "{{ ns.a }}",
    "{% macro m() %}", "{% endmacro %}", "{{ m() }}", "{% call m() %}", "{% endcall %}",
    "{% include 'outage/en/sms.txt' %}", "{% include '../secret' %}", "{% include nope %}",
    "{% extends '_layouts/email.html' %}", "{% block content %}", "{% endblock %}", "{% filter upper %}",
    "{% endfilter %}", "{% with a = 1 %}", "{% endwith %}",
    "__class__", "__globals__", "__init__", "mro", "lipsum", "cycler", "joiner", "namespace", "self", "config",
    "request", "os", "environ", "vars", "recipient", "org", "reach",
]
WORDS = st.text(alphabet=st.sampled_from("abcxyzÅäöΩλ _.,:-\t"), max_size=6)
TEMPLATE_TEXT = st.lists(st.one_of(st.sampled_from(TOKENS), WORDS), max_size=40).map("".join)
TARGETS = ["outage/en/email_subject.txt", "outage/sv/sms.txt", "outage/en/email.html", "_partials/en/reach.txt",
           "outage/en/banner_body.txt"]
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@SETTINGS
@given(source=TEMPLATE_TEXT, target=st.sampled_from(TARGETS))
def test_random_template_text_never_crashes_validate(project: Path, standin: Standin, source: str,
                                                    target: str) -> None:
    path = project / "templates" / target
    original = path.read_bytes()
    try:
        path.write_text(source, encoding="utf-8")
        result = validate()
        assert result.code in (0, 1), result.stdout + result.stderr
        check(result, result.code, standin=standin, contains=("playbook checked",))
    finally:
        path.write_bytes(original)


HEADER = b"id,name,phone,email,locale,timezone,channels\n"


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.one_of(
    st.binary(max_size=3000),
    st.lists(st.sampled_from([b",", b";", b'"', b"\n", b"\r\n", b"\r", b"\x00", b"\xef\xbb\xbf", b"\xff", b"+4670100000",
                              b"1", b"@example.se", b"sv", b"en", b"Europe/Stockholm", b"sms", b"email;sms", b" ",
                              b"\xc3\xa5", b"\t"]), max_size=200).map(b"".join),
))
def test_random_bytes_after_a_valid_header_never_crash_the_dry_run(project: Path, standin: Standin,
                                                                   body: bytes) -> None:
    (project / "fuzz.csv").write_bytes(HEADER + body)
    result = dry_run("--channels", "sms,email", audience="fuzz.csv")
    check(result, 0, standin=standin)
    summary = json.loads(result.stdout)
    assert set(summary["planned"]) == {"sms", "email"}
