"""The SendGrid v3 mail/send stand-in: ``POST /v3/mail/send``, validated like SendGrid does.

Per-personalization ``substitutions`` are applied as SendGrid applies them: each key replaced
literally by its value in the subject and in every content part. Each record keeps the final
subject; its final text and HTML are built on demand (:attr:`EmailRecord.text`, :attr:`EmailRecord.html`)
from the request's content, which all records of a request share."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, cast

from aiohttp import web

from .common import JsonDict, _json

if TYPE_CHECKING:
    from .server import Standin

MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CATEGORIES = 10
MAX_SUBSTITUTION_BYTES = 10_000

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_SENDGRID_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
SendGridError = dict[str, str | None]



@dataclass(frozen=True, slots=True)
class EmailRecord:
    """One recipient of one personalization the SendGrid stand-in accepted."""

    to: str
    kind: Literal["to", "cc", "bcc"]
    subject: str | None
    message_id: str
    custom_args: Mapping[str, str]
    categories: tuple[str, ...]
    from_email: str
    personalization: int
    created_at: datetime
    substitutions: Mapping[str, str] = dataclasses.field(default_factory=dict)
    content: Mapping[str, str] = dataclasses.field(default_factory=dict)  # type → value, before substitution

    @property
    def text(self) -> str | None:
        """The final ``text/plain`` part (substitutions applied)."""
        return self._final(self.content.get("text/plain"))

    @property
    def html(self) -> str | None:
        """The final ``text/html`` part (substitutions applied)."""
        return self._final(self.content.get("text/html"))

    def _final(self, value: str | None) -> str | None:
        return None if value is None else substituted(value, self.substitutions)

    def to_json(self) -> JsonDict:
        """The record as a JSON-ready mapping (without the content: a thousand copies of an e-mail)."""
        return {
            "to": self.to,
            "kind": self.kind,
            "subject": self.subject,
            "substitutions": len(self.substitutions),
            "message_id": self.message_id,
            "custom_args": dict(self.custom_args),
            "categories": list(self.categories),
            "from_email": self.from_email,
            "personalization": self.personalization,
            "created_at": self.created_at.isoformat(),
        }


def substituted(text: str, substitutions: Mapping[str, str]) -> str:
    """SendGrid's substitution: every key replaced literally by its value, one key after another."""
    for key, value in substitutions.items():
        text = text.replace(key, value)
    return text


def _sendgrid_error(message: str, field_name: str | None = None, help_anchor: str | None = None) -> SendGridError:
    """One entry of a SendGrid ``errors`` list."""
    help_url = f"{_SENDGRID_HELP}#message.{help_anchor}" if help_anchor else None
    return {"message": message, "field": field_name, "help": help_url}


def _sendgrid_errors(
    status: int,
    errors: Sequence[SendGridError],
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A SendGrid error response."""
    return _json(status, {"errors": list(errors)}, headers)


def _sendgrid_fault(status: int, reset_at: float | None, cap: float | None) -> web.Response:
    """SendGrid's answer to a request refused by the gate (401, 429 or 500)."""
    if status == 401:
        message = "The provided authorization grant is invalid, expired, or revoked"
        return _sendgrid_errors(401, [_sendgrid_error(message)])
    if status == 429:
        headers = {
            "X-RateLimit-Limit": str(int(cap)) if cap is not None else "600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(math.ceil(reset_at or time.time() + 1.0)),
        }
        return _json(429, {"errors": [{"message": "too many requests"}]}, headers)
    message = "An internal server error occurred. Please try again later."
    return _sendgrid_errors(500, [_sendgrid_error(message)])


def _address(value: object) -> str | None:
    """The e-mail of an ``{"email": ...}`` object if it looks valid."""
    if isinstance(value, dict):
        email = value.get("email")
        if isinstance(email, str) and _EMAIL.match(email):
            return email
    return None


def _from_problems(payload: JsonDict) -> list[SendGridError]:
    """Errors about ``from``."""
    sender = payload.get("from")
    if not isinstance(sender, dict) or "email" not in sender:
        message = (
            "The from object must be provided for every email send. It is an object "
            "that requires the email parameter, but may also contain a name "
            "parameter."
        )
        return [_sendgrid_error(message, "from", "from")]
    if _address(sender) is None:
        return [_sendgrid_error("The from email does not contain a valid address.", "from.email", "from")]
    return []


def _subject_problems(payload: JsonDict) -> list[SendGridError]:
    """Errors about ``subject`` (top level, or one in every personalization)."""
    if payload.get("template_id") or _nonempty_str(payload.get("subject")):
        return []
    personalizations = payload.get("personalizations")
    if (
        isinstance(personalizations, list)
        and personalizations
        and all(isinstance(p, dict) and _nonempty_str(p.get("subject")) for p in personalizations)
    ):
        return []
    message = (
        "The subject is required. You can get around this requirement if you use a "
        "template with a subject defined or if every personalization has a subject "
        "defined."
    )
    return [_sendgrid_error(message, "subject", "subject")]


def _content_problems(payload: JsonDict) -> list[SendGridError]:
    """Errors about ``content`` (required unless a template is used)."""
    content = payload.get("content")
    if payload.get("template_id") and content is None:
        return []
    if not isinstance(content, list) or not content:
        message = (
            "Unless a valid template_id is provided, the content parameter is "
            "required. There must be at least one defined content block."
        )
        return [_sendgrid_error(message, "content", "content")]
    return [
        _sendgrid_error(
            "The content value must be a string at least one character in length.",
            f"content.{index}.value",
            "content.value",
        )
        for index, block in enumerate(content)
        if not isinstance(block, dict) or not _nonempty_str(block.get("type")) or not _nonempty_str(block.get("value"))
    ]


def _category_problems(payload: JsonDict) -> list[SendGridError]:
    """Errors about ``categories`` (at most 10 strings)."""
    categories = payload.get("categories")
    if categories is None:
        return []
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        return [_sendgrid_error("Categories must be a list of strings.", "categories", "categories")]
    if len(categories) > MAX_CATEGORIES:
        message = f"Too many categories on this request. The maximum is {MAX_CATEGORIES}."
        return [_sendgrid_error(message, "categories", "categories")]
    return []


def _custom_args_problems(value: object, where: str) -> list[SendGridError]:
    """Errors about a ``custom_args`` object (string values only)."""
    if value is None:
        return []
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return []
    message = "Custom args must be an object whose values are strings."
    return [_sendgrid_error(message, where, "custom_args")]


def _substitution_problems(value: object, where: str) -> list[SendGridError]:
    """Errors about a personalization's ``substitutions`` (strings only, at most 10,000 bytes)."""
    if value is None:
        return []
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return [_sendgrid_error("Substitutions must be an object whose values are strings.", where,
                                "personalizations.substitutions")]
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_SUBSTITUTION_BYTES:
        message = f"The substitutions of a personalization may not exceed {MAX_SUBSTITUTION_BYTES:,} bytes."
        return [_sendgrid_error(message, where, "personalizations.substitutions")]
    return []


def _recipients(
    personalization: JsonDict,
) -> Iterator[tuple[Literal["to", "cc", "bcc"], int, object]]:
    """(kind, index, address object) for each to/cc/bcc entry."""
    kinds: tuple[Literal["to", "cc", "bcc"], ...] = ("to", "cc", "bcc")
    for kind in kinds:
        entries = personalization.get(kind)
        if isinstance(entries, list):
            for index, entry in enumerate(entries):
                yield kind, index, entry


def _one_personalization_problems(
    index: int, personalization: object, seen: set[str]
) -> tuple[list[SendGridError], int]:
    """Errors in one personalization, and its recipient count; fills ``seen``."""
    where = f"personalizations.{index}"
    to = personalization.get("to") if isinstance(personalization, dict) else None
    if not isinstance(personalization, dict) or not isinstance(to, list) or not to:
        message = (
            "The to array is required for all personalization objects, and must "
            "have at least one email object with a valid email address."
        )
        return [_sendgrid_error(message, f"{where}.to", "personalizations.to")], 0
    errors = _custom_args_problems(personalization.get("custom_args"), f"{where}.custom_args")
    errors += _substitution_problems(personalization.get("substitutions"), f"{where}.substitutions")
    count = 0
    for kind, position, entry in _recipients(personalization):
        count += 1
        email = _address(entry)
        if email is None:
            field_name = f"{where}.{kind}.{position}.email"
            errors.append(
                _sendgrid_error(
                    "Does not contain a valid address.",
                    field_name,
                    "personalizations.to",
                )
            )
        elif email.lower() in seen:
            message = (
                "Each email address in the personalization block should be unique "
                "between to, cc, and bcc. We found the first duplicate instance of "
                f"[{email}] in the {where}.{kind} field."
            )
            errors.append(_sendgrid_error(message, f"{where}.{kind}", "personalizations"))
        else:
            seen.add(email.lower())
    return errors, count


def _personalization_problems(payload: JsonDict) -> list[SendGridError]:
    """Errors about ``personalizations``: presence, limits, addresses, duplicates."""
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        message = "The personalizations field is required and must have at least one personalization."
        return [_sendgrid_error(message, "personalizations", "personalizations")]
    if len(personalizations) > MAX_PERSONALIZATIONS:
        message = (
            "The personalizations field must have at most "
            f"{MAX_PERSONALIZATIONS} items; this request has {len(personalizations)}."
        )
        return [_sendgrid_error(message, "personalizations", "personalizations")]
    errors: list[SendGridError] = []
    seen: set[str] = set()
    total = 0
    for index, personalization in enumerate(personalizations):
        found, count = _one_personalization_problems(index, personalization, seen)
        errors.extend(found)
        total += count
    if total > MAX_RECIPIENTS:
        message = (
            "The total number of recipients must be no more than "
            f"{MAX_RECIPIENTS}. This includes all recipients defined within the to, "
            "cc, and bcc parameters, across each object that you include in the "
            "personalizations array."
        )
        errors.insert(0, _sendgrid_error(message, "personalizations", "personalizations"))
    return errors


def _mail_problems(payload: JsonDict) -> list[SendGridError]:
    """Every validation error SendGrid would report for this mail body."""
    return [
        *_from_problems(payload),
        *_personalization_problems(payload),
        *_subject_problems(payload),
        *_content_problems(payload),
        *_category_problems(payload),
        *_custom_args_problems(payload.get("custom_args"), "custom_args"),
    ]


def _nonempty_str(value: object) -> bool:
    """A string with at least one character."""
    return isinstance(value, str) and bool(value)


def _sandboxed(payload: JsonDict) -> bool:
    """``mail_settings.sandbox_mode.enable``: validate only, deliver nothing."""
    settings = payload.get("mail_settings")
    sandbox = settings.get("sandbox_mode") if isinstance(settings, dict) else None
    return isinstance(sandbox, dict) and sandbox.get("enable") is True


def _email_records(payload: JsonDict, message_id: str) -> list[EmailRecord]:
    """One record per recipient of every personalization of a valid mail body."""
    now = datetime.now(UTC)
    sender = cast(str, payload["from"]["email"])
    categories = tuple(payload.get("categories") or ())
    top_args: dict[str, str] = payload.get("custom_args") or {}
    content = {str(block["type"]): str(block["value"]) for block in payload.get("content") or ()}
    records = []
    for index, personalization in enumerate(payload["personalizations"]):
        substitutions: dict[str, str] = personalization.get("substitutions") or {}
        subject = personalization.get("subject") or payload.get("subject")
        if subject is not None:
            subject = substituted(subject, substitutions)
        custom_args = {k: substituted(v, substitutions)
                       for k, v in {**top_args, **(personalization.get("custom_args") or {})}.items()}
        for kind, _position, entry in _recipients(personalization):
            records.append(
                EmailRecord(
                    to=_address(entry) or "",
                    kind=kind,
                    subject=subject,
                    message_id=message_id,
                    custom_args=custom_args,
                    categories=categories,
                    from_email=sender,
                    personalization=index,
                    created_at=now,
                    substitutions=substitutions,
                    content=content,
                )
            )
    return records


async def _read_json(request: web.Request) -> JsonDict | None:
    """The request body as a JSON object, or ``None``."""
    try:
        payload = await request.json(loads=json.loads)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


async def _sendgrid_send(standin: Standin, request: web.Request) -> web.Response | None:
    """``POST /v3/mail/send``: validate, record each recipient, answer 202."""
    payload = await _read_json(request)
    authorized = request.headers.get("Authorization") == f"Bearer {standin.config.sendgrid_key}"
    admission = await standin._admit("sendgrid", authorized)
    if admission.response is not None:
        return admission.response
    if payload is None:
        return _sendgrid_errors(400, [_sendgrid_error("Bad Request")])
    problems = _mail_problems(payload)
    if problems:
        return _sendgrid_errors(400, problems)
    if _sandboxed(payload):
        return web.Response(status=200)
    message_id = standin._new_message_id()
    records = _email_records(payload, message_id)
    standin._record_emails(records)
    standin.receipts.emails_accepted(records)
    if admission.unanswered:
        return None
    return web.Response(status=202, headers={"X-Message-Id": message_id})
