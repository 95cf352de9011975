"""The template folder of a playbook: a sandboxed Jinja2 environment confined to it, and template errors
that name the file and line.

The environment is Jinja2's :class:`ImmutableSandboxedEnvironment` with
:class:`StrictUndefined`; HTML is autoescaped, text is not; the loader can read
nothing outside the template folder (symlinks included); compiled templates
are cached by their source. Filters: ``datetime``, ``date``, ``time`` (in the
reader's locale and time zone) and ``spoken_digits`` (numbers for calls).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
    pass_context,
)
from jinja2.bccache import Bucket, BytecodeCache, FileSystemBytecodeCache
from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import TemplateError
from .formatting import (
    format_date_for,
    format_datetime_for,
    format_time_for,
)
from .locales import folder_spellings
from .playbook import Playbook
from .smsenc import normalise_for_gsm


@dataclass(frozen=True)
class TemplateProblem:
    """Where a template problem is: ``templates/set/sv/sms.txt:3``."""

    path: str
    line: int
    message: str

    def as_text(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


class TemplateRenderError(TemplateError):
    def __init__(self, problem: TemplateProblem) -> None:
        super().__init__(problem.as_text())
        self.problem = problem


MAX_RESULT_LENGTH = 100_000  # characters a string or list repetition may produce in a template
MAX_POWER_BITS = 4_096


class _CrisisSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus limits on ``'x' * 10**10`` and ``10 ** 10**10``, which would exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*" and isinstance(right, int) and isinstance(left, str | list | tuple):
            left, right = right, left
        repeats = operator == "*" and isinstance(left, int) and isinstance(right, str | list | tuple)
        if repeats and left * len(right) > MAX_RESULT_LENGTH:
            raise SecurityError(f"a repetition of more than {MAX_RESULT_LENGTH:,} items is not allowed")
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1 \
                and right * abs(left).bit_length() > MAX_POWER_BITS:
            raise SecurityError("a power this large is not allowed")
        return super().call_binop(context, operator, left, right)


class _ConfinedLoader(FileSystemLoader):
    """A loader that also refuses a symlink leading outside the template folder."""

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        root = Path(self.searchpath[0]).resolve()
        if not Path(filename).resolve().is_relative_to(root):
            raise TemplateNotFound(template)
        return source, filename, uptodate


class TemplateStore:
    """The template folder of a playbook, with per-locale fallback to the default locale."""

    def __init__(self, root: Path, default_locale: str, *, shown_root: str | None = None) -> None:
        self.root = root
        self.default_locale = default_locale
        self.shown_root = shown_root or _shown(root)
        self.env = _CrisisSandbox(
            loader=_ConfinedLoader(str(root)),
            undefined=StrictUndefined,
            autoescape=lambda name: bool(name and name.endswith((".html", ".htm"))),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
            bytecode_cache=_bytecode_cache(),
        )
        for name, function in _FILTERS.items():
            self.env.filters[name] = _reader_filter(function)
        self.env.filters["spoken_digits"] = spoken_digits
        self._uses_recipient: dict[str, bool] = {}
        self._parsed: dict[str, nodes.Template] = {}
        self._names: dict[tuple[str, str, str], tuple[str, bool]] = {}

    def name_for(self, template_set: str, locale: str, filename: str) -> tuple[str, bool]:
        """The template to use and whether it is the default locale's stand-in."""
        key = (template_set, locale, filename)
        if key not in self._names:
            own = self.own_name(template_set, locale, filename)
            fallback = self.own_name(template_set, self.default_locale, filename)
            self._names[key] = (own, False) if self.has(template_set, locale, filename) else (fallback, True)
        return self._names[key]

    def own_name(self, template_set: str, locale: str, filename: str) -> str:
        """``set/en_GB/sms.txt``, or ``set/en-GB/sms.txt`` when the folder is spelt that way."""
        for folder in folder_spellings(locale):
            if (self.root / template_set / folder).is_dir():
                return f"{template_set}/{folder}/{filename}"
        return f"{template_set}/{locale}/{filename}"

    def has(self, template_set: str, locale: str, filename: str) -> bool:
        return (self.root / self.own_name(template_set, locale, filename)).is_file()

    def shown(self, name: str) -> str:
        return f"{self.shown_root}/{name}"

    def uses_recipient(self, name: str) -> bool:
        """True when ``name`` or anything it includes or extends mentions ``recipient``."""
        if name not in self._uses_recipient:
            self._uses_recipient[name] = self._mentions_recipient(name, set())
        return self._uses_recipient[name]

    def _mentions_recipient(self, name: str, seen: set[str]) -> bool:
        if name in seen:
            return False
        seen.add(name)
        try:
            parsed = self.parse(name)
            if "recipient" in meta.find_undeclared_variables(parsed):
                return True
        except (OSError, UnicodeDecodeError, JinjaTemplateError, RecursionError):
            return True  # rendering will report it
        return any(
            self._mentions_recipient(child, seen)
            for child in meta.find_referenced_templates(parsed) if child is not None
        )

    def parse(self, name: str) -> nodes.Template:
        """The syntax tree of ``name`` (parsed once); raises OSError, UnicodeDecodeError or Jinja's errors."""
        if name not in self._parsed:
            self._parsed[name] = self.env.parse((self.root / name).read_text(encoding="utf-8"))
        return self._parsed[name]

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(context)
        except Exception as error:
            raise TemplateRenderError(self.problem_for(error, name)) from None

    def problem_for(self, error: BaseException, name: str) -> TemplateProblem:
        where, line = _failing_template(error, name, self.root)
        return TemplateProblem(self.shown(where), line, _describe(error, self._line(where, line)))

    def _line(self, name: str, line: int) -> str:
        try:
            lines = (self.root / name).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return ""
        return lines[line - 1] if 0 < line <= len(lines) else ""


class _QuietBytecodeCache(FileSystemBytecodeCache):
    """Jinja's compiled-template cache; a cache that cannot be read or written is simply not used."""

    def load_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError, ValueError, EOFError):
            super().load_bytecode(bucket)

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _bytecode_cache() -> BytecodeCache | None:
    """Compiled templates are kept (keyed by their source) in ``$CRISISCOMMS_CACHE_DIR`` or
    ``~/.cache/crisiscomms/templates``: compiling is most of what ``validate`` costs."""
    configured = os.environ.get("CRISISCOMMS_CACHE_DIR")
    base = Path(configured) if configured else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    directory = base / "templates" if configured else base / "crisiscomms" / "templates"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        status = directory.stat()
    except OSError:
        return None
    if status.st_uid != os.getuid() or status.st_mode & 0o022:
        return None  # others could plant compiled code there: do without the cache
    return _QuietBytecodeCache(str(directory))


def _reader_filter(function: Any) -> Any:
    """``{{ notice.expires|datetime }}``: format in the reader's locale and time zone."""

    @pass_context
    def apply(context: Context, value: dt.datetime | None) -> str:
        if value is None:
            return ""
        text = str(function(value, context["locale"], context["reader_timezone"]))
        return normalise_for_gsm(text) if context.get("gsm_safe") else text

    return apply


def template_store(playbook: Playbook, base_dir: Path) -> TemplateStore:
    """The template folder a playbook names, relative to the playbook's own folder."""
    return TemplateStore((base_dir / playbook.templates).resolve(), playbook.organisation.default_locale,
                         shown_root=playbook.templates.rstrip("/").split("/")[-1])


def _shown(root: Path) -> str:
    try:
        return str(root.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(root)


def _failing_template(error: BaseException, name: str, root: Path) -> tuple[str, int]:
    """The template file and line that failed (Jinja's rewritten traceback holds them)."""
    if isinstance(error, TemplateSyntaxError):
        where = error.name or name
        if Path(where).is_absolute():  # Jinja's lexer sometimes names the file, not the template
            with contextlib.suppress(ValueError):
                where = Path(where).resolve().relative_to(root.resolve()).as_posix()
        return where, error.lineno
    where, line = name, 0
    root_text = str(root.resolve())
    traceback = error.__traceback__
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if filename.startswith(root_text):
            where, line = Path(filename).resolve().relative_to(root.resolve()).as_posix(), traceback.tb_lineno
        traceback = traceback.tb_next
    return where, line


_NO_ATTRIBUTE = re.compile(r"has no attribute '([^']+)'")


def _undefined_message(error: UndefinedError, source_line: str) -> str:
    """``'dict object' has no attribute 'area'`` → ``'vars.area' is undefined``."""
    message = error.message or str(error)
    match = _NO_ATTRIBUTE.search(message)
    if match:
        used = re.search(r"[A-Za-z_][\w.]*\." + re.escape(match.group(1)) + r"\b", source_line)
        if used:
            return f"undefined variable: '{used.group(0)}' is undefined"
    return f"undefined variable: {message}"


def _describe(error: BaseException, source_line: str = "") -> str:
    if isinstance(error, UndefinedError):
        return _undefined_message(error, source_line)
    if isinstance(error, TemplateSyntaxError):
        return f"template syntax: {error.message}"
    if isinstance(error, TemplateNotFound):
        return f"template not found: {error.name}"
    if isinstance(error, SecurityError):
        return f"not allowed in a template: {error}"
    if isinstance(error, OverflowError):
        return f"not allowed in a template: {error}"
    if isinstance(error, JinjaTemplateError):
        return f"template error: {error.message or error!r}"
    return f"template failed: {type(error).__name__}: {error}"


_FILTERS = {"datetime": format_datetime_for, "date": format_date_for, "time": format_time_for}


def spoken_digits(value: object) -> str:
    """A number for text-to-speech, digit by digit with a pause per group: ``+46 8 465 004 10`` →
    ``+ 4 6, 8, 4 6 5, 0 0 4, 1 0`` (voices read ``465`` as "four hundred sixty-five")."""
    text = str(value).strip()
    plus = text.startswith("+")
    groups = [" ".join(group) for group in re.findall(r"\d+", text)]
    return ("+ " if plus else "") + ", ".join(groups)
