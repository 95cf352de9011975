"""Is the process that holds a lease still there? Only answerable on its own host."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from .base import Holder


def this_host() -> str:
    return socket.gethostname()


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), so a reused pid is not mistaken for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def holder_is_gone(holder: Holder) -> bool:
    """True when the holder ran on this host and its process no longer exists (or is another process now)."""
    if holder.host != this_host():
        return False  # another machine: only its heartbeat can tell
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    if _is_zombie(holder.pid):
        return True  # killed, not yet reaped by its parent
    return bool(holder.process_start) and process_start(holder.pid) not in ("", holder.process_start)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] in ("Z", "X")
