"""A real send (against the stand-in) of a notice with calls and a CAP alert: landlines are called once,
the CAP file is written and valid, and a resume places no call twice."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lxml import etree

from crisiscomms.testing.standin import (
    Standin,
)

from .conftest import DATA, Result, run_cli

AT = "2026-11-25T12:00+01:00"
SCHEMA = etree.XMLSchema(etree.parse(str(DATA / "cap" / "CAP-v1.2.xsd")))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(DATA / "templates", tmp_path / "templates")
    for locale in ("en", "sv"):
        (tmp_path / "templates" / "outage" / locale / "voice.txt").write_text(
            "This is {{ org.name }}. Power cut in {{ vars.area }}.\n", encoding="utf-8")
    (tmp_path / "playbooks").mkdir()
    text = (DATA / "playbooks" / "minimal.yaml").read_text(encoding="utf-8")
    text = text.replace("    channels: [sms, email, banner]\n", "    channels: [sms, voice, cap]\n")
    text = text.replace("  banner:\n    path: ../out/banner.json\n",
                        '  voice:\n    from: "+46 8 123 456 78"\n  cap:\n    path: ../site/cap.xml\n')
    (tmp_path / "playbooks" / "p.yaml").write_text(text, encoding="utf-8")
    rows = ["id,name,phone,email,locale,timezone,channels"]
    rows += [f"m{i},Mobile {i},+4670{1000000 + i},,sv,," for i in range(5)]
    rows += [f"l{i},Landline {i},+46 8 {5550000 + i},,en,," for i in range(3)]
    rows += ["a1,Asks,+46709999999,,sv,,sms;voice"]
    (tmp_path / "audience.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def send() -> Result:
    return run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv", "--at", AT, "--yes")


def test_calls_and_cap_are_sent_once_and_resume_sends_nothing_twice(project: Path, standin: Standin) -> None:
    first = send()
    assert first.code == 0, first.stdout + first.stderr
    called = sorted(call.to for call in standin.calls)
    assert called == ["+46709999999", "+4685550000", "+4685550001", "+4685550002"]
    assert len(standin.sms) == 6  # the five mobiles and the one who asked for calls too
    assert {call.from_ for call in standin.calls} == {"+46812345678"}
    landline = standin.calls_to("+4685550000")[0]
    assert landline.twiml is not None and landline.twiml.startswith('<Response><Say language="en-GB" voice="Polly.Amy">'
                                                                    "This is Testbolaget.")
    cap = project / "site" / "cap.xml"
    root = etree.parse(str(cap))
    assert SCHEMA.validate(root), SCHEMA.error_log
    assert root.findtext("{urn:oasis:names:tc:emergency:cap:1.2}msgType") == "Alert"
    second = send()
    assert second.code == 0, second.stdout + second.stderr
    assert "Resuming: 11 messages were accepted in an earlier run" in second.stdout
    assert (len(standin.calls), len(standin.sms)) == (4, 6)
