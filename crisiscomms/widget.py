"""The site-banner widget: the shipped JS/CSS, the embed snippet, a self-contained demo page.

The widget (``crisiscomms/static/crisiscomms-banner.js`` + ``.css``, documented in
``docs/widget.md``) reads the banner document that ``crisiscomms send --channels banner``
writes and shows it on a website, computing "open now" in the browser. Sites embed it with
one ``<script>`` tag (:func:`snippet`); previews inline everything into one page that needs
no network (:func:`inline_embed`, :func:`demo_page`).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

SCRIPT_NAME = "crisiscomms-banner.js"
STYLESHEET_NAME = "crisiscomms-banner.css"
STATIC_FILES: tuple[str, ...] = (SCRIPT_NAME, STYLESHEET_NAME)
INLINE_DOCUMENT_ID = "crisiscomms-banner-document"


def static_path(name: str) -> Path:
    """The path of a shipped widget file (``crisiscomms-banner.js`` or ``crisiscomms-banner.css``)."""
    if name not in STATIC_FILES:
        raise FileNotFoundError(f"no widget file named {name!r}; the widget files are {', '.join(STATIC_FILES)}")
    path = Path(str(files("crisiscomms").joinpath("static", name)))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall crisiscomms (package data 'static/*')")
    return path


def static_text(name: str) -> str:
    """The text of a shipped widget file."""
    return static_path(name).read_text(encoding="utf-8")


def snippet(banner_url: str, script_url: str) -> str:
    """The embed code for a site: one ``<script>`` tag and a comment saying what it is."""
    for what, value in (("banner_url", banner_url), ("script_url", script_url)):
        if not value.strip() or any(ch in value for ch in "\r\n\t"):
            raise ValueError(f"{what} must be a URL on one line, got {value!r}")
    return (
        "<!-- crisiscomms site banner: shows the current crisis notice at the top of the page, in the "
        "visitor's language, with which contact route is open now. Host crisiscomms-banner.css next to "
        "the script. -->\n"
        f'<script src="{_attribute(script_url.strip())}" data-banner="{_attribute(banner_url.strip())}" '
        "defer></script>\n"
    )


def inline_embed(
    banner_json: Mapping[str, Any] | None,
    *,
    now: dt.datetime | str | None = None,
    locale: str | None = None,
    expanded: bool = False,
    remember: bool = False,
) -> str:
    """The widget with its CSS and the banner document inlined: an HTML fragment for the end of ``<body>``.

    Needs no network and runs under ``script-src 'unsafe-inline'; style-src 'unsafe-inline'``.
    ``now`` freezes the widget's clock (``data-now``), ``locale`` preselects a language
    (``data-locale``), ``expanded`` opens the full notice; ``remember=False`` keeps the
    dismissal and language choice out of localStorage (``data-storage="none"``).
    """
    attributes = [f'data-banner-inline="{INLINE_DOCUMENT_ID}"']
    if now is not None:
        attributes.append(f'data-now="{_attribute(_instant(now))}"')
    if locale:
        attributes.append(f'data-locale="{_attribute(locale)}"')
    if expanded:
        attributes.append('data-expanded="true"')
    if not remember:
        attributes.append('data-storage="none"')
    parts = [f"<style>{_raw_text(static_text(STYLESHEET_NAME), 'style')}</style>"]
    if banner_json is not None:
        parts.append(f'<script type="application/json" id="{INLINE_DOCUMENT_ID}">{_json_text(banner_json)}</script>')
    parts.append(f"<script {' '.join(attributes)}>{_raw_text(static_text(SCRIPT_NAME), 'script')}</script>")
    return "\n".join(parts) + "\n"


def demo_page(
    banner_json: Mapping[str, Any] | None,
    *,
    now: dt.datetime | str | None = None,
    locale: str | None = None,
    expanded: bool = True,
    title: str | None = None,
) -> str:
    """A self-contained HTML page (no network) showing the banner on a stand-in site page."""
    organisation = ""
    notice_id = ""
    if banner_json is not None:
        org = banner_json.get("organisation")
        notice = banner_json.get("notice")
        organisation = str(org.get("name", "")) if isinstance(org, Mapping) else ""
        notice_id = str(notice.get("id", "")) if isinstance(notice, Mapping) else ""
    heading = title or " — ".join(p for p in ("Banner preview", organisation, notice_id) if p)
    as_of = f"as of {_instant(now)}" if now is not None else "as of the moment you open this page"
    note = ("No banner document: the widget shows nothing and the page stays as it is."
            if banner_json is None else
            f"The crisis banner above is the crisiscomms widget, {as_of}; open and closed are computed "
            "in the browser, in each route's own time zone.")
    return _DEMO_PAGE.format(
        title=html.escape(heading),
        organisation=html.escape(organisation or "Example organisation"),
        note=html.escape(note),
        widget=inline_embed(banner_json, now=now, locale=locale, expanded=expanded),
    )


def _attribute(value: str) -> str:
    return html.escape(value, quote=True)


def _instant(value: dt.datetime | str) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("now must be an aware datetime (with a time zone or offset)")
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _json_text(document: Mapping[str, Any]) -> str:
    """JSON that cannot end its ``<script>`` element early (``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _raw_text(text: str, element: str) -> str:
    lowered = text.lower()
    if f"</{element}" in lowered or "<!--" in lowered:
        raise ValueError(f"the widget file cannot be inlined in <{element}>: it contains '</{element}' or '<!--'")
    return text


_DEMO_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'; img-src data:">
<title>{title}</title>
<style>
body {{ margin: 0; font: 16px/1.5 Georgia, serif; color: #1b1f24; background: #f4f5f7; }}
.demo-header {{ background: #fff; border-bottom: 1px solid #d5dae1; padding: 1rem 1.5rem; }}
.demo-header strong {{ font: 700 1.25rem/1.2 system-ui, sans-serif; }}
.demo-main {{ max-width: 48rem; margin: 0 auto; padding: 1.5rem; }}
.demo-main p {{ margin: 0 0 1rem; }}
</style></head>
<body>
<header class="demo-header"><strong>{organisation}</strong></header>
<main class="demo-main" id="main">
<h1>{title}</h1>
<p>{note}</p>
<p>This page stands in for the organisation's website. Everything it needs is inside it.</p>
</main>
{widget}</body></html>
"""
