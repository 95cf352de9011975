"""crisiscomms: tell customers, fast and in their own language, how to reach you in a crisis."""

__version__ = "0.1.0"
