"""Delivery channels and their registry.

The registry maps a channel name to ``module:Class``; modules are imported
only when a run uses them, so the CLI starts fast and a dry run never loads
the provider SDKs.
"""

from __future__ import annotations

import importlib

REGISTRY: dict[str, str] = {
    "sms": "crisiscomms.channels.sms:TwilioSms",
    "email": "crisiscomms.channels.email:SendGridEmail",
    "banner": "crisiscomms.channels.banner:BannerFile",
}


def channel_class(name: str) -> type:
    module_name, _, class_name = REGISTRY[name].partition(":")
    cls: type = getattr(importlib.import_module(module_name), class_name)
    return cls
