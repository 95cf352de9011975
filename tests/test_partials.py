"""The shipped "how to reach us" partials: special hours and their note, waits and call-backs, a second
option, and the next update, in every shipped locale (exact texts)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from crisiscomms.loader import load_playbook
from crisiscomms.render import EmailContent, NoticeRenderer

from .conftest import ROOT, run_cli

STORM = ROOT / "playbooks" / "nordvind-storm.yaml"
THURSDAY_NIGHT = dt.datetime(2026, 12, 3, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def email(locale: str, *, waits: dict[str, dt.timedelta] | None = None) -> EmailContent:
    loaded = load_playbook(STORM)
    renderer = NoticeRenderer.for_playbook(loaded.require(), loaded.base_dir, "storm-outage", THURSDAY_NIGHT,
                                           waits=waits)
    content = renderer.render("email", locale, "Europe/Stockholm", {"name": "Anna", "locale": locale})
    assert isinstance(content, EmailContent)
    return content


def lines(content: EmailContent) -> list[str]:
    return [line.strip() for line in content.text.splitlines()]


@pytest.mark.parametrize(("locale", "wait", "note", "second", "next_update"), [
    ("en", "About 25 minutes' wait — or book a call-back: https://nordvind.example/ring-upp",
     "Open around the clock while the storm is at its worst (Dec 3, 06:00\u2009–\u2009Dec 4, 18:00): 24/7",
     "Another option: Customer service by text: +46 70 174 06 10 (Open now, until tomorrow at 24:00 – a person "
     "answers)", "We will send the next update by Dec 4, 2026, 05:30."),
    ("sv", "Cirka 25 minuter väntetid – eller boka att vi ringer upp: https://nordvind.example/ring-upp",
     "Öppet dygnet runt medan stormen är som värst (3 dec. 06:00–4 dec. 18:00): dygnet runt",
     "Du kan också använda: Sms-kundtjänsten: +46 70 174 06 10 (Öppet nu, till i morgon kl. 24:00 – en "
     "medarbetare svarar)", "Nästa uppdatering kommer senast 4 dec. 2026 05:30."),
    ("da", "Ca. 25 minutter ventetid – eller bestil et opkald: https://nordvind.example/ring-upp",
     "Åbent døgnet rundt, mens stormen er værst (3. dec. 06.00-4. dec. 18.00): døgnet rundt",
     "Du kan også bruge: Kundeservice på sms: +46 70 174 06 10 (Åbent nu, til i morgen kl. 24.00 – en "
     "medarbejder svarer)", "Næste opdatering kommer senest 4. dec. 2026 05.30."),
    ("nb", "Ca. 25 minutter ventetid – eller be om å bli oppringt: https://nordvind.example/ring-upp",
     "Åpent døgnet rundt mens stormen er på sitt verste (3. des., 06:00–4. des., 18:00): døgnet rundt",
     "Du kan også bruke: Kundeservice på SMS: +46 70 174 06 10 (Åpent nå, til i morgen kl. 24:00 – en "
     "medarbeider svarer)", "Neste oppdatering kommer senest 4. des. 2026, 05:30."),
    ("nl", "Ongeveer 25 minuten wachttijd – of laat je terugbellen: https://nordvind.example/ring-upp",
     "Dag en nacht open zolang de storm op zijn hevigst is (3 dec, 06:00\u2009–\u20094 dec, 18:00): dag en nacht",
     "Je kunt ook terecht bij: Klantenservice via sms: +46 70 174 06 10 (Nu open, tot morgen om 24:00 – een "
     "medewerker reageert)", "De volgende update volgt uiterlijk 4 dec 2026, 05:30."),
    ("el", "Αναμονή περίπου 25 λεπτά – ή ζητήστε να σας καλέσουμε: https://nordvind.example/ring-upp",
     "Ανοιχτά όλο το 24ωρο όσο η καταιγίδα βρίσκεται στην κορύφωσή της (3 Δεκ, 06:00 - 4 Δεκ, 18:00): "
     "όλο το 24ωρο",
     "Επίσης: Εξυπηρέτηση πελατών μέσω SMS: +46 70 174 06 10 (Ανοιχτά τώρα, έως αύριο, 24:00 – απαντά "
     "συνάδελφός μας)", "Η επόμενη ενημέρωση θα σταλεί έως 4 Δεκ 2026, 05:30."),
])
def test_every_locale_tells_the_crisis_hours_waits_and_a_second_option(
        locale: str, wait: str, note: str, second: str, next_update: str) -> None:
    content = email(locale, waits={"outage-line": dt.timedelta(minutes=25)})
    text = lines(content)
    assert wait in text
    assert note in text  # the exception's note, where it applies, with the hours that apply then
    portal = next(i for i, line in enumerate(text) if line.startswith(("My pages", "Mina sidor", "Mine sider",
                                                                          "Min side", "Mijn Nordvind", "Ο λογαρ")))
    assert text[portal + 2] == second  # the fallback behind the always-open portal appears
    assert next_update in text
    assert "ring-upp" in content.html and note.split(" (")[0] in content.html


def test_without_a_wait_only_the_call_back_is_offered() -> None:
    text = lines(email("en"))
    assert "Book a call-back: https://nordvind.example/ring-upp" in text
    assert not any("wait" in line for line in text)


def test_usual_hours_are_named_so_while_exceptional_hours_apply() -> None:
    text = lines(email("en"))
    assert "Usual opening hours: Mon–Fri 07:00\u2009–\u200922:00, Sat–Sun 09:00\u2009–\u200918:00" in text
    quiet = NoticeRenderer.for_playbook(load_playbook(STORM).require(), STORM.parent, "storm-outage",
                                        dt.datetime(2026, 11, 18, 12, tzinfo=dt.UTC))
    content = quiet.render("email", "en", "Europe/Stockholm", {"name": "A", "locale": "en"})
    assert isinstance(content, EmailContent)
    assert "Opening hours: Mon–Fri 07:00\u2009–\u200922:00, Sat–Sun 09:00\u2009–\u200918:00" in lines(content)


def test_send_takes_waits_per_route(tmp_path: Path) -> None:
    audience = tmp_path / "a.csv"
    audience.write_text("id,email,locale\n1,a@example.org,en\n", encoding="utf-8")
    base = ["send", str(STORM), "--notice", "storm-outage", "--audience", str(audience), "--dry-run",
            "--channels", "email", "--at", "2026-12-03T23:30+01:00"]
    result = run_cli(*base, "--wait", "outage-line=25m", "--wait", "sms-agents=PT1H30M")
    assert result.code == 0, result.stderr
    shown = " ".join(result.stdout.replace("│", " ").split())  # the sample e-mail, unwrapped
    assert "About 25 minutes' wait — or book a call-back: https://nordvind.example/ring-upp" in shown
    assert "About 90 minutes' wait." in shown
    unknown = run_cli(*base, "--wait", "hotline=25m")
    assert unknown.code == 2
    assert ("--wait 'hotline=25m': the playbook has no route 'hotline' (routes: outage-line, live-chat, sms-agents, "
            "portal, outage-map, help-centre)") in unknown.stderr
    bad = run_cli(*base, "--wait", "outage-line=soon")
    assert bad.code == 2
    assert ("--wait 'outage-line=soon': 'soon' is not a duration; write 36h, 90m, 2d, 1d12h or ISO 8601 like PT36H"
            in bad.stderr)


def test_regression_a_24_7_extension_is_not_open_until_22(tmp_path: Path) -> None:
    """Issue 13: a 24/7 extension 14 Oct 06:00 - 15 Oct 18:00; at 23:30 the e-mail said "Open now, until 22:00"."""
    text = STORM.read_text(encoding="utf-8").replace(
        "version: 1\n", f"version: 1\ntemplates: {ROOT / 'templates'}\n", 1)
    text = text.replace("      - from: 2026-11-30\n        to: 2026-12-03T06:00\n",
                        "      - {from: 2026-10-14T06:00, to: 2026-10-15T18:00, hours: always}\n"
                        "      - from: 2026-11-30\n        to: 2026-12-03T06:00\n", 1)
    (tmp_path / "storm.yaml").write_text(text, encoding="utf-8")
    loaded = load_playbook(tmp_path / "storm.yaml")
    late = dt.datetime(2026, 10, 14, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    renderer = NoticeRenderer.for_playbook(loaded.require(), loaded.base_dir, "storm-outage", late)
    content = renderer.render("email", "en", "Europe/Stockholm", {"name": "Anna", "locale": "en"})
    assert isinstance(content, EmailContent)
    assert "Open now, until 22:00" not in content.text
    assert "   Open now, until tomorrow at 22:00 – a person answers." in content.text.splitlines()
    assert "Open now, until tomorrow at 22:00 – a person answers." in content.html


def test_preview_takes_waits_too() -> None:
    result = run_cli("preview", str(STORM), "--notice", "storm-outage", "--locale", "sv", "--format", "json",
                     "--at", "2026-12-03T23:30+01:00", "--wait", "outage-line=25m")
    assert result.code == 0, result.stderr
    text = json.loads(result.stdout)["locales"]["sv"]["email"]["text"]
    assert "   Cirka 25 minuter väntetid – eller boka att vi ringer upp: https://nordvind.example/ring-upp" in text


def render_at(moment: dt.datetime, locale: str) -> list[str]:
    loaded = load_playbook(STORM)
    renderer = NoticeRenderer.for_playbook(loaded.require(), loaded.base_dir, "storm-outage", moment)
    content = renderer.render("email", locale, "Europe/Stockholm", {"name": "Anna", "locale": locale})
    assert isinstance(content, EmailContent)
    return lines(content)


@pytest.mark.parametrize(("locale", "until"), [
    ("en", "Open now, until midnight – a person answers."), ("sv", "Öppet nu, till midnatt – en medarbetare svarar."),
    ("da", "Åbent nu, til midnat – en medarbejder svarer."), ("nb", "Åpent nå, til midnatt – en medarbeider svarer."),
    ("nl", "Nu open, tot middernacht – een medewerker reageert."),
    ("el", "Ανοιχτά τώρα, έως τα μεσάνυχτα – απαντά συνάδελφός μας."),
])
def test_a_closing_at_the_end_of_today_is_midnight(locale: str, until: str) -> None:
    assert until in render_at(dt.datetime(2026, 12, 5, 14, tzinfo=dt.timezone(dt.timedelta(hours=1))), locale)


@pytest.mark.parametrize(("locale", "person"), [
    ("en", "Need to talk to someone now? Outage and emergency line (+46 8 465 004 10) is staffed around the clock."),
    ("sv", "Vill du prata med någon nu? Störningsjouren (+46 8 465 004 10) har öppet dygnet runt."),
    ("nl", "Nu iemand spreken? Storingsdienst (+46 8 465 004 10) is dag en nacht bereikbaar."),
    ("el", "Θέλετε να μιλήσετε τώρα με κάποιον; Γραμμή βλαβών και έκτακτης ανάγκης (+46 8 465 004 10): "
           "λειτουργεί όλο το 24ωρο."),
])
def test_at_night_a_person_stays_on_offer(locale: str, person: str) -> None:
    """Review 1.3: when only self-service is open for a need, the 24/7 staffed line is still named."""
    text = render_at(dt.datetime(2026, 12, 6, 3, tzinfo=dt.timezone(dt.timedelta(hours=1))), locale)
    assert text.count(person) == 2  # questions about the outage, technical problems


def test_a_german_reader_gets_one_language_in_the_email() -> None:
    """{de: en} in the shipped playbook: the English text, English dates and lang="en" — no German, no Swedish."""
    content = email("de")
    assert content.text_locale == "en"
    assert '<html lang="en" dir="ltr">' in content.html
    assert "We will send the next update by Dec 4, 2026, 05:30." in lines(content)
    assert "Uhr" not in content.text and "Dez" not in content.text and "dec." not in content.text


@pytest.mark.parametrize(("locale", "closed", "special"), [
    ("en", "Customer service by text: closed right now, opens today at 06:00.",
     "Extended opening hours during the storm (Dec 4, 18:00\u2009–\u2009Dec 13): 06:00\u2009–\u200924:00"),
    ("sv", "Sms-kundtjänsten: stängt just nu, öppnar i dag kl. 06:00.",
     "Förlängda öppettider under stormen (4 dec. 18:00–13 dec.): 06:00–24:00"),
    ("da", "Kundeservice på sms: lukket lige nu, åbner i dag kl. 06.00.",
     "Udvidede åbningstider under stormen (4. dec. 18.00-13. dec.): 06.00–24.00"),
    ("nb", "Kundeservice på SMS: stengt akkurat nå, åpner i dag kl. 06:00.",
     "Utvidede åpningstider under stormen (4. des., 18:00–13. des.): 06:00–24:00"),
    ("nl", "Klantenservice via sms: nu niet bereikbaar, weer bereikbaar vandaag om 06:00.",
     "Ruimere openingstijden tijdens de storm (4 dec, 18:00\u2009–\u200913 dec): 06:00–24:00"),
    ("el", "Εξυπηρέτηση πελατών μέσω SMS: δεν λειτουργεί τώρα· ξανά σήμερα, 06:00.",
     "Διευρυμένο ωράριο κατά τη διάρκεια της καταιγίδας (4 Δεκ, 18:00 - 13 Δεκ): 06:00–24:00"),
])
def test_a_route_closed_at_the_moment_still_tells_its_exceptional_hours(locale: str, closed: str,
                                                                         special: str) -> None:
    """At 03:00 on 6 Dec customer service by text is closed, but its storm hours (4–13 Dec) apply that day:
    the reader learns them beside "closed right now", in the text and the HTML part."""
    moment = dt.datetime(2026, 12, 6, 3, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    text = render_at(moment, locale)
    assert text[text.index(closed) + 1] == special
    loaded = load_playbook(STORM)
    renderer = NoticeRenderer.for_playbook(loaded.require(), loaded.base_dir, "storm-outage", moment)
    content = renderer.render("email", locale, "Europe/Stockholm", {"name": "Anna", "locale": locale})
    assert isinstance(content, EmailContent)
    note, hours = special.rsplit(": ", 1)
    assert f".<br>\n<strong>{note}:</strong> {hours}<br>" in content.html
