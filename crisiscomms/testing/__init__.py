"""Test support for crisiscomms: a local stand-in for Twilio and SendGrid.

The names below are imported lazily (on first use), so importing
:mod:`crisiscomms.testing` costs nothing until a test needs the stand-in.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .standin import (
        CallRecord,
        EmailRecord,
        SmsRecord,
        Standin,
        StandinConfig,
        run_standin,
        standin_in_thread,
    )

__all__ = [
    "CallRecord",
    "EmailRecord",
    "SmsRecord",
    "Standin",
    "StandinConfig",
    "run_standin",
    "standin_in_thread",
]


def __getattr__(name: str) -> Any:
    """Import the public names of :mod:`crisiscomms.testing.standin` on first use."""
    if name in __all__:
        return getattr(import_module(".standin", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
