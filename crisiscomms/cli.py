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
from typing import NoReturn

import click

from . import __version__
from .errors import CrisisCommsError, ExitCode, NotAvailableYet

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


def _channel_list(_: click.Context, __: click.Parameter, value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@cli.command()
@click.argument("playbook", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--notice", "notice_id", required=True, help="Id of the notice to send.")
@click.option("--audience", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="CSV or JSON Lines file of recipients.")
@click.option("--dry-run", is_flag=True, help="Plan and preview everything; send nothing, write no ledger.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--channels", callback=_channel_list, metavar="LIST",
              help="Only these of the notice's channels, e.g. sms,email.")
@click.option("--at", "at_text", metavar="TIME", help="Plan as if it were this ISO 8601 time (rehearsals).")
@click.option("--ignore-quiet-hours", is_flag=True, help="Send non-critical SMS during quiet hours too.")
@click.option("--default-region", metavar="CC", help="Region for national phone numbers (default: the playbook's).")
@click.option("--suppress", "suppress", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Opt-out list (phone or e-mail per line, or CSV); repeatable.")
@click.option("--skipped-out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write every skipped message (line, id, channel, reason) to this CSV.")
@click.option("--banner-out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the banner JSON here instead of the playbook's path.")
@click.option("--campaign", metavar="NAME", help="Campaign name in the ledger (default: notice id + content hash).")
def send(playbook: Path, notice_id: str, audience: Path, dry_run: bool, output_format: str,
         channels: tuple[str, ...], at_text: str | None, ignore_quiet_hours: bool, default_region: str | None,
         suppress: tuple[Path, ...], skipped_out: Path | None, banner_out: Path | None,
         campaign: str | None) -> None:
    """Send a notice to an audience (SMS, email, site banner).

    \b
    Example:
      crisiscomms send playbooks/nordvind-storm.yaml --notice storm-outage \\
          --audience examples/customers.csv --dry-run
    """
    from .plan import Planner, PlanRequest
    from .sending import plan_all
    from .session import open_notice, parse_moment

    session = open_notice(playbook, notice_id)
    at = parse_moment(at_text, session.playbook.organisation.timezone)
    request = PlanRequest(audience=audience, at=at, channels=channels, ignore_quiet_hours=ignore_quiet_hours,
                          default_region=default_region, suppress=suppress, banner_out=banner_out,
                          campaign=campaign)
    planner = Planner(session, request)
    if not dry_run:
        raise NotAvailableYet("sending is not available yet in this version; use --dry-run to plan and preview")
    summary = plan_all(planner, skipped_out)
    if output_format == "json":
        click.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
        return
    from rich.console import Console

    from .console import print_plan_summary

    print_plan_summary(summary, Console(), dry_run=True, at=at.isoformat(timespec="minutes"))


@cli.command()
@click.argument("playbook", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--notice", "notice_id", required=True, help="Id of the notice to show.")
@click.option("--locale", "locales", multiple=True, help="Only these locales (repeatable); default: all.")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "html"]), default="text",
              show_default=True, help="text for the terminal, json for tools, html for a page to approve.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write to this file, not stdout.")
@click.option("--at", "at_text", metavar="TIME", help="Render as of this ISO 8601 time (default: now).")
def preview(playbook: Path, notice_id: str, locales: tuple[str, ...], output_format: str, out: Path | None,
            at_text: str | None) -> None:
    """Show a notice as each reader will see it, in every language.

    \b
    Example:
      crisiscomms preview playbooks/nordvind-storm.yaml --notice storm-outage --format html --out preview.html
    """
    from .preview import build_preview, preview_html
    from .session import choose_locales, open_notice, parse_moment

    session = open_notice(playbook, notice_id)
    at = parse_moment(at_text, session.playbook.organisation.timezone)
    result = build_preview(session, choose_locales(session.playbook, locales), at)
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


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def report(args: tuple[str, ...]) -> None:
    """Export per-recipient outcomes of a send from the ledger.

    \b
    Example:
      crisiscomms report --campaign storm-outage --format csv > outcomes.csv
    """
    raise NotAvailableYet("'crisiscomms report' is not available yet in this version")


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
    click.echo(f"crisiscomms: {message}", err=True)
    sys.exit(code)


def _write_traceback() -> str:
    directory = Path(os.environ.get("CRISISCOMMS_CRASH_DIR", tempfile.gettempdir()))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"crisiscomms-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    path.write_text(traceback.format_exc(), encoding="utf-8")
    return str(path)
