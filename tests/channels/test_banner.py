"""The banner file is replaced atomically: a reader sees the old document or the new one, never a mix."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from crisiscomms.channels.banner import BannerFile, write_atomically
from crisiscomms.channels.base import Message, Outcome


def test_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "site" / "banner.json"
    write_atomically(target, {"version": 1, "text": "old"})
    write_atomically(target, {"version": 1, "text": "ny – Ωμέγα"})
    assert json.loads(target.read_text(encoding="utf-8")) == {"version": 1, "text": "ny – Ωμέγα"}
    assert [p.name for p in target.parent.iterdir()] == ["banner.json"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "banner.json"
    write_atomically(target, {"text": "old"})

    def broken_replace(source: str, destination: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomically(target, {"text": "new"})
    assert json.loads(target.read_text(encoding="utf-8")) == {"text": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["banner.json"]


def test_channel_reports_write_failure_as_rejected(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    message = Message("banner:x", "banner", str(blocker / "banner.json"), "en", {"a": 1})
    (result,) = asyncio.run(BannerFile().send([message]))
    assert result.outcome is Outcome.REJECTED
    assert result.code == "write_failed"
    assert result.reason is not None and result.reason.startswith(f"cannot write {blocker / 'banner.json'}")
