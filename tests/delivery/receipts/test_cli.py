"""The receipts commands, the validate warning and send --status-callback."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from crisiscomms.delivery.receipts.store import MemoryReceiptStore
from crisiscomms.testing.standin import DEFAULT_TWILIO_SID, DEFAULT_TWILIO_TOKEN, standin_in_thread
from crisiscomms.testing.standin_receipts import SendGridSigner
from tests.conftest import DATA, run_cli

SMS_SECTION = '''  sms:
    from: "+46700000000"
'''


def playbook_with(tmp_path: Path, sms_lines: str) -> Path:
    text = (DATA / "playbooks" / "minimal.yaml").read_text(encoding="utf-8")
    assert SMS_SECTION in text
    path = tmp_path / "p.yaml"
    path.write_text(text.replace(SMS_SECTION, SMS_SECTION + sms_lines).replace(
        "templates: ../templates", f"templates: {DATA / 'templates'}"), encoding="utf-8")
    return path


# -- validate -------------------------------------------------------------------------------------


def test_validate_warns_when_receipts_are_expected_without_a_callback(tmp_path: Path) -> None:
    path = playbook_with(tmp_path, "    receipts: true\n")
    result = run_cli("validate", str(path))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "receipts: true" in text)
    assert result.code == 0
    assert result.stdout == (
        f"{path}:{line}:15: warning: receipts are expected but no status_callback is set, so Twilio will not "
        "report whether the SMS of 'outage' arrived: set providers.sms.status_callback to the /twilio/status "
        "address of 'crisiscomms receipts serve' (or pass send --status-callback), or fetch statuses with "
        "'crisiscomms receipts pull'\n"
        "1 playbook checked: 0 errors, 1 warning — valid\n")


@pytest.mark.parametrize("lines", [
    "    receipts: true\n    status_callback: https://receipts.example.org/twilio/status\n",
    "    receipts: false\n",
    "",
])
def test_no_warning_with_a_callback_or_without_receipts(tmp_path: Path, lines: str) -> None:
    result = run_cli("validate", str(playbook_with(tmp_path, lines)))
    assert (result.code, result.stdout) == (0, "1 playbook checked: 0 errors, 0 warnings — valid\n")


def test_validate_refuses_a_bad_validity_with_its_place(tmp_path: Path) -> None:
    path = playbook_with(tmp_path, "    validity: 12h\n")
    result = run_cli("validate", str(path))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "validity: 12h" in text)
    assert result.code == 1
    assert result.stdout.splitlines()[0] == (
        f"{path}:{line}:15: error: 'validity': must be between 1s and 10h (Twilio's limit), not 12h")


# -- send --status-callback -----------------------------------------------------------------------


def test_send_status_callback_is_checked_like_the_playbook_field(tmp_path: Path) -> None:
    path = playbook_with(tmp_path, "")
    (tmp_path / "a.csv").write_text("id,phone\n1,+46701234567\n", encoding="utf-8")
    result = run_cli("send", str(path), "--notice", "outage", "--audience", str(tmp_path / "a.csv"),
                     "--status-callback", "not-a-url", "--dry-run")
    assert (result.code, result.stderr) == (
        2, "crisiscomms: --status-callback: 'not-a-url' is not a web address; it must start with https:// "
           "(or http://)\n")


def test_with_status_callback_replaces_only_the_callback(tmp_path: Path) -> None:
    from crisiscomms.campaign.send import with_status_callback
    from crisiscomms.session import open_notice

    session = open_notice(playbook_with(tmp_path, "    validity: 1h\n"), "outage")
    changed = with_status_callback(session.playbook, "https://receipts.example.org/twilio/status", "p.yaml")
    assert changed.providers.sms is not None and session.playbook.providers.sms is not None
    assert changed.providers.sms.status_callback == "https://receipts.example.org/twilio/status"
    assert changed.providers.sms.validity == "1h"
    assert session.playbook.providers.sms.status_callback is None  # the original is untouched


# -- receipts serve / pull ------------------------------------------------------------------------


def test_receipts_serve_needs_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("SENDGRID_WEBHOOK_PUBLIC_KEY", raising=False)
    result = run_cli("receipts", "serve")
    assert (result.code, result.stderr) == (
        2, "crisiscomms: receipts serve needs TWILIO_AUTH_TOKEN (Twilio status callbacks) and/or "
           "SENDGRID_WEBHOOK_PUBLIC_KEY (SendGrid's signed Event Webhook) in the environment\n")


@pytest.mark.parametrize("listen", ["8787", "host:", "host:99999"])
def test_receipts_serve_checks_listen(listen: str) -> None:
    result = run_cli("receipts", "serve", "--listen", listen)
    assert (result.code, result.stderr) == (
        2, f"crisiscomms: --listen '{listen}' must be HOST:PORT, such as 127.0.0.1:8787\n")


def test_receipts_serve_on_every_interface_needs_the_public_url() -> None:
    result = run_cli("receipts", "serve", "--listen", "0.0.0.0:8787")
    assert (result.code, result.stderr) == (
        2, "crisiscomms: listening on every interface (0.0.0.0:8787): give --public-url, the address Twilio and "
           "SendGrid call (their signatures cover it)\n")


def test_receipts_commands_need_an_existing_ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "t")
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", SendGridSigner().public_key)
    monkeypatch.chdir(tmp_path)
    for command in ("serve", "pull"):
        result = run_cli("receipts", command, "--ledger", "x.sqlite")
        assert (result.code, result.stderr) == (
            3, f"crisiscomms: no ledger at {tmp_path / 'x.sqlite'}; give the one the send used with --ledger, "
               "or set CRISISCOMMS_LEDGER\n")
        assert not (tmp_path / "x.sqlite").exists()


def test_receipts_pull_against_the_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryReceiptStore()
    with standin_in_thread() as standin:
        standin.receipts.configure(enabled=True, undelivered_share=0.5, failed_share=0.0, seed=1)
        import httpx

        for index in range(6):
            answer = httpx.post(f"{standin.twilio_url}/2010-04-01/Accounts/{DEFAULT_TWILIO_SID}/Messages.json",
                                data={"To": f"+4670100000{index}", "From": "+46700000000", "Body": "x"},
                                auth=(DEFAULT_TWILIO_SID, DEFAULT_TWILIO_TOKEN))
            store.add_row("c1", "sms", f"r{index}", answer.json()["sid"])
        monkeypatch.setattr("crisiscomms.cli_delivery._receipt_store", lambda ledger: contextlib.nullcontext(store))
        monkeypatch.setenv("TWILIO_ACCOUNT_SID", DEFAULT_TWILIO_SID)
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", DEFAULT_TWILIO_TOKEN)
        monkeypatch.setenv("CRISISCOMMS_TWILIO_URL", standin.twilio_url)
        result = run_cli("receipts", "pull", "--campaign", "c1", "--rate", "100")
        finals = standin.receipts.final_states()["sms"]
    assert result.code == 0, result.stderr
    delivered = sum(1 for status in finals.values() if status == "delivered")
    assert result.stdout == (f"Asked Twilio about 6 SMS: 6 now have a final status (delivered {delivered}, "
                             f"undelivered {6 - delivered}), 0 are still on their way.\n")
    again = run_cli("receipts", "pull", "--campaign", "c1")
    assert (again.code, again.stdout) == (0, "Asked Twilio about 0 SMS: 0 now have a final status, "
                                             "0 are still on their way.\n")


def test_receipts_pull_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crisiscomms.cli_delivery._receipt_store",
                        lambda ledger: contextlib.nullcontext(MemoryReceiptStore()))
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    result = run_cli("receipts", "pull")
    assert (result.code, result.stderr) == (
        4, "crisiscomms: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set in the environment to fetch SMS "
           "statuses (the Twilio account SID and auth token)\n")


@pytest.mark.parametrize("command", ["serve", "pull"])
def test_receipts_commands_have_help_with_an_example(command: str) -> None:
    result = run_cli("receipts", command, "--help")
    assert result.code == 0 and "Example" in result.stdout


def test_serve_receives_until_interrupted_and_prints_what_it_counted(capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio
    import os
    import signal
    import socket

    import httpx

    from crisiscomms.cli_delivery import _serve_receipts
    from crisiscomms.delivery.receipts.server import ServerConfig
    from crisiscomms.testing.standin_receipts import twilio_signature

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = MemoryReceiptStore()
    key = store.add_row("c1", "sms", "r1", "SM" + "5e" * 16)
    config = ServerConfig.from_environ(f"http://127.0.0.1:{port}", {"TWILIO_AUTH_TOKEN": "tok"})
    params = {"MessageSid": "SM" + "5e" * 16, "MessageStatus": "delivered"}
    url = f"http://127.0.0.1:{port}/twilio/status"

    async def main() -> None:
        serving = asyncio.create_task(_serve_receipts(store, config, "127.0.0.1", port))
        async with httpx.AsyncClient() as http:
            for _ in range(100):
                try:
                    await http.get(f"http://127.0.0.1:{port}/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.02)
            answer = await http.post(url, data=params, headers={"X-Twilio-Signature": twilio_signature("tok", url, params)})
            assert answer.status_code == 200
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.wait_for(serving, 5)

    asyncio.run(main())
    assert store.states()[key] == "delivered"
    err = capsys.readouterr().err
    assert (f"Receiving delivery receipts on http://127.0.0.1:{port} (public: {url}, "
            f"http://127.0.0.1:{port}/twilio/call-status). Ctrl-C stops.") in err
    assert "Stopped. twilio: requests 1, accepted 1, events applied 1\n" in err
