"""The throwaway PostgreSQL cluster: without PostgreSQL's server binaries the tests are skipped with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from crisiscomms.testing import pgcluster as pgserver


def test_without_server_binaries_the_reason_is_given_and_nothing_is_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgserver.shutil, "which", lambda name: None)
    monkeypatch.setattr(pgserver.glob, "glob", lambda pattern: [])
    with pgserver.running_server() as server:
        assert server == ("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in "
                          "/usr/lib/postgresql")


def test_the_server_binaries_are_found_in_debians_folder_when_not_on_path(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    folder = tmp_path / "15" / "bin"
    folder.mkdir(parents=True)
    for name in ("initdb", "pg_ctl", "postgres"):
        (folder / name).touch()
    monkeypatch.setattr(pgserver.shutil, "which", lambda name: None)
    monkeypatch.setattr(pgserver.glob, "glob", lambda pattern: [str(folder)])
    assert pgserver.find_bin_dir() == folder
