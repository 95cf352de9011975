"""The delivery plan: per recipient × channel, a message to send (now or later) or a skip with its reason.

The planner streams: it reads the audience one row at a time and yields
:class:`PlannedMessage` and :class:`SkippedMessage` items, keeping only 64-bit
keys of the addresses it has seen (for dedupe) and the counts of
:class:`PlanSummary`. ``send --dry-run`` is this plan without the dispatch.

Each row is planned in two steps: :meth:`Planner.prepare` does everything one row
needs alone (normalising, targeting, opt-outs, the reader's view, the SMS segments)
and :meth:`Planner.settle` the one thing that depends on the rows before it (was the
address planned already), then quiet hours. ``--jobs`` runs the first step in worker
processes (:mod:`.plan_jobs`) and the second here, in file order: the same plan.
The items are in :mod:`.plan_items`, the summary in :mod:`.plan_summary`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import phonenumbers

from .audience import Audience, AudienceOptions, KeySet, MalformedRow, Recipient, address_key, open_audience
from .banner import build_banner_document
from .cap import default_cap_path, planned_cap_document
from .errors import AudienceError, UsageError
from .exercise import exercise_banner_path, exercise_cap_path, exercise_of, exercise_recipients
from .hours import zone_info
from .plan_items import DETAILED_REASONS, PlanItem, PlannedMessage, SkippedMessage, SkipReason
from .plan_summary import PlanSummary, region_of
from .playbook import quiet_window
from .render import CHANNEL_FILES, Content, NoticeRenderer, SmsContent
from .session import NoticeSession, campaign_key
from .suppression import Suppression, load_suppression
from .targeting import Targeting

__all__ = ["CONTACT_KEY", "DETAILED_REASONS", "PlanItem", "PlanRequest", "PlanSummary", "PlannedMessage", "Planner",
           "Prepared", "SkipReason", "SkippedMessage", "call_address", "choose_channels", "exercise_notes",
           "quiet_hours_end", "reader_view", "region_of", "summary_for"]

#: One recipient × channel after the order-free part of planning, as plain tuples (cheap to send between
#: processes): a skip ``(line, id, channel, reason value, detail)``, or a candidate ``(dedupe key, id, line,
#: channel, address, locale, timezone, view, SMS segments or None)`` that becomes a planned message unless
#: an earlier row planned its address (the one order-dependent check, made by :meth:`Planner.settle`).
Prepared = tuple[Any, ...]
_REASONS: dict[str, SkipReason] = {reason.value: reason for reason in SkipReason}


@dataclass(frozen=True)
class PlanRequest:
    audience: Path | None  # None: an exercise (the playbook's exercise recipients)
    at: dt.datetime
    channels: tuple[str, ...] = ()  # empty: every channel of the notice
    ignore_quiet_hours: bool = False
    default_region: str | None = None
    suppress: tuple[Path, ...] = ()
    banner_out: Path | None = None
    campaign: str | None = None  # a name instead of the notice id (the organisation is always part of it)
    stopped: tuple[str, ...] = ()  # E.164 numbers on the ledger's STOP list
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()  # --where COLUMN=VALUE,…: AND with the notice's
    waits: tuple[tuple[str, dt.timedelta], ...] = ()  # route id → expected wait given at plan time (--wait)
    exercise: bool = False  # --exercise: only exercise.recipients, every message marked, exercise paths
    jobs: int | None = None  # processes that normalise the audience (--jobs); None: one per core for a big file


class Planner:
    """Plans one notice for one audience file, as of ``request.at``."""

    def __init__(self, session: NoticeSession, request: PlanRequest) -> None:
        self.session = session
        self.request = request
        playbook = session.playbook
        self.channels = choose_channels(session, request.channels)
        self.region = (request.default_region or playbook.organisation.country).upper()
        if self.region not in phonenumbers.SUPPORTED_REGIONS:
            raise UsageError(f"--default-region '{request.default_region}' is not a two-letter country code like SE")
        if request.exercise:
            exercise_of(playbook)  # a UsageError when the playbook names nobody to take part
        elif request.audience is None:
            raise UsageError("a plan needs an audience file (--audience), or --exercise")
        self.renderer = NoticeRenderer.for_playbook(playbook, session.base_dir, session.notice_id, request.at,
                                                    waits=dict(request.waits), exercise=request.exercise)
        self.campaign = campaign_key(session, request.campaign, exercise=request.exercise)
        self.suppression = self._load_suppression()
        self.quiet = self._quiet_window()
        # an exercise reaches everyone who takes part: the notice's audience.where is about customers
        self.targeting = Targeting.of({} if request.exercise else session.notice.audience.conditions, request.where)
        self.call_quiet = self._call_quiet_window()
        self.person_channels = tuple(c for c in self.channels if c not in ("banner", "cap"))
        self._seen = KeySet()
        self._deferrals: dict[tuple[str, str], dt.datetime | None] = {}
        self._shared_segments: dict[tuple[str, str], int | None] = {}  # (locale, zone) → segments, when shared

    @property
    def banner_path(self) -> Path | None:
        if "banner" not in self.channels:
            return None
        if self.request.exercise:
            return exercise_banner_path(self.session.playbook, self.session.base_dir)
        if self.request.banner_out is not None:
            return self.request.banner_out
        settings = self.session.playbook.providers.banner
        return (self.session.base_dir / settings.path).resolve() if settings else None

    def _load_suppression(self) -> Suppression:
        playbook_lists = [self.session.base_dir / name for name in self.session.playbook.suppression]
        suppression = load_suppression([*playbook_lists, *self.request.suppress], self.region)
        for number in self.request.stopped:
            suppression.add_phone(number)
        return suppression

    def _quiet_window(self) -> tuple[int, int] | None:
        sms = self.session.playbook.providers.sms
        if self.request.ignore_quiet_hours or self.session.notice.severity == "critical" or sms is None:
            return None
        return quiet_window(sms.quiet_hours)

    def _call_quiet_window(self) -> tuple[int, int] | None:
        voice = self.session.playbook.providers.voice
        if self.request.ignore_quiet_hours or self.session.notice.severity == "critical" or voice is None:
            return None
        return quiet_window(voice.quiet_hours)

    def items(self) -> Iterator[PlanItem]:
        """Every planned and skipped message; the banner first, then the audience in file order."""
        playbook = self.session.playbook
        with self._people(self.audience_options()) as people:
            banner_path = self.banner_path
            if banner_path is not None:
                document = build_banner_document(self.renderer)
                yield PlannedMessage("banner", 0, "banner", str(banner_path), playbook.organisation.default_locale,
                                     playbook.organisation.timezone, lambda: document, view=document)
            cap_path = self.cap_path
            if cap_path is not None:
                cap_document = planned_cap_document(self.renderer, cap_path)
                yield PlannedMessage("cap", 0, "cap", str(cap_path), playbook.organisation.default_locale,
                                     playbook.organisation.timezone, lambda: cap_document, view=cap_document)
            settle = self.settle
            for prepared in self._prepared_rows(people):
                for one in prepared:
                    yield settle(one)

    def audience_options(self) -> AudienceOptions:
        organisation = self.session.playbook.organisation
        return AudienceOptions(self.region, organisation.timezone, tuple(organisation.reader_locales),
                               organisation.default_locale)

    def _prepared_rows(self, people: Iterable[Recipient | MalformedRow]) -> Iterator[list[Prepared]]:
        """Each row's prepared messages in file order: here, or from worker processes (``--jobs``)."""
        if isinstance(people, Audience):
            from .plan_jobs import jobs_for, prepared_in_workers

            jobs = jobs_for(self.request.jobs, people.path)
            if jobs > 1:
                yield from prepared_in_workers(self, people, jobs)
                return
        prepare = self.prepare
        for row in people:
            yield prepare(row)

    def prepare(self, row: Recipient | MalformedRow) -> list[Prepared]:
        """The order-free part of planning one row: every check but "planned before" (see :data:`Prepared`)."""
        if isinstance(row, MalformedRow):
            return [(row.line, row.id, channel, SkipReason.MALFORMED_ROW.value, row.reason)
                    for channel in self.person_channels]
        if self.targeting and not self.targeting.matches(row):
            return [(row.line, row.id, channel, SkipReason.NOT_TARGETED.value, "") for channel in self.person_channels]
        view: dict[str, Any] | None = None
        prepared: list[Prepared] = []
        for channel in self.person_channels:
            address_or_skip = self._address(row, channel)
            if isinstance(address_or_skip, SkipReason):
                detail = row.phone_detail if address_or_skip is SkipReason.INVALID_PHONE else ""
                prepared.append((row.line, row.id, channel, address_or_skip.value, detail))
                continue
            address = address_or_skip
            key = address_key(channel, address, self.region)
            suppression_key = address_key("sms", address, self.region) if channel == "voice" else key
            if suppression_key in self.suppression:
                prepared.append((row.line, row.id, channel, SkipReason.SUPPRESSED.value, ""))
                continue
            if view is None:
                view = self._view_of(row)  # one per person, shared by the person's messages
            segments = self._segments(row, view) if channel == "sms" else None
            prepared.append((key, row.id, row.line, channel, address, row.locale, row.timezone, view, segments))
        return prepared

    def settle(self, prepared: Prepared) -> PlanItem:
        """The ordered part: a candidate whose address an earlier row planned is a duplicate."""
        if len(prepared) == 5:
            line, recipient_id, channel, reason, detail = prepared
            return SkippedMessage(line, recipient_id, channel, _REASONS[reason], detail)
        key, recipient_id, line, channel, address, locale, timezone, view, segments = prepared
        if not self._seen.add(key):
            return SkippedMessage(line, recipient_id, channel, SkipReason.DUPLICATE)
        not_before = self._deferral(channel, timezone)
        return PlannedMessage(recipient_id, line, channel, address, locale, timezone,
                              partial(self._render, channel, locale, timezone, view), not_before, view=view,
                              segments=segments)

    def _view_of(self, person: Recipient) -> dict[str, Any]:
        view = _recipient_view(person)
        if self.request.exercise:  # those who take part have no customer columns: the templates see them empty
            view = {**dict.fromkeys(self.session.playbook.audience_fields, ""), **view}
        return view

    def _segments(self, person: Recipient, view: dict[str, Any]) -> int | None:
        """The SMS's segment count (None when it is not SMS content); rendered once per reader only when the
        template mentions the reader, else once per locale and time zone."""
        shared = (person.locale, person.timezone)
        if shared in self._shared_segments:
            return self._shared_segments[shared]
        content = self._render("sms", person.locale, person.timezone, view)
        segments = content.fit.segments if isinstance(content, SmsContent) else None
        if self.renderer.independent_of_reader("sms", person.locale):
            self._shared_segments[shared] = segments
        return segments

    def _deferral(self, channel: str, timezone: str) -> dt.datetime | None:
        """When quiet hours let ``channel`` reach a reader in ``timezone`` (None: now); one reckoning per zone."""
        key = (channel, timezone)
        if key not in self._deferrals:
            window = self.quiet if channel == "sms" else self.call_quiet if channel == "voice" else None
            self._deferrals[key] = quiet_hours_end(self.request.at, timezone, window) if window else None
        return self._deferrals[key]

    @property
    def cap_path(self) -> Path | None:
        """Where the cap channel writes; an exercise only to ``exercise.cap_path`` (never the real alert's file)."""
        if "cap" not in self.channels:
            return None
        if self.request.exercise:
            return exercise_cap_path(self.session.playbook, self.session.base_dir)
        return default_cap_path(self.session.playbook, self.session.base_dir)

    @contextlib.contextmanager
    def _people(self, options: AudienceOptions) -> Iterator[Iterable[Recipient | MalformedRow]]:
        """The audience file's rows (its columns checked first), or an exercise's recipients."""
        if self.request.exercise:
            yield exercise_recipients(self.session.playbook, self.session.base_dir, options)
            return
        assert self.request.audience is not None
        with open_audience(self.request.audience, options) as audience:
            self._check_columns(audience.columns)
            yield audience

    def _check_columns(self, columns: Sequence[str]) -> None:
        assert self.request.audience is not None
        self.targeting.check_columns(columns, self.request.audience)
        missing = [name for name in self.session.playbook.audience_fields if name not in columns]
        if missing:
            raise AudienceError(
                f"{self.request.audience}:1: the templates use the column(s) {', '.join(missing)}, "
                "which the audience file lacks (see 'audience_fields' in the playbook)")

    def _render(self, channel: str, locale: str, timezone: str, view: dict[str, Any]) -> Content:
        return self.renderer.render(channel, locale, timezone, reader_view(view))

    def _address(self, person: Recipient, channel: str) -> str | SkipReason:
        if person.channels is not None and channel not in person.channels:
            return SkipReason.NOT_CONSENTED
        if channel == "voice":
            return call_address(person, asked=person.channels is not None, sms_planned="sms" in self.channels)
        if channel == "sms":
            if person.phone_problem:
                return SkipReason(person.phone_problem)
            return person.phone or SkipReason.NO_ADDRESS
        if person.email_problem:
            return SkipReason(person.email_problem)
        return person.email or SkipReason.NO_ADDRESS


def call_address(person: Recipient, *, asked: bool, sms_planned: bool) -> str | SkipReason:
    """Whom a notice with ``voice`` calls: who asked for calls, who has no mobile, everyone when no SMS goes out."""
    if person.phone is None:
        return SkipReason(person.phone_problem) if person.phone_problem else SkipReason.NO_ADDRESS
    if asked or person.phone_problem == "not_mobile" or not sms_planned:
        return person.phone
    return SkipReason.REACHED_BY_SMS


def quiet_hours_end(at: dt.datetime, timezone: str, window: tuple[int, int]) -> dt.datetime | None:
    """When the reader's quiet hours end, if ``at`` falls inside them; else None."""
    start, end = window
    local = at.astimezone(zone_info(timezone))
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    day = local.date() + dt.timedelta(days=1) if start > end and minute >= start else local.date()
    return dt.datetime.combine(day, dt.time(end // 60, end % 60), local.tzinfo)


CONTACT_KEY = "_contact"  # in a planned message's view: the person's addresses, for escalation; never rendered


def _recipient_view(person: Recipient) -> dict[str, Any]:
    view: dict[str, Any] = dict(person.fields)
    view.update(id=person.id, name=person.name, locale=person.locale, timezone=person.timezone)
    view[CONTACT_KEY] = {"sms": person.phone, "email": person.email}
    return view


def reader_view(view: Mapping[str, Any]) -> dict[str, Any]:
    """What templates see of a planned message's view (``recipient``): everything but the addresses."""
    return {key: value for key, value in view.items() if key != CONTACT_KEY}


def choose_channels(session: NoticeSession, requested: tuple[str, ...]) -> tuple[str, ...]:
    notice_channels = tuple(session.notice.channels)
    if not requested:
        return notice_channels
    unknown = [c for c in requested if c not in CHANNEL_FILES]
    if unknown:
        raise UsageError(f"--channels: unknown channel {', '.join(unknown)} (channels: {', '.join(CHANNEL_FILES)})")
    outside = [c for c in requested if c not in notice_channels]
    if outside:
        raise UsageError(f"--channels: notice '{session.notice_id}' does not use {', '.join(outside)} "
                         f"(it uses {', '.join(notice_channels)})")
    return tuple(c for c in notice_channels if c in requested)


def summary_for(planner: Planner) -> PlanSummary:
    sms = planner.session.playbook.providers.sms
    return PlanSummary(
        notice=planner.session.notice_id, campaign=planner.campaign, channels=planner.channels,
        prices=dict(sms.segment_prices) if sms else {}, currency=sms.currency if sms else "EUR",
        banner_path=planner.banner_path, suppression_problems=list(planner.suppression.problems),
        timezone=planner.session.playbook.organisation.timezone, targeting=planner.targeting.describe(),
        text_locale_of=planner.renderer.text_locale, exercise=planner.request.exercise,
        notes=exercise_notes(planner) if planner.request.exercise else [])


def exercise_notes(planner: Planner) -> list[str]:
    """What an exercise leaves out, said in its summary: the banner and CAP files it has no path for."""
    notes = []
    if "banner" in planner.channels and planner.banner_path is None:
        notes.append("the playbook has no exercise.banner_path: this exercise writes no banner "
                     "(the production banner is never touched)")
    if "cap" in planner.channels and planner.cap_path is None:
        notes.append("the playbook has no exercise.cap_path: this exercise writes no CAP alert "
                     "(the production alert is never touched)")
    sandbox = planner.session.playbook.exercise
    if "email" in planner.channels and sandbox is not None and sandbox.sendgrid_sandbox:
        notes.append("exercise.sendgrid_sandbox: SendGrid accepts the exercise e-mails and delivers none")
    return notes
