"""What a plan is made of: per recipient × channel, a message to send (now or later) or a skip with its reason."""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .render import Content


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


_VIEW_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)  # json.dumps(view, ensure_ascii=False, default=str)


def view_text(view: dict[str, Any]) -> str:
    """A planned message's view as the ledger keeps it (JSON, in insertion order)."""
    return _VIEW_ENCODER.encode(view)


class PlannedMessage:
    """A message to send. Its content is rendered when first needed (the dispatch, a sample,
    the SMS segment count) and then kept: a dry run of a million e-mails renders a handful.

    ``view`` is what the rendering needs about the reader (frozen into a plan, as :attr:`view_json`).
    ``segments``, when known, is the SMS's segment count (worked out where the message was prepared).
    """

    __slots__ = ("_content", "_view_json", "address", "channel", "line", "locale", "not_before", "recipient_id",
                 "render", "segments", "timezone", "view")

    def __init__(self, recipient_id: str, line: int, channel: str, address: str, locale: str, timezone: str,
                 render: Callable[[], Content | dict[str, Any]], not_before: dt.datetime | None = None,
                 view: dict[str, Any] | None = None, *, segments: int | None = None) -> None:
        self.recipient_id = recipient_id
        self.line = line
        self.channel = channel
        self.address = address  # E.164, e-mail address, or the banner file path
        self.locale = locale
        self.timezone = timezone
        self.render = render  # the banner's content is its whole document
        self.not_before = not_before  # deferred by quiet hours
        self.view = view
        self._view_json: str | None = None
        self.segments = segments
        self._content: Content | dict[str, Any] | None = None

    @property
    def content(self) -> Content | dict[str, Any]:
        if self._content is None:
            self._content = self.render()
        return self._content

    @property
    def view_json(self) -> str:
        """The view as the ledger keeps it."""
        if self._view_json is None:
            self._view_json = view_text(self.view) if self.view is not None else "null"
        return self._view_json

    @property
    def key(self) -> str:
        return f"{self.recipient_id}/{self.channel}"

    def __repr__(self) -> str:
        return (f"PlannedMessage(recipient_id={self.recipient_id!r}, line={self.line}, channel={self.channel!r}, "
                f"locale={self.locale!r}, timezone={self.timezone!r}, not_before={self.not_before!r})")


@dataclass(frozen=True, slots=True)
class SkippedMessage:
    line: int
    recipient_id: str
    channel: str
    reason: SkipReason
    detail: str = ""


PlanItem = PlannedMessage | SkippedMessage
