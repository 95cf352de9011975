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
            click.echo(_validation_summary(len(report.results), report.error_count, report.warning_count,
                                           strict=strict))
    if not report.passed(strict=strict):
        raise SystemExit(ExitCode.FAILED)


def _validation_summary(playbooks: int, errors: int, warnings: int, *, strict: bool = False) -> str:
    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    if errors:
        verdict = "NOT valid"
    elif strict and warnings:
        verdict = "NOT valid (--strict fails on warnings)"
    else:
        verdict = "valid"
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


def _where_list(_: click.Context, __: click.Parameter, value: tuple[str, ...]
                ) -> tuple[tuple[str, tuple[str, ...]], ...]:
    from .targeting import parse_where

    return tuple(parse_where(text) for text in value)  # a UsageError (exit 2) names the bad one


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

        print_preview(result, Console(highlight=False))
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
        print_preview(result, Console(file=buffer, width=100, no_color=True, highlight=False))
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


@banner.command("publish")
@click.argument("playbook", type=click.Path(path_type=Path))
@click.option("--notice", "notice_id", required=True, help="Id of the notice whose banner to publish.")
@click.option("--banner-out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the banner JSON here instead of the playbook's providers.banner.path.")
@click.option("--at", "at_text", metavar="TIME", help="Issue it as of this ISO 8601 time (default: now).")
def banner_publish(playbook: Path, notice_id: str, banner_out: Path | None, at_text: str | None) -> None:
    """Put a notice's banner on the website, without sending to anyone.

    Replaces the banner JSON atomically: a page reads the old or the new notice, never half.

    \b
    Example:
      crisiscomms banner publish playbooks/nordvind-storm.yaml --notice storm-outage
    """
    from .banner_life import publish_banner
    from .formatting import describe_moment
    from .safetext import visible
    from .session import open_notice, parse_moment

    session = open_notice(playbook, notice_id)
    zone = session.playbook.organisation.timezone
    written = publish_banner(session, parse_moment(at_text, zone), banner_out)
    if written.withdrawn:
        click.echo(visible(f"Withdrew the banner (notice '{notice_id}' is the all-clear): {written.path} now "
                           "says there is no notice."))
        return
    expiry = f"; it stops showing {describe_moment(written.expires, zone)}" if written.expires else ""
    click.echo(visible(f"Published notice '{notice_id}' ({session.notice.severity}) to {written.path}{expiry}."))


@banner.command("withdraw")
@click.argument("playbook", type=click.Path(path_type=Path))
@click.option("--banner-out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the banner JSON here instead of the playbook's providers.banner.path.")
@click.option("--at", "at_text", metavar="TIME", help="Withdraw as of this ISO 8601 time (default: now).")
def banner_withdraw(playbook: Path, banner_out: Path | None, at_text: str | None) -> None:
    """Take the banner off the website: the widget shows nothing from the next page view.

    Writes a valid "no notice" document (docs/banner.schema.json), atomically.

    \b
    Example:
      crisiscomms banner withdraw playbooks/nordvind-storm.yaml
    """
    from .banner_life import withdraw_banner
    from .loader import load_playbook
    from .safetext import visible
    from .session import parse_moment

    loaded = load_playbook(playbook)
    at = parse_moment(at_text, loaded.require().organisation.timezone)
    written = withdraw_banner(loaded, at, banner_out)
    click.echo(visible(f"Withdrew the banner: {written.path} now says there is no notice."))


@cli.command("cap")
@click.argument("playbook", type=click.Path(path_type=Path))
@click.option("--notice", "notice_id", required=True, help="Id of the notice to publish.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the alert here, atomically (default: the playbook's providers.cap.path — with --exercise "
                   "exercise.cap_path — else stdout).")
@click.option("--previous", type=click.Path(path_type=Path, dir_okay=False),
              help="The earlier CAP alert this one updates or cancels (default: the file --out replaces).")
@click.option("--at", "at_text", metavar="TIME", help="Issue time, ISO 8601 (default: now).")
@click.option("--exercise", is_flag=True,
              help="status Exercise, every text marked (ÖVNING: …): a rehearsal, not a real event.")
def cap_command(playbook: Path, notice_id: str, out: Path | None, previous: Path | None, at_text: str | None,
                exercise: bool) -> None:
    """Write a notice as an OASIS CAP 1.2 alert, one <info> per language.

    An all-clear notice (clears: ID) becomes a Cancel of the earlier alert, a
    notice issued again an Update of its earlier alert.

    \b
    Example:
      crisiscomms cap playbooks/nordvind-storm.yaml --notice storm-outage --out site/cap/storm.xml
    """
    from .cap import alert_for_notice, default_cap_path, write_cap_alert
    from .render import NoticeRenderer
    from .session import open_notice, parse_moment

    session = open_notice(playbook, notice_id)
    at = parse_moment(at_text, session.playbook.organisation.timezone)
    renderer = NoticeRenderer.for_playbook(session.playbook, session.base_dir, notice_id, at, exercise=exercise)
    target = out or default_cap_path(session.playbook, session.base_dir)
    if exercise:
        from .exercise import exercise_cap_target

        target = exercise_cap_target(session.playbook, session.base_dir, out)
    alert = alert_for_notice(renderer, target, previous)
    if target is None:
        click.echo(alert.xml.decode("utf-8"), nl=False)
        return
    write_cap_alert(alert, target)
    from .safetext import visible

    click.echo(visible(f"CAP 1.2 {alert.msg_type} ({alert.status}) {alert.identifier} written to {target}"), err=True)


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
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a traceback may hold addresses
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(traceback.format_exc())
    return str(path)


from . import cli_campaign, cli_delivery, cli_report  # noqa: E402  (they register plan, send, report, receipts)

__all__ = ["cli", "cli_campaign", "cli_delivery", "cli_report", "main"]
