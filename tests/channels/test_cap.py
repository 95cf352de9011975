"""The cap channel: planned once per notice like the banner, written atomically during a send, schema-valid."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from crisiscomms.channels import create_channel
from crisiscomms.channels.base import Message, Outcome
from crisiscomms.channels.cap import CapFile
from crisiscomms.errors import InputError
from crisiscomms.plan import PlannedMessage, Planner, PlanRequest, SkippedMessage
from crisiscomms.session import open_notice

from ..conftest import DATA, ROOT

SCHEMA = etree.XMLSchema(etree.parse(str(DATA / "cap" / "CAP-v1.2.xsd")))
STORM = ROOT / "playbooks" / "nordvind-storm.yaml"


def storm_with_cap(tmp_path: Path) -> Path:
    text = STORM.read_text(encoding="utf-8")
    assert "    channels: [sms, email, banner" in text
    text = text.replace("    channels: [sms, email, banner", "    channels: [cap, sms, email, banner", 1)
    text = text.replace("    channels: [sms, email, banner]\n    banner: withdraw", "    channels: [sms, cap, banner]\n"
                        "    banner: withdraw", 1)
    text = text.replace("    path: ../site/nordvind-storm-cap.xml", f"    path: {tmp_path / 'site' / 'cap.xml'}")
    text = text.replace("    path: ../site/nordvind-storm-banner.json", f"    path: {tmp_path / 'site' / 'b.json'}")
    path = tmp_path / "storm.yaml"
    path.write_text(text + f"templates: {ROOT / 'templates'}\n", encoding="utf-8")
    return path


def plan(playbook: Path, notice: str, tmp_path: Path, at: str) -> list[PlannedMessage | SkippedMessage]:
    audience = tmp_path / "a.csv"
    audience.write_text("id,name,phone,email,locale,timezone,channels\n1,Anna,070-123 45 67,a@example.se,sv,,\n",
                        encoding="utf-8")
    request = PlanRequest(audience=audience, at=dt.datetime.fromisoformat(at))
    return list(Planner(open_notice(playbook, notice), request).items())


def send(message: Message) -> list[object]:
    return asyncio.run(CapFile().send([message]))  # type: ignore[arg-type]


def test_planned_once_per_notice_and_written_by_the_channel(tmp_path: Path) -> None:
    playbook = storm_with_cap(tmp_path)
    items = plan(playbook, "storm-outage", tmp_path, "2026-12-05T23:15+01:00")
    caps = [i for i in items if i.channel == "cap"]
    assert len(caps) == 1 and isinstance(caps[0], PlannedMessage)
    cap = caps[0]
    assert (cap.recipient_id, cap.line, cap.address) == ("cap", 0, str(tmp_path / "site" / "cap.xml"))
    assert [i.channel for i in items[:2]] == ["banner", "cap"]
    body = cap.content
    assert isinstance(body, dict)
    assert (body["identifier"], body["msg_type"], body["status"]) == (
        "alerts@nordvind.example.storm-outage.20261205T221500Z", "Alert", "Actual")
    message = Message("cap:" + cap.address, "cap", cap.address, cap.locale, body)
    [result] = send(message)
    assert result.outcome is Outcome.ACCEPTED  # type: ignore[attr-defined]
    assert result.provider_id == "cap:alerts@nordvind.example.storm-outage.20261205T221500Z"  # type: ignore[attr-defined]
    assert SCHEMA.validate(etree.parse(cap.address)), SCHEMA.error_log
    # The all-clear, planned later, cancels the alert the channel wrote.
    restored = next(i for i in plan(playbook, "power-restored", tmp_path, "2026-12-06T18:00+01:00")
                    if i.channel == "cap")
    assert isinstance(restored, PlannedMessage) and restored.content["msg_type"] == "Cancel"  # type: ignore[index]


def test_an_all_clear_without_its_alert_fails_the_plan(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="notice 'power-restored' clears 'storm-outage'"):
        plan(storm_with_cap(tmp_path), "power-restored", tmp_path, "2026-12-06T18:00+01:00")


def test_write_failure_is_rejected_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    target = blocker / "cap.xml"
    [result] = send(Message("cap", "cap", str(target), "en", {"identifier": "i", "xml": "<alert/>"}))
    assert result.outcome is Outcome.REJECTED and result.code == "write_failed"  # type: ignore[attr-defined]
    assert result.reason == f"cannot write {target}: File exists"  # type: ignore[attr-defined]  # mkdir of the parent


def test_registered() -> None:
    channel = create_channel("cap", None)  # type: ignore[arg-type]
    assert isinstance(channel, CapFile) and channel.max_batch == 1
    assert asyncio.run(channel.find_sent(Message("k", "cap", "p", "en", {}), dt.datetime.now(dt.UTC))) is None
