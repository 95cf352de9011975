"""YAML oddities in a playbook, beyond the corpus in tests/data/broken (which stays uncounted here).

Each case edits the minimal playbook; ``validate`` must fail (exit 1) and ``send --dry-run`` refuse
(exit 3), both printing ``playbooks/p.yaml:LINE:COLUMN: error: message`` at the right place. Lines
and columns are computed from where the edit landed, so the table survives edits of the base file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from crisiscomms.testing.standin import Standin

from .conftest import check, dry_run, validate

PLAYBOOK = "playbooks/p.yaml"
ROUTE = "  chat:\n    kind: chat"
SEVERITY = "    severity: critical\n"


def after_route(line: str) -> Callable[[str], str]:
    return lambda text: text.replace(ROUTE, f"  chat:\n    {line}\n    kind: chat", 1)


def in_notice(line: str) -> Callable[[str], str]:
    return lambda text: text.replace(SEVERITY, f"{SEVERITY}    {line}\n", 1)


def append(block: str) -> Callable[[str], str]:
    return lambda text: text + block


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, f"the base playbook changed: {old!r} not found"
        return text.replace(old, new, 1)
    return edit


@dataclass(frozen=True)
class Case:
    id: str
    edit: Callable[[str], str] | None  # None: ``raw`` replaces the file
    marker: str | None  # the error is placed at this text (+ offset); None: a whole-file place
    message: str
    offset: int = 0
    raw: Callable[[bytes], bytes] | None = None
    place: str | None = None  # the place when marker is None (default: "playbooks/p.yaml")


def nested_flow(depth: int) -> str:
    return "deep: " + "[" * depth + "]" * depth + "\n"


def nested_block(depth: int) -> str:
    return "deep:\n" + "".join("  " * level + "k:\n" for level in range(1, depth)) + "  " * depth + "v: 1\n"


MERGE = "'<<' merges a mapping; this is not one"
DEEP = "the document is nested too deeply to read; a playbook needs a few levels"
UNREADABLE = "cannot be read as {}; correct it, or put it in quotes if it is meant as text"
TAG = "is not allowed in a playbook; remove it"
CASES = [
    # anchors, aliases and merge keys misused
    Case("merge-a-list-of-scalars", after_route("<<: [1, 2]"), "<<: [1, 2]", MERGE, offset=8),
    Case("merge-a-scalar", after_route("<<: hello"), "<<: hello", MERGE, offset=4),
    Case("merge-an-alias-of-a-list", lambda t: after_route("<<: [*l]")(t.replace("locales: [", "locales: &l [", 1)),
         "&l [", MERGE),
    Case("merge-an-undefined-alias", after_route("<<: *nothing"), "*nothing",
         "YAML syntax: found undefined alias 'nothing' (define the anchor (&name) before using *name)"),
    Case("merge-itself", append("loop: &me {x: 1, <<: *me}\n"), "&me",
         "'<<' merges the mapping it is part of; merge another anchor"),
    Case("anchor-defined-twice", lambda t: t.replace("label: {en: Live chat", "label: &x {en: Live chat", 1)
         .replace("label: {en: Emergency line", "label: &x {en: Emergency line", 1), "&x {en: Emergency",
         "YAML syntax: found duplicate anchor 'x'; first occurrence on line"),
    Case("wide-alias-expansion", append("ten: &ten [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
                                        + "".join(f"copy{i}: *ten\n" for i in range(6000))), None,
         "the document expands to more than 50,000 values (aliases repeating aliases?); refusing to expand it",
         place=f"{PLAYBOOK}:"),
    # tags
    Case("python-object-apply", replace("name: Testbolaget", 'name: !!python/object/apply:os.system ["touch pwned"]'),
         "!!python", f"YAML tag '!!python/object/apply:os.system' {TAG}"),
    Case("python-name", replace("name: Testbolaget", "name: !!python/name:os.system"), "!!python",
         f"YAML tag '!!python/name:os.system' {TAG}"),
    Case("python-object-as-document", None, None,
         "a playbook must be a mapping of keys (version, organisation, ...), not a list",
         raw=lambda _: b'!!python/object/apply:os.system ["touch pwned"]\n', place=f"{PLAYBOOK}:1:1"),
    Case("set-tag", append("x: !!set {a, b}\n"), "!!set", f"YAML tag '!!set' {TAG}"),
    Case("str-tag-on-a-mapping", replace("organisation:\n", "organisation: !!str\n"), "!!str", f"YAML tag '!!str' {TAG}"),
    # documents, keys, encodings
    Case("two-documents", append("---\nversion: 1\n"), "---\nversion: 1",
         "YAML syntax: expected a single document in the stream on line 1, but found another document here (a "
         "playbook is one YAML document: remove the '---' line and what follows)"),
    Case("complex-key", append("? [a, b]\n: 1\n"), "? [a, b]", "a key must be a plain word, not a list or mapping",
         offset=2),
    Case("boolean-route-id", replace("  hotline:\n", "  true:\n"), "true:",
         "'True' is not a usable id; use lower-case letters, digits, '-' and '_'"),
    Case("bom-in-the-middle", replace("\nroutes:", "\n\ufeffroutes:"), "\ufeffroutes",
         "unknown key '\ufeffroutes' (did you mean 'routes'?)"),
    Case("nul-character", append("x: a\x00b\n"), "a\x00b", "the control character U+0000 is not allowed in YAML; "
         "remove it", offset=1),
    Case("utf16", None, None, "not UTF-8 (byte 0xff); save the file as UTF-8",
         raw=lambda b: b.decode().encode("utf-16"), place=f"{PLAYBOOK}:1:1"),
    Case("binary-garbage", None, None, "not UTF-8 (byte 0x80); save the file as UTF-8",
         raw=lambda _: bytes(range(256)) * 50, place=f"{PLAYBOOK}:2:118"),
    # sizes and depths
    Case("five-megabytes", append("# padding\n" * 540_000), None, "a playbook may be at most 1,000,000 bytes"),
    Case("one-line-of-two-megabytes", append("note: " + "x" * 2_000_000 + "\n"), None,
         "a playbook may be at most 1,000,000 bytes"),
    Case("nested-10000-deep", append(nested_flow(10_000)), None, DEEP, place=f"{PLAYBOOK}:1:1"),
    Case("nested-600-deep-block-style", append(nested_block(600)), None, DEEP, place=f"{PLAYBOOK}:1:1"),
    # numbers
    Case("huge-integer", in_notice("sms_segments: " + "9" * 35), "9" * 35,
         f"'sms_segments' is {'9' * 35}; it must be at most 10"),
    Case("integer-of-5000-digits", in_notice("sms_segments: " + "9" * 5000), "9" * 5000, f"'{'9' * 37}...' {UNREADABLE.format('a number')}"),
    Case("float-overflow", in_notice("sms_segments: 1e999"), "1e999", "'sms_segments': Input should be a finite number"),
    Case("not-a-number", in_notice("sms_segments: .nan"), ".nan", "'sms_segments': Input should be a finite number"),
    Case("negative-rate", replace("    smart_encoding: true\n", "    smart_encoding: true\n    rate: -5\n"), "-5",
         "'rate' is -5; it must be more than 0.0"),
    # dates that do not exist
    Case("february-30", replace("date: 2026-12-24", "date: 2026-02-30"), "2026-02-30", f"'2026-02-30' {UNREADABLE.format('a date or time')}"),
    Case("expires-at-25-oclock", replace("expires: 2026-12-01T18:00:00+01:00", "expires: 2026-12-01T25:00:00+01:00"),
         "2026-12-01T25", f"'2026-12-01T25:00:00+01:00' {UNREADABLE.format('a date or time')}"),
    Case("expires-offset-25-hours", replace("expires: 2026-12-01T18:00:00+01:00", "expires: 2026-12-01T18:00:00+25:00"),
         "2026-12-01T18:00:00+25", f"'2026-12-01T18:00:00+25:00' {UNREADABLE.format('a date or time')}"),
    # types
    Case("version-as-text", replace("version: 1", "version: '1'"), "'1'", "'version' is '1'; expected 1"),
    Case("routes-a-scalar", replace("routes:\n  chat:", "routes: hello\nroutez:\n  chat:"), "hello",
         "'routes' is 'hello'; expected a mapping of keys to values"),
]

# Found by this suite and fixed upstream while it was written (905e4bf): self-merges, deep nesting, numbers
# of more than 4,300 digits and impossible dates crashed with exit 70; composer errors lost their context; a
# control character was placed at 1:1. They stay here as regression cases.
PARAMS = [pytest.param(case, id=case.id) for case in CASES]


def install(project: Path, case: Case) -> str:
    """Write the edited playbook; return the place its error must be printed at."""
    path = project / PLAYBOOK
    if case.raw is not None:
        path.write_bytes(case.raw(path.read_bytes()))
        return case.place or PLAYBOOK
    assert case.edit is not None
    text = case.edit(path.read_text(encoding="utf-8"))
    path.write_bytes(text.encode("utf-8"))
    if case.marker is None:
        return case.place or PLAYBOOK
    position = text.index(case.marker) + case.offset
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"{PLAYBOOK}:{line}:{column}"


def located(output: str, place: str, message: str) -> bool:
    """Some line starts with the place (``file:line:col: error: ``) and carries the message."""
    prefix = place if place.endswith(":") else f"{place}: error: "
    return any(line.startswith(prefix) and message in line for line in output.splitlines())


def test_corpus_is_large() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", PARAMS)
def test_validate_places_the_error(project: Path, standin: Standin, case: Case) -> None:
    place = install(project, case)
    result = validate()
    check(result, 1, standin=standin, contains=("NOT valid",))
    assert located(result.stdout, place, case.message), f"no {place!r} line with {case.message!r}:\n{result.stdout}"
    assert not (project / "pwned").exists()


@pytest.mark.parametrize("case", PARAMS)
def test_send_dry_run_refuses_the_playbook(project: Path, standin: Standin, case: Case) -> None:
    place = install(project, case)
    result = dry_run()
    check(result, 3, f"crisiscomms: {PLAYBOOK} is not valid (", standin=standin)
    assert located(result.stderr, place, case.message), f"no {place!r} line with {case.message!r}:\n{result.stderr}"
    assert result.stdout == ""
    assert not (project / "pwned").exists()
