"""Personalised e-mails in shared SendGrid requests: substitutions in the body, SendGrid's limits, and the
end-to-end result (final texts at the stand-in, requests counted, every recipient once).

The final texts are checked the way SendGrid builds them: each key of a personalization's
``substitutions`` replaced literally in the request's subject, text and HTML.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from crisiscomms.channels import email_batch
from crisiscomms.channels.base import Message, Outcome
from crisiscomms.content import EmailContent
from crisiscomms.loader import load_playbook
from crisiscomms.plan import PlannedMessage, Planner, PlanRequest, reader_view
from crisiscomms.render import NoticeRenderer, template_store
from crisiscomms.session import open_notice
from crisiscomms.testing.standin import Standin, StandinConfig, standin_in_thread

from ..conftest import ROOT, run_cli
from ..test_substitutions import hostile_names
from .test_email import URL, body_of, send, standin_env

AT = "2026-12-02T10:00+01:00"
STORM = ROOT / "playbooks" / "nordvind-storm.yaml"
LOCALES = ["en", "sv", "da", "nb", "nl", "el"]


def storm_renderers() -> tuple[NoticeRenderer, NoticeRenderer]:
    loaded = load_playbook(STORM)
    playbook = loaded.require()
    at = dt.datetime.fromisoformat(AT)
    fast = NoticeRenderer.for_playbook(playbook, loaded.base_dir, "storm-outage", at)
    return fast, NoticeRenderer(playbook, "storm-outage", fast.store, at, reuse=False)


FAST, PLAIN = storm_renderers()


def personal(n: int, name: str, locale: str = "en") -> Message:
    content = FAST.render("email", locale, "Europe/Stockholm", {"id": f"r{n}", "name": name, "locale": locale})
    return Message(key=f"r{n}/email", recipient_id=f"r{n}", address=f"user{n}@example.org", locale=locale,
                   body=content, custom_args={"campaign": "c-1", "recipient": f"r{n}"})


def alone(message: Message) -> tuple[str, str, str]:
    content = PLAIN.render("email", message.locale, "Europe/Stockholm",
                           {"id": message.recipient_id, "name": name_of(message), "locale": message.locale})
    assert isinstance(content, EmailContent)
    return content.subject, content.text, content.html


NAMES: dict[str, str] = {}


def name_of(message: Message) -> str:
    return NAMES[message.recipient_id]


def batch_of(names: list[str], locales: list[str] | None = None) -> list[Message]:
    batch = []
    for n, name in enumerate(names):
        NAMES[f"r{n}"] = name
        batch.append(personal(n, name, (locales or ["en"])[n % len(locales or ["en"])]))
    return batch


def as_sendgrid_builds_it(body: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Each recipient's final subject, text and HTML: the body's, with its personalization's keys replaced."""
    content = {block["type"]: block["value"] for block in body["content"]}
    finals = {}
    for personalization in body["personalizations"]:
        parts = [body["subject"], content["text/plain"], content["text/html"]]
        for key, value in (personalization.get("substitutions") or {}).items():
            parts = [part.replace(key, value) for part in parts]
        finals[personalization["to"][0]["email"]] = (parts[0], parts[1], parts[2])
    return finals


@pytest.fixture
def mock() -> Any:
    with respx.mock(using="httpx", assert_all_mocked=True, assert_all_called=False) as router:
        yield router


def test_hostile_names_share_one_request_and_each_gets_exactly_its_own_render(mock: respx.MockRouter) -> None:
    route = mock.post(URL).mock(return_value=httpx.Response(202, headers={"X-Message-Id": "m"}))
    names = [n for n in hostile_names() if n != "" and len(n) < 3_000]
    batch = batch_of(names)
    results = send(batch)
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    finals: dict[str, tuple[str, str, str]] = {}
    for call in route.calls:
        finals.update(as_sendgrid_builds_it(body_of(call)))
    assert finals == {m.address: alone(m) for m in batch}
    # the marker characters and the key text itself go alone with their plain render; all others share one
    assert route.call_count == 1 + 2
    shared = body_of(route.calls[0])
    assert len(shared["personalizations"]) == len(batch) - 2
    assert all(set(p["substitutions"]) == {k for k, _ in batch[0].body.personalised.substitutions}
               for p in shared["personalizations"])


def test_text_and_html_values_differ_and_keys_are_not_in_the_reader_text(mock: respx.MockRouter) -> None:
    route = mock.post(URL).mock(return_value=httpx.Response(202, headers={"X-Message-Id": "m"}))
    send(batch_of(["Tom & <Jerry>", "Anna"]))
    body = body_of(route.calls[0])
    first = body["personalizations"][0]["substitutions"]
    assert sorted(first.values()) == ["Tom & <Jerry>", "Tom &amp; &lt;Jerry&gt;"]
    content = {block["type"]: block["value"] for block in body["content"]}
    text_key = next(k for k, v in first.items() if v == "Tom & <Jerry>")
    html_key = next(k for k, v in first.items() if v == "Tom &amp; &lt;Jerry&gt;")
    assert text_key in content["text/plain"] and text_key not in content["text/html"]
    assert html_key in content["text/html"] and html_key not in content["text/plain"]


def test_substitutions_over_10000_bytes_go_alone_with_the_plain_render(mock: respx.MockRouter) -> None:
    route = mock.post(URL).mock(return_value=httpx.Response(202, headers={"X-Message-Id": "m"}))
    batch = batch_of(["Anna", "a" * 5_000, "Bo", "é" * 2_600, "a" * 4_950])
    results = send(batch)
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 5
    bodies = [body_of(call) for call in route.calls]
    sizes = sorted(len(b["personalizations"]) for b in bodies)
    assert sizes == [1, 1, 3]  # 10,000+ bytes (5,000 twice; 2,600 × 2 bytes twice): alone; 4,950 twice (+ keys) fits
    for body in bodies:
        if len(body["personalizations"]) == 1 and "substitutions" not in body["personalizations"][0]:
            address = body["personalizations"][0]["to"][0]["email"]
            message = next(m for m in batch if m.address == address)
            assert (body["subject"], body["content"][0]["value"], body["content"][1]["value"]) == alone(message)
        for personalization in body["personalizations"]:
            substitutions = personalization.get("substitutions") or {}
            assert email_batch.substitution_bytes(list(substitutions.items())) <= 10_000
    finals: dict[str, tuple[str, str, str]] = {}
    for body in bodies:
        finals.update(as_sendgrid_builds_it(body))
    assert finals == {m.address: alone(m) for m in batch}


def test_requests_stop_short_of_the_size_limit(mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    route = mock.post(URL).mock(return_value=httpx.Response(202, headers={"X-Message-Id": "m"}))
    batch = batch_of([f"Person {n}" for n in range(60)])
    base = email_batch.content_bytes(batch[0].body.personalised.shared)
    monkeypatch.setattr(email_batch, "MAX_REQUEST_BYTES", base + 2_000)
    send(batch)
    bodies = [body_of(call) for call in route.calls]
    assert len(bodies) >= 6
    assert all(len(json.dumps(b)) < base + 2_000 for b in bodies)
    addresses = Counter(p["to"][0]["email"] for b in bodies for p in b["personalizations"])
    assert addresses == Counter(m.address for m in batch)


def test_2500_personalised_recipients_go_in_three_requests(mock: respx.MockRouter) -> None:
    route = mock.post(URL).mock(return_value=httpx.Response(202, headers={"X-Message-Id": "m"}))
    batch = batch_of([f"Person {n}" for n in range(2_500)])
    send(batch)
    assert sorted(len(body_of(c)["personalizations"]) for c in route.calls) == [500, 1000, 1000]
    finals: dict[str, tuple[str, str, str]] = {}
    for call in route.calls:
        finals.update(as_sendgrid_builds_it(body_of(call)))
    assert len(finals) == 2_500 and finals[batch[7].address][1].count("Person 7,") == 1


def test_custom_args_with_the_marker_go_without_substitutions(mock: respx.MockRouter) -> None:
    route = mock.post(URL).mock(return_value=httpx.Response(202, headers={"X-Message-Id": "m"}))
    batch = batch_of(["Anna", "Bo"])
    odd = Message(key="x", recipient_id="r^1", address="odd@example.org", locale="en", body=batch[0].body,
                  custom_args={"campaign": "c-1", "recipient": "r^1"})
    send([*batch, odd])
    bodies = [body_of(call) for call in route.calls]
    assert sorted(len(b["personalizations"]) for b in bodies) == [1, 2]
    single = next(b for b in bodies if len(b["personalizations"]) == 1)
    assert "substitutions" not in single["personalizations"][0] and "Hello Anna," in single["content"][0]["value"]


def test_the_standin_applies_and_records_substitutions() -> None:
    batch = batch_of(["Anna", "<&>", "Zoë 😀"], LOCALES)
    with standin_in_thread(StandinConfig()) as standin:
        results = send(batch, environ=standin_env(standin))
        assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 3
        assert standin.requests["sendgrid"] == 3  # three locales
        for record in standin.emails:
            message = next(m for m in batch if m.address == record.to)
            assert (record.subject, record.text, record.html) == alone(message)
            assert len(record.substitutions) == 2 and record.to_json()["substitutions"] == 2


# --------------------------------------------------------------------------- end to end: crisiscomms send


@pytest.fixture
def storm_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped storm playbook and templates, and 240 readers in every language with hostile names."""
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    (tmp_path / "playbooks").mkdir()
    shutil.copy(STORM, tmp_path / "playbooks" / "storm.yaml")
    names = [n.replace("\n", " ").replace("\t", " ").replace('"', "'") for n in hostile_names()]
    rows = ["id,name,email,locale,timezone"]
    for i in range(240):
        rows.append(f'r{i},"{names[i % len(names)]}",reader{i}@example.se,{LOCALES[i % 6]},'
                    f"{'Europe/Stockholm' if i % 5 else 'Europe/Athens'}")
    (tmp_path / "audience.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def planned_emails(project: Path) -> dict[str, PlannedMessage]:
    session = open_notice(project / "playbooks" / "storm.yaml", "storm-outage")
    planner = Planner(session, PlanRequest(audience=project / "audience.csv", at=dt.datetime.fromisoformat(AT),
                                           channels=("email",)))
    return {item.address: item for item in planner.items() if isinstance(item, PlannedMessage)}


def one_recipient_renders(project: Path) -> dict[str, tuple[str, str, str]]:
    planned = planned_emails(project)
    session = open_notice(project / "playbooks" / "storm.yaml", "storm-outage")
    plain = NoticeRenderer(session.playbook, "storm-outage", template_store(session.playbook, session.base_dir),
                           dt.datetime.fromisoformat(AT), reuse=False)
    finals = {}
    for address, item in planned.items():
        assert item.view is not None
        content = plain.render("email", item.locale, item.timezone, reader_view(item.view))
        assert isinstance(content, EmailContent)
        finals[address] = (content.subject, content.text, content.html)
    return finals


def send_storm(*extra: str) -> Any:
    return run_cli("send", "playbooks/storm.yaml", "--notice", "storm-outage", "--audience", "audience.csv",
                   "--at", AT, "--channels", "email", "--yes", *extra)


def test_send_batches_personalised_email_and_every_reader_gets_their_one_recipient_render(
        storm_project: Path, standin: Standin) -> None:
    result = send_storm()
    assert result.code == 0, result.stdout + result.stderr
    expected = one_recipient_renders(storm_project)
    records = standin.emails
    assert Counter(r.to for r in records) == Counter(list(expected))  # every reader exactly once
    assert {r.to: (r.subject, r.text, r.html) for r in records} == expected
    # 6 locales × 2 time zones × named or not: at most 24 shared renderings; the marker names go alone
    alone_count = sum(1 for r in records if not r.substitutions)
    assert standin.requests["sendgrid"] <= 24 + alone_count
    assert standin.requests["sendgrid"] < len(records) / 4
    report = run_cli("report", "--campaign", "nordvind-energi/storm-outage", "--format", "json")
    assert report.code == 0, report.stderr
    rows = [json.loads(line) for line in report.stdout.splitlines()]  # ledger rows per recipient, as ever
    assert Counter((row["channel"], row["status"], row["attempts"]) for row in rows) == {("email", "accepted", 1): 240}
    assert len({row["id"] for row in rows}) == 240
    resumed = send_storm()
    assert resumed.code == 0 and len(standin.emails) == len(records)


def test_email_batch_size_1_sends_one_recipient_per_request(storm_project: Path, standin: Standin) -> None:
    result = send_storm("--email-batch-size", "1")
    assert result.code == 0, result.stdout + result.stderr
    assert standin.requests["sendgrid"] == len(standin.emails) == 240
    assert {r.to: (r.subject, r.text, r.html) for r in standin.emails} == one_recipient_renders(storm_project)


def test_email_batch_size_caps_personalizations_per_request(storm_project: Path, standin: Standin) -> None:
    assert send_storm("--email-batch-size", "7").code == 0
    per_request = Counter(r.message_id for r in standin.emails)
    assert max(per_request.values()) == 7 and sum(per_request.values()) == 240


def test_email_batch_size_out_of_range_is_a_usage_error(storm_project: Path) -> None:
    result = send_storm("--email-batch-size", "1001")
    assert result.code == 2
    assert "Invalid value for '--email-batch-size': 1001 is not in the range 1<=x<=1000." in result.stderr


def test_a_400_naming_one_personalization_of_a_shared_request_rejects_only_that_reader(
        mock: respx.MockRouter) -> None:
    errors = {"errors": [{"message": "Does not contain a valid address.", "field": "personalizations.1.to.0.email"}]}
    mock.post(URL).mock(return_value=httpx.Response(400, json=errors))
    results = send(batch_of(["Anna", "Bo", "Cecilia"]))
    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.REJECTED, Outcome.RETRY]
    assert results[1].reason == "personalizations.1.to.0.email: Does not contain a valid address."
