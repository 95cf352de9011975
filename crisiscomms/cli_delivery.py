"""Delivery commands: ``receipts serve`` / ``receipts pull`` (who actually got it) and ``escalate``.

Thin, like the other command modules: the server, the pull loop and the
ledger-backed receipt store are in :mod:`crisiscomms.delivery.receipts`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import click

from .cli import _finite, cli
from .cli_campaign import ledger_option
from .errors import ExitCode

if TYPE_CHECKING:
    from .delivery.receipts.pull import PullResult
    from .delivery.receipts.server import ReceiptServer, ServerConfig
    from .delivery.receipts.store import ReceiptStore
    from .ledger import LedgerLocation


# --------------------------------------------------------------------------
# Delivery receipts (issue 12)
# --------------------------------------------------------------------------


@contextlib.contextmanager
def _receipt_store(ledger_option: str | None, *, announce: bool = True) -> Iterator[ReceiptStore]:
    """The ledger (found as every command finds it) as the store receipts are written into."""
    from .delivery.receipts import store_for
    from .ledger import open_ledger, resolve_location

    location = resolve_location(ledger_option, os.environ)
    ledger = open_ledger(location, create=False)
    if announce:
        _announce_ledger(location)
    try:
        yield store_for(ledger)
    finally:
        ledger.close()


def _announce_ledger(location: LedgerLocation) -> None:
    click.echo(f"Ledger: {location.shown()} (from {location.source})", err=True)


def _listen_address(value: str) -> tuple[str, int]:
    from .errors import UsageError

    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen '{value}' must be HOST:PORT, such as 127.0.0.1:8787")
    return host.strip("[]"), int(port)


@cli.group()
def receipts() -> None:
    """Delivery receipts: which messages actually arrived (a 201/202 only means queued)."""


@receipts.command("serve")
@click.option("--listen", default="127.0.0.1:8787", show_default=True, metavar="HOST:PORT",
              help="Where to listen (put a TLS proxy in front for the internet).")
@click.option("--public-url", metavar="URL",
              help="The address Twilio and SendGrid call, as they see it (behind a proxy); default http://HOST:PORT.")
@click.option("--workers", type=click.IntRange(1, 64), metavar="N",
              help="Processes receiving on the one address (default: one per core, at most 8).")
@ledger_option
def receipts_serve(listen: str, public_url: str | None, workers: int | None, ledger_option: str | None) -> None:
    """Receive Twilio status callbacks and SendGrid events, verified, into the ledger.

    Needs TWILIO_AUTH_TOKEN and/or SENDGRID_WEBHOOK_PUBLIC_KEY in the environment.

    \b
    Example:
      crisiscomms receipts serve --listen 127.0.0.1:8787 --public-url https://receipts.example.org
    """
    import asyncio

    from .delivery.receipts.server import ServerConfig
    from .delivery.receipts.workers import can_fork, default_workers
    from .errors import UsageError

    host, port = _listen_address(listen)
    if public_url is None and host in ("0.0.0.0", "::", "*"):
        raise UsageError(f"listening on every interface ({listen}): give --public-url, the address Twilio and "
                         f"SendGrid call (their signatures cover it)")
    config = ServerConfig.from_environ(public_url or f"http://{host}:{port}")
    if workers is not None and workers > 1 and not can_fork():
        click.echo(f"--workers {workers}: worker processes need fork (Linux); receiving in one process.", err=True)
    workers = default_workers() if workers is None else workers if can_fork() else 1
    if workers == 1:
        with _receipt_store(ledger_option) as store:
            asyncio.run(_serve_receipts(store, config, host, port))
        return
    _serve_with_workers(config, host, port, workers, ledger_option)


def _serve_with_workers(config: ServerConfig, host: str, port: int, workers: int, ledger_option: str | None) -> None:
    """The receipts server as ``workers`` processes accepting on one socket (:mod:`.delivery.receipts.workers`)."""
    import functools

    from .delivery.receipts.workers import WorkerPool, listening_socket
    from .ledger import resolve_location

    opener = functools.partial(_receipt_store, ledger_option, announce=False)
    with opener():
        pass  # a ledger that cannot be opened is said now, before the address is taken or any worker starts
    sock = listening_socket(host, port)
    say = functools.partial(click.echo, err=True)

    def ready() -> None:
        _announce_ledger(resolve_location(ledger_option, os.environ))
        endpoints = ", ".join(config.public_url + path for path in config.endpoints)
        bound = sock.getsockname()
        say(f"Receiving delivery receipts on http://{host}:{bound[1]} (public: {endpoints}) with {workers} worker "
            "processes. Ctrl-C stops.")

    with _receipts_log(), contextlib.closing(sock):
        pool = WorkerPool(sock, config, opener, workers, say)
        stats = pool.run(on_ready=ready)
    say(f"Stopped. {_receipt_stats_text(stats)}")


async def _serve_receipts(store: ReceiptStore, config: ServerConfig, host: str, port: int) -> None:
    from .delivery.receipts.server import ReceiptServer

    with _receipts_log():
        await _serve_until_stopped(ReceiptServer(store, config), host, port)


@contextlib.contextmanager
def _receipts_log() -> Iterator[None]:
    """The server's log lines (refusals, store failures) on stderr, with their time."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger = logging.getLogger("crisiscomms.delivery.receipts")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


async def _serve_until_stopped(server: ReceiptServer, host: str, port: int) -> None:
    import asyncio
    import contextlib
    import signal

    await server.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    endpoints = ", ".join(server.config.public_url + path for path in server.config.endpoints)
    click.echo(f"Receiving delivery receipts on {server.url} (public: {endpoints}). Ctrl-C stops.", err=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
    click.echo(f"Stopped. {_receipt_stats_text(server.stats)}", err=True)


def _receipt_stats_text(stats: Mapping[str, int]) -> str:
    """``twilio: requests 3, accepted 2, events applied 2, refused forged 1``: what the server counted."""
    parts = []
    for provider in ("twilio", "sendgrid"):
        mine = {name[len(provider) + 1:]: count for name, count in stats.items() if name.startswith(provider + ".")}
        if mine:
            ordered = sorted(mine.items(), key=lambda item: (item[0] != "requests", item[0]))
            parts.append(f"{provider}: " + ", ".join(f"{name.replace('.', ' ')} {count}" for name, count in ordered))
    return "; ".join(parts) or "no requests"


@receipts.command("pull")
@click.option("--campaign", help="Only this campaign (default: every campaign in the ledger).")
@ledger_option
@click.option("--rate", type=click.FloatRange(min=0.1), callback=_finite, default=10.0, show_default=True,
              help="Twilio requests per second at most.")
def receipts_pull(campaign: str | None, ledger_option: str | None, rate: float) -> None:
    """Ask Twilio for the status of every accepted SMS without a final status (no web server needed).

    Resumable: what is fetched is kept; run it again to ask about the rest.

    \b
    Example:
      crisiscomms receipts pull --campaign nordvind-energi/storm-outage
    """
    import asyncio

    with _receipt_store(ledger_option) as store:
        result = asyncio.run(_pull_receipts(store, campaign, rate))
    click.echo(_pull_summary(result))
    if result.problems["lookup_failed"] or result.stopped:
        raise SystemExit(ExitCode.INTERRUPTED if result.stopped else ExitCode.FAILED)


async def _pull_receipts(store: ReceiptStore, campaign: str | None, rate: float) -> PullResult:
    import asyncio
    import contextlib
    import signal

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from .channels.http import make_http_client
    from .channels.sms import twilio_client
    from .delivery.receipts.pull import PullProgress, pull_receipts

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
    async with make_http_client() as http:
        client, _, _ = twilio_client(http, os.environ, purpose="to fetch SMS statuses")
        with Progress(TextColumn("SMS statuses"), BarColumn(), MofNCompleteColumn(),
                      console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("pull", total=None)

            def show(update: PullProgress) -> None:
                progress.update(task, completed=update.done, total=update.total)

            return await pull_receipts(store, client, campaign=campaign, rate=rate, on_progress=show, stop=stop)


def _pull_summary(result: PullResult) -> str:
    states = ", ".join(f"{state} {count}" for state, count in sorted(result.states.items()))
    lines = [f"Asked Twilio about {result.asked} SMS: {result.final} now have a final status"
             + (f" ({states})" if states else "") + f", {result.still_open} are still on their way."]
    if result.problems["not_found"]:
        lines.append(f"{result.problems['not_found']} are unknown to Twilio (deleted, or another account).")
    if result.problems["lookup_failed"]:
        lines.append(f"{result.problems['lookup_failed']} could not be asked (Twilio errors): run pull again.")
    if result.stopped:
        lines.append("Stopped early: what was fetched is kept; run pull again for the rest.")
    return "\n".join(lines)




# -- escalate ----------------------------------------------------------------------------------------------------


@cli.command()
@click.option("--campaign", required=True, help="The campaign whose unreached people to escalate.")
@ledger_option
@click.option("--dry-run", is_flag=True, help="Show who would get the fallback message; send and write nothing.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (automation).")
def escalate(campaign: str, ledger_option: str | None, dry_run: bool, output_format: str, yes: bool) -> None:
    """Send the notice's fallback channel, once, to those its first channel did not reach.

    The notice names the fallbacks: escalate: {sms: email, email: sms, after: 15m}.
    Candidates: rejected for good, undelivered, failed, bounced or dropped (from the receipts), and with
    'after' accepted that long ago without a final receipt. Locked and resumable like a send.

    \b
    Example:
      crisiscomms receipts pull && crisiscomms escalate --campaign nordvind-energi/storm-outage --dry-run
    """
    from .campaign.escalate import find_escalations, freeze_escalation
    from .campaign.identity import operator, this_holder
    from .campaign.lease import CampaignLease
    from .campaign.send import PlanSend, SendOptions
    from .channels import require_credentials
    from .cli_campaign import _confirm_and_execute, _console, _dispatch_settings, _location, _open_existing
    from .console import print_plan_summary
    from .delivery.receipts import store_for

    json_output = output_format == "json"
    console = _console(json_output)
    location = _location(ledger_option, None)
    ledger = _open_existing(location)
    try:
        store_for(ledger).settle()  # events that waited for a sid the ledger now has
        found = find_escalations(ledger, campaign)
        if dry_run or not found.rows:
            _show_escalation(found.as_dict(), json_output=json_output, dry_run=dry_run)
            return
        holder = this_holder(os.environ)
        with CampaignLease(ledger, location, campaign, holder) as lease:
            found = find_escalations(ledger, campaign)  # again, now that no one else sends this campaign
            header, summary = freeze_escalation(ledger, found, planned_by=operator(os.environ))
            print_plan_summary(summary, console, dry_run=False, at=header.at[:16])
            console.print(f"Escalation plan {header.id}: {header.messages:,} fallback messages.", markup=False,
                          highlight=False, soft_wrap=True)
            from .campaign.frozen import Snapshot
            from .playbook import Playbook

            playbook = Playbook.model_validate(Snapshot.from_json(ledger.plan_snapshot(header.id)).playbook)
            require_credentials(header.channels, playbook, os.environ)
            settings = _dispatch_settings(playbook, {"sms_rate": None, "email_rate": None, "call_rate": None,
                                                     "concurrency": None})
            run = PlanSend(ledger, header, summary, holder, SendOptions(dispatch=settings),
                           taken_over=lease.grant.taken_over if lease.grant else None)
            _confirm_and_execute(run, console, yes=yes, json_output=json_output, ledger=location.shown())
    finally:
        ledger.close()


def _show_escalation(found: dict[str, object], *, json_output: bool, dry_run: bool) -> None:
    import json

    if json_output:
        click.echo(json.dumps({**found, "dry_run": dry_run}, ensure_ascii=False))
        return
    routes = found["routes"]
    assert isinstance(routes, dict)
    lines = [f"{'DRY RUN — nothing is sent. ' if dry_run else ''}Escalation of campaign {found['campaign']}: "
             f"{found['messages']} fallback messages"
             + (" (" + ", ".join(f"{route} {count}" for route, count in routes.items()) + ")" if routes else "")
             + "."]
    missing = found["no_address"]
    assert isinstance(missing, dict)
    for channel, count in missing.items():
        lines.append(f"{count} people not reached have no {channel} address: nothing to escalate to for them.")
    if not found["messages"]:
        lines.append("Nobody to escalate now (receipts may still come: crisiscomms receipts pull).")
    for text in lines:
        click.echo(text)
