"""Delivery channels and their registry.

The registry maps a channel name to ``module:Class``; modules are imported
only when a run uses them, so the CLI starts fast and a dry run never loads
the provider SDKs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Channel, ChannelContext

# name → "module:factory"; the factory takes a ChannelContext and returns a Channel.
REGISTRY: dict[str, str] = {
    "sms": "crisiscomms.channels.sms:create",
    "email": "crisiscomms.channels.email:create",
    "banner": "crisiscomms.channels.banner:create",
    "cap": "crisiscomms.channels.cap:create",
    "voice": "crisiscomms.channels.voice:create",
}


def create_channel(name: str, context: ChannelContext) -> Channel:
    """Import the channel's module (only now) and build it for this run."""
    module_name, _, factory = REGISTRY[name].partition(":")
    channel: Channel = getattr(importlib.import_module(module_name), factory)(context)
    return channel
