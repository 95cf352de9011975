"""Personalised e-mail through SendGrid substitutions: the result is byte for byte the one-recipient render.

The SendGrid side is emulated here independently of crisiscomms' own code: each key of a
personalization is replaced literally, in the subject, the text and the HTML, in several orders.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest

from crisiscomms import substitutions
from crisiscomms.content import EmailContent
from crisiscomms.loader import load_playbook
from crisiscomms.render import NoticeRenderer
from crisiscomms.substitutions import Batchability, analyse

from .conftest import ROOT
from .test_render import make_project, renderer_for

AT = dt.datetime(2026, 12, 3, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
SHIPPED = [("nordvind-storm.yaml", notice) for notice in ("storm-outage", "power-restored")] + \
          [("lindholmen-clinic.yaml", notice) for notice in ("clinic-closure", "clinic-reopening")]
KEY_TEXT = f"^{substitutions.TOKEN}000t"  # the first field's text key, as a hostile value


def hostile_names() -> list[str]:
    return [
        "Anna", "", "<b>Anna</b>", "Tom & Jerry", "O'Brien \"the\" <script>", "-name-", "-name-t-", "--name--",
        f"-{substitutions.TOKEN}-name-t-", KEY_TEXT, KEY_TEXT[1:], "^", "~", "|", "`", "Zoë 😀👩‍👩‍👧", "שלום עולם",
        "مرحبا \u202eevil\u202c", "a" * 10_000, "x" * 4_000 + "<&>" * 1_000, " Anna", "Anna ", "  ", "A\tB\nC",
        "{{ recipient.name }}", "{% if x %}", "&amp;", "&#39;", "\\", "\u00a0Ånna\u2009", "%name%", "$name",
    ]


def sendgrid_applies(shared: EmailContent, substitution: Sequence[tuple[str, str]], order: str) -> tuple[str, ...]:
    """SendGrid's literal replacement, key by key, in the given order."""
    pairs = list(substitution)
    if order == "reversed":
        pairs.reverse()
    elif order == "longest value first":
        pairs.sort(key=lambda pair: -len(pair[1]))
    parts = [shared.subject, shared.text, shared.html]
    for key, value in pairs:
        parts = [part.replace(key, value) for part in parts]
    return tuple(parts)


def assert_same_as_alone(fast: NoticeRenderer, plain: NoticeRenderer, locale: str, timezone: str,
                         recipient: dict[str, str]) -> bool:
    """The batched content equals the one-recipient render; True when it goes with substitutions."""
    content = fast.render("email", locale, timezone, recipient)
    alone = plain.render("email", locale, timezone, recipient)
    assert isinstance(content, EmailContent) and isinstance(alone, EmailContent)
    assert (content.subject, content.text, content.html) == (alone.subject, alone.text, alone.html)
    if content.personalised is None:
        return False
    for order in ("given", "reversed", "longest value first"):
        assert sendgrid_applies(content.personalised.shared, content.personalised.substitutions, order) == \
            (alone.subject, alone.text, alone.html)
    return True


def renderers(playbook_file: str, notice: str, *, exercise: bool = False) -> tuple[NoticeRenderer, NoticeRenderer]:
    loaded = load_playbook(ROOT / "playbooks" / playbook_file)
    playbook = loaded.require()
    fast = NoticeRenderer.for_playbook(playbook, loaded.base_dir, notice, AT, exercise=exercise)
    plain = NoticeRenderer(playbook, notice, fast.store, AT, reuse=False, exercise=exercise)
    return fast, plain


@pytest.mark.parametrize(("playbook_file", "notice"), SHIPPED)
def test_shipped_templates_in_every_language_give_the_one_recipient_render(playbook_file: str, notice: str) -> None:
    fast, plain = renderers(playbook_file, notice)
    for locale in fast.playbook.organisation.locales:
        assert fast.email_batchability(locale) == Batchability(("name",))
        batched = {name: assert_same_as_alone(fast, plain, locale, timezone,
                                              {"id": "r1", "name": name, "locale": locale, "timezone": timezone})
                   for name in hostile_names() for timezone in ("Europe/Stockholm", "America/New_York")}
        alone = {name for name, went in batched.items() if not went}
        assert alone == {"^", KEY_TEXT}, locale  # the marker in a value: that reader gets their own render


def test_an_exercise_marks_the_shared_render_the_same_way() -> None:
    fast, plain = renderers("nordvind-storm.yaml", "storm-outage", exercise=True)
    for name in ("Anna", "", "<i>x</i>", "a" * 10_000):
        assert assert_same_as_alone(fast, plain, "sv", "Europe/Stockholm", {"name": name, "locale": "sv"})


def test_readers_with_and_without_a_name_get_different_shared_renders() -> None:
    fast, _ = renderers("nordvind-storm.yaml", "storm-outage")
    named = [fast.render("email", "en", "Europe/Stockholm", {"name": n}) for n in ("Anna", "Bo", "<&>")]
    nameless = [fast.render("email", "en", "Europe/Stockholm", {"name": ""}) for _ in range(2)]
    shared = {c.personalised.shared for c in named + nameless if isinstance(c, EmailContent) and c.personalised}
    assert len(shared) == 2
    assert all(isinstance(c, EmailContent) and c.personalised and not c.personalised.substitutions for c in nameless)
    first = nameless[0]
    assert isinstance(first, EmailContent) and "Hello," in first.text


def test_text_and_html_get_separate_keys_and_html_values_are_escaped() -> None:
    fast, _ = renderers("nordvind-storm.yaml", "storm-outage")
    content = fast.render("email", "en", "Europe/Stockholm", {"name": "Tom & \"Jerry\" <x>"})
    assert isinstance(content, EmailContent) and content.personalised is not None
    (text_key, text_value), (html_key, html_value) = content.personalised.substitutions
    assert text_key != html_key and text_key in content.personalised.shared.text
    assert html_key in content.personalised.shared.html and html_key not in content.personalised.shared.text
    assert (text_value, html_value) == ('Tom & "Jerry" <x>', "Tom &amp; &#34;Jerry&#34; &lt;x&gt;")
    assert len({len(text_key), len(html_key)}) == 1 and text_key[0] == content.personalised.marker == "^"


EDGY = {
    "outage/en/email_subject.txt": "{{ recipient.name }} · {{ recipient.area }} {{ vars.area }}",
    "outage/en/email.txt": "{{ recipient.name }}{{ recipient.area }}\n\nOutage {% if recipient.area %}near "
                           "{{ recipient.area }}{% else %}somewhere{% endif %} ^ marker\n{{ recipient.name }}",
    "outage/en/email.html": "{{ recipient.area }} <p title=\"{{ recipient.name }}\">{{ recipient['name'] }}</p>",
}


def test_values_at_the_edges_and_in_the_subject_are_substituted_only_when_that_is_exact(tmp_path: Path) -> None:
    renderer = renderer_for(make_project(tmp_path, EDGY))
    plain = NoticeRenderer(renderer.playbook, "outage", renderer.store, renderer.sent_at, reuse=False)
    values = ["Anna", "", " Anna", "Anna ", "A  B", "A\nB", "A B", "<&>", "~", "^", "😀"]
    went = {(name, area): assert_same_as_alone(plain=plain, fast=renderer, locale="en", timezone="Europe/Stockholm",
                                               recipient={"name": name, "area": area})
            for name, area in itertools.product(values, values)}
    assert went[("Anna", "<&>")] and went[("", "")] and went[("😀", "A B")]
    assert not went[(" Anna", "Anna")] and not went[("A  B", "Anna")] and not went[("A\nB", "Anna")]
    shared = renderer.render("email", "en", "Europe/Stockholm", {"name": "Anna", "area": "x"})
    assert isinstance(shared, EmailContent) and shared.personalised is not None
    assert shared.personalised.marker == "~"  # the template's own text has a '^'


@pytest.mark.parametrize(("source", "reason", "line"), [
    ("{{ recipient.name|upper }}", "applies the filter 'upper' to 'recipient.name'", 1),
    ("\n{% if recipient.name == 'Anna' %}x{% endif %}", "compares 'recipient.name'", 2),
    ("{% for c in recipient.name %}{{ c }}{% endfor %}", "loops over 'recipient.name'", 1),
    ("{% if recipient.name is defined %}x{% endif %}", "tests 'recipient.name' with 'is defined'", 1),
    ("{% set n = recipient.name %}{{ n }}", "assigns 'recipient.name' to a variable", 1),
    ("{{ recipient }}", "uses 'recipient' as a whole (not one of its values)", 1),
    ("{{ recipient[vars.area] }}", "uses 'recipient' as a whole (not one of its values)", 1),
    ("{% filter upper %}{{ recipient.name }}{% endfilter %}",
     "prints 'recipient.name' inside a {% filter %} block", 1),
    ("{% set g %}Hi {{ recipient.name }}{% endset %}{{ g|trim }}", "prints 'recipient.name' inside a {% set %} block",
     1),
    ("{% macro hi() %}{{ recipient.name }}{% endmacro %}{{ hi() }}", "prints 'recipient.name' inside a macro", 1),
    ("{{ recipient.items }}", "uses 'recipient.items', which is a method of the recipient's mapping", 1),
    ("{{ recipient.name ~ '!' }}", "uses 'recipient.name' in an expression (Concat)", 1),
    ("{{ recipient.name or 'friend' }}", "uses 'recipient.name' in an expression (Or)", 1),
    ("{{ recipient.name.upper() }}", "uses a part of 'recipient.name'", 1),
    ("{% for recipient in reach %}{{ recipient.label }}{% endfor %}", "assigns to 'recipient'", 1),
    ("{% include vars.area %}", "includes a template whose name is computed", 0),
])
def test_templates_substitution_cannot_reproduce_are_named_with_the_reason(tmp_path: Path, source: str, reason: str,
                                                                          line: int) -> None:
    renderer = renderer_for(make_project(tmp_path, {"outage/en/email.txt": source}))
    assert renderer.email_batchability("en") == Batchability(reason=reason, template="outage/en/email.txt", line=line)
    assert renderer.email_personaliser("en") is None


@pytest.mark.parametrize("source", [
    "{{ recipient.name }}", "{% if recipient.name and not recipient.area %}{{ recipient.name }}{% endif %}",
    "{{ 'a' if recipient.name else 'b' }}", "{{ recipient['name'] }}",
    "{% for r in reach %}{{ recipient.name }}{% endfor %}{% if vars.area %}{{ recipient.area }}{% endif %}",
])
def test_printing_and_testing_for_truth_can_be_batched(tmp_path: Path, source: str) -> None:
    renderer = renderer_for(make_project(tmp_path, {"outage/en/email.txt": source}))
    assert renderer.email_batchability("en").batchable


def test_a_template_that_cannot_be_batched_falls_back_to_one_render_per_reader(tmp_path: Path) -> None:
    renderer = renderer_for(make_project(tmp_path, {"outage/en/email.txt": "Hi {{ recipient.name|upper }}"}))
    content = renderer.render("email", "en", "Europe/Stockholm", {"name": "anna"})
    assert isinstance(content, EmailContent) and content.personalised is None and "Hi ANNA" in content.text


def test_readers_missing_a_value_or_with_values_that_are_not_text_are_rendered_alone(tmp_path: Path) -> None:
    renderer = renderer_for(make_project(tmp_path))
    content = renderer.render("email", "en", "Europe/Stockholm", {"name": 7})
    assert isinstance(content, EmailContent) and content.personalised is None and "Hello 7" in content.text


def test_analysis_follows_includes_and_layouts(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"_partials/en/reach.txt": "{{ recipient.name|lower }}"})
    renderer = renderer_for(project)
    assert renderer.email_batchability("en") == Batchability(
        reason="applies the filter 'lower' to 'recipient.name'", template="_partials/en/reach.txt", line=1)
    assert analyse(renderer.store, ["outage/sv/email.txt"]).batchable
