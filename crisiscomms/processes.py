"""What the machine offers for work on several cores: whether processes can be forked, and how many cores."""

from __future__ import annotations

import multiprocessing
import os
import sys


def can_fork() -> bool:
    """True where worker processes can be forked (Linux and the BSDs; not macOS, where fork is unsafe)."""
    return "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
