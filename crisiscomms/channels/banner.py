"""The site-banner channel: writes the banner document to a file, atomically.

A page polling the file must never read half of it: the document is
replaced atomically (:func:`crisiscomms.atomicfile.replace_file`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..atomicfile import replace_file
from ..playbook import Playbook
from .base import ChannelContext, Message, Outcome, SendResult


def write_atomically(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` with ``document`` as JSON; readers see the old or the new file, never a mix."""
    replace_file(path, json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n")


class BannerFile:
    """The banner "provider": the message's address is the output path, its body the document."""

    name: ClassVar[str] = "banner"
    max_batch: ClassVar[int] = 1

    async def send(self, batch: Sequence[Message]) -> list[SendResult]:
        results = []
        for message in batch:
            try:
                write_atomically(Path(message.address), message.body)
            except OSError as error:
                results.append(SendResult(Outcome.REJECTED, code="write_failed",
                                          reason=f"cannot write {message.address}: {error.strerror}"))
            else:
                results.append(SendResult(Outcome.ACCEPTED, provider_id=f"file:{message.address}"))
        return results

    async def find_sent(self, message: Message, since: dt.datetime) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


def required_environment(playbook: Playbook) -> dict[str, str]:
    """The banner is a file: it needs no credentials."""
    return {}


def create(context: ChannelContext) -> BannerFile:
    return BannerFile()
