"""Rich views of library results for the terminal (used only by the CLI)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .plan import PlanSummary
from .preview import Preview
from .render import BannerContent, EmailContent, SmsContent


def print_preview(preview: Preview, console: Console) -> None:
    console.print(Text(f"{preview.organisation} — notice '{preview.notice_id}' ({preview.severity}), "
                       f"as of {preview.at.isoformat(timespec='minutes')}", style="bold"))
    for locale_preview in preview.locales:
        parts: list[Table | Text] = []
        for channel, content in locale_preview.contents.items():
            parts.append(Text(channel.upper(), style="bold cyan"))
            parts.append(_content_table(content))
        console.print(Panel(Group(*parts), title=f"[bold]{locale_preview.locale}[/]", expand=True))


def _content_table(content: SmsContent | EmailContent | BannerContent) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    if isinstance(content, SmsContent):
        fit = content.fit
        table.add_row("fit", f"{fit.encoding.value}, {fit.characters} characters, {fit.segments} segment(s)"
                      + (f"; UCS-2 because of {' '.join(fit.non_gsm_characters)}" if fit.non_gsm_characters else ""))
        table.add_row("text", Text(content.text))
    elif isinstance(content, EmailContent):
        table.add_row("subject", Text(content.subject))
        table.add_row("text", Text(content.text.rstrip()))
    else:
        table.add_row("title", Text(content.title))
        table.add_row("body", Text(content.body))
    return table


def print_plan_summary(summary: PlanSummary, console: Console, *, dry_run: bool, at: str) -> None:
    """What the plan will do: counts, skips, deferrals, cost, samples, the banner path."""
    if dry_run:
        console.print(Text("DRY RUN — nothing is sent, no ledger is written.", style="bold yellow"))
    console.print(f"Notice [bold]{summary.notice}[/], campaign [bold]{summary.campaign}[/], as of {at}")
    console.print(_planned_table(summary))
    if summary.skipped:
        console.print(_skipped_table(summary))
    else:
        console.print("Skipped: none")
    if summary.deferred["sms"]:
        first, last = summary.deferred_until
        console.print(f"Deferred by quiet hours: {summary.deferred['sms']} SMS, to be sent between "
                      f"{first.isoformat(timespec='minutes')} and {last.isoformat(timespec='minutes')} "
                      "(recipients' local time); rerun the same command then to send them.")
    if "sms" in summary.channels:
        console.print(_cost_line(summary))
    for problem in summary.suppression_problems:
        console.print(f"[yellow]warning:[/] suppression list: {problem}")
    _print_samples(summary, console)
    if summary.banner_path is not None:
        verb = "would be written" if dry_run else "will be written"
        console.print(f"Banner {verb} to {summary.banner_path}")


def _planned_table(summary: PlanSummary) -> Table:
    people = [c for c in summary.channels if c != "banner"]
    table = Table(title="Planned messages", title_justify="left")
    table.add_column("locale")
    for channel in people:
        table.add_column(channel, justify="right")
    for locale, counts in sorted(summary.locales.items()):
        if any(counts[c] for c in people):
            table.add_row(locale, *(f"{counts[c]:,}" for c in people))
    table.add_row("[bold]total[/]", *(f"[bold]{summary.planned[c]:,}[/]" for c in people))
    return table


def _skipped_table(summary: PlanSummary) -> Table:
    table = Table(title="Skipped", title_justify="left")
    table.add_column("reason")
    table.add_column("messages", justify="right")
    for reason, count in sorted(summary.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(reason, f"{count:,}")
    return table


def _cost_line(summary: PlanSummary) -> str:
    line = f"SMS segments: {summary.sms_segments:,}"
    if summary.prices:
        line += f"; estimated cost {summary.cost:,.2f} {summary.currency}"
        if summary.unpriced_segments:
            line += f" (+ {summary.unpriced_segments:,} segments to countries without a price in the playbook)"
    return line


def _print_samples(summary: PlanSummary, console: Console) -> None:
    for (locale, channel), content in sorted(summary.samples.items()):
        if channel == "banner" or isinstance(content, dict):
            continue
        console.print(Panel(_content_table(content), title=f"sample: {channel} · {locale}", title_align="left"))
