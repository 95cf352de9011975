"""Diagnostics: one finding about one place in one file.

Validation never stops at the first problem: it collects diagnostics, and
the command-line layer prints them as text, JSON or GitHub annotations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning", "note"]  # a note informs (an intended fallback); it never fails


@dataclass(frozen=True, order=True)
class Diagnostic:
    """A problem at ``path:line:column`` (1-based; 0 when the place is the whole file)."""

    path: str
    line: int
    column: int
    severity: Severity
    message: str

    def as_text(self) -> str:
        place = self.path
        if self.line:
            place += f":{self.line}"
            if self.column:
                place += f":{self.column}"
        return f"{place}: {self.severity}: {self.message}"

    def as_github(self) -> str:
        command = {"error": "error", "warning": "warning"}.get(self.severity, "notice")
        properties = f"file={_escape_property(self.path)}"
        if self.line:
            properties += f",line={self.line}"
            if self.column:
                properties += f",col={self.column}"
        return f"::{command} {properties}::{_escape_data(self.message)}"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
