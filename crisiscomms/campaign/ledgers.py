"""Opening the ledger for a campaign command, and bringing old loose STOP files into it.

crisiscomms 0.1 kept the numbers that replied STOP in ``opted-out-sms.txt``
beside its ledger (``.crisiscomms/`` in the working folder). Such a file is
imported into the ledger once (by its content's hash) and then no longer read.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
from pathlib import Path

from ..ledger import LedgerLocation, open_ledger
from ..ledger.base import Ledger

LEGACY_STOP_FILE = "opted-out-sms.txt"
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def legacy_stop_files(location: LedgerLocation) -> list[Path]:
    """The old STOP files to import: the working folder's, and one beside a SQLite ledger file."""
    candidates = [Path.cwd() / ".crisiscomms" / LEGACY_STOP_FILE]
    if not location.is_database:  # a database URL is no folder
        candidates.append(location.path.parent / LEGACY_STOP_FILE)
    seen: dict[Path, Path] = {}
    for path in candidates:
        with contextlib.suppress(OSError):
            if path.is_file():
                seen.setdefault(path.resolve(), path)
    return list(seen.values())


def _numbers_in(path: Path) -> tuple[str, list[str]]:
    data = path.read_bytes()
    numbers = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if _E164.match(line.strip())]
    return hashlib.sha256(data).hexdigest(), numbers


def open_campaign_ledger(location: LedgerLocation) -> tuple[Ledger, list[str]]:
    """Open (create, migrate) the ledger; import old STOP files. Returns the ledger and notes to show."""
    ledger = open_ledger(location)
    notes: list[str] = []
    try:
        for path in legacy_stop_files(location):
            try:
                digest, numbers = _numbers_in(path)
            except OSError:
                continue
            result = ledger.import_stop_file(str(path), digest, numbers)
            if not result.already:
                notes.append(f"Imported {result.added:,} numbers that replied STOP from {path} into the ledger "
                             f"(once; the ledger's STOP list is used from now on, and that file is no longer read).")
    except BaseException:
        ledger.close()
        raise
    return ledger, notes


def stop_numbers_without_writing(location: LedgerLocation) -> tuple[str, ...]:
    """The STOP list for a dry run: read from the ledger (if there is one) and old files, writing nothing.

    A PostgreSQL ledger that cannot be reached is an error (LedgerError), not an empty list: the plan must not
    be shown without the numbers that replied STOP."""
    numbers: set[str] = set()
    path = location.path
    if location.is_database:
        from ..ledger.pg_connect import PgTarget
        from ..ledger.postgres import read_stop_numbers

        numbers.update(read_stop_numbers(PgTarget(location.target, location.shown())))
    elif path.is_file():
        with contextlib.suppress(sqlite3.Error):
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                if connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'stop_list'").fetchone():
                    numbers.update(str(a) for (a,) in connection.execute("SELECT address FROM stop_list"))
            finally:
                connection.close()
    for legacy in legacy_stop_files(location):
        with contextlib.suppress(OSError):
            numbers.update(_numbers_in(legacy)[1])
    return tuple(sorted(numbers))
