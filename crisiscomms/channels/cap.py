"""The ``cap`` channel: writes the notice's OASIS CAP 1.2 alert to a file, atomically, during a send.

The alert is built when the send is planned (:func:`crisiscomms.cap.planned_cap_document`);
the message's address is the output path, its body the planned document. A
feed or an aggregator polling the file sees the old alert or the new one,
never half of one (:func:`crisiscomms.atomicfile.replace_file`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from ..atomicfile import replace_file
from .base import ChannelContext, Message, Outcome, SendResult


class CapFile:
    name: ClassVar[str] = "cap"
    max_batch: ClassVar[int] = 1

    async def send(self, batch: Sequence[Message]) -> list[SendResult]:
        return [self._write(message) for message in batch]

    @staticmethod
    def _write(message: Message) -> SendResult:
        body = message.body
        if not isinstance(body, dict) or not isinstance(body.get("xml"), str):
            raise TypeError(f"a CAP message body must be a planned CAP document, not {type(body).__name__}")
        try:
            replace_file(Path(message.address), body["xml"].encode("utf-8"))
        except OSError as error:
            return SendResult(Outcome.REJECTED, code="write_failed",
                              reason=f"cannot write {message.address}: {error.strerror}")
        return SendResult(Outcome.ACCEPTED, provider_id=f"cap:{body.get('identifier', '')}")

    async def find_sent(self, message: Message, since: dt.datetime) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


def create(context: ChannelContext) -> CapFile:
    return CapFile()
