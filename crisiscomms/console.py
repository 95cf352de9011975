"""Rich views of library results for the terminal (used only by the CLI)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .campaign.send import Preparation, SendOutcome, next_steps
from .formatting import describe_span
from .plan import PlanSummary
from .preview import Preview
from .render import BannerContent, EmailContent, SmsContent, VoiceContent
from .report import DELIVERY_LAG, DeliveryCounts, ReportRow
from .safetext import visible


def literal(text: object, style: str = "") -> Text:
    """Text from a file, an option or a provider, exactly as it is: no markup, control characters visible."""
    return Text(visible(str(text)), style=style)


def line(*parts: str | tuple[str, str]) -> Text:
    """A line of plain pieces and ``(text, style)`` pieces, each printed literally."""
    result = Text()
    for part in parts:
        if isinstance(part, tuple):
            result.append(visible(part[0]), style=part[1])
        else:
            result.append(visible(part))
    return result


def print_preview(preview: Preview, console: Console) -> None:
    console.print(line((f"{preview.organisation} — notice '{preview.notice_id}' ({preview.severity}), "
                        f"as of {preview.at.isoformat(timespec='minutes')}", "bold")))
    for timing in preview.timing_lines():
        console.print(Text(timing, style="bold red" if timing.startswith("EXPIRED") else ""))
    if preview.withdraws_banner:
        console.print(line("Website banner: withdrawn by this all-clear; after the send the site shows no notice."))
    for locale_preview in preview.locales:
        parts: list[Table | Text] = []
        note = locale_preview.fallback_note()
        if note:
            parts.append(Text(note, style="yellow"))
        for channel, content in locale_preview.contents.items():
            parts.append(Text(channel.upper(), style="bold cyan"))
            parts.append(_content_table(content))
        console.print(Panel(Group(*parts), title=literal(locale_preview.locale, "bold"), expand=True))


def _content_table(content: SmsContent | EmailContent | BannerContent | VoiceContent) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    if isinstance(content, SmsContent):
        fit = content.fit
        table.add_row("fit", literal(f"{fit.encoding.value}, {fit.characters} characters, {fit.segments} segment(s)"
                      + (f"; UCS-2 because of {' '.join(fit.non_gsm_characters)}" if fit.non_gsm_characters else "")))
        table.add_row("text", literal(content.text))
    elif isinstance(content, EmailContent):
        table.add_row("subject", literal(content.subject))
        table.add_row("text", literal(content.text.rstrip()))
    elif isinstance(content, VoiceContent):
        table.add_row("said", literal(content.text))
    else:
        table.add_row("title", literal(content.title))
        table.add_row("body", literal(content.body))
    return table


#: How every view of an exercise plan starts, so nobody mistakes a rehearsal for the real send (or the reverse).
EXERCISE_BANNER = ("EXERCISE — only the playbook's exercise recipients are messaged, every message is marked as "
                   "an exercise; customers are not contacted.")


def deferred_words(deferred: Mapping[str, int]) -> str:
    """``2 SMS``, ``3 calls``, ``2 SMS and 3 calls``: what waits for the end of quiet hours."""
    parts = [f"{deferred.get('sms', 0):,} SMS"] if deferred.get("sms") else []
    calls = deferred.get("voice", 0)
    if calls:
        parts.append(f"{calls:,} call" + ("" if calls == 1 else "s"))
    return " and ".join(parts) or "0 messages"


def print_plan_summary(summary: PlanSummary, console: Console, *, dry_run: bool, at: str) -> None:
    """What the plan will do: counts, skips, deferrals, cost, samples, the banner path."""
    if dry_run:
        console.print(Text("DRY RUN — nothing is sent, no ledger is written.", style="bold yellow"))
    if summary.exercise:
        console.print(Text(EXERCISE_BANNER, style="bold magenta"), soft_wrap=True)
    console.print(line("Notice ", (summary.notice, "bold"), ", campaign ", (summary.campaign, "bold"), f", as of {at}"))
    if summary.targeting:
        console.print(line(f"Targeted: only rows where {summary.targeting}"))
    console.print(_planned_table(summary))
    _print_fallbacks(summary, console)
    if summary.skipped:
        console.print(_skipped_table(summary))
    else:
        console.print("Skipped: none")
    if summary.deferred["sms"] or summary.deferred["voice"]:
        first, last = summary.deferred_until
        console.print(line(f"Deferred by quiet hours: {deferred_words(summary.deferred)}, to be sent "
                           f"{describe_span(first, last, summary.timezone)} (when quiet hours end for each "
                           "recipient); rerun the same command then to send them."))
    if "sms" in summary.channels:
        console.print(line(_cost_line(summary)))
    for problem in summary.suppression_problems:
        console.print(line(("warning: ", "yellow"), f"suppression list: {problem}"))
    _print_samples(summary, console)
    if summary.banner_path is not None:
        verb = "would be written" if dry_run else "will be written"
        what = "Banner withdrawal (the site shows no notice)" if _withdraws_banner(summary) else "Banner"
        console.print(line(f"{what} {verb} to {summary.banner_path}"))
    for note in summary.notes:
        console.print(line(("note: ", "bold"), note), soft_wrap=True)


def _withdraws_banner(summary: PlanSummary) -> bool:
    return any(channel == "banner" and isinstance(content, dict) and content.get("notice", {}) is None
               for (_, channel), content in summary.samples.items())


def _print_fallbacks(summary: PlanSummary, console: Console) -> None:
    """Readers who get another language's text (organisation.locale_fallbacks, or the default locale)."""
    for reader, text, count in summary.fallbacks():
        console.print(Text(f"Fallback: {count:,} message{'' if count == 1 else 's'} to {reader} readers "
                           f"use the {text} text"))


def _planned_table(summary: PlanSummary) -> Table:
    people = [c for c in summary.channels if c != "banner"]
    table = Table(title="Planned messages", title_justify="left")
    table.add_column("locale")
    for channel in people:
        table.add_column(channel, justify="right")
    for locale, counts in sorted(summary.locales.items()):
        if any(counts[c] for c in people):
            table.add_row(literal(locale), *(f"{counts[c]:,}" for c in people))
    table.add_row(Text("total", style="bold"), *(Text(f"{summary.planned[c]:,}", style="bold") for c in people))
    return table


def _skipped_table(summary: PlanSummary) -> Table:
    table = Table(title="Skipped", title_justify="left")
    table.add_column("reason")
    table.add_column("messages", justify="right")
    for reason, count in sorted(summary.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(literal(reason), f"{count:,}")
        details = summary.skipped_details.get(reason, Counter())
        for detail, number in sorted(details.items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(literal(f"  {detail}", "dim"), Text(f"{number:,}", style="dim"))
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
        console.print(Panel(_content_table(content), title=literal(f"sample: {channel} · {locale}"),
                            title_align="left"))


def confirm_send(preparation: Preparation, console: Console, ask: Callable[[str], str]) -> bool:
    total = preparation.to_send + preparation.to_reconcile
    console.print(line((f"About to send {preparation.to_send:,} messages", "bold"),
                       (f" (+ up to {preparation.uncertain_sms:,} uncertain SMS after checking with Twilio)"
                        if preparation.uncertain_sms else "")
                       + (f" (+ up to {preparation.uncertain_calls:,} uncertain calls after checking with Twilio)"
                          if preparation.uncertain_calls else "") + "."))
    answer = ask(f"Type {total} to send them, anything else to stop: ").strip().replace(",", "")
    return answer == str(total)


def print_send_outcome(outcome: SendOutcome, console: Console) -> None:
    """The final table, per channel and locale, and what to do next."""
    states = ("accepted", "failed", "deferred", "uncertain", "pending")
    table = Table(title=literal(f"Campaign {outcome.campaign}"), title_justify="left")
    table.add_column("channel")
    table.add_column("locale")
    for state in states:
        table.add_column(state, justify="right")
    keys = sorted({(c, loc) for c, loc, _ in outcome.counts})
    for channel, locale in keys:
        table.add_row(literal(channel), literal(locale),
                      *(f"{outcome.counts.get((channel, locale, s), 0):,}" for s in states))
    console.print(table)
    for step in next_steps(outcome):
        console.print(line(f"• {step}"))


def print_report(campaign: str, rows: Iterable[ReportRow], console: Console) -> None:
    table = Table(title=literal(f"Campaign {campaign}"), title_justify="left")
    for column in ("id", "channel", "address", "locale", "status", "provider id", "error", "delivery", "time"):
        table.add_column(column)
    for row in rows:
        error = f"{row.error_code} {row.error}".strip()
        delivery = " ".join(part for part in (row.delivery, row.delivery_code) if part)
        table.add_row(*(literal(value) for value in (row.id, row.channel, row.address, row.locale, row.status,
                                                     row.provider_id, error, delivery, row.time)))
    console.print(table)


def print_delivery_summary(summary: Mapping[tuple[str, str], DeliveryCounts], console: Console) -> None:
    """Accepted vs delivered per channel and locale; delivery lags acceptance, said plainly."""
    table = Table(title="Delivery (from the providers' receipts)", title_justify="left")
    for column in ("channel", "locale", "accepted", "delivered", "undelivered/bounced", "no receipt yet",
                   "delivered %"):
        table.add_column(column, justify="left" if column in ("channel", "locale") else "right")
    for (channel, locale), counts in summary.items():
        share = counts.share_delivered
        table.add_row(literal(channel), literal(locale), f"{counts.accepted:,}", f"{counts.delivered:,}",
                      f"{counts.not_reached:,}", f"{counts.no_receipt:,}", f"{share:.0%}" if share is not None else "–")
    console.print(table)
    console.print(literal(DELIVERY_LAG), soft_wrap=True)
