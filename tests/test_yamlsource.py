from __future__ import annotations

import contextlib
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crisiscomms.loader import validate_data
from crisiscomms.yamlsource import Mark, YamlSourceError, load_yaml_text

from .conftest import DATA


def test_marks_are_recorded_for_keys_and_values() -> None:
    data, source = load_yaml_text("a:\n  b: [1, x]\n", "f.yaml")
    assert data == {"a": {"b": [1, "x"]}}
    assert source.values[("a", "b", 1)] == Mark(2, 10)
    assert source.keys[("a", "b")] == Mark(2, 3)


def test_yaml12_scalars() -> None:
    data, _ = load_yaml_text("a: no\nb: 08:30\nc: on\nd: true\ne: 1.5\nf: 0x10\n", "f")
    assert data == {"a": "no", "b": "08:30", "c": "on", "d": True, "e": 1.5, "f": 16}


def test_merge_keys_work_and_explicit_keys_win() -> None:
    data, _ = load_yaml_text("base: &b {x: 1, y: 2}\nthing:\n  <<: *b\n  y: 3\n", "f")
    assert data["thing"] == {"x": 1, "y": 3}


def test_duplicate_key_names_both_lines() -> None:
    with pytest.raises(YamlSourceError) as caught:
        load_yaml_text("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert str(caught.value) == (
        "f.yaml:3:1: error: duplicate key 'a' (first given on line 1); YAML keeps only one of them: "
        "remove or rename one"
    )


@pytest.mark.parametrize(("text", "tag"), [
    ("a: !!python/object/apply:os.system ['echo hi']\n", "!!python/object/apply:os.system"),
    ("a: !!python/name:os.system ''\n", "!!python/name:os.system"),
    ("a: !custom {x: 1}\n", "!custom"),
])
def test_foreign_tags_are_refused(text: str, tag: str) -> None:
    with pytest.raises(YamlSourceError) as caught:
        load_yaml_text(text, "f.yaml")
    assert str(caught.value) == f"f.yaml:1:4: error: YAML tag '{tag}' is not allowed in a playbook; remove it"


MINIMAL_TEXT = (DATA / "playbooks" / "minimal.yaml").read_text(encoding="utf-8")


@settings(max_examples=150, deadline=None)
@given(position=st.integers(0, len(MINIMAL_TEXT) - 1), length=st.integers(0, 12),
       insert=st.text(alphabet=string.printable + "åäöΩ€\t", max_size=12))
def test_mutated_playbook_never_raises_unexpectedly(position: int, length: int, insert: str) -> None:
    mutated = MINIMAL_TEXT[:position] + insert + MINIMAL_TEXT[position + length:]
    try:
        data, source = load_yaml_text(mutated, "m.yaml")
    except YamlSourceError as error:
        assert error.diagnostic.path == "m.yaml"
        return
    validate_data(data, source)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises_unexpectedly(text: str) -> None:
    with contextlib.suppress(YamlSourceError):
        load_yaml_text(text, "x.yaml")
