"""Packing e-mails into SendGrid requests within SendGrid's limits.

Messages share a request when their request content is the same: identical e-mails, or personalised
e-mails with the same shared rendering (each then carries its substitutions, see
:mod:`crisiscomms.substitutions`). A request holds at most 1,000 personalizations, no address twice,
and less than 30 MB. A personalised e-mail whose substitutions would exceed 10,000 bytes (or whose
``custom_args`` contain the keys' marker, which SendGrid would substitute there too) goes with its own
plain rendering instead, alone unless another reader has the very same e-mail.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..content import EmailContent
from .base import Message

MAX_PERSONALIZATIONS = 1000  # per request; one recipient per personalization, so also the recipient limit
MAX_SUBSTITUTION_BYTES = 10_000  # per personalization (the Mail Send reference)
MAX_REQUEST_BYTES = 30_000_000  # SendGrid: the whole request less than 30 MB; counted as JSON with \u escapes
REQUEST_OVERHEAD = 8_192  # sender, reply-to, category, unsubscribe group, settings: far less than this


@dataclass
class Request:
    """The messages of one request: same content, distinct addresses."""

    content: EmailContent  # what the body carries: the shared rendering when ``substituted``
    substituted: bool
    size: int
    indices: list[int] = field(default_factory=list)
    addresses: set[str] = field(default_factory=set)


def request_content(message: Message, content: EmailContent) -> tuple[EmailContent, bool]:
    """The content ``message`` goes with, and whether with its substitutions."""
    personalised = content.personalised
    if personalised is None:
        return content, False
    if substitution_bytes(personalised.substitutions) > MAX_SUBSTITUTION_BYTES:
        return content, False
    if any(personalised.marker in str(value) for value in message.custom_args.values()):
        return content, False
    return personalised.shared, True


def substitution_bytes(substitutions: Sequence[tuple[str, str]]) -> int:
    """The size of a personalization's ``substitutions`` object (UTF-8 JSON)."""
    return len(json.dumps(dict(substitutions), ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def content_bytes(content: EmailContent) -> int:
    """An upper bound of what subject and content add to a request (JSON with ``\\u`` escapes)."""
    return REQUEST_OVERHEAD + len(json.dumps([content.subject, content.text, content.html]))


def personalization_bytes(address: str, custom_args: Mapping[str, str],
                          substitutions: Sequence[tuple[str, str]]) -> int:
    """An upper bound of one personalization's size in the request."""
    return len(json.dumps({"to": [{"email": address}], "custom_args": {str(k): str(v) for k, v in custom_args.items()},
                           "substitutions": dict(substitutions)})) + 2


class Packer:
    """First fit: each message goes into the first request of its content that has room."""

    def __init__(self, limit: int = MAX_PERSONALIZATIONS, max_bytes: int | None = None) -> None:
        self.limit, self.max_bytes = limit, MAX_REQUEST_BYTES if max_bytes is None else max_bytes
        self._groups: dict[tuple[EmailContent, bool], list[Request]] = {}

    def add(self, index: int, message: Message, content: EmailContent, address: str) -> None:
        body, substituted = request_content(message, content)
        personalised = content.personalised
        substitutions = personalised.substitutions if substituted and personalised is not None else ()
        size = personalization_bytes(address, message.custom_args, substitutions)
        requests = self._groups.setdefault((body, substituted), [])
        for request in requests:
            if len(request.indices) < self.limit and address not in request.addresses \
                    and request.size + size <= self.max_bytes:
                break
        else:
            request = Request(body, substituted, content_bytes(body))
            requests.append(request)
        request.indices.append(index)
        request.addresses.add(address)
        request.size += size

    def requests(self) -> list[Request]:
        return [request for requests in self._groups.values() for request in requests]
