"""Read a playbook file into the model, with every error placed at file:line:column.

``load_playbook`` runs the three stages of validation and collects what each
finds: YAML (syntax, duplicate keys, encoding, size), the model (types and
single values, via pydantic), and the whole-playbook checks of
:mod:`crisiscomms.checks`. Pydantic's error locations are mapped back to the
YAML marks, and its messages are rewritten to say what to do.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .diagnostics import Diagnostic, has_errors
from .errors import PlaybookInvalid
from .playbook import Playbook
from .yamlsource import PathKey, SourceMap, YamlSourceError, load_yaml_file


@dataclass
class LoadedPlaybook:
    """A playbook file after validation: the model (when it could be built) and what was found."""

    path: Path
    shown_path: str
    playbook: Playbook | None
    source: SourceMap | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.playbook is not None and not has_errors(self.diagnostics)

    @property
    def base_dir(self) -> Path:
        return self.path.resolve().parent

    def require(self) -> Playbook:
        """The playbook, or :class:`PlaybookInvalid` listing every error."""
        if self.playbook is None or has_errors(self.diagnostics):
            errors = [d for d in self.diagnostics if d.severity == "error"]
            lines = "\n".join(d.as_text() for d in errors)
            raise PlaybookInvalid(
                f"{self.shown_path} is not valid ({len(errors)} error{'s' if len(errors) != 1 else ''}):\n{lines}",
                list(errors))
        return self.playbook


def load_playbook(path: Path, *, shown_path: str | None = None, run_checks: bool = True) -> LoadedPlaybook:
    """Load and validate one playbook; never raises for a problem in the file."""
    shown = shown_path or str(path)
    try:
        data, source = load_yaml_file(path, display_path=shown)
    except YamlSourceError as error:
        return LoadedPlaybook(path, shown, None, None, [error.diagnostic])
    playbook, diagnostics = validate_data(data, source)
    loaded = LoadedPlaybook(path, shown, playbook, source, diagnostics)
    if playbook is not None and run_checks:
        from .checks import check_playbook

        loaded.diagnostics.extend(check_playbook(playbook, source, loaded.base_dir))
    loaded.diagnostics.sort(key=lambda d: (d.line, d.column, d.message))
    return loaded


def validate_data(data: dict[str, Any], source: SourceMap) -> tuple[Playbook | None, list[Diagnostic]]:
    region = _organisation_region(data)
    try:
        return Playbook.model_validate(data, context={"region": region}), []
    except ValidationError as error:
        return None, _dedupe([_diagnostic_for(detail, data, source) for detail in error.errors()])


def _organisation_region(data: dict[str, Any]) -> str | None:
    organisation = data.get("organisation")
    country = organisation.get("country") if isinstance(organisation, dict) else None
    if isinstance(country, str) and country.upper() in phonenumbers.SUPPORTED_REGIONS:
        return country.upper()
    return None


def _dedupe(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """One error per place: a union (date or datetime) fails once per member."""
    first_at: dict[tuple[int, int], Diagnostic] = {}
    for diagnostic in diagnostics:
        first_at.setdefault((diagnostic.line, diagnostic.column), diagnostic)
    return sorted(first_at.values(), key=lambda d: (d.line, d.column, d.message))


def _diagnostic_for(detail: ErrorDetails, data: Any, source: SourceMap) -> Diagnostic:
    location, points_at_key = _data_location(detail, data)
    message = _message_for(detail, location)
    if detail["type"] == "missing":
        return source.diagnostic(location[:-1], message)
    return source.diagnostic(location, message, key=points_at_key)


def _data_location(detail: ErrorDetails, data: Any) -> tuple[PathKey, bool]:
    """Pydantic's ``loc`` without union tags, plus a model validator's subpath."""
    location: list[str | int] = []
    points_at_key = detail["type"] == "extra_forbidden"
    current = data
    raw_loc = list(detail["loc"])
    ctx = detail.get("ctx") or {}
    raw_loc.extend(ctx.get("subpath", ()))
    for part in raw_loc:
        if part == "[key]":
            points_at_key = True
            continue
        if _has_child(current, part):
            current = current[part]
            location.append(part)
        elif isinstance(current, dict) and _is_last_meaningful(raw_loc, part):
            location.append(part)  # a missing or unknown key
        # anything else is a union tag such as 'mapping' or 'text': skip it
    return tuple(location), points_at_key


def _has_child(value: Any, part: str | int) -> bool:
    if isinstance(value, dict):
        return part in value
    return isinstance(value, list) and isinstance(part, int) and part < len(value)


def _name_of(location: PathKey) -> str:
    """``('notices', 'storm', 'channels', 1)`` → ``"channels entry 2"``."""
    if not location:
        return "playbook"
    last = location[-1]
    if isinstance(last, int):
        parent = str(location[-2]) if len(location) > 1 else "list"
        return f"{parent} entry {last + 1}"
    return str(last)


def _is_last_meaningful(loc: list[Any], part: Any) -> bool:
    index = len(loc) - 1 - loc[::-1].index(part)
    return all(p == "[key]" for p in loc[index + 1:])


def _message_for(detail: ErrorDetails, location: PathKey) -> str:
    kind = detail["type"]
    name = _name_of(location)
    value = detail.get("input")
    if kind == "missing":
        return f"missing required key '{name}'"
    if kind == "extra_forbidden":
        return _unknown_key_message(name, location[:-1])
    if kind == "literal_error":
        expected = (detail.get("ctx") or {}).get("expected", "")
        return f"{_quoted(name)} is {_show(value)}; expected {expected}"
    if kind in {"string_type", "int_type", "int_parsing", "float_type", "float_parsing", "bool_type",
                "bool_parsing", "dict_type", "list_type", "date_type", "date_parsing",
                "datetime_type", "datetime_parsing", "datetime_from_date_parsing", "model_type",
                "model_attributes_type"}:
        return f"{_quoted(name)} is {_show(value)}; {_expected_type(kind)}"
    if kind in {"too_short", "string_too_short"} and not value:
        return f"{_quoted(name)} is empty; give at least one"
    limits = detail.get("ctx") or {}
    if kind in {"greater_than_equal", "greater_than"}:
        bound = limits.get("ge", limits.get("gt"))
        word = "at least" if kind == "greater_than_equal" else "more than"
        return f"{_quoted(name)} is {_show(value)}; it must be {word} {bound}"
    if kind in {"less_than_equal", "less_than"}:
        bound = limits.get("le", limits.get("lt"))
        word = "at most" if kind == "less_than_equal" else "less than"
        return f"{_quoted(name)} is {_show(value)}; it must be {word} {bound}"
    if kind == "string_pattern_mismatch":
        return f"{_quoted(name)} is {_show(value)}; it must match {limits.get('pattern')}"
    message = detail["msg"]
    if kind.startswith("value_error"):
        message = message.removeprefix("Value error, ")
    return message if kind in _OWN_MESSAGES else f"{_quoted(name)}: {message}"


def _quoted(name: str) -> str:
    return name if " entry " in name else f"'{name}'"


_OWN_MESSAGES = frozenset({
    "bad_id", "bad_timezone", "bad_locale", "bad_url", "bad_country", "bad_email", "bad_days",
    "bad_hours", "bad_phone", "exception_period", "missing_contact", "day_twice", "channel_twice",
    "sender", "bad_quiet_hours",
})


def _expected_type(kind: str) -> str:
    return {
        "string_type": "expected text (put it in quotes if it looks like a number or date)",
        "int_type": "expected a whole number", "int_parsing": "expected a whole number",
        "float_type": "expected a number", "float_parsing": "expected a number",
        "bool_type": "expected true or false", "bool_parsing": "expected true or false",
        "dict_type": "expected a mapping of keys to values",
        "model_type": "expected a mapping of keys to values",
        "model_attributes_type": "expected a mapping of keys to values",
        "list_type": "expected a list (- item lines or [a, b])",
        "date_type": "expected a date like 2026-12-24", "date_parsing": "expected a date like 2026-12-24",
        "datetime_type": "expected a date and time like 2026-12-24T18:00:00+01:00",
        "datetime_parsing": "expected a date and time like 2026-12-24T18:00:00+01:00",
        "datetime_from_date_parsing": "expected a date and time like 2026-12-24T18:00:00+01:00",
    }[kind]


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty"
    return repr(value) if isinstance(value, str) else str(value)


def _unknown_key_message(name: str, parent: PathKey) -> str:
    allowed = _allowed_keys(parent)
    suggestion = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    hint = f"did you mean '{suggestion[0]}'?" if suggestion else f"allowed here: {', '.join(sorted(allowed))}"
    return f"unknown key '{name}' ({hint})"


def _allowed_keys(parent: PathKey) -> list[str]:
    """Keys of the model found by following ``parent`` down from :class:`Playbook`."""
    annotation: Any = Playbook
    for part in parent:
        annotation = _descend(annotation, part)
        if annotation is None:
            return []
    model = _model_in(annotation)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _descend(annotation: Any, part: str | int) -> Any:
    model = _model_in(annotation)
    if model is not None:
        for name, info in model.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    for candidate in _union_members(annotation):
        origin = typing.get_origin(candidate)
        if origin is dict:
            return typing.get_args(candidate)[1]
        if origin is list:
            return typing.get_args(candidate)[0]
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for candidate in _union_members(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _union_members(annotation: Any) -> list[Any]:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _union_members(arg)]
    return [annotation]
