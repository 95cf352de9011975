"""Safe YAML loading that remembers where every value came from.

PyYAML's ``safe_load`` forgets line numbers, silently keeps the last of two
duplicate keys, reads ``no`` as ``False`` and ``08:30`` as the number 510,
and expands aliases without limit. This loader composes the node tree with
PyYAML's safe machinery and builds plain Python data itself, so that it can:

* record the ``line:column`` of every key and value (:class:`SourceMap`);
* reject duplicate keys, naming both places;
* resolve scalars like YAML 1.2 (only ``true``/``false`` are booleans, no
  base-60 numbers), which is what a comms person writing ``no:`` or ``08:30``
  means;
* refuse alias bombs quickly, by counting nodes as it expands them;
* refuse files that are empty, not a mapping, not UTF-8 or too large.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .diagnostics import Diagnostic
from .errors import InputError

MAX_FILE_BYTES = 1_000_000
MAX_NODES = 50_000

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based


class YamlSourceError(InputError):
    """The file cannot be read as a YAML mapping; ``diagnostic`` says where."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.as_text())
        self.diagnostic = diagnostic


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of a document stands."""

    path: str
    values: dict[PathKey, Mark] = field(default_factory=dict)
    keys: dict[PathKey, Mark] = field(default_factory=dict)

    def mark_of(self, location: PathKey, *, key: bool = False) -> Mark:
        """The mark of ``location``, or of its nearest recorded ancestor."""
        table = self.keys if key else self.values
        if location in table:
            return table[location]
        for end in range(len(location) - 1, -1, -1):
            if location[:end] in self.values:
                return self.values[location[:end]]
        return Mark(1, 1)

    def diagnostic(
        self, location: PathKey, message: str, *, key: bool = False, severity: str = "error"
    ) -> Diagnostic:
        mark = self.mark_of(location, key=key)
        return Diagnostic(self.path, mark.line, mark.column, _severity(severity), message)


def _severity(value: str) -> Any:
    return value if value in ("warning", "note") else "error"


class _Yaml12SafeLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema booleans and numbers."""


def _install_yaml12_resolvers() -> None:
    resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        kept = [(tag, rx) for tag, rx in entries if not tag.endswith((":bool", ":int", ":float"))]
        resolvers[first] = kept
    _Yaml12SafeLoader.yaml_implicit_resolvers = resolvers
    _Yaml12SafeLoader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    _Yaml12SafeLoader.add_implicit_resolver(
        "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
    )
    _Yaml12SafeLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
        list("-+0123456789."),
    )


_install_yaml12_resolvers()

_SYNTAX_HINTS = {
    "mapping values are not allowed here": "put text that contains ': ' in quotes",
    "found character '\\t' that cannot start any token": "indent with spaces, not tabs",
    "found undefined alias": "define the anchor (&name) before using *name",
    "could not find expected ':'": "each entry needs 'key: value'; check the line above for a missing colon or quote",
    "found unexpected end of stream": "a quote or bracket is not closed",
    "expected <block end>": "check the indentation here, and for a quote left open above",
    "expected a single document": "a playbook is one YAML document: remove the '---' line and what follows",
}


def load_yaml_file(path: Path, *, display_path: str | None = None) -> tuple[Any, SourceMap]:
    """Read ``path`` as a YAML mapping; return its data and where each value came from."""
    shown = display_path or str(path)
    text = _read_utf8(path, shown)
    return load_yaml_text(text, shown)


def load_yaml_text(text: str, shown: str) -> tuple[Any, SourceMap]:
    source = SourceMap(shown)
    try:
        node = yaml.compose(text, Loader=_Yaml12SafeLoader)
    except yaml.MarkedYAMLError as error:
        raise YamlSourceError(_syntax_diagnostic(shown, error)) from None
    except yaml.reader.ReaderError as error:
        raise YamlSourceError(_reader_diagnostic(shown, text, error)) from None
    except yaml.YAMLError as error:
        raise YamlSourceError(Diagnostic(shown, 1, 1, "error", f"cannot read YAML: {error}")) from None
    except RecursionError:
        raise YamlSourceError(Diagnostic(
            shown, 1, 1, "error", "the document is nested too deeply to read; a playbook needs a few levels")) from None
    if node is None:
        raise YamlSourceError(
            Diagnostic(shown, 1, 1, "error", "the file is empty; a playbook starts with 'version: 1'")
        )
    if not isinstance(node, yaml.MappingNode):
        mark = _mark(node)
        raise YamlSourceError(
            Diagnostic(shown, mark.line, mark.column, "error",
                       f"a playbook must be a mapping of keys (version, organisation, ...), not {_node_kind(node)}")
        )
    builder = _Builder(source)
    data = builder.build(node, ())
    return data, source


def _read_utf8(path: Path, shown: str) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise YamlSourceError(Diagnostic(
                shown, 0, 0, "error",
                f"the file is {size:,} bytes; a playbook may be at most {MAX_FILE_BYTES:,} bytes"))
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)  # a device or pipe has no size to check first
        if len(raw) > MAX_FILE_BYTES:
            raise YamlSourceError(Diagnostic(
                shown, 0, 0, "error", f"the file is larger than {MAX_FILE_BYTES:,} bytes, the most a playbook may be"))
    except IsADirectoryError:
        raise YamlSourceError(Diagnostic(shown, 0, 0, "error", "is a directory, not a file")) from None
    except FileNotFoundError:
        raise YamlSourceError(Diagnostic(shown, 0, 0, "error", "no such file")) from None
    except OSError as error:
        raise YamlSourceError(Diagnostic(shown, 0, 0, "error", f"cannot read: {error.strerror}")) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise YamlSourceError(Diagnostic(
            shown, line, column, "error",
            f"not UTF-8 (byte 0x{raw[error.start]:02x}); save the file as UTF-8")) from None
    return text.removeprefix("\ufeff")


def _syntax_diagnostic(shown: str, error: yaml.MarkedYAMLError) -> Diagnostic:
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = (error.problem or error.context or "invalid YAML").strip()
    context = (error.context or "").strip()
    hint = next((h for p, h in _SYNTAX_HINTS.items() if problem.startswith(p) or context.startswith(p)), None)
    if context and error.problem and error.context_mark is not None and error.problem_mark is not None:
        where = f"line {error.context_mark.line + 1}"
        problem = f"{context} on {where}, {problem} here"  # e.g. an anchor given twice: both places
    message = f"YAML syntax: {problem}" + (f" ({hint})" if hint else "")
    return Diagnostic(shown, line, column, "error", message)


def _reader_diagnostic(shown: str, text: str, error: yaml.reader.ReaderError) -> Diagnostic:
    """A character YAML does not allow (NUL, most control characters), at its line and column."""
    line = text.count("\n", 0, error.position) + 1
    column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
    character = error.character if isinstance(error.character, str) else chr(error.character)
    return Diagnostic(shown, line, column, "error",
                      f"the control character U+{ord(character):04X} is not allowed in YAML; remove it")


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a single value"


_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


def _scalar_kind(tag: str) -> str:
    return {"tag:yaml.org,2002:timestamp": "date or time", "tag:yaml.org,2002:int": "number",
            "tag:yaml.org,2002:float": "number"}.get(tag, "value")


MAX_DEPTH = 64


class _Builder:
    """Turns a composed node tree into Python data, recording marks."""

    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.loader = _Yaml12SafeLoader("")
        self.nodes_built = 0
        self._merging: set[int] = set()

    def build(self, node: yaml.Node, location: PathKey) -> Any:
        self._count(node)
        if len(location) > MAX_DEPTH:
            mark = _mark(node)
            raise YamlSourceError(Diagnostic(
                self.source.path, mark.line, mark.column, "error",
                f"the document is nested more than {MAX_DEPTH} levels deep; a playbook needs a few levels"))
        self.source.values.setdefault(location, _mark(node))
        self._refuse_foreign_tag(node)
        if isinstance(node, yaml.MappingNode):
            return self._build_mapping(node, location)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*location, index)) for index, item in enumerate(node.value)]
        return self._build_scalar(node)

    def _refuse_foreign_tag(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            expected = _MAP_TAG
        elif isinstance(node, yaml.SequenceNode):
            expected = _SEQ_TAG
        else:
            return
        if node.tag != expected:
            mark = _mark(node)
            shown = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise YamlSourceError(Diagnostic(
                self.source.path, mark.line, mark.column, "error",
                f"YAML tag '{shown}' is not allowed in a playbook; remove it"))

    def _count(self, node: yaml.Node) -> None:
        self.nodes_built += 1
        if self.nodes_built > MAX_NODES:
            mark = _mark(node)
            raise YamlSourceError(Diagnostic(
                self.source.path, mark.line, mark.column, "error",
                f"the document expands to more than {MAX_NODES:,} values "
                "(aliases repeating aliases?); refusing to expand it"))

    def _build_scalar(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError):  # a date like 2026-02-30, an integer of 5,000 digits
            mark = _mark(node)
            shown = str(node.value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise YamlSourceError(Diagnostic(
                self.source.path, mark.line, mark.column, "error",
                f"'{shown}' cannot be read as a {_scalar_kind(node.tag)}; correct it, or put it in quotes "
                "if it is meant as text")) from None
        except yaml.constructor.ConstructorError as error:
            mark = _mark(node)
            shown = node.tag.replace("tag:yaml.org,2002:", "!!")
            problem = (f"YAML tag '{shown}' is not allowed in a playbook; remove it"
                       if "could not determine a constructor" in (error.problem or "") else f"YAML: {error.problem}")
            raise YamlSourceError(Diagnostic(self.source.path, mark.line, mark.column, "error", problem)) from None

    def _build_mapping(self, node: yaml.MappingNode, location: PathKey) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_seen: dict[Any, Mark] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged.update(self._merge_source(value_node, location))
                continue
            key = self._build_key(key_node)
            key_mark = _mark(key_node)
            if key in first_seen:
                earlier = first_seen[key]
                raise YamlSourceError(Diagnostic(
                    self.source.path, key_mark.line, key_mark.column, "error",
                    f"duplicate key '{key}' (first given on line {earlier.line}); "
                    "YAML keeps only one of them: remove or rename one"))
            first_seen[key] = key_mark
            self.source.keys[(*location, key)] = key_mark
            result[key] = self.build(value_node, (*location, key))
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def _merge_source(self, node: yaml.Node, location: PathKey) -> dict[Any, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[Any, Any] = {}
        for source in reversed(sources):
            mark = _mark(source)
            if not isinstance(source, yaml.MappingNode):
                raise YamlSourceError(Diagnostic(
                    self.source.path, mark.line, mark.column, "error",
                    "'<<' merges a mapping; this is not one"))
            if id(source) in self._merging:
                raise YamlSourceError(Diagnostic(
                    self.source.path, mark.line, mark.column, "error",
                    "'<<' merges the mapping it is part of; merge another anchor"))
            self._merging.add(id(source))
            try:
                merged.update(self._build_mapping(source, location))
            finally:
                self._merging.discard(id(source))
        return merged

    def _build_key(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            mark = _mark(node)
            raise YamlSourceError(Diagnostic(
                self.source.path, mark.line, mark.column, "error",
                "a key must be a plain word, not a list or mapping"))
        self._count(node)
        key = self._build_scalar(node)
        return key if isinstance(key, str) else str(key)

