"""The site-banner channel: writes the banner document to a file, atomically.

A page polling the file must never read half of it: the document is written
to a temporary file in the same folder, flushed and fsynced, then renamed
over the old one (an atomic replace on POSIX and Windows), and the folder is
fsynced so the rename survives a crash.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..playbook import Playbook
from .base import ChannelContext, Message, Outcome, SendResult


def write_atomically(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` with ``document`` as JSON; readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


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
