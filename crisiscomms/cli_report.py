"""``crisiscomms report``: a campaign's per-recipient outcomes, and the result of an exercise.

Thin like :mod:`crisiscomms.cli_campaign` (whose ledger option and plumbing it shares): the rows come from
:mod:`crisiscomms.report`, an exercise's figures from :mod:`crisiscomms.exercise_report`, the views from
:mod:`crisiscomms.console_campaign`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .cli import cli
from .cli_campaign import _console, _location, _open_existing, ledger_option

if TYPE_CHECKING:
    from .ledger.base import Ledger


# -- report ------------------------------------------------------------------------------------------------------


@cli.command()
@ledger_option
@click.option("--campaign", help="Campaign to report (default: the newest).")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="json prints one object per line.")
@click.option("--unmasked", is_flag=True, help="Show full phone numbers and e-mail addresses.")
@click.option("--exercise", is_flag=True,
              help="The result of an exercise (default: the newest): per channel the time from the start to the "
                   "last accepted message, failures and deliveries.")
def report(ledger_option: str | None, campaign: str | None, output_format: str, unmasked: bool,
           exercise: bool) -> None:
    """Per-recipient outcomes of a campaign, its plans (who planned and approved them) and who is sending now.

    \b
    Example:
      crisiscomms report --campaign nordvind-energi/storm-outage --format csv > outcomes.csv
      crisiscomms report --exercise --format json          # the newest exercise's result
    """
    from .exercise_report import is_exercise
    from .report import as_csv, as_json_lines, choose_campaign, report_rows

    location = _location(ledger_option, None)
    ledger = _open_existing(location)
    try:
        if exercise:
            _report_exercise(ledger, campaign, output_format, location.shown())
            return
        chosen = choose_campaign(ledger, campaign)
        marked = is_exercise(ledger, chosen)
        rows = report_rows(ledger, chosen, unmasked=unmasked)
        if output_format != "table":
            click.echo(f"Ledger: {location.shown()}; campaign {chosen}" + (" (EXERCISE)" if marked else ""),
                       err=True)
        if output_format == "csv":
            for chunk in as_csv(rows):
                click.echo(chunk, nl=False)
        elif output_format == "json":
            for line in as_json_lines(chosen, rows):
                click.echo(line, nl=False)
        else:
            from .console import print_delivery_summary, print_report
            from .console_campaign import print_campaign_status
            from .report import delivery_summary

            console = _console(False)
            console.print(f"Ledger: {location.shown()} (from {location.source})", markup=False, highlight=False,
                          soft_wrap=True)
            print_campaign_status(ledger, chosen, console)
            if marked:
                from .console_campaign import print_exercise_report
                from .exercise_report import exercise_report

                print_exercise_report(exercise_report(ledger, chosen), console)
            print_report(chosen, rows, console)
            print_delivery_summary(delivery_summary(ledger.rows(chosen)), console)
    finally:
        ledger.close()


def _report_exercise(ledger: Ledger, campaign: str | None, output_format: str, shown: str) -> None:
    """``report --exercise``: the drill's result per channel, as a table, one JSON object or CSV."""
    from .exercise_report import as_csv, as_json, choose_exercise_campaign, exercise_report

    result = exercise_report(ledger, choose_exercise_campaign(ledger, campaign))
    if output_format == "json":
        click.echo(as_json(result), nl=False)
    elif output_format == "csv":
        click.echo(as_csv(result), nl=False)
    else:
        from .console_campaign import print_exercise_report

        console = _console(False)
        console.print(f"Ledger: {shown}", markup=False, highlight=False, soft_wrap=True)
        print_exercise_report(result, console)
