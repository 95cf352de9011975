"""The command-line layer: parse options, call the library, print.

Kept thin and quick to import: the library (pydantic, Babel, Jinja2, httpx,
the provider SDKs) is imported inside each command, so ``--help`` stays fast.
One handler, :func:`main`, turns every :class:`CrisisCommsError` into a
message and its documented exit code.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from . import __version__
from .errors import CrisisCommsError, ExitCode

if TYPE_CHECKING:
    import asyncio

    from .plan import Planner
    from .playbook import Playbook
    from .sending import SendOptions, SendOutcome

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="crisiscomms")
def cli() -> None:
    """Tell customers, fast and in their own language, how to reach you in a crisis.

    \b
    Typical use:
      crisiscomms validate playbooks/
      crisiscomms preview playbooks/storm.yaml --notice storm-outage --format html --out preview.html
      crisiscomms send playbooks/storm.yaml --notice storm-outage --audience customers.csv --dry-run
    """


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="text for people, json for tools, github for workflow annotations.")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
def validate(paths: tuple[Path, ...], output_format: str, strict: bool) -> None:
    """Check playbooks and their templates; exit 1 if any has an error.

    PATHS are playbook files or folders (default: playbooks/).

    \b
    Example:
      crisiscomms validate playbooks/ --format github --strict
    """
    from .validate import validate_paths

    report = validate_paths(list(paths) or [Path("playbooks")])
    if output_format == "json":
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        for diagnostic in report.diagnostics:
            click.echo(diagnostic.as_github() if output_format == "github" else diagnostic.as_text())
        if output_format == "text":
            click.echo(_validation_summary(len(report.results), report.error_count, report.warning_count))
    if not report.passed(strict=strict):
        raise SystemExit(ExitCode.FAILED)


def _validation_summary(playbooks: int, errors: int, warnings: int) -> str:
    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    verdict = "valid" if errors == 0 else "NOT valid"
    return f"{plural(playbooks, 'playbook')} checked: {plural(errors, 'error')}, " \
           f"{plural(warnings, 'warning')} — {verdict}"


@cli.command()
def schema() -> None:
    """Print the playbook JSON Schema (for editors and CI).

    \b
    Example:
      crisiscomms schema > playbook.schema.json
    """
    from .playbook import playbook_json_schema

    click.echo(json.dumps(playbook_json_schema(), indent=2, ensure_ascii=False))


def _finite(_: click.Context, parameter: click.Parameter, value: float | None) -> float | None:
    if value is not None and value != value:  # NaN passes every range check
        raise click.BadParameter("must be a number", param=parameter)
    return value


def _channel_list(_: click.Context, __: click.Parameter, value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@cli.command()
@click.argument("playbook", type=click.Path(path_type=Path))
@click.option("--notice", "notice_id", required=True, help="Id of the notice to send.")
@click.option("--audience", required=True, type=click.Path(path_type=Path),
              help="CSV or JSON Lines file of recipients.")
@click.option("--dry-run", is_flag=True, help="Plan and preview everything; send nothing, write no ledger.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--channels", callback=_channel_list, metavar="LIST",
              help="Only these of the notice's channels, e.g. sms,email.")
@click.option("--at", "at_text", metavar="TIME", help="Plan as if it were this ISO 8601 time (rehearsals).")
@click.option("--ignore-quiet-hours", is_flag=True, help="Send non-critical SMS during quiet hours too.")
@click.option("--default-region", metavar="CC", help="Region for national phone numbers (default: the playbook's).")
@click.option("--suppress", "suppress", multiple=True, type=click.Path(path_type=Path),
              help="Opt-out list (phone or e-mail per line, or CSV); repeatable.")
@click.option("--skipped-out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write every skipped message (line, id, channel, reason) to this CSV.")
@click.option("--banner-out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the banner JSON here instead of the playbook's path.")
@click.option("--campaign", metavar="NAME", help="Campaign name in the ledger (default: notice id + content hash).")
@click.option("--ledger", "ledger_path", type=click.Path(path_type=Path),
              default=Path(".crisiscomms/ledger.sqlite"), show_default=True, help="The send ledger (SQLite).")
@click.option("--concurrency", type=click.IntRange(1, 1000), help="Requests in flight per channel at most.")
@click.option("--sms-rate", type=click.FloatRange(min=0.1), callback=_finite,
              help="SMS per second at most (default: playbook).")
@click.option("--email-rate", type=click.FloatRange(min=0.1), callback=_finite,
              help="E-mail requests per second at most (default: playbook).")
@click.option("--resend-uncertain", is_flag=True, help="Send again e-mails that may have gone out already.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (automation).")
@click.option("--wait", "waits", multiple=True, metavar="ROUTE=DURATION",
              help="Expected wait on a route now, e.g. outage-line=25m (repeatable; overrides the playbook's).")
def send(playbook: Path, notice_id: str, audience: Path, dry_run: bool, output_format: str,
         channels: tuple[str, ...], at_text: str | None, ignore_quiet_hours: bool, default_region: str | None,
         suppress: tuple[Path, ...], skipped_out: Path | None, banner_out: Path | None,
         campaign: str | None, ledger_path: Path, concurrency: int | None, sms_rate: float | None,
         email_rate: float | None, resend_uncertain: bool, yes: bool, waits: tuple[str, ...]) -> None:
    """Send a notice to an audience (SMS, email, site banner).

    \b
    Example:
      crisiscomms send playbooks/nordvind-storm.yaml --notice storm-outage \\
          --audience examples/customers.csv --dry-run
    """
    from .durations import parse_wait_options
    from .ledger import check_ledger_path
    from .plan import Planner, PlanRequest
    from .sending import plan_all
    from .session import open_notice, parse_moment

    check_ledger_path(ledger_path)
    session = open_notice(playbook, notice_id)
    at = parse_moment(at_text, session.playbook.organisation.timezone)
    request = PlanRequest(audience=audience, at=at, channels=channels, ignore_quiet_hours=ignore_quiet_hours,
                          default_region=default_region, suppress=suppress, banner_out=banner_out,
                          campaign=campaign, stop_list=ledger_path.parent / "opted-out-sms.txt",
                          waits=parse_wait_options(waits, list(session.playbook.routes)))
    planner = Planner(session, request)
    if not dry_run:
        from .dispatch import DispatchSettings
        from .sending import SendOptions

        settings = DispatchSettings(rates=_rates(session.playbook, sms_rate, email_rate))
        if concurrency:
            settings = DispatchSettings(concurrency=dict.fromkeys(settings.concurrency, concurrency),
                                        rates=settings.rates)
        options = SendOptions(ledger=ledger_path, dispatch=settings, resend_uncertain=resend_uncertain)
        _send_for_real(planner, options, skipped_out, yes=yes, at=at.isoformat(timespec="minutes"),
                       json_summary=output_format == "json")
        return
    summary = plan_all(planner, skipped_out)
    if output_format == "json":
        click.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
        return
    from rich.console import Console

    from .console import print_plan_summary

    print_plan_summary(summary, Console(), dry_run=True, at=at.isoformat(timespec="minutes"))


def _rates(playbook: Playbook, sms_rate: float | None, email_rate: float | None) -> dict[str, float | None]:
    sms, email = playbook.providers.sms, playbook.providers.email
    return {"sms": sms_rate or (sms.rate if sms else None), "email": email_rate or (email.rate if email else None)}


def _send_for_real(planner: Planner, options: SendOptions, skipped_out: Path | None, *, yes: bool, at: str,
                   json_summary: bool) -> None:
    """Plan against the ledger, confirm, dispatch with progress, report; exit code by the outcome."""
    import asyncio
    import contextlib
    import signal

    from rich.console import Console

    from .console import SendProgress, confirm_send, print_plan_summary, print_preparation, print_send_outcome
    from .errors import UsageError
    from .sending import SendRun

    console = Console(stderr=json_summary)  # with --format json, stdout carries only the JSON summary
    run = SendRun(planner, options)
    try:
        preparation = run.prepare(skipped_out)
        print_plan_summary(preparation.summary, console, dry_run=False, at=at)
        print_preparation(preparation, console)
        if preparation.to_send + preparation.uncertain_sms == 0:
            console.print("Nothing to send now.")
        elif not yes:
            if not _stdin_is_terminal():
                raise UsageError("refusing to send without a confirmation: run it in a terminal, or add --yes")
            if not confirm_send(preparation, console, lambda prompt: click.prompt(prompt, default="",
                                                                               show_default=False)):
                console.print("Not confirmed. Nothing was sent.")
                raise SystemExit(ExitCode.FAILED)

        async def go() -> SendOutcome:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGINT, _first_stop_then_hard, stop, loop)
            with SendProgress(preparation, console) as progress:
                return await run.execute(on_progress=progress, stop=stop)

        outcome = asyncio.run(go())
    finally:
        run.close()
    print_send_outcome(outcome, console)
    if json_summary:
        click.echo(json.dumps(outcome.as_dict(), ensure_ascii=False))
    if outcome.dispatch.aborted is not None:
        raise outcome.dispatch.aborted
    if outcome.dispatch.interrupted:
        raise SystemExit(ExitCode.INTERRUPTED)
    if not outcome.complete or outcome.permanent_failures:
        raise SystemExit(ExitCode.FAILED)


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _first_stop_then_hard(stop: asyncio.Event, loop: asyncio.AbstractEventLoop) -> None:
    """First Ctrl-C: stop dispatching and settle what is in flight. Second: stop at once."""
    import signal

    if stop.is_set():
        loop.remove_signal_handler(signal.SIGINT)
        raise KeyboardInterrupt
    click.echo("\nStopping: finishing the requests in flight (Ctrl-C again to stop at once)...", err=True)
    stop.set()


@cli.command()
@click.argument("playbook", type=click.Path(path_type=Path))
@click.option("--notice", "notice_id", required=True, help="Id of the notice to show.")
@click.option("--locale", "locales", multiple=True, help="Only these locales (repeatable); default: all.")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "html"]), default="text",
              show_default=True, help="text for the terminal, json for tools, html for a page to approve.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write to this file, not stdout.")
@click.option("--at", "at_text", metavar="TIME", help="Render as of this ISO 8601 time (default: now).")
@click.option("--wait", "waits", multiple=True, metavar="ROUTE=DURATION",
              help="Expected wait on a route, as send --wait takes it, e.g. outage-line=25m (repeatable).")
def preview(playbook: Path, notice_id: str, locales: tuple[str, ...], output_format: str, out: Path | None,
            at_text: str | None, waits: tuple[str, ...]) -> None:
    """Show a notice as each reader will see it, in every language.

    \b
    Example:
      crisiscomms preview playbooks/nordvind-storm.yaml --notice storm-outage --format html --out preview.html
    """
    from .durations import parse_wait_options
    from .preview import build_preview, preview_html
    from .session import choose_locales, open_notice, parse_moment

    session = open_notice(playbook, notice_id)
    at = parse_moment(at_text, session.playbook.organisation.timezone)
    result = build_preview(session, choose_locales(session.playbook, locales), at,
                           waits=parse_wait_options(waits, list(session.playbook.routes)))
    if output_format == "text" and out is None:
        from rich.console import Console

        from .console import print_preview

        print_preview(result, Console())
        return
    if output_format == "json":
        text = json.dumps(result.as_dict(), indent=2, ensure_ascii=False) + "\n"
    elif output_format == "html":
        text = preview_html(result)
    else:
        from io import StringIO

        from rich.console import Console

        from .console import print_preview

        buffer = StringIO()
        print_preview(result, Console(file=buffer, width=100, no_color=True))
        text = buffer.getvalue()
    _write_output(text, out)


def _write_output(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
        return
    from .errors import InputError

    try:
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot write {out}: {error.strerror}") from None
    click.echo(f"Wrote {out}", err=True)


@cli.command()
@click.option("--ledger", "ledger_path", type=click.Path(path_type=Path),
              default=Path(".crisiscomms/ledger.sqlite"), show_default=True, help="The send ledger.")
@click.option("--campaign", help="Campaign to report (default: the newest).")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="json prints one object per line.")
@click.option("--unmasked", is_flag=True, help="Show full phone numbers and e-mail addresses.")
def report(ledger_path: Path, campaign: str | None, output_format: str, unmasked: bool) -> None:
    """Export per-recipient outcomes of a send from the ledger.

    \b
    Example:
      crisiscomms report --campaign storm-outage-fd32f93d --format csv > outcomes.csv
    """
    from .report import as_csv, as_json_lines, choose_campaign, open_report_ledger, report_rows

    ledger = open_report_ledger(ledger_path)
    try:
        chosen = choose_campaign(ledger, campaign)
        rows = report_rows(ledger, chosen, unmasked=unmasked)
        if output_format == "csv":
            for chunk in as_csv(rows):
                click.echo(chunk, nl=False)
        elif output_format == "json":
            for line in as_json_lines(chosen, rows):
                click.echo(line, nl=False)
        else:
            from rich.console import Console

            from .console import print_report

            print_report(chosen, rows, Console())
    finally:
        ledger.close()


@cli.group()
def banner() -> None:
    """Put the notice banner on a website: the embed code and the widget's files."""


@banner.command("snippet")
@click.argument("playbook", type=click.Path(path_type=Path))
@click.option("--banner-url", metavar="URL",
              help="Where the site serves the banner JSON (default: /<file name of providers.banner.path>).")
@click.option("--script-url", metavar="URL", default="/static/crisiscomms-banner.js", show_default=True,
              help="Where the site serves crisiscomms-banner.js (see 'banner assets').")
def banner_snippet(playbook: Path, banner_url: str | None, script_url: str) -> None:
    """Print the one-line embed code for a playbook's banner.

    \b
    Example:
      crisiscomms banner snippet playbooks/nordvind-storm.yaml --banner-url /crisis/banner.json
    """
    from .errors import UsageError
    from .loader import load_playbook
    from .widget import snippet

    settings = load_playbook(playbook).require().providers.banner
    if banner_url is None:
        if settings is None:
            raise UsageError(f"{playbook} has no 'providers: banner' section; give --banner-url")
        banner_url = "/" + Path(settings.path).name
    click.echo(snippet(banner_url, script_url).rstrip("\n"))


@banner.command("assets")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Folder to copy crisiscomms-banner.js and .css into.")
def banner_assets(out_dir: Path) -> None:
    """Copy the widget's script and stylesheet, for the website to serve.

    \b
    Example:
      crisiscomms banner assets --out site/static
    """
    import shutil

    from .errors import InputError
    from .widget import static_path

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in ("crisiscomms-banner.js", "crisiscomms-banner.css"):
            shutil.copyfile(static_path(name), out_dir / name)
    except OSError as error:
        raise InputError(f"cannot write to {out_dir}: {error.strerror}") from None
    click.echo(f"Copied crisiscomms-banner.js and crisiscomms-banner.css to {out_dir}")


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI; the one place that maps errors to messages and exit codes."""
    try:
        cli.main(args=argv, prog_name="crisiscomms", standalone_mode=False)
    except CrisisCommsError as error:
        _fail(str(error), error.exit_code)
    except click.exceptions.Abort:
        _fail("Interrupted.", ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        _fail("Interrupted.", ExitCode.INTERRUPTED)
    except click.ClickException as error:
        error.show()
        sys.exit(ExitCode.USAGE if isinstance(error, click.UsageError) else error.exit_code)
    except SystemExit:
        raise
    except Exception:
        _fail(f"internal error: {sys.exc_info()[1]!r}\nThe full traceback is in {_write_traceback()}; "
              "please attach it to a bug report.", ExitCode.INTERNAL)
    sys.exit(ExitCode.OK)


def _fail(message: str, code: int) -> NoReturn:
    from .safetext import visible

    click.echo(f"crisiscomms: {visible(message)}", err=True)
    sys.exit(code)



def _write_traceback() -> str:
    directory = Path(os.environ.get("CRISISCOMMS_CRASH_DIR", tempfile.gettempdir()))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"crisiscomms-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    path.write_text(traceback.format_exc(), encoding="utf-8")
    return str(path)
