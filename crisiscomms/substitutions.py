"""Personalised e-mail as one shared rendering plus SendGrid substitutions per reader.

SendGrid replaces each key of a personalization's ``substitutions`` by its value, literally, in the
subject and in every content part. So readers whose e-mails differ only in their own values
(``Hello {{ recipient.name }}``) can share one request: the templates are rendered once with a
*placeholder* for each value, and each reader's personalization carries the values.

The result must be byte for byte the reader's own rendering. What makes it so:

* **Static check** (:func:`analyse`, the Jinja AST of the e-mail's templates and everything they
  include or extend): a recipient value may only be printed as it is (``{{ recipient.name }}``) or
  tested for truth (``{% if recipient.name %}``, ``not``, ``and``, ``or``). A filter, a comparison, a
  test, a loop, an assignment, a macro, a ``{% filter %}``/``{% set %}`` block or an
  ``{% autoescape %}`` block around it makes the template unbatchable: its readers get one request
  per distinct rendering, as before, and ``validate`` says which template and why (a note).
* **Two keys per value**: the placeholder prints its *text key* where Jinja prints text
  (``str()``) and its *HTML key* where it autoescapes (``__html__``), so each part gets the value the
  way Jinja would have printed it: raw in text, ``markupsafe.escape``-d in HTML.
* **Branches**: an empty value is rendered as itself (never substituted), so a reader with an empty
  name takes the ``{% else %}`` branch in a shared rendering of its own. Non-empty values are truthy,
  as the placeholder is.
* **Keys that cannot be confused**: every key is the same length and starts with a *marker*
  character that occurs nowhere else in the shared rendering and in none of the values. Whatever order
  SendGrid replaces keys in, a key can then only ever be found where it was put.
* **What rendering does after Jinja**: the subject is made one line (whitespace runs → one space,
  stripped) and the parts are stripped. A value in the subject must already be one line; a value next
  to a part's edge (only whitespace and other keys between) must not start or end with whitespace.

A reader whose values break a rule (the marker in a value, a value that is not a string, …) simply
gets the one-recipient rendering.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import meta, nodes
from jinja2.exceptions import TemplateError as JinjaTemplateError
from markupsafe import escape

from .content import EmailContent, Personalised
from .template_store import TemplateStore

__all__ = ["Batchability", "EmailPersonaliser", "analyse"]

MARKERS = ("^", "~", "|", "`")  # the key's first character: one of these, absent from the shared rendering
TOKEN = secrets.token_hex(5)  # ten hex digits: keys differ from run to run
MAX_FIELDS = 1000  # keys are of a fixed length: three digits for the field
READER = "recipient"

_SPACES = re.compile(r"\s+")
_MIGHT_USE_READER = re.compile(rf"{READER}|include|extends|import")
_SURROUNDINGS = (nodes.AssignBlock, nodes.FilterBlock, nodes.Macro, nodes.CallBlock,
                 nodes.ScopedEvalContextModifier, nodes.EvalContextModifier)
_SURROUNDING_WORDS = {"AssignBlock": "a {% set %} block", "FilterBlock": "a {% filter %} block",
                      "Macro": "a macro", "CallBlock": "a {% call %} block",
                      "ScopedEvalContextModifier": "an {% autoescape %} block",
                      "EvalContextModifier": "an {% autoescape %} block"}


@dataclass(frozen=True)
class Batchability:
    """Whether an e-mail's templates can share requests through substitutions, and if not, why."""

    fields: tuple[str, ...] = ()  # the recipient values the templates use
    reason: str | None = None  # None: batchable
    template: str = ""  # where the first obstacle is
    line: int = 0
    unreadable: bool = False  # a template could not be read or parsed: rendering reports that

    @property
    def batchable(self) -> bool:
        return self.reason is None


class _Obstacle(Exception):
    def __init__(self, reason: str, line: int) -> None:
        super().__init__(reason)
        self.reason, self.line = reason, line


def analyse(store: TemplateStore, names: Sequence[str]) -> Batchability:
    """Check ``names`` (and all they include, import or extend) for uses of ``recipient`` that
    substitution cannot reproduce."""
    fields: dict[str, None] = {}
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        try:
            if not _MIGHT_USE_READER.search((store.root / name).read_text(encoding="utf-8")):
                continue  # neither mentions the reader nor brings in another template: no need to parse it
            tree = store.parse(name)
        except (OSError, UnicodeDecodeError, JinjaTemplateError, RecursionError) as error:
            return Batchability(reason=f"could not be read ({type(error).__name__})", template=name, unreadable=True)
        try:
            for used in _reader_fields(tree):
                fields[used] = None
        except _Obstacle as obstacle:
            return Batchability(reason=obstacle.reason, template=name, line=obstacle.line)
        for child in meta.find_referenced_templates(tree):
            if child is None:
                return Batchability(reason="includes a template whose name is computed", template=name)
            pending.append(child)
    if len(fields) > MAX_FIELDS:
        return Batchability(reason=f"uses more than {MAX_FIELDS} recipient values", template=names[0])
    return Batchability(tuple(fields))


def _reader_fields(tree: nodes.Template) -> Iterator[str]:
    """The recipient fields used in ``tree``; raises :class:`_Obstacle` at the first use substitution
    cannot reproduce."""
    for chain in _reader_uses(tree, ()):
        yield _check_use(chain)


def _reader_uses(node: nodes.Node, ancestors: tuple[nodes.Node, ...]) -> Iterator[tuple[nodes.Node, ...]]:
    """Each ``recipient`` name with its ancestors (innermost last)."""
    if isinstance(node, nodes.Name) and node.name == READER:
        yield (*ancestors, node)
        return
    for child in node.iter_child_nodes():
        yield from _reader_uses(child, (*ancestors, node))


def _check_use(chain: tuple[nodes.Node, ...]) -> str:
    name = chain[-1]
    assert isinstance(name, nodes.Name)
    line = name.lineno
    if name.ctx != "load":
        raise _Obstacle("assigns to 'recipient'", line)
    holder = chain[-2] if len(chain) > 1 else None
    field_name = _field_of(holder, name)
    if field_name is None:
        raise _Obstacle("uses 'recipient' as a whole (not one of its values)", line)
    shown = f"recipient.{field_name}"
    if isinstance(holder, nodes.Getattr) and hasattr(dict, field_name):
        raise _Obstacle(f"uses '{shown}', which is a method of the recipient's mapping", line)
    assert holder is not None
    rest = chain[:-2]
    user = rest[-1] if rest else None
    if isinstance(user, nodes.Output) and any(child is holder for child in user.nodes):
        surrounding = next((n for n in rest if isinstance(n, _SURROUNDINGS)), None)
        if surrounding is not None:
            raise _Obstacle(f"prints '{shown}' inside {_SURROUNDING_WORDS[type(surrounding).__name__]}", line)
        return field_name
    if _only_tested_for_truth(holder, rest):
        return field_name
    raise _Obstacle(_what_it_does(shown, holder, user), line)


def _field_of(holder: nodes.Node | None, name: nodes.Name) -> str | None:
    if isinstance(holder, nodes.Getattr) and holder.node is name:
        return holder.attr
    if isinstance(holder, nodes.Getitem) and holder.node is name and isinstance(holder.arg, nodes.Const) \
            and isinstance(holder.arg.value, str):
        return holder.arg.value
    return None


def _only_tested_for_truth(use: nodes.Node, ancestors: tuple[nodes.Node, ...]) -> bool:
    """True when ``use`` only decides an ``if`` (through ``not``/``and``/``or``)."""
    current = use
    for parent in reversed(ancestors):
        if isinstance(parent, nodes.Not | nodes.And | nodes.Or):
            current = parent
            continue
        return isinstance(parent, nodes.If | nodes.CondExpr) and parent.test is current
    return False


def _what_it_does(shown: str, use: nodes.Node, user: nodes.Node | None) -> str:
    if isinstance(user, nodes.Filter):
        return f"applies the filter '{user.name}' to '{shown}'"
    if isinstance(user, nodes.Test):
        return f"tests '{shown}' with 'is {user.name}'"
    if isinstance(user, nodes.Compare | nodes.Operand):
        return f"compares '{shown}'"
    if isinstance(user, nodes.For) and user.iter is use:
        return f"loops over '{shown}'"
    if isinstance(user, nodes.Getattr | nodes.Getitem):
        return f"uses a part of '{shown}'"
    if isinstance(user, nodes.Call):
        return f"calls with '{shown}'"
    if isinstance(user, nodes.Assign | nodes.With):
        return f"assigns '{shown}' to a variable"
    return f"uses '{shown}' in an expression ({type(user).__name__ if user else 'template'})"


# --------------------------------------------------------------------------- the shared rendering


class _Placeholder:
    """Prints a text key where Jinja prints text, an HTML key where it autoescapes; always true."""

    __slots__ = ("html_key", "text_key")

    def __init__(self, text_key: str, html_key: str) -> None:
        self.text_key, self.html_key = text_key, html_key

    def __str__(self) -> str:
        return self.text_key

    def __html__(self) -> str:
        return self.html_key

    def __bool__(self) -> bool:
        return True


def _keys(marker: str, index: int) -> tuple[str, str]:
    return f"{marker}{TOKEN}{index:03d}t", f"{marker}{TOKEN}{index:03d}h"


@dataclass(frozen=True)
class _Shared:
    content: EmailContent  # with keys, exercise-marked if the run is an exercise
    marker: str
    keys: dict[str, tuple[str | None, str | None]]  # field → (text key, HTML key), each None when not in content
    one_line: frozenset[str]  # fields printed in the subject
    edges: frozenset[str]  # fields printed next to a part's start or end


Marker = Callable[[EmailContent], EmailContent]  # the exercise marker (or nothing)


@dataclass
class EmailPersonaliser:
    """Renders personalised e-mails of one locale from shared renderings (one per time zone and set of
    empty values)."""

    fields: tuple[str, ...]
    render: Callable[[str, Mapping[str, Any]], EmailContent]  # (time zone, recipient) → unmarked content
    mark: Marker
    _shared: dict[tuple[str, frozenset[str]], _Shared | None] = field(default_factory=dict)

    def personalise(self, timezone: str, recipient: Mapping[str, Any]) -> EmailContent | None:
        """The reader's e-mail with its substitutions, or None when it needs its own rendering."""
        values: dict[str, str] = {}
        for name in self.fields:
            value = recipient.get(name)
            if not isinstance(value, str):
                return None
            values[name] = value
        empty = frozenset(name for name, value in values.items() if not value)
        key = (timezone, empty)
        if key not in self._shared:
            self._shared[key] = self._render_shared(timezone, empty)
        shared = self._shared[key]
        return None if shared is None else _personalised(shared, values)

    def _render_shared(self, timezone: str, empty: frozenset[str]) -> _Shared | None:
        for marker in MARKERS:
            placeholders = {name: _Placeholder(*_keys(marker, index)) for index, name in enumerate(self.fields)}
            reader = {name: "" if name in empty else placeholders[name] for name in self.fields}
            unmarked = self.render(timezone, reader)
            content = self.mark(unmarked)
            used = {name: placeholders[name] for name in self.fields if name not in empty}
            if not _marker_only_in_keys(content, marker, used.values()):
                continue
            return _Shared(content, marker, {name: _present(content, p) for name, p in used.items()},
                           frozenset(name for name, p in used.items() if _in(unmarked.subject, p)),
                           frozenset(_at_edges(unmarked, used)))
        return None


def _parts(content: EmailContent) -> tuple[str, str, str]:
    return content.subject, content.text, content.html


def _in(text: str, placeholder: _Placeholder) -> bool:
    return placeholder.text_key in text or placeholder.html_key in text


def _present(content: EmailContent, placeholder: _Placeholder) -> tuple[str | None, str | None]:
    parts = _parts(content)
    return (placeholder.text_key if any(placeholder.text_key in p for p in parts) else None,
            placeholder.html_key if any(placeholder.html_key in p for p in parts) else None)


def _marker_only_in_keys(content: EmailContent, marker: str, placeholders: Iterable[_Placeholder]) -> bool:
    keys = [key for p in placeholders for key in (p.text_key, p.html_key)]
    for part in _parts(content):
        for key in keys:
            part = part.replace(key, "")
        if marker in part:
            return False
    return True


def _at_edges(content: EmailContent, used: Mapping[str, _Placeholder]) -> Iterator[str]:
    """Fields whose keys are separated from the start or end of the text or HTML part only by
    whitespace and other keys (stripping the part would reach into their values)."""
    owner = {key: name for name, p in used.items() for key in (p.text_key, p.html_key)}
    for part in (content.text, content.html):
        yield from _leading(part, owner)
        yield from _leading(part[::-1], {key[::-1]: name for key, name in owner.items()})


def _leading(text: str, owner: Mapping[str, str]) -> Iterator[str]:
    rest = text.lstrip()
    while (found := next((key for key in owner if rest.startswith(key)), None)) is not None:
        yield owner[found]
        rest = rest[len(found):].lstrip()


def _personalised(shared: _Shared, values: Mapping[str, str]) -> EmailContent | None:
    substitutions: list[tuple[str, str]] = []
    for name, (text_key, html_key) in shared.keys.items():
        value = values[name]
        if text_key is None and html_key is None:
            continue  # only decides a branch
        if shared.marker in value:
            return None
        if name in shared.one_line and _SPACES.sub(" ", value).strip() != value:
            return None
        if name in shared.edges and (value[0].isspace() or value[-1].isspace()):
            return None
        if text_key is not None:
            substitutions.append((text_key, value))
        if html_key is not None:
            substitutions.append((html_key, str(escape(value))))
    return EmailContent.substituted(Personalised(shared.content, tuple(substitutions), shared.marker))
