"""The site-banner widget in a real browser: headless Chromium driven by Selenium.

Needs ``chromium`` and ``chromium-driver`` (Debian) and ``pip install selenium``; without them
the module is skipped with the reason. Pages are served from 127.0.0.1 with a banner document
from a real ``crisiscomms send --channels banner`` run; the widget's clock is set per page with
``data-now``. Every test saves a screenshot to ``tests/browser/artifacts/``.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import html
import http.server
import itertools
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crisiscomms.hours import (
    ExceptionBound,
    OpeningHours,
    TimeRange,
    WeeklySchedule,
    dated_hours_between,
    parse_clock,
)
from crisiscomms.locales import negotiate_locale
from crisiscomms.widget import STATIC_FILES, demo_page, snippet, static_path

from .conftest import EXPIRES, ISSUED

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.options import Options as ChromeOptions
    from selenium.webdriver.chrome.service import Service as ChromeService
    from selenium.webdriver.chrome.webdriver import WebDriver
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover - depends on the machine
    pytest.skip("browser tests need Selenium: pip install selenium", allow_module_level=True)

CHROMIUM = shutil.which(os.environ.get("CRISISCOMMS_CHROMIUM") or "chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which(os.environ.get("CRISISCOMMS_CHROMEDRIVER") or "chromedriver")
if not CHROMIUM or not CHROMEDRIVER:  # pragma: no cover - depends on the machine
    pytest.skip("browser tests need Chromium and ChromeDriver: apt-get install -y chromium chromium-driver",
                allow_module_level=True)

ARTIFACTS = Path(__file__).parent / "artifacts"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Moments (UTC) and what they are in Stockholm, the routes' time zone (UTC+1 in December).
ALL_OPEN = "2026-12-02T10:00:00Z"        # Wed 11:00: every route open
CHAT_CLOSED = "2026-12-05T22:30:00Z"     # Sat 23:30: chat closed (07–23), SMS agents open (06–24)
BOTH_CLOSED = "2026-12-05T23:30:00Z"     # Sun 00:30: chat and SMS agents closed
EXCEPTION_OPEN = "2026-12-06T06:30:00Z"  # Sun 07:30: chat open only by the storm exception (weekly Sun 10–16)

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Nordvind Energi</title>
<script>
window.__errors = [];
window.addEventListener('error', function (e) {{ window.__errors.push(String(e.message)); }});
window.addEventListener('unhandledrejection', function (e) {{ window.__errors.push('rejection: ' + e.reason); }});
window.__clicks = 0;
</script>
<style>
body {{ margin: 0; font: 16px/1.5 Georgia, serif; color: #222; }}
header {{ padding: 1rem 1.5rem; border-bottom: 1px solid #ccc; }}
main {{ padding: 1.5rem; max-width: 40rem; }}
p {{ margin: 2em 0; }} button {{ background: pink; }}
</style></head>
<body>
<header id="site-header"><a id="site-home" href="#site-main">Nordvind Energi</a></header>
<main id="site-main"><h1>Kundservice</h1><p>The organisation's own page content.</p>
<button id="site-button" type="button" onclick="window.__clicks++">A button of the site</button></main>
{script}
</body></html>
"""


# ---------------------------------------------------------------- the local site


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@dataclass
class Site:
    root: Path
    base: str
    _pages: Iterator[int]

    def add(self, name: str, content: dict[str, Any] | str) -> str:
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        (self.root / name).write_text(text, encoding="utf-8")
        return name

    def page(self, banner: str = "banner.json", **data: str | None) -> str:
        """A page embedding the widget with ``data-banner`` and other ``data-*`` attributes."""
        attributes = "".join(f' data-{key.replace("_", "-")}="{html.escape(value)}"'
                             for key, value in {"banner": banner, **data}.items() if value is not None)
        return self.raw_page(f'<script src="crisiscomms-banner.js"{attributes} defer></script>')

    def raw_page(self, script: str) -> str:
        name = f"page-{next(self._pages)}.html"
        (self.root / name).write_text(PAGE.format(script=script), encoding="utf-8")
        return f"{self.base}/{name}"


@pytest.fixture(scope="session")
def site(banner_document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("site")
    for name in STATIC_FILES:
        shutil.copyfile(static_path(name), root / name)
    (root / "banner.json").write_text(json.dumps(banner_document, ensure_ascii=False, indent=2), encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(root, f"http://127.0.0.1:{server.server_address[1]}", itertools.count(1))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def variant(document: dict[str, Any], **notice: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    changed["notice"].update(notice)
    return changed


# ---------------------------------------------------------------- the browser


@pytest.fixture
def open_browser(tmp_path: Path) -> Iterator[Callable[..., WebDriver]]:
    """Start headless Chromium with a fresh profile; ``languages`` is the Accept-Language list."""
    drivers: list[WebDriver] = []

    def start(languages: str = "en-US,en", *, phone: bool = False) -> WebDriver:
        options = ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--window-size=1280,900", "--hide-scrollbars",
                         f"--user-data-dir={tmp_path / f'profile-{len(drivers)}'}",
                         f"--lang={languages.split(',')[0]}"):
            options.add_argument(argument)
        # --lang alone does not change navigator.languages in headless Chromium; this preference does.
        options.add_experimental_option("prefs", {"intl.accept_languages": languages})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = ChromeService(executable_path=str(CHROMEDRIVER), log_output=subprocess.DEVNULL)
        driver = webdriver.Chrome(service=service, options=options)
        drivers.append(driver)
        driver.set_page_load_timeout(10)
        driver.set_script_timeout(10)
        if phone:
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True})
        return driver

    yield start
    for driver in drivers:
        driver.quit()


def load(driver: WebDriver, url: str) -> str:
    """Open ``url`` and wait until the widget has decided: shown, none, expired or dismissed."""
    driver.get(url)
    try:
        WebDriverWait(driver, 5, poll_frequency=0.05).until(lambda d: widget_state(d) not in (None, "loading"))
    except TimeoutException:
        pytest.fail(f"the widget never finished on {url} (state {widget_state(driver)!r})")
    return str(widget_state(driver))


def widget_state(driver: WebDriver) -> str | None:
    state = driver.execute_script(
        "var s = document.querySelector('script[data-crisiscomms-state]');"
        "return s ? s.getAttribute('data-crisiscomms-state') : null;")
    return None if state is None else str(state)


def banner(driver: WebDriver) -> WebElement:
    found = driver.find_elements(By.CSS_SELECTOR, "section.ccb")
    assert len(found) == 1, f"expected one banner, found {len(found)}"
    return found[0]


def no_banner(driver: WebDriver) -> bool:
    return not driver.find_elements(By.CSS_SELECTOR, ".ccb")


def console_entries(driver: WebDriver) -> list[dict[str, Any]]:
    """The browser console since the last call (Chromium's "browser" log)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return entries


def page_errors(driver: WebDriver) -> list[str]:
    """Uncaught errors (the page's own counter) and SEVERE console entries, except failed requests."""
    errors = [str(e) for e in driver.execute_script("return window.__errors || ['no error counter'];")]
    errors += [entry["message"] for entry in console_entries(driver)
               if entry["level"] == "SEVERE" and "Failed to load resource" not in entry["message"]]
    return errors


def screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page as a PNG in tests/browser/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    width, height = driver.execute_script(
        "return [document.documentElement.clientWidth, document.documentElement.scrollHeight];")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 3000), "scale": 1}})
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def inquiry(driver: WebDriver, inquiry_id: str) -> WebElement:
    return banner(driver).find_element(By.CSS_SELECTOR, f'[data-inquiry="{inquiry_id}"]')


def routes_shown(element: WebElement) -> list[tuple[str, str, str]]:
    """(route, role, open) for every route block of an inquiry."""
    return [(r.get_attribute("data-route") or "", r.get_attribute("data-role") or "closed-best",
             r.get_attribute("data-open") or "") for r in element.find_elements(By.CSS_SELECTOR, ".ccb__route")]


# ---------------------------------------------------------------- languages


@pytest.mark.parametrize(("languages", "locale", "name"), [
    ("en-US,en", "en", "English"),
    ("sv-FI,fi", "sv", "Svenska"),        # sv-FI → sv
    ("el-GR,el", "el", "Ελληνικά"),
    ("fr-CA,nn-NO", "nb", "Norsk bokmål"),  # French unsupported, Nynorsk → Bokmål
    ("de-DE,fr", "en", "English"),        # the playbook's locale_fallbacks: {de: en}
    ("pt-BR,fr", "sv", "Svenska"),        # nothing supported → the document's default locale
])
def test_banner_speaks_the_browsers_language(open_browser: Callable[..., WebDriver], site: Site,
                                             banner_document: dict[str, Any], languages: str, locale: str,
                                             name: str) -> None:
    driver = open_browser(languages)
    assert driver.execute_script("return navigator.languages") == languages.split(",")
    assert load(driver, site.page(now=ALL_OPEN, expanded="true")) == "shown"
    shown = banner(driver)
    text = banner_document["locales"][locale]
    assert shown.get_attribute("lang") == locale
    assert shown.find_element(By.CSS_SELECTOR, ".ccb__title-text").text == text["title"]
    assert shown.find_element(By.CSS_SELECTOR, ".ccb__body").text == text["body"].strip()
    label = banner_document["inquiries"][0]["label"][locale]
    assert shown.find_element(By.CSS_SELECTOR, ".ccb__inquiry-label").text == label
    assert Select(shown.find_element(By.CSS_SELECTOR, "select.ccb__lang")).first_selected_option.text == name
    options = [o.text for o in shown.find_elements(By.CSS_SELECTOR, "select.ccb__lang option")]
    assert options == ["English", "Svenska", "Dansk", "Norsk bokmål", "Nederlands", "Ελληνικά"]
    assert page_errors(driver) == []
    screenshot(driver, f"language-{locale}-{languages.split(',')[0]}")


def test_visitor_can_switch_language_and_it_is_remembered(open_browser: Callable[..., WebDriver], site: Site,
                                                          banner_document: dict[str, Any]) -> None:
    driver = open_browser("en-US,en")
    url = site.page(now=BOTH_CLOSED)
    assert load(driver, url) == "shown"
    select = banner(driver).find_element(By.CSS_SELECTOR, "select.ccb__lang")
    assert select.accessible_name == "Language"
    Select(select).select_by_visible_text("Ελληνικά")
    shown = banner(driver)
    assert shown.get_attribute("lang") == "el"
    assert shown.find_element(By.CSS_SELECTOR, ".ccb__title-text").text == banner_document["locales"]["el"]["title"]
    assert shown.find_element(By.CSS_SELECTOR, ".ccb__toggle").text == "Περισσότερα"
    assert driver.switch_to.active_element.get_attribute("class") == "ccb__lang", "focus stays on the select"
    assert load(driver, url) == "shown"
    assert banner(driver).get_attribute("lang") == "el"
    screenshot(driver, "language-switched-el")


# ---------------------------------------------------------------- open now, in the route's time zone


def test_closed_route_points_to_the_first_open_fallback(open_browser: Callable[..., WebDriver], site: Site,
                                                        banner_document: dict[str, Any]) -> None:
    driver = open_browser()
    assert load(driver, site.page(now=BOTH_CLOSED, expanded="true")) == "shown"
    # Sun 00:30 in Stockholm: chat (07–23) and SMS agents (06–24) are closed.
    technical = inquiry(driver, "technical")
    assert routes_shown(technical) == [("live-chat", "closed-best", "false"), ("help-centre", "fallback", "true")]
    assert "Closed now, opens today 07:00" in technical.text  # CLDR's word, as the e-mails say it
    assert "Use instead:" in technical.text
    fallback = technical.find_element(By.CSS_SELECTOR, '[data-role="fallback"]')
    assert "Available 24/7" in fallback.text
    link = fallback.find_element(By.CSS_SELECTOR, "a.ccb__route-label")
    assert link.get_attribute("href") == banner_document["routes"]["help-centre"]["href"]
    # The first fallback (chat) is closed too, so the second one is used.
    assert routes_shown(inquiry(driver, "coverage")) == [("sms-agents", "closed-best", "false"),
                                                         ("outage-map", "fallback", "true")]
    emergency = inquiry(driver, "emergency")
    assert routes_shown(emergency) == [("outage-line", "best", "true")]
    assert "Open 24/7 – a person answers" in emergency.text
    assert emergency.find_element(By.CSS_SELECTOR, "a").get_attribute("href") == "tel:+46846500410"
    assert page_errors(driver) == []
    screenshot(driver, "fallback-when-closed")


def test_open_now_is_computed_in_the_routes_time_zone(open_browser: Callable[..., WebDriver], site: Site) -> None:
    driver = open_browser()
    assert driver.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone") != "Europe/Stockholm"
    # Sat 23:30 in Stockholm (22:30 UTC, when the chat would still be open): chat closed, SMS agents open.
    assert load(driver, site.page(now=CHAT_CLOSED, expanded="true")) == "shown"
    technical = inquiry(driver, "technical")
    assert routes_shown(technical) == [("live-chat", "closed-best", "false"), ("sms-agents", "fallback", "true")]
    assert "Open now, until 24:00 – a person answers" in technical.text
    assert routes_shown(inquiry(driver, "coverage")) == [("sms-agents", "best", "true")]
    # Sun 07:30: the weekly hours say Sunday 10–16, the storm exception 07–23; the exception wins.
    assert load(driver, site.page(now=EXCEPTION_OPEN, expanded="true")) == "shown"
    technical = inquiry(driver, "technical")
    assert routes_shown(technical) == [("live-chat", "best", "true")]
    assert "Open now, until 23:00" in technical.text
    # The range separator is the locale's own, as in the CLI's hours text (English: spaces around "–").
    text = technical.text.replace("\u2009", " ").replace("\u202f", " ")
    assert "Today: 07:00 – 23:00" in text
    hours = "Opening hours: Mon–Fri 08:00 – 20:00, Sat–Sun 10:00 – 16:00"
    assert f"{hours} (GMT+1)" in text, "the route's time zone, as it is not the visitor's"
    screenshot(driver, "exception-hours")
    # Wed 11:00: everything open, no fallback anywhere.
    assert load(driver, site.page(now=ALL_OPEN, expanded="true")) == "shown"
    assert not banner(driver).find_elements(By.CSS_SELECTOR, '[data-role="fallback"]')
    assert page_errors(driver) == []


def _check_locale_rules(driver: WebDriver) -> None:
    """The widget picks a locale from a language tag exactly as crisiscomms.locales does."""
    supported = ["en", "sv", "da", "nb", "nl", "el"]
    tags = ["sv-FI", "sv_SE", "SV", "sv-Latn-SE", "no", "nn", "nb-NO", "nn-NO", "no-NO", "nl-BE", "NL", "el-GR",
            "EN-us", "en-GB", "da-DK", "de", "fr-CA", "zh-Hant-TW", "pt-BR", "gr", "dk", "se", "x", "", "123"]
    browser = driver.execute_script(
        "return arguments[0].map(t => CrisiscommsBanner.negotiateLocale([t], arguments[1], 'sv'));", tags, supported)
    assert dict(zip(tags, browser, strict=True)) == {t: negotiate_locale(t, supported, "sv") for t in tags}
    # navigator.languages is a list: the first tag that something supports wins.
    assert driver.execute_script(
        "return CrisiscommsBanner.negotiateLocale(['fi', 'de-AT', 'nl-BE', 'en'], arguments[0], 'sv');",
        supported) == "nl"
    # Region variants both ways, and the playbook's declared fallbacks ({de: en}).
    regional = ["en_GB", "sv"]
    for tag in ("en", "en-IE", "en-GB", "EN_us", "sv-FI", "de"):
        assert driver.execute_script("return CrisiscommsBanner.negotiateLocale([arguments[0]], arguments[1], 'sv');",
                                     tag, regional) == negotiate_locale(tag, regional, "sv"), tag
    assert driver.execute_script(
        "return CrisiscommsBanner.negotiateLocale(['de-AT'], ['en', 'sv'], 'sv', {de: 'nn', nn: 'en'});") == "en"
    assert driver.execute_script(
        "return CrisiscommsBanner.negotiateLocale(['fi'], ['en', 'sv'], 'sv', {fi: 'fi'});") == "sv"


def _python_hours(hours: dict[str, Any]) -> OpeningHours:
    def ranges(pairs: list[list[str]]) -> tuple[TimeRange, ...]:
        return tuple(TimeRange(parse_clock(start), parse_clock(end)) for start, end in pairs)

    return OpeningHours(
        WeeklySchedule(tuple(ranges(hours["weekly"][day]) for day in DAYS)),
        tuple(dated_hours_between(ExceptionBound.parse(e["from"]), ExceptionBound.parse(e["to"]),
                                  ranges(e["ranges"]), ZoneInfo(hours["timezone"]))
              for e in hours["exceptions"]),
        hours["timezone"],
    )


def _local(moment: dt.datetime | None, zone: str) -> list[Any] | None:
    if moment is None:
        return None
    local = moment.astimezone(OpeningHours(WeeklySchedule.always(), (), zone).zone)
    return [local.date().isoformat(), local.hour * 60 + local.minute]


def test_browser_logic_matches_the_cli(open_browser: Callable[..., WebDriver], site: Site,
                                      banner_document: dict[str, Any]) -> None:
    """Locale choice, and open/closed, next opening and closing hour by hour (DST included), agree with
    crisiscomms.locales and crisiscomms.hours."""
    new_york = {"timezone": "America/New_York", "always": False,
                "weekly": {day: [["01:30", "02:30"], ["08:00", "20:00"]] for day in DAYS},
                "exceptions": [{"from": "2026-03-08", "to": "2026-03-08", "ranges": [["00:00", "03:30"]]},
                               {"from": "2026-11-01", "to": "2026-11-01", "ranges": [["01:00", "02:00"]]},
                               {"from": "2026-11-02", "to": "2026-11-02", "ranges": [["00:00", "24:00"]]}]}
    # A timed 24/7 extension over a weekday evening, and a yearly holiday over New Year (and across DST).
    timed = {"timezone": "Europe/Oslo", "always": False,
             "weekly": {day: [["08:00", "22:00"]] for day in DAYS},
             "exceptions": [{"from": "2026-12-02T06:00", "to": "2026-12-03T18:00", "ranges": [["00:00", "24:00"]]},
                            {"from": "12-06T12:00", "to": "12-07", "ranges": []},
                            {"from": "12-10", "to": "12-10T10:00", "ranges": [["06:00", "24:00"]]},
                            {"from": "03-08T01:00", "to": "03-08T04:00", "ranges": [["00:00", "24:00"]]},
                            {"from": "10-31T22:00", "to": "11-01T03:00", "ranges": [["00:00", "24:00"]]}]}
    schedules = {rid: route["hours"] for rid, route in banner_document["routes"].items()} | {
        "ny": new_york, "timed": timed}
    start = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
    moments = [start + dt.timedelta(minutes=20 * i) for i in range(3 * 24 * 18)]  # 28 Nov – 16 Dec
    for first in (dt.datetime(2026, 3, 7, 4, tzinfo=dt.UTC), dt.datetime(2026, 10, 31, 4, tzinfo=dt.UTC)):
        moments += [first + dt.timedelta(minutes=15 * i) for i in range(4 * 24 * 3)]
    isos = [m.isoformat().replace("+00:00", "Z") for m in moments]

    driver = open_browser()
    assert load(driver, site.page(now=ALL_OPEN)) == "shown"
    _check_locale_rules(driver)
    browser = driver.execute_script("""
        const [schedules, moments] = arguments, out = {};
        for (const id of Object.keys(schedules)) {
          out[id] = moments.map((m) => {
            const s = CrisiscommsBanner.openState(schedules[id], m);
            const at = (w) => (w ? (w.minute === 1440 ? [w.date, 1440] : [w.date, w.minute]) : null);
            return [s.open, s.open ? at(s.closes) : at(s.opens)];
          });
        }
        return out;""", schedules, isos)
    for route_id, hours_json in schedules.items():
        hours = _python_hours(hours_json)
        for moment, (is_open, when) in zip(moments, browser[route_id], strict=True):
            assert is_open == hours.is_open(moment), (route_id, moment)
            python_when = hours.closes_at(moment) if is_open else hours.next_open(moment)
            if python_when is not None and python_when - moment > dt.timedelta(days=14):
                python_when = None  # the widget looks 15 local days ahead, the CLI 60
            if when is not None and when[1] == 1440:  # "until 24:00" is the next day's 00:00
                when = [(dt.date.fromisoformat(when[0]) + dt.timedelta(days=1)).isoformat(), 0]
            if when is not None and python_when is None:
                assert dt.date.fromisoformat(when[0]) - moment.date() >= dt.timedelta(days=14), (route_id, moment)
            else:
                assert when == _local(python_when, hours.timezone), (route_id, moment)
    screenshot(driver, "logic-parity")


# ---------------------------------------------------------------- expiry, dismissal


def test_expired_notice_shows_nothing(open_browser: Callable[..., WebDriver], site: Site,
                                      banner_document: dict[str, Any]) -> None:
    driver = open_browser()
    a_second_before = (dt.datetime.fromisoformat(EXPIRES.replace("Z", "+00:00")) - dt.timedelta(seconds=1))
    assert load(driver, site.page(now=a_second_before.isoformat())) == "shown"
    assert load(driver, site.page(now=EXPIRES)) == "expired"
    assert no_banner(driver)
    assert driver.find_element(By.ID, "site-main").is_displayed()
    screenshot(driver, "expired")
    # The real clock: a notice that expired long ago, and one without expiry embedded with the plain snippet.
    site.add("banner-old.json", variant(banner_document, id="old-storm", expires="2001-01-01T00:00:00Z"))
    assert load(driver, site.page(banner="banner-old.json")) == "expired"
    assert no_banner(driver)
    site.add("banner-open-ended.json", variant(banner_document, id="open-ended", expires=None))
    page = site.raw_page(snippet("banner-open-ended.json", "crisiscomms-banner.js"))
    assert load(driver, page) == "shown"
    assert driver.find_elements(By.CSS_SELECTOR, "link[data-crisiscomms-banner]"), "the stylesheet is injected"
    bar = banner(driver).find_element(By.CSS_SELECTOR, ".ccb__bar")
    assert bar.value_of_css_property("background-color") == "rgba(164, 22, 26, 1)"
    # A page left open when the notice expires: the banner goes, on the real clock.
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)).isoformat(timespec="milliseconds")
    site.add("banner-soon.json", variant(banner_document, id="expires-soon", expires=soon.replace("+00:00", "Z")))
    assert load(driver, site.page(banner="banner-soon.json")) == "shown"
    WebDriverWait(driver, 5, poll_frequency=0.1).until(lambda d: widget_state(d) == "expired")
    assert no_banner(driver)
    assert page_errors(driver) == []


def test_dismissal_lasts_for_that_notice_only(open_browser: Callable[..., WebDriver], site: Site,
                                              banner_document: dict[str, Any]) -> None:
    driver = open_browser()
    url = site.page(now=ALL_OPEN)
    assert load(driver, url) == "shown"
    banner(driver).find_element(By.CSS_SELECTOR, "button.ccb__dismiss").click()
    assert no_banner(driver)
    assert widget_state(driver) == "dismissed"
    keys = driver.execute_script("return Object.keys(localStorage);")
    assert f"crisiscomms-banner:dismissed:storm-outage@{ISSUED}" in keys
    driver.refresh()
    WebDriverWait(driver, 5).until(lambda d: widget_state(d) not in (None, "loading"))
    assert widget_state(driver) == "dismissed"
    assert no_banner(driver)
    screenshot(driver, "dismissed-after-reload")
    # A new notice id shows again; so does the same notice issued anew.
    site.add("banner-update.json", variant(banner_document, id="storm-update", severity="warning"))
    assert load(driver, site.page(banner="banner-update.json", now=ALL_OPEN)) == "shown"
    assert banner(driver).get_attribute("data-notice") == "storm-update"
    screenshot(driver, "new-notice-after-dismissal")
    site.add("banner-reissued.json", variant(banner_document, issued="2026-12-03T09:00:00Z"))
    assert load(driver, site.page(banner="banner-reissued.json", now=ALL_OPEN)) == "shown"
    assert load(driver, url) == "dismissed"
    assert page_errors(driver) == []


# ---------------------------------------------------------------- broken input


def test_broken_or_missing_documents_leave_the_page_working(open_browser: Callable[..., WebDriver], site: Site,
                                                           banner_document: dict[str, Any]) -> None:
    without_locales = copy.deepcopy(banner_document)
    del without_locales["locales"]
    cases: dict[str, dict[str, Any] | str | None] = {
        "missing": None,
        "truncated": json.dumps(banner_document)[:500],
        "html": "<!DOCTYPE html><html><body>Not found</body></html>",
        "empty": "",
        "null": "null",
        "array": "[]",
        "wrong-format": banner_document | {"format": "something-else"},
        "wrong-version": banner_document | {"version": 2},
        "no-locales": without_locales,
        "no-severity": variant(banner_document, severity=None),
        "bad-severity": variant(banner_document, severity="panic"),
        "bad-expiry": variant(banner_document, expires="next Tuesday"),
    }
    driver = open_browser()
    for case, content in cases.items():
        name = f"broken-{case}.json"
        if content is not None:
            site.add(name, content)
        assert load(driver, site.page(banner=name, now=ALL_OPEN)) == "none", case
        assert no_banner(driver), case
        driver.find_element(By.ID, "site-button").click()
        assert driver.execute_script("return window.__clicks") == 1, case
        assert page_errors(driver) == [], case
        if case in {"missing", "truncated"}:
            screenshot(driver, f"broken-{case}")


def test_text_from_the_document_is_never_html(open_browser: Callable[..., WebDriver], site: Site,
                                              banner_document: dict[str, Any]) -> None:
    hostile = copy.deepcopy(banner_document)
    hostile["locales"]["en"]["title"] = '<img src="x" onerror="window.__pwned=1">Storm <b>now</b>'
    hostile["locales"]["en"]["body"] = "<script>window.__pwned=1</script>Stay safe."
    hostile["inquiries"][0]["label"]["en"] = '<a href="javascript:window.__pwned=1">Click</a>'
    hostile["routes"]["outage-line"]["href"] = "javascript:window.__pwned=1"
    hostile["routes"]["portal"]["href"] = " JAVASCRIPT:window.__pwned=1"
    hostile["routes"]["help-centre"]["href"] = "data:text/html,<script>alert(1)</script>"
    hostile["links"] = [
        {"url": "javascript:window.__pwned=1", "kind": "other", "title": {"en": "Bad"}},
        {"url": "vbscript:msgbox", "kind": "other", "title": {"en": "Bad too"}},
        {"url": "mailto:kundservice@nordvind.example", "kind": "other", "title": {"en": "E-mail us"}},
        {"url": "https://nordvind.example/<script>", "kind": "status", "title": {"en": "Status"}},
    ]
    site.add("banner-hostile.json", hostile)
    driver = open_browser()
    assert load(driver, site.page(banner="banner-hostile.json", now=BOTH_CLOSED, expanded="true")) == "shown"
    shown = banner(driver)
    assert shown.find_element(By.CSS_SELECTOR, ".ccb__title-text").text == hostile["locales"]["en"]["title"]
    assert shown.find_element(By.CSS_SELECTOR, ".ccb__body").text == hostile["locales"]["en"]["body"]
    assert not shown.find_elements(By.CSS_SELECTOR, "img, script, b, iframe")
    hrefs = [a.get_attribute("href") or "" for a in shown.find_elements(By.CSS_SELECTOR, "a")]
    assert all(h.split(":")[0] in {"http", "https", "tel", "sms", "mailto"} for h in hrefs), hrefs
    assert [a.text for a in shown.find_elements(By.CSS_SELECTOR, ".ccb__link")] == ["E-mail us", "Status"]
    emergency = inquiry(driver, "emergency")
    assert not emergency.find_elements(By.CSS_SELECTOR, "a"), "the route with a javascript: href is not a link"
    assert "Outage and emergency line" in emergency.text
    assert driver.execute_script("return window.__pwned") is None
    assert page_errors(driver) == []
    screenshot(driver, "hostile-text")


# ---------------------------------------------------------------- accessibility and layout


def test_controls_are_buttons_reachable_by_keyboard(open_browser: Callable[..., WebDriver], site: Site) -> None:
    driver = open_browser()
    assert load(driver, site.page(now=BOTH_CLOSED)) == "shown"
    shown = banner(driver)
    toggle = shown.find_element(By.CSS_SELECTOR, ".ccb__toggle")
    dismiss = shown.find_element(By.CSS_SELECTOR, ".ccb__dismiss")
    panel = shown.find_element(By.CSS_SELECTOR, ".ccb__panel")
    for button in (toggle, dismiss):
        assert button.tag_name == "button" and button.get_attribute("type") == "button"
    assert toggle.get_attribute("aria-expanded") == "false"
    assert toggle.get_attribute("aria-controls") == panel.get_attribute("id")
    assert dismiss.accessible_name == "Dismiss this notice"
    assert not panel.is_displayed()

    def focused() -> str:
        return str(driver.execute_script(
            "var e = document.activeElement; return e.className || e.id || e.tagName;"))

    order = []
    for _ in range(4):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        order.append(focused())
    assert order == ["ccb__lang", "ccb__toggle", "ccb__dismiss", "site-home"]

    ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.TAB, Keys.TAB).key_up(Keys.SHIFT).perform()
    assert focused() == "ccb__toggle"
    ring = driver.execute_script(
        "var s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth];")
    assert ring == ["solid", "3px"], "keyboard focus is visible"
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert panel.is_displayed()
    assert toggle.text == "Show less"
    screenshot(driver, "keyboard-expanded-focus")
    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    assert toggle.get_attribute("aria-expanded") == "false" and not panel.is_displayed()
    assert focused() == "ccb__toggle"
    ActionChains(driver).send_keys(Keys.TAB, Keys.SPACE).perform()
    assert widget_state(driver) == "dismissed" and no_banner(driver)
    assert page_errors(driver) == []


_CONTRAST = """
const parse = (c) => { const p = c.match(/[\\d.]+/g).map(Number); return p.length === 3 ? p.concat(1) : p; };
const background = (el) => {
  for (; el; el = el.parentElement) { const c = parse(getComputedStyle(el).backgroundColor); if (c[3] > 0) return c; }
  return [255, 255, 255, 1];
};
const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
const out = [];
for (const sel of arguments[0]) for (const el of document.querySelectorAll('.ccb ' + sel)) {
  const s = getComputedStyle(el);
  out.push([sel, ratio(parse(s.color), background(el)), ratio(parse(s.outlineColor), background(el.parentElement))]);
}
return out;
"""


def test_severity_is_clear_and_readable(open_browser: Callable[..., WebDriver], site: Site,
                                        banner_document: dict[str, Any]) -> None:
    driver = open_browser()
    for severity, word in (("info", "Information"), ("warning", "Important"), ("critical", "Urgent")):
        site.add(f"banner-{severity}.json", variant(banner_document, id=f"notice-{severity}", severity=severity))
        page = site.page(banner=f"banner-{severity}.json", now=CHAT_CLOSED, expanded="true")
        assert load(driver, page) == "shown"
        shown = banner(driver)
        assert "ccb--" + severity in (shown.get_attribute("class") or "")
        title = shown.find_element(By.CSS_SELECTOR, ".ccb__title")
        assert title.get_attribute("role") == ("alert" if severity == "critical" else "status")
        assert shown.get_attribute("aria-labelledby") == title.get_attribute("id")
        assert shown.find_element(By.CSS_SELECTOR, ".ccb__severity").text == word  # not colour alone
        assert (title.get_attribute("textContent") or "").startswith(f"{word}: ")  # said before the title
        selectors = [".ccb__severity", ".ccb__title", ".ccb__toggle", ".ccb__dismiss", ".ccb__body",
                     ".ccb__heading", ".ccb__inquiry-label", ".ccb__route-label", ".ccb__contact", ".ccb__state",
                     ".ccb__hours", ".ccb__instead", ".ccb__link", ".ccb__meta"]
        measured = driver.execute_script(_CONTRAST, selectors)
        assert {m[0] for m in measured} == set(selectors)
        low = [(sel, round(text, 2)) for sel, text, _ in measured if text < 4.5]
        assert low == [], f"{severity}: text contrast below 4.5:1: {low}"
        # Focus rings use the bar's text colour in the bar: at least 3:1 against it.
        rings = [(sel, round(ring, 2)) for sel, _, ring in measured if sel in {".ccb__toggle", ".ccb__dismiss"}]
        assert all(ring >= 3 for _, ring in rings), (severity, rings)
        assert page_errors(driver) == []
        screenshot(driver, f"severity-{severity}")


def _overflowing(driver: WebDriver) -> list[str]:
    return [str(x) for x in driver.execute_script("""
        const width = document.documentElement.clientWidth, out = [];
        if (document.documentElement.scrollWidth > width) out.push('page ' + document.documentElement.scrollWidth);
        for (const el of document.querySelectorAll('.ccb *')) {
          const r = el.getBoundingClientRect();
          if (r.width && (r.left < -0.5 || r.right > width + 0.5)) out.push(el.className + ' ' + r.right);
        }
        return out;""")]


def test_long_text_fits_a_phone(open_browser: Callable[..., WebDriver], site: Site) -> None:
    driver = open_browser("el-GR,el", phone=True)
    for locale, forced in (("el", None), ("nl", "nl")):  # Greek from the browser; Dutch chosen by the page
        assert load(driver, site.page(now=BOTH_CLOSED, locale=forced)) == "shown"
        assert banner(driver).get_attribute("lang") == locale
        assert driver.execute_script("return document.documentElement.clientWidth") == 375
        assert _overflowing(driver) == []
        for selector in (".ccb__toggle", ".ccb__dismiss", ".ccb__lang"):
            size = banner(driver).find_element(By.CSS_SELECTOR, selector).size
            assert size["height"] >= 44 and size["width"] >= 44, (selector, size)
        screenshot(driver, f"phone-{locale}-collapsed")
        banner(driver).find_element(By.CSS_SELECTOR, ".ccb__toggle").click()
        assert _overflowing(driver) == []
        assert page_errors(driver) == []
        screenshot(driver, f"phone-{locale}-expanded")


# ---------------------------------------------------------------- the offline demo page


def test_demo_page_needs_no_network(open_browser: Callable[..., WebDriver], banner_document: dict[str, Any],
                                    tmp_path: Path) -> None:
    page = tmp_path / "demo.html"
    page.write_text(demo_page(banner_document, now=BOTH_CLOSED, locale="el"), encoding="utf-8")
    driver = open_browser()
    assert load(driver, page.as_uri()) == "shown"  # file://, and the page's CSP forbids every request
    shown = banner(driver)
    assert shown.get_attribute("lang") == "el"
    assert shown.find_element(By.CSS_SELECTOR, ".ccb__panel").is_displayed()
    assert routes_shown(inquiry(driver, "technical"))[1] == ("help-centre", "fallback", "true")
    assert shown.find_element(By.CSS_SELECTOR, ".ccb__bar").value_of_css_property("background-color") \
        == "rgba(164, 22, 26, 1)"
    shown.find_element(By.CSS_SELECTOR, ".ccb__dismiss").click()
    assert driver.execute_script("return localStorage.length") == 0, "previews remember nothing"
    assert [e for e in console_entries(driver) if e["level"] == "SEVERE"] == []
    driver.refresh()
    WebDriverWait(driver, 5).until(lambda d: widget_state(d) == "shown")
    screenshot(driver, "demo-page")
    page.write_text(demo_page(None), encoding="utf-8")
    assert load(driver, page.as_uri()) == "none"
    assert no_banner(driver)
    assert [e for e in console_entries(driver) if e["level"] == "SEVERE"] == []


# ---------------------------------------------------------------- the banner's whole life


def test_withdrawn_banner_shows_nothing_on_the_next_page_view(open_browser: Callable[..., WebDriver], site: Site,
                                                              tmp_path: Path) -> None:
    """``crisiscomms banner withdraw`` replaces the file; the next page view shows nothing, with no error."""
    import sys

    live = site.add("banner-life.json", (site.root / "banner.json").read_text(encoding="utf-8"))
    driver = open_browser()
    assert load(driver, site.page(banner=live, now=ALL_OPEN)) == "shown"
    playbook = Path(__file__).resolve().parents[2] / "playbooks" / "nordvind-storm.yaml"
    result = subprocess.run([sys.executable, "-m", "crisiscomms", "banner", "withdraw", str(playbook),
                             "--banner-out", str(site.root / live), "--at", "2026-12-07T09:00+01:00"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert load(driver, site.page(banner=live, now=ALL_OPEN)) == "withdrawn"
    assert no_banner(driver)
    driver.find_element(By.ID, "site-button").click()
    assert driver.execute_script("return window.__clicks") == 1
    assert page_errors(driver) == []
    screenshot(driver, "withdrawn")


def test_without_its_stylesheet_the_page_stays_usable(open_browser: Callable[..., WebDriver], site: Site) -> None:
    """``data-css="none"`` and no site CSS for it: small icons, the site's own content and controls still usable."""
    driver = open_browser()
    assert load(driver, site.page(now=ALL_OPEN, css="none")) == "shown"
    assert not driver.find_elements(By.CSS_SELECTOR, "link[data-crisiscomms-banner]")
    icons = banner(driver).find_elements(By.CSS_SELECTOR, "svg")
    assert icons, "the widget draws its icons as SVG"
    for svg in icons:
        size = svg.size
        assert size["width"] <= 24 and size["height"] <= 24, size  # not the 300×150 default of an unsized SVG
    screenshot(driver, "without-stylesheet")
    height = driver.execute_script("return document.querySelector('section.ccb').getBoundingClientRect().height;")
    assert height < 900, "the collapsed banner must not push the page out of the first screen"
    button = driver.find_element(By.ID, "site-button")
    driver.execute_script("arguments[0].scrollIntoView();", button)
    button.click()
    assert driver.execute_script("return window.__clicks") == 1
    assert page_errors(driver) == []


def test_a_fallback_text_brings_its_own_words_and_lang(open_browser: Callable[..., WebDriver], site: Site,
                                                      banner_document: dict[str, Any]) -> None:
    """Everything follows the text actually shown: a German visitor given the English text (declared
    {de: en}) sees English widget words and lang="en"; a nb entry holding the Swedish text speaks Swedish."""
    document = copy.deepcopy(banner_document)
    document["locale_fallbacks"] = {"de": "en"}
    document["locales"]["nb"] = dict(document["locales"]["sv"], lang="sv")
    name = site.add("banner-fallbacks.json", document)
    driver = open_browser("de-DE,de")
    assert load(driver, site.page(banner=name, now=ALL_OPEN, expanded="true")) == "shown"
    shown = banner(driver)
    assert shown.get_attribute("lang") == "en"
    assert shown.find_element(By.CSS_SELECTOR, ".ccb__title-text").text == document["locales"]["en"]["title"]
    assert shown.find_element(By.CSS_SELECTOR, ".ccb__toggle").text == "Show less"
    nb = open_browser("nb-NO,nb")
    assert load(nb, site.page(banner=name, now=ALL_OPEN, expanded="true")) == "shown"
    shown = banner(nb)
    assert shown.get_attribute("lang") == "sv"
    assert shown.find_element(By.CSS_SELECTOR, ".ccb__toggle").text == "Visa mindre"
    assert "Öppet nu" in shown.text and "Åpent nå" not in shown.text
    label = document["inquiries"][0]["label"]["sv"]  # labels and hours follow the Swedish text too
    assert shown.find_element(By.CSS_SELECTOR, ".ccb__inquiry-label").text == label
