"""The frozen plan: planned once, written to the ledger, sent from there.

Freezing streams the planner's items into the ledger: every planned message
with what its rendering needs about the reader (the *view*), every skip, and a
*snapshot* of the playbook and the template files as they were. The plan's id is
the hash of all of that. Sending a plan renders each message from the snapshot
as of the plan's moment — the audience file, the playbook and the templates on
disk are not read again, so what was approved is what goes out. Credentials and
provider endpoints are not part of a plan: they are read when it is sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..ledger.base import Ledger, NewPlan, PlanHeader, PlanRow, SkipRow, utc_iso
from ..plan import PlanItem, PlannedMessage, Planner, PlanSummary, SkippedMessage, reader_view, summary_for
from ..playbook import Playbook
from ..render import Content, NoticeRenderer, TemplateStore
from .identity import campaign_for, template_files, text_version

SNAPSHOT_FORMAT = 1
WRITE_CHUNK = 5_000


@dataclass(frozen=True)
class Snapshot:
    """What a plan's messages are rendered from, as it was when the plan was made."""

    playbook: dict[str, Any]
    templates: dict[str, str]
    templates_shown: str  # the template folder's name, for messages about a template
    notice: str
    at: str
    rehearsal: bool = False  # planned with --at: the send reckons time (SMS validity) from that moment too
    exercise: bool = False  # planned with --exercise: every message is rendered with the exercise marker

    def to_json(self) -> str:
        exercise = {"exercise": True} if self.exercise else {}  # absent for a real plan: its id stays as it was
        return json.dumps({"format": SNAPSHOT_FORMAT, "playbook": self.playbook, "templates": self.templates,
                           "templates_shown": self.templates_shown, "notice": self.notice, "at": self.at,
                           "rehearsal": self.rehearsal, **exercise}, ensure_ascii=False)  # unsorted: the playbook order

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        data = json.loads(text)
        return cls(data["playbook"], data["templates"], data["templates_shown"], data["notice"], data["at"],
                   bool(data.get("rehearsal", False)), bool(data.get("exercise", False)))

    @property
    def text_version(self) -> str:
        return text_version(self.playbook, self.templates)


@dataclass
class FrozenPlan:
    header: PlanHeader
    summary: PlanSummary


@dataclass
class _Stream:
    """Rows on their way into the ledger, hashed as they go."""

    digest: Any = field(default_factory=hashlib.sha256)
    rows: list[PlanRow] = field(default_factory=list)
    skips: list[SkipRow] = field(default_factory=list)
    seq: int = 0


def snapshot_of(planner: Planner, *, rehearsal: bool = False) -> Snapshot:
    session = planner.session
    return Snapshot(playbook=session.playbook.model_dump(mode="json", by_alias=True),
                    templates=template_files(session),
                    templates_shown=session.playbook.templates.rstrip("/").split("/")[-1],
                    notice=session.notice_id, at=planner.request.at.isoformat(), rehearsal=rehearsal,
                    exercise=planner.request.exercise)


def freeze(planner: Planner, ledger: Ledger, *, planned_by: str, approval_required: bool,
           on_skip: Any = None, rehearsal: bool = False) -> FrozenPlan:
    """Plan the whole audience once, into the ledger; returns the plan (id = content hash).

    ``rehearsal``: the plan's moment was given (``--at``); its send reckons time from it too."""
    snapshot = snapshot_of(planner, rehearsal=rehearsal)
    info = campaign_for(planner.session, planner.request.campaign, exercise=snapshot.exercise)
    new = NewPlan(campaign=info, text_version=snapshot.text_version, at=snapshot.at, planned_by=planned_by,
                  channels=planner.channels, approval_required=approval_required, snapshot=snapshot.to_json(),
                  exercise=snapshot.exercise)
    summary = summary_for(planner)
    summary.campaign = info.campaign
    writer = ledger.plan_writer(new)
    stream = _Stream()
    stream.digest.update(new.snapshot.encode())
    stream.digest.update(json.dumps([new.channels, info.campaign]).encode())
    try:
        for item in planner.items():
            summary.add(item)
            _add(stream, item)
            if isinstance(item, SkippedMessage) and on_skip is not None:
                on_skip(item)
            if len(stream.rows) + len(stream.skips) >= WRITE_CHUNK:
                writer.add(stream.rows, stream.skips)
                stream.rows, stream.skips = [], []
        writer.add(stream.rows, stream.skips)
        plan_id = writer.finish(stream.digest.hexdigest()[:16], summary.to_json())
    except BaseException:
        writer.abort()
        raise
    return FrozenPlan(ledger.plan(plan_id), summary)


def _add(stream: _Stream, item: PlanItem) -> None:
    if isinstance(item, SkippedMessage):
        skip = SkipRow(item.line, item.recipient_id, item.channel, item.reason.value, item.detail)
        stream.skips.append(skip)
        stream.digest.update(json.dumps(["skip", skip.line, skip.recipient_id, skip.channel, skip.reason,
                                         skip.detail], ensure_ascii=False).encode())
        return
    not_before = utc_iso(item.not_before) if item.not_before else None
    view = item.view_json  # in order: a banner lists its locales so
    stream.rows.append(PlanRow(stream.seq, item.channel, item.address, item.recipient_id, item.line, item.locale,
                               item.timezone, not_before, view))
    stream.digest.update("\x1f".join((str(stream.seq), item.channel, item.address, item.recipient_id, str(item.line),
                                      item.locale, item.timezone, not_before or "", view, "\x1e")).encode())
    stream.seq += 1


class Thawed:
    """Renders a plan's rows from its snapshot (template files copied to a private temporary folder)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.playbook = Playbook.model_validate(snapshot.playbook)
        self._folder = tempfile.TemporaryDirectory(prefix="crisiscomms-plan-")
        root = Path(self._folder.name) / "templates"
        for name, source in snapshot.templates.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source, encoding="utf-8")
        root.mkdir(exist_ok=True)
        store = TemplateStore(root, self.playbook.organisation.default_locale, shown_root=snapshot.templates_shown)
        self.renderer = NoticeRenderer.for_playbook(self.playbook, root.parent, snapshot.notice,
                                                    dt.datetime.fromisoformat(snapshot.at), store=store,
                                                    exercise=snapshot.exercise)

    def close(self) -> None:
        self._folder.cleanup()

    def __enter__(self) -> Thawed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def message(self, row: PlanRow) -> PlannedMessage:
        view = json.loads(row.view)
        not_before = dt.datetime.fromisoformat(row.not_before) if row.not_before else None
        render = partial(_document, view) if row.channel in ("banner", "cap") else \
            partial(self._render, row.channel, row.locale, row.timezone, view)
        return PlannedMessage(row.recipient_id, row.line, row.channel, row.address, row.locale, row.timezone,
                              render, not_before, view=view)

    def _render(self, channel: str, locale: str, timezone: str, view: Mapping[str, Any]) -> Content:
        return self.renderer.render(channel, locale, timezone, reader_view(view))


def _document(view: dict[str, Any]) -> dict[str, Any]:
    return view


def thaw(ledger: Ledger, plan_id: str) -> Thawed:
    return Thawed(Snapshot.from_json(ledger.plan_snapshot(plan_id)))
