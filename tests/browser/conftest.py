"""Fixtures for the site-banner widget tests: a banner document from a real ``crisiscomms send`` run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The storm notice as sent on Wed 2 Dec 2026, 10:00 Stockholm time; it expires Sun 6 Dec, 20:00
# (19:00Z). Stockholm is UTC+1 all December. The routes, in Stockholm time:
#   outage-line, outage-map, portal, help-centre: 24/7
#   live-chat:  30 Nov – 13 Dec 07:00–23:00 (exception; weekly Mon–Fri 08–20, Sat–Sun 10–16)
#   sms-agents: 30 Nov – 13 Dec 06:00–24:00 (exception; weekly Mon–Fri 07–22, Sat–Sun 09–18)
SENT_AT = "2026-12-02T10:00+01:00"
ISSUED = "2026-12-02T09:00:00Z"
EXPIRES = "2026-12-06T19:00:00Z"


@pytest.fixture(scope="session")
def banner_document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The banner JSON written by ``crisiscomms send --channels banner`` (a subprocess, as in production)."""
    folder = tmp_path_factory.mktemp("send")
    out = folder / "banner.json"
    command = [
        sys.executable, "-m", "crisiscomms", "send", str(ROOT / "playbooks" / "nordvind-storm.yaml"),
        "--notice", "storm-outage", "--audience", str(ROOT / "examples" / "customers.csv"),
        "--channels", "banner", "--banner-out", str(out), "--yes", "--at", SENT_AT,
        "--ledger", str(folder / "ledger.sqlite"),  # session-scoped: the per-test state folder is not set yet
    ]
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"crisiscomms send failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    document: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert document["notice"]["issued"] == ISSUED and document["notice"]["expires"] == EXPIRES
    return document
