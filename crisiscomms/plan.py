"""The delivery plan: per recipient × channel, a message to send (now or later) or a skip with its reason.

The planner streams: it reads the audience one row at a time and yields
:class:`PlannedMessage` and :class:`SkippedMessage` items, keeping only 64-bit
keys of the addresses it has seen (for dedupe) and the counts of
:class:`PlanSummary`. ``send --dry-run`` is this plan without the dispatch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import phonenumbers

from .audience import AudienceOptions, KeySet, MalformedRow, Recipient, address_key, open_audience
from .banner import build_banner_document
from .cap import default_cap_path, planned_cap_document
from .errors import AudienceError, UsageError
from .exercise import exercise_banner_path, exercise_cap_path, exercise_of, exercise_recipients
from .hours import zone_info
from .playbook import quiet_window
from .render import CHANNEL_FILES, BannerContent, Content, EmailContent, NoticeRenderer, SmsContent, VoiceContent
from .session import NoticeSession, campaign_key
from .smsenc import analyse
from .suppression import Suppression, load_suppression
from .targeting import Targeting


class SkipReason(enum.StrEnum):
    INVALID_PHONE = "invalid_phone"
    NOT_MOBILE = "not_mobile"
    INVALID_EMAIL = "invalid_email"
    SUPPRESSED = "suppressed"
    DUPLICATE = "duplicate"
    NO_ADDRESS = "no_address"
    NOT_CONSENTED = "not_consented"
    REACHED_BY_SMS = "reached_by_sms"  # voice: a mobile that gets the SMS is not called unless it asks for calls
    MALFORMED_ROW = "malformed_row"
    NOT_TARGETED = "not_targeted"


#: Skip reasons whose details come from a small vocabulary, counted per detail in the summary.
DETAILED_REASONS = frozenset({SkipReason.INVALID_PHONE})


@dataclass(slots=True, eq=False)
class PlannedMessage:
    """A message to send. Its content is rendered when first needed (the dispatch, a sample,
    the SMS segment count) and then kept: a dry run of a million e-mails renders a handful."""

    recipient_id: str
    line: int
    channel: str
    address: str  # E.164, e-mail address, or the banner file path
    locale: str
    timezone: str
    render: Callable[[], Content | dict[str, Any]]  # the banner's content is its whole document
    not_before: dt.datetime | None = None  # deferred by quiet hours
    view: dict[str, Any] | None = None  # what the rendering needs about the reader (frozen into a plan)
    _content: Content | dict[str, Any] | None = None

    @property
    def content(self) -> Content | dict[str, Any]:
        if self._content is None:
            self._content = self.render()
        return self._content

    @property
    def key(self) -> str:
        return f"{self.recipient_id}/{self.channel}"


@dataclass(frozen=True, slots=True)
class SkippedMessage:
    line: int
    recipient_id: str
    channel: str
    reason: SkipReason
    detail: str = ""


PlanItem = PlannedMessage | SkippedMessage


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
        self._seen = KeySet()

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
        person_channels = [c for c in self.channels if c not in ("banner", "cap")]
        options = AudienceOptions(self.region, playbook.organisation.timezone,
                                  tuple(playbook.organisation.reader_locales), playbook.organisation.default_locale)
        with self._people(options) as audience:
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
            for row in audience:
                if isinstance(row, MalformedRow):
                    for channel in person_channels:
                        yield SkippedMessage(row.line, row.id, channel, SkipReason.MALFORMED_ROW, row.reason)
                    continue
                for channel in person_channels:
                    yield self._plan_one(row, channel)

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

    def _plan_one(self, person: Recipient, channel: str) -> PlanItem:
        if self.targeting and not self.targeting.matches(person):
            return SkippedMessage(person.line, person.id, channel, SkipReason.NOT_TARGETED)
        address_or_skip = self._address(person, channel)
        if isinstance(address_or_skip, SkipReason):
            detail = person.phone_detail if address_or_skip is SkipReason.INVALID_PHONE else ""
            return SkippedMessage(person.line, person.id, channel, address_or_skip, detail)
        address = address_or_skip
        key = address_key(channel, address, self.region)
        if address_key("sms" if channel == "voice" else channel, address, self.region) in self.suppression:
            return SkippedMessage(person.line, person.id, channel, SkipReason.SUPPRESSED)
        if not self._seen.add(key):
            return SkippedMessage(person.line, person.id, channel, SkipReason.DUPLICATE)
        not_before = self._not_before(person.timezone) if channel == "sms" else None
        if channel == "voice" and self.call_quiet:
            not_before = quiet_hours_end(self.request.at, person.timezone, self.call_quiet)
        view = _recipient_view(person)
        if self.request.exercise:  # those who take part have no customer columns: the templates see them empty
            view = {**dict.fromkeys(self.session.playbook.audience_fields, ""), **view}
        return PlannedMessage(person.id, person.line, channel, address, person.locale, person.timezone,
                              partial(self._render, channel, person.locale, person.timezone, view), not_before,
                              view=view)

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

    def _not_before(self, timezone: str) -> dt.datetime | None:
        return quiet_hours_end(self.request.at, timezone, self.quiet) if self.quiet else None


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


@dataclass
class PlanSummary:
    """Counts of a plan, gathered while it streams."""

    notice: str
    campaign: str
    channels: tuple[str, ...]
    prices: dict[str, float] = field(default_factory=dict)
    currency: str = "EUR"
    banner_path: Path | None = None
    timezone: str = "UTC"  # the organisation's, for showing times to the operator
    targeting: str = ""  # "area is Bergen or Voss and kind is home"; empty: everyone
    planned: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_details: dict[str, Counter[str]] = field(default_factory=dict)  # reason → detail → count
    deferred: Counter[str] = field(default_factory=Counter)
    deferred_until: list[dt.datetime] = field(default_factory=list)  # [earliest, latest]
    locales: dict[str, Counter[str]] = field(default_factory=dict)
    sms_segments: int = 0
    cost: float = 0.0
    unpriced_segments: int = 0
    samples: dict[tuple[str, str], Content | dict[str, Any]] = field(default_factory=dict)
    suppression_problems: list[str] = field(default_factory=list)
    text_locales: dict[str, Counter[str]] = field(default_factory=dict)  # reader locale → text locale → messages
    text_locale_of: Callable[[str, str], str] | None = None  # (channel, reader locale) → text locale, no rendering
    exercise: bool = False  # an exercise: only exercise.recipients, every message marked
    notes: list[str] = field(default_factory=list)  # what the operator must know, e.g. an exercise writes no banner

    def add(self, item: PlanItem) -> None:
        if isinstance(item, SkippedMessage):
            self.skipped[item.reason.value] += 1
            if item.detail and item.reason in DETAILED_REASONS:
                self.skipped_details.setdefault(item.reason.value, Counter())[item.detail] += 1
            return
        self.planned[item.channel] += 1
        counts = self.locales.get(item.locale)
        if counts is None:
            counts = self.locales[item.locale] = Counter()
        counts[item.channel] += 1
        if (item.locale, item.channel) not in self.samples:
            self.samples[(item.locale, item.channel)] = item.content
        if self.text_locale_of is not None and item.channel != "banner":
            self.text_locales.setdefault(item.locale, Counter())[self.text_locale_of(item.channel, item.locale)] += 1
        if item.not_before is not None:
            self._defer(item)
        if item.channel == "sms" and isinstance(content := item.content, SmsContent):
            self._count_segments(item.address, content.fit.segments)

    def _defer(self, item: PlannedMessage) -> None:
        assert item.not_before is not None
        self.deferred[item.channel] += 1
        if not self.deferred_until:
            self.deferred_until = [item.not_before, item.not_before]
        else:
            self.deferred_until = [min(self.deferred_until[0], item.not_before),
                                   max(self.deferred_until[1], item.not_before)]

    def _count_segments(self, e164: str, segments: int) -> None:
        self.sms_segments += segments
        price = self.prices.get(region_of(e164))
        if price is None:
            self.unpriced_segments += segments
        else:
            self.cost += price * segments

    @property
    def total_planned(self) -> int:
        return sum(self.planned.values())

    def as_dict(self) -> dict[str, Any]:
        """The dry run's JSON (see README, "send --dry-run --format json")."""
        return {
            "notice": self.notice,
            "campaign": self.campaign,
            "planned": {c: self.planned[c] for c in self.channels},
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_details": {reason: dict(sorted(details.items()))
                                for reason, details in sorted(self.skipped_details.items())},
            "deferred": {c: self.deferred[c] for c in ("sms", "voice") if c == "sms" or c in self.channels},
            "locales": {loc: {c: counts[c] for c in self.channels if c not in ("banner", "cap")}
                        for loc, counts in sorted(self.locales.items())},
            "sms_segments": self.sms_segments,
            "estimated_cost": {"amount": round(self.cost, 2), "currency": self.currency,
                               "unpriced_segments": self.unpriced_segments} if self.prices else None,
            "deferred_until": [m.isoformat() for m in self.deferred_until] or None,
            "banner_path": str(self.banner_path) if self.banner_path else None,
            **({"targeting": self.targeting} if self.targeting else {}),
            "text_locales": {loc: dict(sorted(counts.items())) for loc, counts in sorted(self.text_locales.items())},
            **({"exercise": True} if self.exercise else {}),
            **({"notes": list(self.notes)} if self.notes else {}),
        }

    def fallbacks(self) -> list[tuple[str, str, int]]:
        """(reader locale, locale of the text they get, messages) wherever the two differ."""
        return [(reader, text, n) for reader, counts in sorted(self.text_locales.items())
                for text, n in sorted(counts.items()) if text != reader]


    def to_json(self) -> str:
        """Everything needed to show this summary again later (``plan show``), samples included."""
        samples = [{"locale": locale, "channel": channel, **_content_fields(content)}
                   for (locale, channel), content in sorted(self.samples.items())]
        return json.dumps({
            "notice": self.notice, "campaign": self.campaign, "channels": list(self.channels),
            "prices": self.prices, "currency": self.currency,
            "banner_path": str(self.banner_path) if self.banner_path else None,
            "planned": self.planned, "skipped": self.skipped, "deferred": self.deferred,
            "deferred_until": [m.isoformat() for m in self.deferred_until],
            "locales": self.locales, "sms_segments": self.sms_segments, "cost": self.cost,
            "unpriced_segments": self.unpriced_segments, "samples": samples,
            "suppression_problems": self.suppression_problems, "timezone": self.timezone,
            "targeting": self.targeting, "skipped_details": self.skipped_details,
            "text_locales": self.text_locales, "exercise": self.exercise, "notes": self.notes}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> PlanSummary:
        data = json.loads(text)
        summary = cls(notice=data["notice"], campaign=data["campaign"], channels=tuple(data["channels"]),
                      prices=data["prices"], currency=data["currency"],
                      banner_path=Path(data["banner_path"]) if data["banner_path"] else None,
                      planned=Counter(data["planned"]), skipped=Counter(data["skipped"]),
                      deferred=Counter(data["deferred"]),
                      deferred_until=[dt.datetime.fromisoformat(m) for m in data["deferred_until"]],
                      locales={loc: Counter(c) for loc, c in data["locales"].items()},
                      sms_segments=data["sms_segments"], cost=data["cost"],
                      unpriced_segments=data["unpriced_segments"],
                      suppression_problems=data["suppression_problems"], timezone=data.get("timezone", "UTC"),
                      targeting=data.get("targeting", ""),
                      skipped_details={r: Counter(d) for r, d in data.get("skipped_details", {}).items()},
                      text_locales={loc: Counter(c) for loc, c in data.get("text_locales", {}).items()},
                      exercise=bool(data.get("exercise", False)), notes=list(data.get("notes", [])))
        for sample in data["samples"]:
            summary.samples[(sample["locale"], sample["channel"])] = _content_from(sample)
        return summary


def _content_fields(content: Content | dict[str, Any]) -> dict[str, Any]:
    if isinstance(content, dict):
        return {"kind": "document", "document": content}
    if isinstance(content, SmsContent):
        return {"kind": "sms", "text": content.text}
    if isinstance(content, EmailContent):
        return {"kind": "email", "subject": content.subject, "text": content.text, "html": content.html}
    if isinstance(content, VoiceContent):
        return {"kind": "voice", "text": content.text}
    return {"kind": "banner", "title": content.title, "body": content.body}


def _content_from(sample: dict[str, Any]) -> Content | dict[str, Any]:
    kind = sample["kind"]
    if kind == "document":
        return dict(sample["document"])
    if kind == "sms":
        return SmsContent(sample["text"], analyse(sample["text"]))
    if kind == "email":
        return EmailContent(sample["subject"], sample["text"], sample["html"])
    if kind == "voice":
        return VoiceContent(sample["text"])
    return BannerContent(sample["title"], sample["body"])


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


def region_of(e164: str) -> str:
    """``+46701234567`` → ``SE`` by its country calling code (no full parse)."""
    return _region_by_prefix(e164[1:4])


def _region_by_prefix(digits: str) -> str:
    for length in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:length] or 0))
        if regions:
            return str(regions[0])
    return "ZZ"

