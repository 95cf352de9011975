"""Opening a playbook for a command: load, validate, and pick the notice.

Every command that works with one notice of one playbook (preview, send,
banner) starts here, so they all refuse an invalid playbook the same way.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .loader import LoadedPlaybook, load_playbook
from .playbook import Notice, Playbook


@dataclass(frozen=True)
class NoticeSession:
    loaded: LoadedPlaybook
    playbook: Playbook
    notice_id: str

    @property
    def notice(self) -> Notice:
        return self.playbook.notices[self.notice_id]

    @property
    def base_dir(self) -> Path:
        return self.loaded.base_dir


def open_notice(path: Path, notice_id: str) -> NoticeSession:
    """Load ``path`` (raising PlaybookInvalid, exit 3, with every error) and find ``notice_id``."""
    loaded = load_playbook(path)
    playbook = loaded.require()
    if notice_id not in playbook.notices:
        known = ", ".join(playbook.notices)
        raise UsageError(f"notice '{notice_id}' is not in {path} (its notices: {known})")
    return NoticeSession(loaded, playbook, notice_id)


def choose_locales(playbook: Playbook, requested: tuple[str, ...]) -> list[str]:
    supported = playbook.organisation.reader_locales
    unknown = [code for code in requested if code not in supported]
    if unknown:
        raise UsageError(f"locale {', '.join(unknown)} is not in the playbook (supported: {', '.join(supported)})")
    return list(requested) or list(supported)


def parse_moment(text: str | None, timezone: str) -> dt.datetime:
    """``--at`` as an aware datetime (naive times are in the organisation's zone); default now."""
    from .hours import zone_info

    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--at '{text}' is not an ISO 8601 time such as 2026-11-28T03:00+01:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone_info(timezone))


def organisation_slug(name: str) -> str:
    """``Nordvind Energi AB`` → ``nordvind-energi-ab``."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-") or "organisation"


#: What an exercise's campaign ends with: ``<organisation>/<notice>#exercise`` is never the real campaign.
EXERCISE_SUFFIX = "#exercise"


def campaign_key(session: NoticeSession, name: str | None = None, *, exercise: bool = False) -> str:
    """``<organisation>/<notice or name>``: one campaign per notice of an organisation, in any ledger;
    an exercise's is ``…#exercise``, so its rows never count for (or block) the real campaign."""
    if name is not None and "#" in name:
        raise UsageError(f"--campaign '{name}': a campaign name cannot contain '#' (it marks exercises)")
    suffix = EXERCISE_SUFFIX if exercise else ""
    return f"{organisation_slug(session.playbook.organisation.name)}/{name or session.notice_id}{suffix}"
