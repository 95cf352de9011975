"""The campaign commands: ``plan``, ``plan show``, ``approve`` and ``send`` (``report`` is in :mod:`.cli_report`).

Thin: options are parsed here, the work is done by :mod:`crisiscomms.campaign`
and the views are in :mod:`crisiscomms.console_campaign`. ``send PLAYBOOK`` is
``plan`` + confirmation + ``send --plan`` under one lease, reading the audience
once; ``send --dry-run`` is the planner without the ledger and the dispatch.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import cli as _cli_module
from .cli import _channel_list, _finite, _where_list, cli
from .errors import ExitCode, LedgerError

if TYPE_CHECKING:
    from rich.console import Console

    from .campaign.send import PlanSend, Preparation, SendOutcome
    from .dispatch import DispatchSettings
    from .ledger import LedgerLocation
    from .ledger.base import Ledger
    from .plan import PlanRequest
    from .playbook import Playbook
    from .session import NoticeSession

F = TypeVar("F", bound=Callable[..., Any])


def planning_options(function: F) -> F:
    """The options that decide what a plan contains (shared by ``plan`` and ``send``)."""
    options = [
        click.option("--notice", "notice_id", help="Id of the notice."),
        click.option("--audience", type=click.Path(path_type=Path), help="CSV or JSON Lines file of recipients."),
        click.option("--exercise", is_flag=True,
                     help="A rehearsal: only the playbook's exercise.recipients, every message marked EXERCISE, "
                          "the exercise banner/CAP paths, a campaign of its own (no --audience)."),
        click.option("--channels", callback=_channel_list, metavar="LIST",
                     help="Only these of the notice's channels, e.g. sms,email."),
        click.option("--at", "at_text", metavar="TIME", help="Plan as if it were this ISO 8601 time (rehearsals)."),
        click.option("--ignore-quiet-hours", is_flag=True,
                     help="Send non-critical SMS and place non-critical calls during quiet hours too."),
        click.option("--default-region", metavar="CC",
                     help="Region for national phone numbers (default: the playbook's)."),
        click.option("--suppress", "suppress", multiple=True, type=click.Path(path_type=Path),
                     help="Opt-out list (phone or e-mail per line, or CSV); repeatable."),
        click.option("--skipped-out", type=click.Path(path_type=Path, dir_okay=False),
                     help="Write every skipped message (line, id, channel, reason) to this CSV (mode 0600)."),
        click.option("--banner-out", type=click.Path(path_type=Path, dir_okay=False),
                     help="Write the banner JSON here instead of the playbook's path."),
        click.option("--campaign", metavar="NAME",
                     help="Campaign name instead of the notice id (the organisation is always part of it)."),
        click.option("--where", "where", multiple=True, callback=_where_list, metavar="COLUMN=VALUE[,VALUE…]",
                     help="Only rows whose COLUMN has one of the values (repeatable; all must hold), "
                          "e.g. area=Bergen,Voss."),
        click.option("--wait", "waits", multiple=True, metavar="ROUTE=DURATION",
                     help="Expected wait on a route now, e.g. outage-line=25m (repeatable; overrides the playbook's)."),
        click.option("--jobs", type=click.IntRange(min=1), metavar="N",
                     help="Processes that read and check the audience (default: one per core for a file of 1 MB "
                          "or more). The plan is the same with any N."),
        click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
                     show_default=True),
    ]
    for option in reversed(options):
        function = option(function)
    return ledger_option(function)


def ledger_option(function: F) -> F:
    return click.option(
        "--ledger", "ledger_option", metavar="PATH|URL",
        help="The ledger: a SQLite file, or postgresql://USER@HOST:PORT/DB for a team ledger shared by several "
             "machines. Default: $CRISISCOMMS_LEDGER, else the playbook's providers.ledger, else a per-user "
             "file under the user state directory (the same from any folder).")(function)


class _PlanGroup(click.Group):
    """``plan PLAYBOOK …`` makes a plan; ``plan show ID`` shows one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["create", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_PlanGroup)
def plan() -> None:
    """Plan a notice for an audience once, frozen in the ledger; show a plan.

    \b
    crisiscomms plan PLAYBOOK --notice ID --audience FILE [options]   (same as 'plan create')
    crisiscomms plan PLAYBOOK --notice ID --exercise [options]        (a rehearsal)
    crisiscomms plan show ID

    \b
    Example:
      crisiscomms plan playbooks/nordvind-storm.yaml --notice storm-outage --audience customers.csv
      crisiscomms send --plan 3f9a1c2b7d4e5f60
    """


@plan.command("create")
@click.argument("playbook", type=click.Path(path_type=Path))
@planning_options
def plan_create(playbook: Path, **options: Any) -> None:
    """Read the audience once and write every planned message and skip into the ledger as a frozen plan.

    \b
    Example:
      crisiscomms plan playbooks/nordvind-storm.yaml --notice storm-outage --audience examples/customers.csv
    """
    _require(options, "notice_id", "--notice")
    _require_audience_or_exercise(options)
    from .console_campaign import print_frozen_plan

    json_output = options["output_format"] == "json"
    console = _console(json_output)
    session, request, location = _planning(playbook, options, dry_run=False)
    ledger = _open(location, console)
    try:
        frozen = _freeze(session, request, ledger, options["skipped_out"], rehearsal=bool(options["at_text"]))
    finally:
        ledger.close()
    if json_output:
        click.echo(json.dumps({"plan": frozen.header.id, "ledger": location.shown(), **frozen.summary.as_dict(),
                               "approval_required": frozen.header.approval_required}, ensure_ascii=False))
        return
    print_frozen_plan(frozen.header, frozen.summary, console, at=request.at.isoformat(timespec="minutes"))


@plan.command("show")
@click.argument("plan_id", metavar="ID")
@ledger_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def plan_show(plan_id: str, ledger_option: str | None, output_format: str) -> None:
    """Show what a plan will send: its summary, who planned and approved it, one sample per locale and channel.

    \b
    Example:
      crisiscomms plan show 3f9a1c2b
    """
    from .console_campaign import plan_as_dict, print_plan_header
    from .plan import PlanSummary

    location = _location(ledger_option, None)
    ledger = _open_existing(location)
    try:
        header = ledger.plan(plan_id)
    finally:
        ledger.close()
    summary = PlanSummary.from_json(header.summary)
    if output_format == "json":
        click.echo(json.dumps({"ledger": location.shown(), **plan_as_dict(header, summary)}, ensure_ascii=False))
        return
    print_plan_header(header, summary, _console(False), ledger=location.shown())


@cli.command()
@click.argument("plan_id", metavar="ID")
@ledger_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (the approver has read 'plan show').")
def approve(plan_id: str, ledger_option: str | None, yes: bool) -> None:
    """Approve a plan as a second operator (the two-person rule: not the one who planned it).

    Your name is $CRISISCOMMS_OPERATOR, else your login name.

    \b
    Example:
      crisiscomms plan show 3f9a1c2b && crisiscomms approve 3f9a1c2b
    """
    from .campaign.approval import approve_plan
    from .campaign.identity import operator
    from .console_campaign import print_plan_header
    from .errors import UsageError
    from .plan import PlanSummary

    console = _console(False)
    location = _location(ledger_option, None)
    ledger = _open_existing(location)
    try:
        header = ledger.plan(plan_id)
        print_plan_header(header, PlanSummary.from_json(header.summary), console, ledger=location.shown())
        if not yes:
            if not _cli_module._stdin_is_terminal():
                raise UsageError("refusing to approve without a confirmation: run it in a terminal, or add --yes")
            answer = click.prompt(f"Type APPROVE to approve plan {header.id}", default="", show_default=False)
            if answer.strip() != "APPROVE":
                console.print("Not approved.")
                raise SystemExit(ExitCode.FAILED)
        approved = approve_plan(ledger, header, operator(os.environ))
    finally:
        ledger.close()
    console.print(f"Approved plan {approved.id} as {approved.approved_by} at {approved.approved_at}. "
                  f"Send it with: crisiscomms send --plan {approved.id}", markup=False, highlight=False, soft_wrap=True)


@cli.command()
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@click.option("--plan", "plan_id", metavar="ID", help="Send this frozen plan from the ledger (no playbook needed).")
@planning_options
@click.option("--dry-run", is_flag=True, help="Plan and preview everything; send nothing, write no ledger.")
@click.option("--concurrency", type=click.IntRange(1, 1000), help="Requests in flight per channel at most.")
@click.option("--email-batch-size", type=click.IntRange(1, 1000), default=1000, show_default=True,
              help="E-mails per SendGrid request at most (1: one recipient per request).")
@click.option("--sms-rate", type=click.FloatRange(min=0.1), callback=_finite,
              help="SMS per second at most (default: playbook).")
@click.option("--email-rate", type=click.FloatRange(min=0.1), callback=_finite,
              help="E-mail requests per second at most (default: playbook).")
@click.option("--call-rate", type=click.FloatRange(min=0.01), callback=_finite,
              help="Calls started per second at most (default: providers.voice.rate).")
@click.option("--resend-uncertain", is_flag=True, help="Send again e-mails that may have gone out already.")
@click.option("--status-callback", metavar="URL",
              help="Where Twilio reports SMS delivery (default: providers.sms.status_callback).")
@click.option("--continue-with-new-text", "continue_new", is_flag=True,
              help="People already reached with an earlier text are left alone; the others get the new text.")
@click.option("--resend-to-all", is_flag=True,
              help="A correction: everyone, also those already reached with an earlier text, gets the new text.")
@click.option("--join", is_flag=True,
              help="With --plan on a team (PostgreSQL) ledger: send beside the senders already sending this plan; "
                   "each claims its own batches, and rate limits are shared.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (automation).")
def send(playbook: Path | None, plan_id: str | None, **options: Any) -> None:
    """Send a notice to an audience (SMS, e-mail, calls, site banner, CAP), or send a frozen plan.

    \b
    Examples:
      crisiscomms send playbooks/nordvind-storm.yaml --notice storm-outage \\
          --audience examples/customers.csv --dry-run
      crisiscomms send --plan 3f9a1c2b7d4e5f60
    """
    from .errors import UsageError
    from .ledger.base import TextChoice

    if options["continue_new"] and options["resend_to_all"]:
        raise UsageError("--continue-with-new-text and --resend-to-all exclude each other: choose one")
    choice = TextChoice.CONTINUE if options["continue_new"] else TextChoice.RESEND if options["resend_to_all"] \
        else None
    if options["join"] and plan_id is None:
        raise UsageError("--join joins the send of a frozen plan: use it with --plan ID (the plan the other "
                         "senders are sending; crisiscomms report shows it)")
    if plan_id is not None:
        _refuse_planning_options_with_plan(playbook, options)
        _send_plan(plan_id, options, choice)
        return
    if playbook is None:
        raise UsageError("give a PLAYBOOK (with --notice and --audience) or --plan ID")
    _require(options, "notice_id", "--notice")
    _require_audience_or_exercise(options)
    if options["dry_run"]:
        _dry_run(playbook, options)
        return
    _plan_and_send(playbook, options, choice)


# -- the three ways of send --------------------------------------------------------------------------------------


def _dry_run(playbook: Path, options: dict[str, Any]) -> None:
    from .campaign.dry_run import plan_all

    session, request, location = _planning(playbook, options, dry_run=True)
    from .plan import Planner

    summary = plan_all(Planner(session, request), options["skipped_out"])
    if options["output_format"] == "json":
        click.echo(json.dumps({**summary.as_dict(), "ledger": location.shown()}, ensure_ascii=False))
        return
    from .console import print_plan_summary

    console = _console(False)
    print_plan_summary(summary, console, dry_run=True, at=request.at.isoformat(timespec="minutes"))
    console.print(f"Ledger: {location.shown()} (its STOP list was read; nothing is written)", markup=False,
                  highlight=False, soft_wrap=True)


def _plan_and_send(playbook: Path, options: dict[str, Any], choice: Any) -> None:
    """``send PLAYBOOK``: lease, plan once (frozen), confirm, dispatch that plan."""
    from .campaign.identity import campaign_for, this_holder
    from .campaign.lease import CampaignLease
    from .campaign.send import PlanSend, SendOptions
    from .channels import require_credentials
    from .console import print_plan_summary
    from .plan import choose_channels

    json_output = options["output_format"] == "json"
    console = _console(json_output)
    session, request, location = _planning(playbook, options, dry_run=False)
    require_credentials(choose_channels(session, request.channels), session.playbook, os.environ)  # before a ledger
    with _closing(_open(location, console)) as ledger:
        info = campaign_for(session, request.campaign, exercise=request.exercise)
        holder = this_holder(os.environ)
        with CampaignLease(ledger, location, info.campaign, holder) as lease:
            frozen = _freeze(session, request, ledger, options["skipped_out"], rehearsal=bool(options["at_text"]))
            print_plan_summary(frozen.summary, console, dry_run=False, at=request.at.isoformat(timespec="minutes"))
            console.print(f"Plan {frozen.header.id} frozen in the ledger {location.shown()}.", markup=False,
                          highlight=False, soft_wrap=True)
            send_options = SendOptions(dispatch=_dispatch_settings(session.playbook, options),
                                       resend_uncertain=options["resend_uncertain"], text_choice=choice,
                                       status_callback=options["status_callback"])
            run = PlanSend(ledger, frozen.header, frozen.summary, holder, send_options,
                           taken_over=lease.grant.taken_over if lease.grant else None)
            _confirm_and_execute(run, console, yes=options["yes"], json_output=json_output, ledger=location.shown())


def _refuse_join_on_a_file(location: LedgerLocation, join: bool) -> None:
    """--join on a SQLite ledger is a usage mistake (exit 2): one sender at a time sends from a file."""
    from .errors import UsageError

    if join and not location.is_database:
        raise UsageError(f"--join needs a shared PostgreSQL ledger; {location.shown()} is a SQLite file, where "
                         "one sender at a time sends a campaign. Nothing was sent.")


def _send_plan(plan_id: str, options: dict[str, Any], choice: Any) -> None:
    """``send --plan ID``: lease, checks, confirm, dispatch — nothing is planned or rendered from disk."""
    from .campaign.identity import this_holder
    from .campaign.lease import CampaignLease
    from .campaign.send import PlanSend, SendOptions
    from .channels import require_credentials
    from .console_campaign import print_joined, print_plan_header
    from .errors import UsageError
    from .plan import PlanSummary
    from .playbook import Playbook

    json_output = options["output_format"] == "json"
    console = _console(json_output)
    location = _location(options["ledger_option"], None)
    _refuse_join_on_a_file(location, options["join"])
    _open_existing(location).close()  # a plan is only in a ledger that exists: never create an empty one here
    with _closing(_open(location, console)) as ledger:
        header = ledger.plan(plan_id)
        if options["exercise"] and not header.exercise:
            raise UsageError(f"--exercise: plan {header.id} is a real plan of campaign {header.campaign}, not an "
                             "exercise; make an exercise plan with 'crisiscomms plan PLAYBOOK --notice ID --exercise'")
        summary = PlanSummary.from_json(header.summary)
        holder = this_holder(os.environ, plan=header.id)
        with CampaignLease(ledger, location, header.campaign, holder, join=options["join"]) as lease:
            print_plan_header(header, summary, console, ledger=location.shown(), samples=False)
            from .campaign.frozen import Snapshot

            frozen_playbook = Playbook.model_validate(Snapshot.from_json(ledger.plan_snapshot(header.id)).playbook)
            require_credentials(header.channels, frozen_playbook, os.environ)
            send_options = SendOptions(dispatch=_dispatch_settings(frozen_playbook, options),
                                       resend_uncertain=options["resend_uncertain"], text_choice=choice,
                                       status_callback=options["status_callback"])
            run = PlanSend(ledger, header, summary, holder, send_options,
                           taken_over=lease.grant.taken_over if lease.grant else None, senders=lease.senders)
            if options["join"]:
                print_joined(ledger.leases(), lease, console)
            _confirm_and_execute(run, console, yes=options["yes"], json_output=json_output, ledger=location.shown())


def _confirm_and_execute(run: PlanSend, console: Console, *, yes: bool, json_output: bool, ledger: str) -> None:
    import asyncio
    import contextlib
    import signal

    from .cli import _first_stop_then_hard
    from .console import confirm_send, print_send_outcome
    from .console_campaign import print_preparation
    from .errors import UsageError
    from .progress import SendProgress

    preparation = run.prepare()
    print_preparation(preparation, console)
    if preparation.to_send + preparation.to_reconcile == 0 and not _has_files(preparation):
        console.print("Nothing to send now.")
    elif not yes and preparation.to_send + preparation.to_reconcile > 0:
        if not _cli_module._stdin_is_terminal():
            raise UsageError("refusing to send without a confirmation: run it in a terminal, or add --yes")
        if not confirm_send(preparation, console, lambda prompt: click.prompt(prompt, default="", show_default=False)):
            console.print("Not confirmed. Nothing was sent.")
            raise SystemExit(ExitCode.FAILED)

    async def go() -> SendOutcome:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, _first_stop_then_hard, stop, loop)
        with SendProgress(preparation) as progress:  # on stderr: bars in a terminal, else plain lines
            return await run.execute(preparation, on_progress=progress, stop=stop)

    outcome = asyncio.run(go())
    print_send_outcome(outcome, console)
    if json_output:
        click.echo(json.dumps({**outcome.as_dict(), "ledger": ledger}, ensure_ascii=False))
    if outcome.dispatch.aborted is not None:
        raise outcome.dispatch.aborted
    if outcome.dispatch.interrupted:
        raise SystemExit(ExitCode.INTERRUPTED)
    if not outcome.complete or outcome.permanent_failures:
        raise SystemExit(ExitCode.FAILED)


def _has_files(preparation: Preparation) -> bool:
    return any(c in ("banner", "cap") and d == "send" for (c, d) in preparation.decisions)


# -- plumbing ----------------------------------------------------------------------------------------------------


def _require(options: dict[str, Any], key: str, flag: str) -> None:
    if not options.get(key):
        raise click.UsageError(f"Missing option '{flag}'.")


def _require_audience_or_exercise(options: dict[str, Any]) -> None:
    """A plan is made for ``--audience FILE`` or, with ``--exercise``, for the playbook's exercise recipients."""
    if not options["exercise"]:
        _require(options, "audience", "--audience")
        return
    excluded = {"--audience": ("audience", "an exercise reaches only the playbook's exercise.recipients"),
                "--where": ("where", "an exercise reaches everyone who takes part"),
                "--banner-out": ("banner_out", "an exercise writes the banner to exercise.banner_path only")}
    for flag, (key, why) in excluded.items():
        if options[key]:
            raise click.UsageError(f"--exercise and {flag} exclude each other: {why}.")


def _refuse_planning_options_with_plan(playbook: Path | None, options: dict[str, Any]) -> None:
    from .errors import UsageError

    planning = {"--notice": options["notice_id"], "--audience": options["audience"], "--at": options["at_text"],
                "--channels": options["channels"], "--suppress": options["suppress"],
                "--default-region": options["default_region"], "--banner-out": options["banner_out"],
                "--campaign": options["campaign"], "--ignore-quiet-hours": options["ignore_quiet_hours"],
                "--dry-run": options["dry_run"], "--skipped-out": options["skipped_out"], "--where": options["where"],
                "--wait": options["waits"], "--jobs": options["jobs"]}
    given = [flag for flag, value in planning.items() if value]
    if playbook is not None:
        given.insert(0, "PLAYBOOK")
    if given:
        raise UsageError(f"--plan sends a frozen plan as it was planned; {', '.join(given)} cannot change it "
                         "(make a new plan with 'crisiscomms plan' instead)")


def _console(json_output: bool) -> Console:
    from rich.console import Console

    return Console(stderr=json_output, highlight=False)  # with --format json, stdout carries only the JSON


def _location(option: str | None, session: NoticeSession | None) -> LedgerLocation:
    from .ledger import resolve_location

    if session is None:
        return resolve_location(option, os.environ)
    return resolve_location(option, os.environ, playbook_ledger=session.playbook.providers.ledger,
                            playbook_dir=session.base_dir)


def _open(location: LedgerLocation, console: Console) -> Ledger:
    from .campaign.ledgers import open_campaign_ledger

    ledger, notes = open_campaign_ledger(location)
    console.print(f"Ledger: {location.shown()} (from {location.source})", markup=False, highlight=False, soft_wrap=True)
    for note in notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    return ledger


@contextlib.contextmanager
def _closing(ledger: Ledger) -> Iterator[Ledger]:
    """Close the ledger after a send; when the send failed because the ledger stopped answering, closing it
    cannot succeed either, and the send's own error (with the resume command) is the one to show."""
    try:
        yield ledger
    except BaseException:
        with contextlib.suppress(LedgerError):
            ledger.close()
        raise
    ledger.close()


def _open_existing(location: LedgerLocation) -> Ledger:
    from .ledger import open_ledger

    return open_ledger(location, create=False)


def _planning(playbook: Path, options: dict[str, Any], *, dry_run: bool) -> tuple[NoticeSession, PlanRequest,
                                                                                      LedgerLocation]:
    from .campaign.ledgers import stop_numbers_without_writing
    from .plan import PlanRequest
    from .processes import can_fork
    from .session import open_notice, parse_moment

    if (options["jobs"] or 1) > 1 and not can_fork():
        click.echo(f"--jobs {options['jobs']}: worker processes need fork (Linux); planning in one process.", err=True)
    session = open_notice(playbook, options["notice_id"])
    if options.get("status_callback"):
        from .campaign.send import with_status_callback

        with_status_callback(session.playbook, options["status_callback"], str(session.loaded.path))  # checks it
    location = _location(options["ledger_option"], session)
    from .ledger import check_ledger_path

    check_ledger_path(location.path)  # a ledger that can never be a file is bad input, also for a dry run
    at = parse_moment(options["at_text"], session.playbook.organisation.timezone)
    from .durations import parse_wait_options

    request = PlanRequest(audience=options["audience"], at=at, channels=options["channels"],
                          ignore_quiet_hours=options["ignore_quiet_hours"], default_region=options["default_region"],
                          suppress=options["suppress"], banner_out=options["banner_out"], campaign=options["campaign"],
                          stopped=stop_numbers_without_writing(location), where=options["where"],
                          waits=parse_wait_options(options["waits"], list(session.playbook.routes)),
                          exercise=options["exercise"], jobs=options["jobs"])
    return session, request, location


def _freeze(session: NoticeSession, request: PlanRequest, ledger: Ledger, skipped_out: Path | None, *,
            rehearsal: bool) -> Any:
    from .campaign.dry_run import skipped_writer
    from .campaign.frozen import freeze
    from .campaign.identity import operator
    from .plan import Planner

    planner = Planner(session, request)
    with skipped_writer(skipped_out) as skipped:
        return freeze(planner, ledger, planned_by=operator(os.environ),
                      approval_required=session.playbook.approval_required(session.notice_id), on_skip=skipped.write,
                      rehearsal=rehearsal)


def _dispatch_settings(playbook: Playbook, options: dict[str, Any]) -> DispatchSettings:
    from .dispatch import DispatchSettings

    sms, email, voice = playbook.providers.sms, playbook.providers.email, playbook.providers.voice
    rates: dict[str, float | None] = {"sms": options["sms_rate"] or (sms.rate if sms else None),
                                      "email": options["email_rate"] or (email.rate if email else None),
                                      "voice": options["call_rate"] or (voice.rate if voice else None)}
    settings = DispatchSettings(rates=rates)
    if options["concurrency"]:
        settings = DispatchSettings(concurrency=dict.fromkeys(settings.concurrency, options["concurrency"]),
                                    rates=rates)
    if options.get("email_batch_size"):  # escalate has no such option: the channel's own limit applies
        settings.batch_sizes["email"] = options["email_batch_size"]
    return settings

