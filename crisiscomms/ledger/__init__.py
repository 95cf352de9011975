"""Where campaigns are kept: the interface (:mod:`.base`) and its backends.

The ledger is found the same way from any folder (see :func:`resolve_location`):
``--ledger``, then ``CRISISCOMMS_LEDGER``, then ``providers.ledger`` in the
playbook, then a per-user file under the platform's user *state* directory
(``$XDG_STATE_HOME/crisiscomms/ledger.sqlite`` on Linux).

A location is a SQLite file path or a PostgreSQL URL (``postgresql://USER@HOST:PORT/DB``, also
``postgres://``): the team ledger many machines share (:mod:`.postgres`). The URL is handed to libpq as
given (its password, ``PGPASSWORD`` or ``~/.pgpass``); people only ever see it with its password masked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import LedgerError
from .base import (
    CampaignBusy,
    CampaignInfo,
    Claim,
    ClaimPolicy,
    Decision,
    Holder,
    Lease,
    LeaseGrant,
    LeaseLost,
    Ledger,
    LedgerUnavailable,
    NewPlan,
    Outcome,
    PlanHeader,
    PlanRow,
    Row,
    SkipRow,
    TextChoice,
    decide,
)
from .sqlite import SqliteLedger, check_ledger_path

__all__ = ["CampaignBusy", "CampaignInfo", "Claim", "ClaimPolicy", "Decision", "Holder", "Lease", "LeaseGrant",
           "LeaseLost", "Ledger", "LedgerLocation", "LedgerUnavailable", "NewPlan", "Outcome", "PlanHeader",
           "PlanRow", "Row", "SkipRow", "SqliteLedger", "TextChoice", "check_ledger_path", "decide",
           "default_ledger_path", "open_ledger", "resolve_location"]

ENV_VARIABLE = "CRISISCOMMS_LEDGER"
POSTGRES_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True)
class LedgerLocation:
    """A ledger to open and where that choice came from (shown to the operator)."""

    target: str  # a file path, or a PostgreSQL URL (which may hold a password: never show it, see shown())
    source: str  # "--ledger", "CRISISCOMMS_LEDGER", "the playbook", "the default"

    @property
    def is_database(self) -> bool:
        """A PostgreSQL URL (a team ledger), not a SQLite file."""
        return _scheme(self.target) in POSTGRES_SCHEMES

    @property
    def path(self) -> Path:
        """The SQLite file (for a database URL: its masked text as a path, naming no file; SQLite refuses it)."""
        return Path(self.shown()) if self.is_database else Path(self.target)

    def shown(self) -> str:
        return _mask(self.target)


def default_ledger_path() -> Path:
    from platformdirs import user_state_path

    return user_state_path("crisiscomms", appauthor=False) / "ledger.sqlite"


def resolve_location(option: str | Path | None, environ: Mapping[str, str], *,
                     playbook_ledger: str | None = None, playbook_dir: Path | None = None) -> LedgerLocation:
    """The ledger to use: ``--ledger``, ``CRISISCOMMS_LEDGER``, the playbook's ``ledger:``, the per-user default."""
    if option is not None and str(option):
        return _location(str(option), "--ledger", None)
    if environ.get(ENV_VARIABLE):
        return _location(environ[ENV_VARIABLE], ENV_VARIABLE, None)
    if playbook_ledger:
        return _location(playbook_ledger, "the playbook (providers.ledger)", playbook_dir)
    return LedgerLocation(str(default_ledger_path()), "the default")


def _scheme(text: str) -> str:
    return text.split("://", 1)[0].lower() if "://" in text else ""


def _location(text: str, source: str, relative_to: Path | None) -> LedgerLocation:
    scheme = _scheme(text)
    if scheme in POSTGRES_SCHEMES:
        return LedgerLocation(text.strip(), source)
    if scheme:
        raise LedgerError(f"the ledger '{_mask(text)}' (from {source}) has an unknown scheme '{scheme}'; use a "
                          "SQLite file path or postgresql://USER@HOST:PORT/DB")
    path = Path(text).expanduser()
    if relative_to is not None and not path.is_absolute():
        path = (relative_to / path).resolve()
    return LedgerLocation(str(path.absolute()), source)


def _mask(text: str) -> str:
    """A URL with its password (in the credentials or a ``password=`` parameter) replaced by ***."""
    head, sep, rest = text.partition("://")
    if not sep:
        return text
    address, query_mark, query = rest.partition("?")
    if query_mark:
        query = re.sub(r"(^|&)(password=)[^&]*", r"\1\2***", query, flags=re.IGNORECASE)
    credentials, at, host = address.rpartition("@")
    if at and ":" in credentials:
        address = f"{credentials.split(':', 1)[0]}:***@{host}"
    return f"{head}://{address}{query_mark}{query}"


def open_ledger(location: LedgerLocation, *, create: bool = True) -> Ledger:
    """Open the ledger (LedgerError, exit 3, if it cannot be used; nothing has been sent then)."""
    if location.is_database:
        from .pg_connect import PgTarget
        from .postgres import PostgresLedger

        return PostgresLedger.open(PgTarget(location.target, location.shown()), create=create)
    return SqliteLedger.open(location.path, create=create)
