"""Where campaigns are kept: the interface (:mod:`.base`) and its backends.

The ledger is found the same way from any folder (see :func:`resolve_location`):
``--ledger``, then ``CRISISCOMMS_LEDGER``, then ``providers.ledger`` in the
playbook, then a per-user file under the platform's user *state* directory
(``$XDG_STATE_HOME/crisiscomms/ledger.sqlite`` on Linux).
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class LedgerLocation:
    """A ledger to open and where that choice came from (shown to the operator)."""

    target: str  # a file path (or, later, a database URL)
    source: str  # "--ledger", "CRISISCOMMS_LEDGER", "the playbook", "the default"

    @property
    def path(self) -> Path:
        return Path(self.target)

    def shown(self) -> str:
        return self.target


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


def _location(text: str, source: str, relative_to: Path | None) -> LedgerLocation:
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme:
        raise LedgerError(f"the ledger '{_mask(text)}' (from {source}) is not a file path; this crisiscomms "
                          "supports SQLite ledger files only")
    path = Path(text).expanduser()
    if relative_to is not None and not path.is_absolute():
        path = (relative_to / path).resolve()
    return LedgerLocation(str(path.absolute()), source)


def _mask(text: str) -> str:
    """A URL with its password replaced by ***."""
    head, sep, rest = text.partition("://")
    if not sep or "@" not in rest:
        return text
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{head}://{user}:***@{host}" if ":" in credentials else text


def open_ledger(location: LedgerLocation, *, create: bool = True) -> Ledger:
    """Open the ledger (LedgerError, exit 3, if it cannot be used; nothing has been sent then)."""
    return SqliteLedger.open(location.path, create=create)
