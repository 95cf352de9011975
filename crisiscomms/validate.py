"""``crisiscomms validate``: check playbooks (and, through them, their templates).

The library function returns a :class:`ValidationReport`; the command-line
layer only chooses how to print it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import Diagnostic
from .errors import InputError
from .loader import LoadedPlaybook, load_playbook

PLAYBOOK_SUFFIXES = (".yaml", ".yml")


@dataclass
class PlaybookResult:
    loaded: LoadedPlaybook
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def notes(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "note"]

    def as_dict(self) -> dict[str, object]:
        playbook = self.loaded.playbook
        return {
            "path": self.loaded.shown_path,
            "id": self.loaded.path.stem,
            "locales": list(playbook.organisation.locales) if playbook else [],
            "notices": [
                {"id": nid, "severity": n.severity, "channels": list(n.channels)}
                for nid, n in (playbook.notices.items() if playbook else [])
            ],
            "errors": [d.as_dict() for d in self.diagnostics],
        }


@dataclass
class ValidationReport:
    results: list[PlaybookResult]

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return [d for r in self.results for d in r.diagnostics]

    @property
    def error_count(self) -> int:
        return sum(len(r.errors) for r in self.results)

    @property
    def warning_count(self) -> int:
        return sum(len(r.warnings) for r in self.results)

    @property
    def note_count(self) -> int:
        return sum(len(r.notes) for r in self.results)

    def passed(self, *, strict: bool = False) -> bool:
        return self.error_count == 0 and not (strict and self.warning_count)

    def as_dict(self) -> dict[str, object]:
        return {"playbooks": [r.as_dict() for r in self.results]}


def find_playbooks(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and ``*.yaml``/``*.yml`` below each directory, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in PLAYBOOK_SUFFIXES and p.is_file()))
        elif path.exists():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    return found


def validate_paths(paths: Iterable[Path]) -> ValidationReport:
    files = find_playbooks(paths)
    if not files:
        shown = ", ".join(str(p) for p in paths) or "."
        raise InputError(f"no playbooks (*.yaml, *.yml) found in {shown}")
    return ValidationReport([validate_file(path) for path in files])


def validate_file(path: Path) -> PlaybookResult:
    loaded = load_playbook(path)
    diagnostics = list(loaded.diagnostics)
    if loaded.playbook is not None:
        diagnostics.extend(_template_diagnostics(loaded))
    return PlaybookResult(loaded, diagnostics)


def _template_diagnostics(loaded: LoadedPlaybook) -> Iterator[Diagnostic]:
    """Render every notice × locale × channel, when the playbook itself is sound."""
    if not loaded.ok:
        return
    from .template_checks import check_templates

    yield from check_templates(loaded)
