"""The dry run (the planner streamed into a summary, nothing written but the skipped CSV) and that CSV."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from ..errors import InputError
from ..plan import Planner, PlanSummary, SkippedMessage, summary_for

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


def open_private(path: Path) -> TextIO:
    """A new text file only its owner can read (it holds phone numbers and e-mail addresses)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode otherwise
    return os.fdopen(descriptor, "w", encoding="utf-8", newline="")


@contextmanager
def skipped_writer(path: Path | None) -> Iterator[SkippedWriter]:
    if path is None:
        yield SkippedWriter(None)
        return
    try:
        stream = open_private(path)
    except OSError as error:
        raise InputError(f"cannot write --skipped-out {path}: {error.strerror}") from None
    with stream:
        yield SkippedWriter(stream)


def plan_all(planner: Planner, skipped_out: Path | None) -> PlanSummary:
    """Stream the whole plan into a summary (and the skipped CSV); nothing is sent, no ledger written."""
    summary = summary_for(planner)
    with skipped_writer(skipped_out) as skipped:
        for item in planner.items():
            summary.add(item)
            if isinstance(item, SkippedMessage):
                skipped.write(item)
    return summary
