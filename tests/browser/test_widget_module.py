"""crisiscomms.widget and docs/banner.schema.json without a browser (these run everywhere)."""

from __future__ import annotations

import copy
import datetime as dt
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from crisiscomms.widget import (
    INLINE_DOCUMENT_ID,
    SCRIPT_NAME,
    STATIC_FILES,
    STYLESHEET_NAME,
    demo_page,
    inline_embed,
    snippet,
    static_path,
    static_text,
)

from .conftest import ROOT

SCHEMA = ROOT / "docs" / "banner.schema.json"


def test_static_files_are_shipped() -> None:
    for name in STATIC_FILES:
        path = static_path(name)
        assert isinstance(path, Path) and path.is_file()
        assert path.parent.name == "static" and path.parent.parent.name == "crisiscomms"
    with pytest.raises(FileNotFoundError):
        static_path("../widget.py")
    with pytest.raises(FileNotFoundError):
        static_path("missing.js")


def test_the_script_never_writes_html() -> None:
    script = static_text(SCRIPT_NAME)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "setTimeout('", 'setTimeout("', "createContextualFragment", "DOMParser"):
        assert sink not in script, sink
    assert "</script" not in script.lower() and "<!--" not in script, "it must stay inlinable"


def test_every_language_has_every_word() -> None:
    script = static_text(SCRIPT_NAME)
    table = script[script.index("const WORDS = {"):script.index("// ---", script.index("const WORDS = {"))]
    blocks = dict(re.findall(r"\n    (\w+): \{(.*?)\n    \},", table, flags=re.S))
    assert set(blocks) == {"en", "sv", "da", "nb", "nl", "el"}
    keys = {locale: set(re.findall(r"(\w+): '", body)) for locale, body in blocks.items()}
    assert all(k == keys["en"] for k in keys.values()), {loc: keys["en"] ^ k for loc, k in keys.items()}


def test_snippet_is_one_escaped_script_tag() -> None:
    code = snippet('/site/banner.json?a=1&b="2"', "https://cdn.example/crisiscomms-banner.js")
    assert code.count("<script") == 1 and code.count("</script>") == 1 and code.startswith("<!--")
    assert 'src="https://cdn.example/crisiscomms-banner.js"' in code
    assert 'data-banner="/site/banner.json?a=1&amp;b=&quot;2&quot;"' in code
    assert " defer></script>" in code
    with pytest.raises(ValueError, match="banner_url"):
        snippet("", "x.js")
    with pytest.raises(ValueError, match="script_url"):
        snippet("banner.json", "x.js\n<script>")


def _inline_document(page: str) -> Any:
    match = re.search(rf'<script type="application/json" id="{INLINE_DOCUMENT_ID}">(.*?)</script>', page, re.S)
    assert match, "the document is inlined"
    return json.loads(match.group(1))


def test_inline_embed_keeps_the_document_inside_its_element(banner_document: dict[str, Any]) -> None:
    hostile = copy.deepcopy(banner_document)
    hostile["locales"]["en"]["title"] = "</script><script>alert(1)</script> & <!-- -->"
    fragment = inline_embed(hostile, now=dt.datetime(2026, 12, 6, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
                            locale="el", expanded=True)
    assert fragment.count("</script>") == 2  # the JSON's and the widget's; the title's are escaped
    assert _inline_document(fragment) == hostile
    assert 'data-now="2026-12-05T23:30:00Z"' in fragment
    assert 'data-locale="el"' in fragment and 'data-expanded="true"' in fragment
    assert 'data-storage="none"' in fragment
    assert f"<style>{static_text(STYLESHEET_NAME)}</style>" in fragment
    with pytest.raises(ValueError, match="aware"):
        inline_embed(hostile, now=dt.datetime(2026, 12, 6))
    assert 'data-now="2026-12-05T23:30:00Z"' in inline_embed(hostile, now="2026-12-06T00:30+01:00")


def test_demo_page_is_self_contained(banner_document: dict[str, Any]) -> None:
    page = demo_page(banner_document, now="2026-12-05T23:30:00Z")
    assert page.startswith("<!DOCTYPE html>")
    assert "<link" not in page and not re.search(r"<script[^>]*\ssrc=", page), "nothing loaded from elsewhere"
    assert "default-src 'none'" in page
    assert _inline_document(page) == banner_document
    assert html.escape("Nordvind Energi") in page and 'data-expanded="true"' in page
    empty = demo_page(None)
    assert 'type="application/json"' not in empty and "No banner document" in empty


def test_schema_matches_what_send_writes(banner_document: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="checking the schema needs: pip install jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.Draft202012Validator
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    assert [e.message for e in validator.iter_errors(banner_document)] == []

    def broken(change: Any) -> dict[str, Any]:
        document = copy.deepcopy(banner_document)
        change(document)
        return document

    for document in (
        broken(lambda d: d.update(version=2)),
        broken(lambda d: d.pop("locales")),
        broken(lambda d: d["notice"].update(severity="panic")),
        broken(lambda d: d["notice"].update(expires="2026-12-06T20:00:00+01:00")),
        broken(lambda d: d["routes"]["live-chat"]["hours"]["weekly"].update(mon=[["08:00", "25:00"]])),
        broken(lambda d: d["routes"]["live-chat"].update(href="javascript:alert(1)")),
        broken(lambda d: d["links"][0].update(url="ftp://example.org")),
    ):
        assert not validator.is_valid(document)


def test_severity_words_agree_with_the_email_layout() -> None:
    """The widget's badge says what the e-mail's stripe says, in every shipped language."""
    layout = (ROOT / "templates" / "_layouts" / "email.html").read_text(encoding="utf-8")
    email = {locale: json.loads(words) for locale, words in
             re.findall(r'"(\w+)": (\{"critical": [^}]*\})', layout)}
    script = static_text(SCRIPT_NAME)
    table = script[script.index("const WORDS = {"):script.index("// ---", script.index("const WORDS = {"))]
    blocks = dict(re.findall(r"\n    (\w+): \{(.*?)\n    \},", table, flags=re.S))
    widget = {locale: dict(re.findall(r"(info|warning|critical): '([^']*)'", body)) for locale, body in blocks.items()}
    assert email and widget == email
