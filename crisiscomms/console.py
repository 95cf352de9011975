"""Rich views of library results for the terminal (used only by the CLI)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

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
