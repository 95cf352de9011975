"""The SendGrid stand-in's substitutions: applied as SendGrid does, recorded, and limited to 10,000 bytes."""

from __future__ import annotations

from typing import Any

import httpx

from crisiscomms.testing.standin import StandinConfig, standin_in_thread


def mail(personalizations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"from": {"email": "a@example.org"}, "subject": "Hi -n-", "personalizations": personalizations,
            "content": [{"type": "text/plain", "value": "Hello -n-, -n-!"},
                        {"type": "text/html", "value": "<p>Hello -h-</p>"}]}


def post(url: str, key: str, payload: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + "/v3/mail/send", json=payload, headers={"Authorization": f"Bearer {key}"})


def test_each_personalization_gets_its_substitutions_in_subject_text_and_html() -> None:
    payload = mail([{"to": [{"email": "b@example.org"}], "substitutions": {"-n-": "Bo & <Co>", "-h-": "Bo &amp;"}},
                    {"to": [{"email": "c@example.org"}]}])
    with standin_in_thread(StandinConfig()) as standin:
        answer = post(standin.sendgrid_url, standin.config.sendgrid_key, payload)
        records = standin.emails
    assert answer.status_code == 202
    assert [(r.to, r.subject, r.text, r.html) for r in records] == [
        ("b@example.org", "Hi Bo & <Co>", "Hello Bo & <Co>, Bo & <Co>!", "<p>Hello Bo &amp;</p>"),
        ("c@example.org", "Hi -n-", "Hello -n-, -n-!", "<p>Hello -h-</p>")]
    assert [r.to_json()["substitutions"] for r in records] == [2, 0]


def test_substitutions_over_10000_bytes_are_refused() -> None:
    payload = mail([{"to": [{"email": "b@example.org"}], "substitutions": {"x": "a" * 10_000}}])
    with standin_in_thread(StandinConfig()) as standin:
        answer = post(standin.sendgrid_url, standin.config.sendgrid_key, payload)
        assert standin.emails == []
    assert answer.status_code == 400
    assert answer.json()["errors"] == [{
        "message": "The substitutions of a personalization may not exceed 10,000 bytes.",
        "field": "personalizations.0.substitutions",
        "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
                "#message.personalizations.substitutions"}]


def test_substitution_values_must_be_strings() -> None:
    payload = mail([{"to": [{"email": "b@example.org"}], "substitutions": {"-n-": 5}}])
    with standin_in_thread(StandinConfig()) as standin:
        answer = post(standin.sendgrid_url, standin.config.sendgrid_key, payload)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["message"] == "Substitutions must be an object whose values are strings."
