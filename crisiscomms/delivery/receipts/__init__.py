"""Delivery receipts: the events (``events``), where they are applied (``store``), the web server that
receives them (``server``) and the loop that fetches them (``pull``)."""
