"""The counts of a plan (:class:`PlanSummary`), gathered while the plan streams, and shown or kept as JSON."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import phonenumbers

from .plan_items import DETAILED_REASONS, PlanItem, PlannedMessage, SkippedMessage
from .render import BannerContent, Content, EmailContent, SmsContent, VoiceContent
from .smsenc import analyse


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
            texts = self.text_locales.get(item.locale)
            if texts is None:
                texts = self.text_locales[item.locale] = Counter()
            texts[self.text_locale_of(item.channel, item.locale)] += 1
        if item.not_before is not None:
            self._defer(item)
        if item.channel == "sms":
            if item.segments is not None:
                self._count_segments(item.address, item.segments)
            elif isinstance(content := item.content, SmsContent):
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


def region_of(e164: str) -> str:
    """``+46701234567`` → ``SE`` by its country calling code (no full parse)."""
    return _region_by_prefix(e164[1:4])


@lru_cache(maxsize=2048)
def _region_by_prefix(digits: str) -> str:
    for length in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:length] or 0))
        if regions:
            return str(regions[0])
    return "ZZ"

