"""Text from input files shown on a terminal: control characters made visible."""

from __future__ import annotations

# C0 controls (but tab and newline), DEL, the C1 controls (0x9b is a one-byte CSI on some terminals), and the
# bidirectional overrides and isolates that can make a terminal show text in another order than it is
# ("Trojan Source"): each is shown as its escape, e.g. \x1b or \u202e. Right-to-left text itself is untouched.
_CONTROL = [c for c in range(32) if c not in (9, 10)] + list(range(127, 160))
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_VISIBLE = {c: f"\\x{c:02x}" for c in _CONTROL} | {c: f"\\u{c:04x}" for c in _BIDI}


def visible(text: str) -> str:
    """An escape sequence hidden in an audience header must not reach the operator's terminal: ``\\x1b``."""
    return text.translate(_VISIBLE)
