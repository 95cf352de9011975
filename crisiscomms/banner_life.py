"""The site banner's whole life without an audience: publish a notice's banner, withdraw it.

``crisiscomms banner publish`` writes the document a send's banner channel
would write; ``crisiscomms banner withdraw`` writes the "no notice" document.
Both replace the file atomically (the banner channel's own write), so a page
polling it sees the old document or the new one, never half of either.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .banner import build_banner_document, default_banner_path, withdrawal_document
from .channels.banner import write_atomically
from .errors import InputError, UsageError
from .loader import LoadedPlaybook
from .playbook import Playbook
from .render import NoticeRenderer, notice_expiry
from .session import NoticeSession


@dataclass(frozen=True)
class BannerWritten:
    path: Path
    document: dict[str, Any]
    withdrawn: bool
    expires: dt.datetime | None = None


def banner_target(playbook: Playbook, base_dir: Path, shown_path: str, banner_out: Path | None) -> Path:
    """``--banner-out``, else the playbook's ``providers: banner`` path; an error naming both when neither."""
    if banner_out is not None:
        return banner_out
    path = default_banner_path(playbook, base_dir)
    if path is None:
        raise UsageError(f"{shown_path} has no 'providers: banner' section with a 'path'; give --banner-out FILE")
    return path


def publish_banner(session: NoticeSession, at: dt.datetime, banner_out: Path | None) -> BannerWritten:
    """Write the notice's banner (or, for an all-clear with ``banner: withdraw``, the withdrawal)."""
    notice = session.notice
    if "banner" not in notice.channels:
        raise UsageError(f"notice '{session.notice_id}' does not use the banner channel (its channels: "
                         f"{', '.join(notice.channels)}); add 'banner' to its channels to publish it on the site")
    target = banner_target(session.playbook, session.base_dir, session.loaded.shown_path, banner_out)
    renderer = NoticeRenderer.for_playbook(session.playbook, session.base_dir, session.notice_id, at)
    document = build_banner_document(renderer)
    _write(target, document)
    expires = None if notice.withdraws_banner else notice_expiry(session.playbook, notice, at)
    return BannerWritten(target, document, notice.withdraws_banner, expires)


def withdraw_banner(loaded: LoadedPlaybook, at: dt.datetime, banner_out: Path | None) -> BannerWritten:
    """Replace the banner with the "no notice" document: the widget shows nothing from the next page view."""
    playbook = loaded.require()
    target = banner_target(playbook, loaded.base_dir, loaded.shown_path, banner_out)
    document = withdrawal_document(playbook, at)
    _write(target, document)
    return BannerWritten(target, document, withdrawn=True)


def _write(path: Path, document: dict[str, Any]) -> None:
    if path.is_dir():
        raise InputError(f"cannot write the banner to {path}: it is a folder; give a file name")
    try:
        write_atomically(path, document)
    except OSError as error:
        raise InputError(f"cannot write the banner to {path}: {error.strerror}") from None
