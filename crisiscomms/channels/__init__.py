"""Delivery channels and their registry.

The registry maps a channel name to ``module:Class``; modules are imported
only when a run uses them, so the CLI starts fast and a dry run never loads
the provider SDKs.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ..errors import ProviderError

if TYPE_CHECKING:
    from ..playbook import Playbook
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


class MissingCredentials(ProviderError):
    """Environment variables a run's channels need are not set; ``names`` lists every one of them."""

    def __init__(self, names: list[str], needs: dict[str, str]) -> None:
        self.names = names
        listed = "; ".join(f"{', '.join(n for n in names if needs[n] == what)} ({what})"
                           for what in dict.fromkeys(needs[n] for n in names))
        super().__init__(f"missing credentials: {listed}. Export them and run again; nothing was sent "
                         "and the ledger was not changed.")


def credential_needs(channels: Iterable[str], playbook: Playbook) -> dict[str, str]:
    """Every environment variable the channels need, in order, with what it is for.

    Each channel module declares its own with ``required_environment(playbook)``
    (variable name → what it is); the module is imported only when its channel is asked about.
    """
    needs: dict[str, str] = {}
    for name in channels:
        module_name = REGISTRY[name].partition(":")[0]
        declare = getattr(importlib.import_module(module_name), "required_environment", None)
        if declare is not None:
            for variable, purpose in declare(playbook).items():
                needs.setdefault(variable, purpose)
    return needs


def missing_credentials(channels: Iterable[str], playbook: Playbook, environ: Mapping[str, str]) -> list[str]:
    """The names of every variable the channels need that ``environ`` lacks (empty or blank counts as unset)."""
    return [name for name in credential_needs(channels, playbook) if not (environ.get(name) or "").strip()]


def require_credentials(channels: Iterable[str], playbook: Playbook, environ: Mapping[str, str]) -> None:
    """Raise :class:`MissingCredentials` naming all missing variables at once, before anything is sent."""
    chosen = list(channels)
    missing = missing_credentials(chosen, playbook, environ)
    if missing:
        raise MissingCredentials(missing, credential_needs(chosen, playbook))
