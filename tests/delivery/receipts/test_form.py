"""The status callback's form reader reads what ``parse_qsl`` reads, field for field."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crisiscomms.delivery.receipts.form import parse_form

FORM_TEXT = st.text(alphabet=st.sampled_from("ab=&+%20%C3%A9%E2%82%ACxyz%zz %FF;"), max_size=60)


def as_parse_qsl(text: str) -> dict[str, list[str]] | type[UnicodeDecodeError]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return UnicodeDecodeError
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def as_parse_form(text: str) -> dict[str, list[str]] | type[UnicodeDecodeError]:
    try:
        return dict(parse_form(text))
    except UnicodeDecodeError:
        return UnicodeDecodeError


@given(FORM_TEXT)
def test_any_body_reads_as_parse_qsl_reads_it(text: str) -> None:
    assert as_parse_form(text) == as_parse_qsl(text)


@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=8))
def test_an_encoded_form_reads_back_as_sent(pairs: list[tuple[str, str]]) -> None:
    form = parse_form(urlencode(pairs))
    assert [(name, value) for name, values in form.items() for value in values] == sorted(
        pairs, key=lambda pair: [name for name, _ in pairs].index(pair[0]))


@pytest.mark.parametrize(("text", "fields"), [
    ("MessageSid=SM1&MessageStatus=delivered", {"MessageSid": ["SM1"], "MessageStatus": ["delivered"]}),
    ("To=%2B46701000001&Body=a+b&&Flag", {"To": ["+46701000001"], "Body": ["a b"], "Flag": [""]}),
    ("A=1&A=2", {"A": ["1", "2"]}),
])
def test_callback_fields_and_repeats(text: str, fields: dict[str, list[str]]) -> None:
    form = parse_form(text)
    assert dict(form) == fields
    assert all(form.getall(name) == values for name, values in fields.items())
    assert form.first_values() == {name: values[0] for name, values in fields.items()}
