"""``crisiscomms send``: plan, then (unless it is a dry run) dispatch and record.

A dry run is this pipeline with nothing dispatched: the same planner, the same
renders, the same counts. It opens no connection and writes no ledger.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from .errors import InputError
from .plan import PlanItem, Planner, PlanSummary, SkippedMessage, summary_for

SKIPPED_COLUMNS = ("line", "id", "channel", "reason", "detail")


class SkippedWriter:
    """Writes every skip as a CSV row, for follow-up by the contact centre."""

    def __init__(self, stream: TextIO | None) -> None:
        self._writer = csv.writer(stream) if stream is not None else None
        if self._writer is not None:
            self._writer.writerow(SKIPPED_COLUMNS)

    def write(self, item: SkippedMessage) -> None:
        if self._writer is not None:
            self._writer.writerow((item.line, item.recipient_id, item.channel, item.reason.value, item.detail))


@contextmanager
def skipped_writer(path: Path | None) -> Iterator[SkippedWriter]:
    if path is None:
        yield SkippedWriter(None)
        return
    try:
        stream = path.open("w", encoding="utf-8", newline="")
    except OSError as error:
        raise InputError(f"cannot write --skipped-out {path}: {error.strerror}") from None
    with stream:
        yield SkippedWriter(stream)


def plan_all(planner: Planner, skipped_out: Path | None) -> PlanSummary:
    """Stream the whole plan into a summary (and the skipped CSV); nothing is sent."""
    summary = summary_for(planner)
    with skipped_writer(skipped_out) as skipped:
        for item in planner.items():
            _account(summary, skipped, item)
    return summary


def _account(summary: PlanSummary, skipped: SkippedWriter, item: PlanItem) -> None:
    summary.add(item)
    if isinstance(item, SkippedMessage):
        skipped.write(item)
