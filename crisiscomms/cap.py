"""A notice as an OASIS CAP 1.2 alert, for public alerting systems and aggregators.

One ``<alert>`` per notice and issue time, one ``<info>`` per locale of the
playbook. The texts are the notice's banner texts (the public wording),
rendered through :class:`~crisiscomms.render.NoticeRenderer` exactly as the
banner renders them.

Severity mapping (the notice's ``severity`` → CAP urgency / severity / certainty):

==============================  ===========  ========  =========
notice                          urgency      severity  certainty
==============================  ===========  ========  =========
``critical``                    Immediate    Severe    Observed
``warning``                     Expected     Moderate  Likely
``info``                        Expected     Minor     Observed
an all-clear (``clears: …``)    Past         Minor     Observed
==============================  ===========  ========  =========

``Extreme`` is never claimed: it means an extraordinary threat to life,
which is a public authority's call, not a utility's. The organisation is
reporting what it sees, hence ``Observed`` (``Likely`` for a warning about
what may come).

Identity and the chain of messages:

* ``identifier`` is deterministic: ``<sender>.<notice id>.<issue time, UTC,
  YYYYMMDDTHHMMSSZ>`` (no spaces, commas, ``<`` or ``&``, as CAP requires), so
  the same notice issued at the same ``--at`` is the same alert.
* ``sender`` is ``providers.cap.sender`` or the host of the organisation's website.
* ``incidents`` names the incident: the notice id, or for an all-clear the id
  of the notice it clears. That is how a later alert recognises an earlier one.
* The earlier alert is read from the previous CAP file (``--previous``, by
  default the file about to be replaced): an alert of the same incident makes
  this one an ``Update`` and an all-clear a ``Cancel``, each with
  ``<references>`` listing the earlier alert (and what it referenced) as
  ``sender,identifier,sent``. An all-clear with no earlier alert of its
  incident is refused: a Cancel must say what it cancels.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from .errors import InputError
from .hours import zone_info
from .locales import language_tag
from .playbook import CapSettings, Notice, Playbook, localized_text
from .render import BannerContent, NoticeRenderer, notice_expiry

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
_NS = {"cap": CAP_NAMESPACE}


@dataclass(frozen=True)
class CapRating:
    urgency: str
    severity: str
    certainty: str


SEVERITY_RATINGS: dict[str, CapRating] = {
    "critical": CapRating("Immediate", "Severe", "Observed"),
    "warning": CapRating("Expected", "Moderate", "Likely"),
    "info": CapRating("Expected", "Minor", "Observed"),
}
ALL_CLEAR_RATING = CapRating("Past", "Minor", "Observed")


@dataclass(frozen=True)
class AlertReference:
    """An alert as ``<references>`` names it: ``sender,identifier,sent``."""

    sender: str
    identifier: str
    sent: str

    def as_text(self) -> str:
        return f"{self.sender},{self.identifier},{self.sent}"

    @classmethod
    def parse(cls, text: str) -> AlertReference | None:
        parts = text.split(",")
        return cls(*parts) if len(parts) == 3 and all(parts) else None


@dataclass(frozen=True)
class PreviousAlert:
    """What a new alert needs to know of an earlier CAP file."""

    reference: AlertReference
    msg_type: str
    incidents: tuple[str, ...]
    references: tuple[AlertReference, ...]


@dataclass(frozen=True)
class CapAlert:
    """A built alert: the XML document and what it is."""

    identifier: str
    msg_type: str
    status: str
    xml: bytes


def read_previous_alert(path: Path) -> PreviousAlert | None:
    """The alert in ``path``, or None when there is no such file. A file that is not CAP 1.2 is refused."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise InputError(f"{path}: cannot read the earlier CAP alert: {error.strerror}") from None
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as error:
        raise InputError(f"{path}:{error.lineno}: the earlier CAP alert is not XML: {error.msg}") from None
    if root.tag != f"{{{CAP_NAMESPACE}}}alert":
        raise InputError(f"{path}: not a CAP 1.2 alert (the root element is not <alert> in {CAP_NAMESPACE})")

    def text(name: str) -> str:
        return (root.findtext(f"cap:{name}", default="", namespaces=_NS) or "").strip()

    reference = AlertReference(text("sender"), text("identifier"), text("sent"))
    if not (reference.sender and reference.identifier and reference.sent):
        raise InputError(f"{path}: the earlier CAP alert lacks its sender, identifier or sent time")
    earlier = tuple(r for r in map(AlertReference.parse, text("references").split()) if r is not None)
    return PreviousAlert(reference, text("msgType"), tuple(text("incidents").split()), earlier)


def cap_sender(playbook: Playbook) -> str:
    settings = playbook.providers.cap
    if settings is not None and settings.sender:
        return settings.sender
    return urlsplit(playbook.organisation.website).hostname or "crisiscomms"


def cap_time(moment: dt.datetime, timezone: str) -> str:
    """``2026-12-05T22:15:00+01:00`` in ``timezone``; CAP writes UTC as ``-00:00`` and never ``Z``."""
    text = moment.astimezone(zone_info(timezone)).replace(microsecond=0).isoformat()
    return text[:-6] + "-00:00" if text.endswith("+00:00") else text


def alert_identifier(sender: str, notice_id: str, sent: dt.datetime) -> str:
    return f"{sender}.{notice_id}.{sent.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"


def incident_of(notice_id: str, notice: Notice) -> str:
    return notice.clears or notice_id


def build_cap_alert(renderer: NoticeRenderer, *, exercise: bool | None = None,
                    previous: PreviousAlert | None = None, previous_source: Path | None = None) -> CapAlert:
    """The CAP 1.2 alert of the renderer's notice as of ``renderer.sent_at``; ``previous`` is the
    earlier alert (read from ``previous_source``, named in errors). ``exercise`` (default: the
    renderer's) makes the status Exercise."""
    exercise = renderer.exercise if exercise is None else exercise
    playbook, notice, notice_id = renderer.playbook, renderer.notice, renderer.notice_id
    timezone = playbook.organisation.timezone
    sender = cap_sender(playbook)
    sent = cap_time(renderer.sent_at, timezone)
    identifier = alert_identifier(sender, notice_id, renderer.sent_at)
    incident = incident_of(notice_id, notice)
    try:
        msg_type, references = _place_in_chain(notice_id, notice, incident, identifier, previous)
    except _NothingToCancel:
        where = (f"{previous_source} holds no alert of it" if previous_source is not None and previous is not None
                 else f"there is no earlier CAP file at {previous_source}" if previous_source is not None
                 else "no earlier CAP file was given")
        raise InputError(
            f"notice '{notice_id}' clears '{notice.clears}', so its CAP alert is a Cancel that must reference "
            f"the alert of '{notice.clears}', but {where} (give that alert's file with --previous)") from None
    status = "Exercise" if exercise else "Actual"
    root = etree.Element(f"{{{CAP_NAMESPACE}}}alert", nsmap={None: CAP_NAMESPACE})
    for name, value in (("identifier", identifier), ("sender", sender), ("sent", sent), ("status", status),
                        ("msgType", msg_type), ("scope", "Public")):
        _add(root, name, value)
    if exercise:
        _add(root, "note", "Exercise: this alert is a rehearsal, not a real event.")
    if references:
        _add(root, "references", " ".join(r.as_text() for r in references))
    _add(root, "incidents", incident)
    for locale in playbook.organisation.locales:
        root.append(_info(renderer, locale, msg_type))
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return CapAlert(identifier, msg_type, status, xml)


class _NothingToCancel(Exception):
    pass


def _place_in_chain(notice_id: str, notice: Notice, incident: str, identifier: str,
                    previous: PreviousAlert | None) -> tuple[str, tuple[AlertReference, ...]]:
    """(msgType, references): Alert, an Update of an earlier alert of the incident, or the all-clear's Cancel."""
    if previous is not None and previous.reference.identifier == identifier:
        return previous.msg_type, previous.references  # the same alert written again
    same_incident = previous is not None and incident in previous.incidents and previous.msg_type != "Cancel"
    if notice.clears is not None:
        if previous is None or not same_incident:
            raise _NothingToCancel
        return "Cancel", (*previous.references, previous.reference)
    if previous is not None and same_incident:
        return "Update", (*previous.references, previous.reference)
    return "Alert", ()


def _info(renderer: NoticeRenderer, locale: str, msg_type: str) -> Any:
    playbook, notice = renderer.playbook, renderer.notice
    default = playbook.organisation.default_locale
    settings = playbook.providers.cap or CapSettings.model_validate({})
    timezone = playbook.organisation.timezone
    banner = renderer.render("banner", locale, timezone, None)
    assert isinstance(banner, BannerContent)
    rating = ALL_CLEAR_RATING if msg_type == "Cancel" else SEVERITY_RATINGS[notice.severity]
    info = etree.Element(f"{{{CAP_NAMESPACE}}}info")
    _add(info, "language", language_tag(locale, settings.languages))
    _add(info, "category", notice.cap.category or settings.category)
    _add(info, "event", localized_text(notice.cap.event, locale, default) if notice.cap.event else banner.title)
    if msg_type == "Cancel":
        _add(info, "responseType", "AllClear")
    _add(info, "urgency", rating.urgency)
    _add(info, "severity", rating.severity)
    _add(info, "certainty", rating.certainty)
    expires = notice_expiry(playbook, notice, renderer.sent_at)
    if expires is not None:
        _add(info, "expires", cap_time(expires, timezone))
    _add(info, "senderName", playbook.organisation.name)
    _add(info, "headline", banner.title)
    if banner.body:
        _add(info, "description", banner.body)
    context = renderer.shared_context(locale, timezone)
    status_link = context["status_link"]
    _add(info, "web", status_link["url"] if status_link else playbook.organisation.website)
    contact = _contact(context)
    if contact:
        _add(info, "contact", contact)
    if notice.cap.area is not None:
        area = etree.SubElement(info, f"{{{CAP_NAMESPACE}}}area")
        _add(area, "areaDesc", localized_text(notice.cap.area, locale, default))
    return info


def _contact(context: dict[str, Any]) -> str | None:
    """The route where a person answers: the notice's 24/7 line, else the first live-person route it shows."""
    route = context["hotline"]
    if route is None:
        routes = [r for inquiry in context["reach"] for r in (inquiry["best"], *inquiry["fallbacks"])]
        route = next((r for r in routes if r["live_person"]), None)
    if route is None:
        return None
    return f"{route['label']}: {route['contact']} ({route['hours']})"


def _add(parent: Any, name: str, value: str) -> None:
    etree.SubElement(parent, f"{{{CAP_NAMESPACE}}}{name}").text = value


def default_cap_path(playbook: Playbook, base_dir: Path) -> Path | None:
    settings = playbook.providers.cap
    return (base_dir / settings.path).resolve() if settings is not None and settings.path else None


def write_cap_alert(alert: CapAlert, path: Path) -> None:
    """Replace ``path`` with the alert, atomically (mode 0644: a public alert)."""
    from .atomicfile import replace_file

    try:
        replace_file(path, alert.xml)
    except OSError as error:
        raise InputError(f"{path}: cannot write the CAP alert: {error.strerror}") from None


def alert_for_notice(renderer: NoticeRenderer, out: Path | None, previous_path: Path | None, *,
                     exercise: bool | None = None) -> CapAlert:
    """The alert of the renderer's notice, placed in the chain of the earlier one
    (``previous_path``, by default the ``out`` file it replaces)."""
    source = previous_path or out
    previous = read_previous_alert(source) if source is not None else None
    return build_cap_alert(renderer, exercise=exercise, previous=previous, previous_source=source)


def planned_cap_document(renderer: NoticeRenderer, path: Path, *, exercise: bool | None = None) -> dict[str, Any]:
    """The ``cap`` channel's message body, built when the send is planned (a Cancel without its
    earlier alert fails the plan, dry run included): what :mod:`crisiscomms.channels.cap` writes."""
    alert = alert_for_notice(renderer, path, None, exercise=exercise)
    return {"identifier": alert.identifier, "msg_type": alert.msg_type, "status": alert.status,
            "xml": alert.xml.decode("utf-8")}
