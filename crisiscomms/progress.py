"""Progress of a send, per channel: Rich bars in a terminal, plain lines for cron and logs.

Progress always goes to stderr (stdout carries the summary, or the JSON). When
stderr is a terminal it is a Rich progress bar per channel; otherwise (cron, a
pipe, a log file) a plain line at least every :data:`PLAIN_EVERY_SECONDS`
names, per channel, done/total, the rate, the problems so far and the ETA, so
that whoever reads the log of a long send sees it move.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from types import TracebackType

from rich.console import Console
from rich.progress import TaskID

from .campaign.send import Preparation
from .ledger.base import Decision

PLAIN_EVERY_SECONDS = 5.0


def channel_totals(preparation: Preparation) -> Counter[str]:
    """Requests each channel will make: the messages to send and the uncertain ones to check first."""
    totals: Counter[str] = Counter()
    for (channel, decision), count in preparation.decisions.items():
        if decision == Decision.SEND.value:
            totals[channel] += count
    if preparation.uncertain_sms:
        totals["sms"] += preparation.uncertain_sms
    if preparation.uncertain_calls:
        totals["voice"] += preparation.uncertain_calls
    return totals


class _Tally:
    """What has happened per channel so far (fed from the event loop, read by the views)."""

    def __init__(self, totals: Counter[str]) -> None:
        self.totals = totals
        self.done: Counter[str] = Counter()
        self.problems: Counter[tuple[str, str]] = Counter()
        self.started = time.monotonic()

    def add(self, channel: str, state: str, count: int) -> None:
        self.done[channel] += count
        if state != "accepted":
            self.problems[(channel, state)] += count

    def rate(self, channel: str) -> float:
        return self.done[channel] / max(time.monotonic() - self.started, 1e-6)

    def problems_of(self, channel: str) -> str:
        return ", ".join(f"{n:,} {state}" for (c, state), n in sorted(self.problems.items()) if c == channel)

    def channels(self) -> list[str]:
        return list(dict.fromkeys([*self.totals, *self.done]))

    def plain_line(self) -> str:
        return "progress: " + "; ".join(self._plain_channel(channel) for channel in self.channels())

    def _plain_channel(self, channel: str) -> str:
        done, total, rate = self.done[channel], self.totals.get(channel, 0), self.rate(channel)
        parts = [f"{channel} {done:,}/{total:,}" if total else f"{channel} {done:,}"]
        if total:
            parts[0] += f" ({100 * done // total}%)"
        parts.append(f"{rate:,.0f}/s")
        problems = self.problems_of(channel)
        if problems:
            parts.append(problems)
        if total and done >= total:
            parts.append("done")
        elif total and rate > 0:
            parts.append(f"ETA {_duration((total - done) / rate)}")
        return ", ".join(parts)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class SendProgress:
    """The progress view a send reports to (the dispatcher's callback): Rich bars or plain lines."""

    def __init__(self, preparation: Preparation, console: Console | None = None, *,
                 every: float = PLAIN_EVERY_SECONDS) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.tally = _Tally(channel_totals(preparation))
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bars = _Bars(self.console, self.tally) if self.console.is_terminal else None

    def __enter__(self) -> SendProgress:
        if self._bars is not None:
            self._bars.start()
        else:
            self._thread = threading.Thread(target=self._plain_lines, name="crisiscomms-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._bars is not None:
            self._bars.stop()
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every)
        self._print_plain()

    def __call__(self, channel: str, state: str, count: int) -> None:
        self.tally.add(channel, state, count)
        if self._bars is not None:
            self._bars.update(channel, count)

    def _plain_lines(self) -> None:
        while not self._stop.wait(self.every):
            self._print_plain()

    def _print_plain(self) -> None:
        if self.tally.channels():
            self.console.print(self.tally.plain_line(), markup=False, highlight=False, soft_wrap=True)


class _Bars:
    """Rich progress bars per channel, with rate, problems, elapsed time and ETA."""

    def __init__(self, console: Console, tally: _Tally) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.tally = tally
        self.progress = Progress(
            TextColumn("{task.description:>6}", markup=False), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[rate]:>8}/s"), TextColumn("{task.fields[problems]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)
        self.tasks = {channel: self._add(channel, total) for channel, total in tally.totals.items()}

    def _add(self, channel: str, total: int | None) -> TaskID:
        return self.progress.add_task(channel, total=total or None, rate="", problems="")

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def update(self, channel: str, count: int) -> None:
        task = self.tasks.get(channel)
        if task is None:
            task = self.tasks[channel] = self._add(channel, None)
        self.progress.update(task, advance=count, rate=f"{self.tally.rate(channel):,.0f}",
                             problems=self.tally.problems_of(channel))
