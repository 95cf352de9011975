"""CAP 1.2: every shipped notice validates against the OASIS schema; Alert → Update → Cancel chains by <references>."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from lxml import etree

from crisiscomms.cap import (
    SEVERITY_RATINGS,
    AlertReference,
    alert_for_notice,
    build_cap_alert,
    cap_time,
    read_previous_alert,
)
from crisiscomms.errors import InputError
from crisiscomms.render import NoticeRenderer
from crisiscomms.session import open_notice

from .conftest import DATA, ROOT, run_cli

SCHEMA = etree.XMLSchema(etree.parse(str(DATA / "cap" / "CAP-v1.2.xsd")))
NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
STORM = ROOT / "playbooks" / "nordvind-storm.yaml"
CLINIC = ROOT / "playbooks" / "lindholmen-clinic.yaml"
AT = dt.datetime(2026, 12, 5, 22, 15, tzinfo=dt.UTC)


def variant(tmp_path: Path, source: Path, old: str, new: str, name: str = "variant.yaml") -> Path:
    """A copy of a shipped playbook with one change, in ``tmp_path``, using the shipped templates."""
    text = source.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new) + f"templates: {ROOT / 'templates'}\n", encoding="utf-8")
    return path


def renderer(playbook: Path, notice: str, at: dt.datetime = AT) -> NoticeRenderer:
    session = open_notice(playbook, notice)
    return NoticeRenderer.for_playbook(session.playbook, session.base_dir, notice, at)


def valid(xml: bytes) -> etree._Element:
    root = etree.fromstring(xml)
    assert SCHEMA.validate(root), SCHEMA.error_log
    return root


def texts(root: etree._Element, path: str) -> list[str]:
    return [element.text for element in root.findall(path, NS)]


@pytest.mark.parametrize(("playbook", "notice", "cleared"), [
    (STORM, "storm-outage", None), (STORM, "power-restored", "storm-outage"),
    (CLINIC, "clinic-closure", None), (CLINIC, "clinic-reopening", "clinic-closure"),
])
def test_every_shipped_notice_is_valid_cap(tmp_path: Path, playbook: Path, notice: str, cleared: str | None) -> None:
    previous = None
    if cleared is not None:  # an all-clear needs the alert it cancels
        earlier = tmp_path / "earlier.xml"
        earlier.write_bytes(build_cap_alert(renderer(playbook, cleared)).xml)
        previous = read_previous_alert(earlier)
    alert = build_cap_alert(renderer(playbook, notice, AT + dt.timedelta(hours=12)), previous=previous)
    root = valid(alert.xml)
    assert texts(root, "cap:info/cap:language") == ["en-GB", "sv-SE", "da-DK", "nb-NO", "nl-NL", "el-GR"]
    assert texts(root, "cap:msgType") == ["Cancel" if cleared else "Alert"]
    assert all(texts(root, "cap:info/cap:headline")) and all(texts(root, "cap:info/cap:description"))


def test_storm_alert_fields() -> None:
    root = valid(build_cap_alert(renderer(STORM, "storm-outage")).xml)
    assert [root.findtext(f"cap:{name}", namespaces=NS) for name in
            ("identifier", "sender", "sent", "status", "msgType", "scope", "incidents")] == [
        "alerts@nordvind.example.storm-outage.20261205T221500Z", "alerts@nordvind.example",
        "2026-12-05T23:15:00+01:00", "Actual", "Alert", "Public", "storm-outage"]
    assert root.find("cap:references", NS) is None
    swedish = root.findall("cap:info", NS)[1]
    assert [swedish.findtext(f"cap:{name}", namespaces=NS) for name in (
        "language", "category", "event", "urgency", "severity", "certainty", "expires", "senderName", "web",
        "contact", "area/cap:areaDesc")] == [
        "sv-SE", "Infra", "Strömavbrott", "Immediate", "Severe", "Observed", "2026-12-06T20:00:00+01:00",
        "Nordvind Energi", "https://nordvind.example/avbrott", "Störningsjouren: +46 8 465 004 10 (dygnet runt)",
        "Göteborg och norra Halland"]
    assert swedish.findtext("cap:headline", namespaces=NS) == (
        "Strömavbrott i Göteborg och norra Halland – vi jobbar för att få tillbaka strömmen")
    assert swedish.findtext("cap:description", namespaces=NS).startswith(
        "Stormen har orsakat strömavbrott i Göteborg och norra Halland.")


def test_severity_mapping_is_the_documented_one() -> None:
    assert {k: (v.urgency, v.severity, v.certainty) for k, v in SEVERITY_RATINGS.items()} == {
        "critical": ("Immediate", "Severe", "Observed"),
        "warning": ("Expected", "Moderate", "Likely"),
        "info": ("Expected", "Minor", "Observed"),
    }
    closure = valid(build_cap_alert(renderer(CLINIC, "clinic-closure")).xml)
    first = closure.find("cap:info", NS)
    assert [first.findtext(f"cap:{n}", namespaces=NS) for n in ("category", "urgency", "severity", "certainty")] \
        == ["Health", "Expected", "Moderate", "Likely"]
    assert first.findtext("cap:event", namespaces=NS) == first.findtext("cap:headline", namespaces=NS)  # default
    assert first.findtext("cap:expires", namespaces=NS) == "2027-02-01T00:00:00+01:00"  # a date: until its end


def test_alert_update_cancel_chain(tmp_path: Path) -> None:
    path = tmp_path / "cap.xml"
    first = alert_for_notice(renderer(STORM, "storm-outage"), path, None)
    path.write_bytes(first.xml)
    second = alert_for_notice(renderer(STORM, "storm-outage", AT + dt.timedelta(hours=2)), path, None)
    path.write_bytes(second.xml)
    cancel = alert_for_notice(renderer(STORM, "power-restored", AT + dt.timedelta(hours=20)), path, None)
    assert (first.msg_type, second.msg_type, cancel.msg_type) == ("Alert", "Update", "Cancel")
    update_root, cancel_root = valid(second.xml), valid(cancel.xml)
    first_ref = "alerts@nordvind.example,alerts@nordvind.example.storm-outage.20261205T221500Z,2026-12-05T23:15:00+01:00"
    second_ref = "alerts@nordvind.example,alerts@nordvind.example.storm-outage.20261206T001500Z,2026-12-06T01:15:00+01:00"
    assert texts(update_root, "cap:references") == [first_ref]
    assert texts(cancel_root, "cap:references") == [f"{first_ref} {second_ref}"]
    assert texts(cancel_root, "cap:incidents") == ["storm-outage"]
    assert texts(cancel_root, "cap:info/cap:responseType") == ["AllClear"] * 6
    assert set(texts(cancel_root, "cap:info/cap:urgency")) == {"Past"}
    assert texts(cancel_root, "cap:info/cap:headline")[0] == "Power is back in Gothenburg and northern Halland"


def test_same_alert_written_again_keeps_its_place_in_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "cap.xml"
    path.write_bytes(alert_for_notice(renderer(STORM, "storm-outage"), path, None).xml)
    again = alert_for_notice(renderer(STORM, "storm-outage"), path, None)
    assert again.msg_type == "Alert" and again.xml == path.read_bytes()


def test_cancel_without_the_earlier_alert_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "cap.xml"
    with pytest.raises(InputError) as caught:
        alert_for_notice(renderer(STORM, "power-restored"), missing, None)
    assert str(caught.value) == (
        "notice 'power-restored' clears 'storm-outage', so its CAP alert is a Cancel that must reference the alert "
        f"of 'storm-outage', but there is no earlier CAP file at {missing} (give that alert's file with --previous)")
    other = tmp_path / "other.xml"
    other.write_bytes(build_cap_alert(renderer(CLINIC, "clinic-closure")).xml)
    with pytest.raises(InputError, match=f"but {other} holds no alert of it"):
        alert_for_notice(renderer(STORM, "power-restored"), None, other)


def test_a_file_that_is_not_cap_is_refused(tmp_path: Path) -> None:
    broken, foreign = tmp_path / "broken.xml", tmp_path / "foreign.xml"
    broken.write_text("<alert>\n<oops", encoding="utf-8")
    foreign.write_text("<alert><identifier>x</identifier></alert>", encoding="utf-8")
    with pytest.raises(InputError, match=r"broken.xml:2: the earlier CAP alert is not XML"):
        read_previous_alert(broken)
    with pytest.raises(InputError, match=r"foreign.xml: not a CAP 1.2 alert"):
        read_previous_alert(foreign)


def test_exercise_status_and_utc_offset() -> None:
    root = valid(build_cap_alert(renderer(STORM, "storm-outage"), exercise=True).xml)
    assert texts(root, "cap:status") == ["Exercise"]
    assert texts(root, "cap:note") == ["Exercise: this alert is a rehearsal, not a real event."]
    assert cap_time(AT, "Europe/London") == "2026-12-05T22:15:00-00:00"  # CAP writes UTC as -00:00, never Z
    assert AlertReference.parse("a,b,c") == AlertReference("a", "b", "c")
    assert AlertReference.parse("a,b") is None


def test_language_tags_follow_the_playbook(tmp_path: Path) -> None:
    playbook = variant(tmp_path, STORM, "    category: Infra\n", "    category: Infra\n    languages: {en: en-US}\n")
    root = valid(build_cap_alert(renderer(playbook, "storm-outage")).xml)
    assert texts(root, "cap:info/cap:language")[0] == "en-US"


def test_cap_command_writes_atomically_and_chains(tmp_path: Path) -> None:
    out = tmp_path / "site" / "cap.xml"
    first = run_cli("cap", str(STORM), "--notice", "storm-outage", "--at", "2026-12-05T23:15", "--out", str(out))
    assert (first.code, first.stdout) == (0, "")
    assert first.stderr == (f"CAP 1.2 Alert (Actual) alerts@nordvind.example.storm-outage.20261205T221500Z "
                            f"written to {out}\n")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644
    assert sorted(p.name for p in out.parent.iterdir()) == ["cap.xml"]
    valid(out.read_bytes())
    done = run_cli("cap", str(STORM), "--notice", "power-restored", "--at", "2026-12-06T18:00", "--out", str(out),
                   "--exercise")
    assert done.code == 0 and done.stderr.startswith("CAP 1.2 Cancel (Exercise) ")
    assert texts(valid(out.read_bytes()), "cap:msgType") == ["Cancel"]


def test_cap_command_errors(tmp_path: Path) -> None:
    out = tmp_path / "cap.xml"
    result = run_cli("cap", str(STORM), "--notice", "power-restored", "--out", str(out))
    assert result.code == 3 and "Traceback" not in result.stderr
    assert result.stderr.startswith("crisiscomms: notice 'power-restored' clears 'storm-outage'")
    assert not out.exists()
    unknown = run_cli("cap", str(STORM), "--notice", "nope", "--out", str(out))
    assert unknown.code == 2 and "notice 'nope' is not in" in unknown.stderr


def test_cap_command_prints_to_stdout_without_a_path(tmp_path: Path) -> None:
    playbook = variant(tmp_path, CLINIC, "    path: ../site/lindholmen-clinic-cap.xml\n", "")
    result = run_cli("cap", str(playbook), "--notice", "clinic-closure", "--at", "2027-01-04T09:00")
    assert result.code == 0, result.stderr
    root = valid(result.stdout.encode("utf-8"))
    assert texts(root, "cap:sender") == ["lindholmenvard.example"]  # no providers.cap.sender: the website's host


def test_clears_must_name_another_notice(tmp_path: Path) -> None:
    playbook = variant(tmp_path, STORM, "    clears: storm-outage", "    clears: storm-outgae")
    line = next(n for n, row in enumerate(playbook.read_text().splitlines(), 1) if "clears: storm-outgae" in row)
    result = run_cli("validate", str(playbook))
    assert result.code == 1
    assert (f"variant.yaml:{line}:13: error: notice 'power-restored' clears 'storm-outgae', which is not "
            "a notice (did you mean 'storm-outage'?)") in result.stdout
