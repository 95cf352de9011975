"""The SQLite ledger: schema versions and migration, leases, plans, claims, the STOP list."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from crisiscomms.errors import LedgerError
from crisiscomms.ledger.base import (
    Holder,
)
from crisiscomms.ledger.liveness import process_start, this_host
from crisiscomms.ledger.schema import V1_TABLES, schema_version
from crisiscomms.ledger.sqlite import SqliteLedger

CAMPAIGN = "org/notice"
ME = Holder(this_host(), os.getpid(), "alice", process_start(os.getpid()))
NOW = "2026-11-25T11:00:00+00:00"


@pytest.fixture
def ledger(tmp_path: Path) -> SqliteLedger:
    return SqliteLedger.open(tmp_path / "ledger.sqlite")


# -- schema ------------------------------------------------------------------------------------------------------


def test_a_new_ledger_has_the_current_schema_version_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "ledger.sqlite"
    SqliteLedger.open(path).close()
    with sqlite3.connect(path) as db:
        assert schema_version(db) == 3
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"


def test_a_ledger_folder_made_by_another_process_meanwhile_is_no_error(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two first sends at once both create the default ledger: the slower one must not fail with 'File exists'."""
    path = tmp_path / "state" / "ledger.sqlite"
    path.parent.mkdir(mode=0o700)
    monkeypatch.setattr(Path, "exists", lambda self: False)  # as if the other process made it after our check
    SqliteLedger.open(path).close()
    monkeypatch.undo()
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_second_connection_in_one_process_keeps_the_first_ones_locks(tmp_path: Path) -> None:
    """Regression: opening the ledger again opened and closed a descriptor of the file, which dropped every
    POSIX lock of the process; another process closing last then took the WAL away, and the rows a third
    one wrote later stayed invisible here (the receipts writer thread never saw the send's rows)."""
    path = tmp_path / "ledger.sqlite"
    first = SqliteLedger.open(path)
    second = SqliteLedger.open(path)  # e.g. the receipts server's writer thread
    opened = f"from pathlib import Path; from crisiscomms.ledger.sqlite import SqliteLedger; " \
             f"l = SqliteLedger.open(Path({str(path)!r})); "
    subprocess.run([sys.executable, "-c", opened + "l.close()"], check=True, timeout=60)  # closes last?
    writer = subprocess.Popen([sys.executable, "-c", opened + (
        "l.db.execute(\"INSERT INTO messages (campaign, channel, address, recipient_id, line, locale, state, "
        "updated_at) VALUES ('c', 'sms', '+46701', 'r', 1, 'sv', 'accepted', 'x')\"); print('written', flush=True); "
        "input(); l.close()")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "written"
        for ledger in (first, second):  # the row is in the writer's WAL, not checkpointed yet
            with ledger._transaction():
                assert ledger.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1
    finally:
        writer.communicate("\n", timeout=60)
    first.close()
    second.close()


def test_a_version_1_ledger_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(V1_TABLES)
        db.execute("INSERT INTO campaigns VALUES ('outage-1a2b3c4d', 'outage', 'p.yaml', '2026-11-01T00:00')")
        db.execute("INSERT INTO messages (campaign, channel, address, recipient_id, line, locale, state, updated_at) "
                   "VALUES ('outage-1a2b3c4d', 'sms', '+46701000001', 'r1', 2, 'sv', 'accepted', 'x')")
    ledger = SqliteLedger.open(path)
    assert [c.campaign for c in ledger.campaigns()] == ["outage-1a2b3c4d"]
    (row,) = ledger.rows("outage-1a2b3c4d")
    assert (row.state, row.text_version, row.corrections) == ("accepted", None, 0)
    ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (3,)


def test_a_newer_ledger_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 4")
    with pytest.raises(LedgerError) as error:
        SqliteLedger.open(path)
    assert str(error.value) == (f"the ledger {path} has schema version 4, newer than this crisiscomms knows (up to 3). "
                                "Nothing was sent. Upgrade crisiscomms, or use another ledger.")


def test_a_missing_ledger_is_not_created_for_reading(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger at"):
        SqliteLedger.open(tmp_path / "none.sqlite", create=False)
    assert not (tmp_path / "none.sqlite").exists()


def test_a_database_url_opened_as_a_file_is_refused_with_what_to_do() -> None:
    with pytest.raises(LedgerError) as error:
        SqliteLedger.open(Path("postgresql://alice@db.example.org/crisiscomms"))
    assert str(error.value) == (
        "the ledger postgresql://alice@db.example.org/crisiscomms is a PostgreSQL database, not a SQLite ledger "
        "file; open it as a database URL (--ledger or CRISISCOMMS_LEDGER). Nothing was changed.")
