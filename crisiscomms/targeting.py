"""Targeting: a notice (``audience: {where: …}``) or a run (``send --where``) reaches only some rows.

Every condition names an audience column and the values it may have; a row
is targeted when it matches every condition (AND across conditions, OR
among one condition's values). Column names and values are compared
without regard to case or surrounding spaces, so ``Area=bergen`` matches a
column ``area`` holding ``Bergen``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .audience import Recipient
from .errors import AudienceError, UsageError

#: Columns the audience reader interprets; a condition on one of them sees the normalised value.
_KNOWN = ("id", "name", "phone", "email", "locale", "timezone")


@dataclass(frozen=True)
class Condition:
    column: str  # as written by the user
    values: tuple[str, ...]

    @property
    def key(self) -> str:
        return _fold(self.column)

    def describe(self) -> str:
        return f"{self.column} is {' or '.join(self.values)}"


@dataclass(frozen=True)
class Targeting:
    """All conditions of a run: the notice's and the command line's."""

    conditions: tuple[Condition, ...] = ()

    @classmethod
    def of(cls, notice_where: Mapping[str, Sequence[str]], option_where: Iterable[tuple[str, Sequence[str]]]
           ) -> Targeting:
        conditions = [Condition(column, tuple(values)) for column, values in notice_where.items()]
        conditions += [Condition(column, tuple(values)) for column, values in option_where]
        return cls(tuple(conditions))

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def check_columns(self, columns: Sequence[str], audience: Path) -> None:
        """Raise :class:`AudienceError` (exit 3) naming every targeted column the audience file lacks."""
        present = {_fold(name) for name in columns}
        missing = list(dict.fromkeys(c.column for c in self.conditions if c.key not in present))
        if missing:
            raise AudienceError(
                f"{audience}:1: targeting ('where') uses the column(s) {', '.join(missing)}, which the audience "
                f"file lacks (its columns: {', '.join(columns)})")

    def matches(self, person: Recipient) -> bool:
        return all(_value(person, c.key) in {_fold(v) for v in c.values} for c in self.conditions)

    def describe(self) -> str:
        return " and ".join(c.describe() for c in self.conditions)


def parse_where(option: str) -> tuple[str, tuple[str, ...]]:
    """``area=Bergen,Voss`` → ``("area", ("Bergen", "Voss"))``; :class:`UsageError` for anything else."""
    column, equals, values_text = option.partition("=")
    values = tuple(v.strip() for v in values_text.split(",") if v.strip())
    if not equals or not column.strip() or not values:
        raise UsageError(f"--where '{option}': give COLUMN=VALUE[,VALUE…], e.g. --where area=Bergen,Voss")
    return column.strip(), values


def _fold(text: str) -> str:
    return text.strip().casefold()


def _value(person: Recipient, key: str) -> str:
    if key in _KNOWN:
        return _fold(getattr(person, key) or "")
    for name, value in person.fields.items():
        if _fold(name) == key:
            return _fold(value)
    return ""
