"""Text from input files shown on a terminal: control characters made visible."""

from __future__ import annotations

_CONTROL = [c for c in range(32) if c not in (9, 10)] + [127]
_VISIBLE = {c: f"\\x{c:02x}" for c in _CONTROL}


def visible(text: str) -> str:
    """An escape sequence hidden in an audience header must not reach the operator's terminal: ``\\x1b``."""
    return text.translate(_VISIBLE)
