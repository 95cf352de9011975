"""crisiscomms benchmarks: one command, a table, and docs/benchmarks.md.

    python bench/run.py [--quick] [--only NAME ...] [--profile] [--doc PATH | --no-doc]
                        [--apprise-python PYTHON]

Apprise is not a dependency: point ``--apprise-python`` (or ``BENCH_APPRISE_PYTHON``) at a
Python that has it (e.g. ``python3 -m venv /tmp/apprise-venv && /tmp/apprise-venv/bin/pip
install apprise``); without one its row says "not installed".

Benchmarks (``--only`` names):

* ``startup``: ``crisiscomms --help`` and ``crisiscomms validate playbooks/`` wall time (median).
* ``dry-run``: ``send --dry-run --format json`` over a generated audience of 1,000,000 rows
  (``--quick``: 100,000): wall time, recipients per second, peak RSS.
* ``send``: a real ``send --channels sms --yes`` of N SMS (5,000; quick 1,000) to the
  provider stand-in (50 ms latency), and in the same run against the same stand-in:
  raw aiohttp, httpx(+aiohttp), the Twilio SDK (async over crisiscomms' client, and the
  sync loop), SendGrid's sync loop, Apprise's Twilio plugin.
* ``email-batching``: 10,000 e-mails whose content does not depend on the reader (a
  temporary copy of the test playbook): requests the stand-in received per locale.
* ``email-personalised``: 10,000 personalised e-mails (the shipped storm notice greets each reader by
  name) batched with SendGrid substitutions: requests, rate; and the old path (``--email-batch-size 1``,
  2,000 e-mails: one request each) against the same stand-in in the same run.
* ``rate-cap``: 2,000 SMS to a stand-in capped at 200 requests/s: achieved rate, 429
  share, and every SMS delivered exactly once.
* ``plan-start``: ``crisiscomms plan`` of 200,000 and 1,000,000 SMS (quick: 20,000 and
  100,000) into a fresh ledger, then ``send --plan ID --yes``: seconds from the command's
  start to the first SMS the stand-in accepted (targets ≤ 2 s and ≤ 3 s).
* ``team``: the PostgreSQL team ledger (``bench/team.py``): N SMS (3,000; quick 800) sent by one sender and by
  two joined senders, each capped by its own ``--concurrency``; and the ledger's time per message on SQLite
  beside PostgreSQL (a throwaway durable cluster; skipped with the reason without PostgreSQL's binaries).

Every CLI run is a subprocess of the real entry point (``crisiscomms``) with a fresh
temporary working directory (so the ledger lands there); the stand-in is a separate
process too. All figures that are compared are measured in the same run. ``--profile``
also runs the dry run and the SMS send under cProfile and writes the top functions to
the work folder (not to the doc). The doc is written for a full run (no ``--quick``, no
``--only``) unless ``--doc``/``--no-doc`` say otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import pstats
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from io import StringIO
from pathlib import Path
from typing import Any

from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    AT,
    BENCH_DIR,
    CONCURRENCY,
    LATENCY,
    NOTICE,
    PLAYBOOK,
    RATE_CAP,
    REPO,
    SEED,
    Context,
    Figure,
    Run,
    Standin,
    _check,
    _number,
    _shorten,
    audience,
    cli_env,
    console,
    fresh_dir,
    run,
    run_tree,
    send_argv,
    span_rate,
)
from team import bench_team, team_section

PACKAGES = ("crisiscomms", "click", "jinja2", "pyyaml", "rich", "pydantic", "babel", "phonenumbers",
            "email-validator", "httpx", "httpx-aiohttp", "aiohttp", "twilio", "sendgrid")

# --------------------------------------------------------------------------- 1. start-up


def bench_startup(ctx: Context) -> list[Figure]:
    env = cli_env()
    help_argv = [ctx.crisiscomms, "--help"]
    validate_argv = [ctx.crisiscomms, "validate", "playbooks/"]
    ctx.note_command("startup", help_argv)
    ctx.note_command("startup", validate_argv)
    help_runs, validate_runs = 7, ctx.size(5, 3)
    run(help_argv, cwd=REPO, env=env)  # warm the file cache
    helps = []
    for _ in range(help_runs):
        result = run(help_argv, cwd=REPO, env=env)
        _check(result, "crisiscomms --help")
        helps.append(result.seconds)
    # validate: cold (an empty template cache every run, as in CI on a new machine) and warm (the cache kept)
    colds = []
    for _ in range(validate_runs):
        cold_env = {**env, "CRISISCOMMS_CACHE_DIR": tempfile.mkdtemp(prefix="cold-cache-", dir=ctx.work)}
        result = run(validate_argv, cwd=REPO, env=cold_env)
        _check(result, "crisiscomms validate playbooks/ (cold)")
        colds.append(result.seconds)
    run(validate_argv, cwd=REPO, env=env)  # fills the shared cache
    warms = []
    for _ in range(validate_runs):
        result = run(validate_argv, cwd=REPO, env=env)
        _check(result, "crisiscomms validate playbooks/")
        warms.append(result.seconds)
    help_median, cold, warm = statistics.median(helps), statistics.median(colds), statistics.median(warms)
    return [
        Figure("startup", f"crisiscomms --help (median of {help_runs})", help_median, "s", "< 0.3 s", help_median < 0.3,
               note=f"min {min(helps):.3f} s"),
        Figure("startup", f"crisiscomms validate playbooks/, cold template cache (median of {validate_runs})", cold,
               "s", "< 1 s", cold < 1.0, note=f"min {min(colds):.3f} s"),
        Figure("startup", f"crisiscomms validate playbooks/, warm template cache (median of {validate_runs})", warm,
               "s", "< 1 s", warm < 1.0, note=f"min {min(warms):.3f} s"),
    ]


# --------------------------------------------------------------------------- 2. dry run


def bench_dry_run(ctx: Context) -> list[Figure]:
    rows = ctx.size(1_000_000, 100_000)
    path, opt_out = audience(ctx, rows, clean=False, suppress=True)
    assert opt_out is not None
    argv = send_argv(ctx, path, "--suppress", str(opt_out), "--dry-run", "--format", "json")
    ctx.note_command("dry-run", argv)
    cwd = fresh_dir(ctx, "dry-run")
    result = run(argv, cwd=cwd, env=cli_env(), measure_rss=True, timeout=1800)
    _check(result, "send --dry-run")
    summary = json.loads(result.stdout)
    ctx.details["dry_run"] = {"rows": rows, "summary": summary}
    rate = rows / result.seconds
    rss_mb = (result.max_rss_kb or 0) / 1024
    figures = [
        Figure("dry-run", f"send --dry-run, {rows:,} rows: wall", result.seconds, "s"),
        Figure("dry-run", "recipients per second", rate, "rows/s", "≥ 20,000 rows/s", rate >= 20_000),
        Figure("dry-run", "peak RSS", rss_mb if result.max_rss_kb else None, "MB", "< 200 MB",
               rss_mb < 200 if result.max_rss_kb else None),
    ]
    if ctx.profile:
        profile_cli(ctx, "dry-run", argv, cwd=fresh_dir(ctx, "dry-run-profile"), env=cli_env())
    return figures


def profile_cli(ctx: Context, name: str, argv: Sequence[str], *, cwd: Path, env: dict[str, str],
                before: Callable[[], None] | None = None) -> None:
    """Run the CLI once under cProfile; write the top 25 by cumulative and by own time next to the stats."""
    folder = ctx.work / "profiles"
    folder.mkdir(exist_ok=True)
    stats_path = folder / f"{name}.pstats"
    if before is not None:
        before()
    result = run([ctx.python, "-m", "cProfile", "-o", str(stats_path), *argv], cwd=cwd, env=env, timeout=3600)
    _check(result, f"profile of {name}", codes=(0, 1))
    buffer = StringIO()
    stats = pstats.Stats(str(stats_path), stream=buffer)
    stats.strip_dirs()
    buffer.write(f"# {name}: {shlex.join(_shorten(a, ctx.work) for a in argv)}\n# wall {result.seconds:.1f} s\n")
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(25)
    text_path = folder / f"{name}.txt"
    text_path.write_text(buffer.getvalue(), encoding="utf-8")
    ctx.profiles.append(text_path)
    console.log(f"profile of {name}: {text_path}")


# --------------------------------------------------------------------------- 3. SMS send vs baselines


def _client(ctx: Context, standin: Standin, mode: str, count: int, *, python: str | None = None,
            extra: Sequence[str] = ()) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """Run one baseline client; (its JSON, the stand-in's records for it, the answer counters)."""
    standin.reset()
    argv = [python or ctx.python, str(BENCH_DIR / "clients.py"), mode, "--url", standin.url, "--count", str(count),
            "--concurrency", str(CONCURRENCY), *extra]
    ctx.note_command("send", [argv[0] if python is None else "$APPRISE_PYTHON", *argv[1:]])
    result = run(argv, cwd=ctx.work, env=cli_env(), timeout=900)
    _check(result, f"client {mode}")
    said = json.loads(result.stdout.strip().splitlines()[-1])
    said["cpu_seconds"] = result.cpu_seconds  # the client process's, start-up included
    record = standin.record()
    records = record["sms"] or record["emails"]
    return said, records, record["answers"]


def _apprise_python(ctx: Context) -> str | None:
    """A Python that can ``import apprise``: this one, else ``--apprise-python``, else none."""
    candidates = [ctx.python, *([ctx.apprise_python] if ctx.apprise_python else [])]
    for python in candidates:
        try:
            probe = subprocess.run([python, "-c", "import apprise; print(apprise.__version__)"],
                                   capture_output=True, text=True, check=False, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            ctx.details["apprise_version"] = probe.stdout.strip()
            ctx.details["apprise_python"] = python
            return python
    return None


def bench_send(ctx: Context) -> list[Figure]:
    count = ctx.size(6_000, 1_000)
    sync_count = ctx.size(200, 30)
    email_count = ctx.size(1_000, 100)
    path, _ = audience(ctx, count, clean=True)
    email_path, _ = audience(ctx, email_count, clean=True)
    figures: list[Figure] = []
    rows: list[dict[str, Any]] = []
    with Standin(ctx, "send", latency=LATENCY) as standin:
        env = cli_env(standin.url)
        # crisiscomms: the real send, then a dry run of the same audience (the planning cost to subtract)
        standin.reset()
        argv = send_argv(ctx, path, "--channels", "sms", "--yes")
        ctx.note_command("send", argv)
        result = run(argv, cwd=fresh_dir(ctx, "sms-send"), env=env, measure_rss=True)
        _check(result, "crisiscomms send (sms)")
        record = standin.record()
        sms = record["sms"]
        if len(sms) != count or len({r["to"] for r in sms}) != count:
            raise RuntimeError(f"expected {count} distinct SMS at the stand-in, got {len(sms)}")
        rate, span = span_rate(sms)
        dry_argv = send_argv(ctx, path, "--channels", "sms", "--dry-run", "--format", "json")
        ctx.note_command("send", dry_argv)
        dry = run(dry_argv, cwd=fresh_dir(ctx, "sms-dry"), env=env)
        _check(dry, "crisiscomms send --dry-run (sms)")
        dispatch_seconds = result.seconds - dry.seconds
        assert rate is not None
        ours = rate
        rows.append({"client": "crisiscomms send --channels sms", "count": count, "rate": rate, "span": span,
                     "wall": result.seconds, "dry": dry.seconds})
        figures += [
            Figure("send", f"crisiscomms send, {count:,} SMS: first→last accepted", rate, "SMS/s", "≥ 1,000 SMS/s",
                   rate >= 1000, note=f"span {span:.2f} s"),
            Figure("send", "  whole command (wall; plan + ledger + send + summary)", count / result.seconds, "SMS/s",
                   note=f"wall {result.seconds:.2f} s"),
            Figure("send", "  dispatch phase by subtraction (wall − dry-run wall)",
                   count / dispatch_seconds if dispatch_seconds > 0 else None, "SMS/s",
                   note=f"{result.seconds:.2f} s − {dry.seconds:.2f} s"),
            Figure("send", "  peak RSS of the send", (result.max_rss_kb or 0) / 1024 or None, "MB"),
        ]
        if ctx.profile:
            profile_cli(ctx, "sms-send", argv, cwd=fresh_dir(ctx, "sms-profile"), env=env, before=standin.reset)

        # (a) the machine's limit, and diagnostics along crisiscomms' own stack
        baselines: list[tuple[str, str, int, str | None, Sequence[str]]] = [
            ("raw aiohttp, concurrency 100", "raw-aiohttp", count, None, ()),
            ("httpx + httpx-aiohttp (crisiscomms' HTTP stack, no SDK)", "httpx-aiohttp", count, None, ()),
            ("Twilio SDK create_async over crisiscomms' TwilioHttpxClient", "twilio-async", count, None, ()),
            (f"Twilio SDK sync loop (messages.create), {sync_count}", "twilio-sync", sync_count, None, ()),
        ]
        if not ctx.quick:  # slow: about 100 requests/s
            baselines.insert(3, ("httpx native transport (httpcore), concurrency 100", "httpx-native", 1_000, None, ()))
        apprise_python = _apprise_python(ctx)
        if apprise_python is not None:
            apprise_count = ctx.size(40, 5)
            baselines.append((f"Apprise Twilio plugin (default 0.2 s throttle), {apprise_count}", "apprise",
                              apprise_count, apprise_python, ()))
            if not ctx.quick:
                baselines.append((f"Apprise Twilio plugin, throttle off, {sync_count}", "apprise", sync_count,
                                  apprise_python, ("--no-throttle",)))
        results: dict[str, float | None] = {}
        client_rates: dict[str, float] = {}  # requests ÷ the client's own time (first request to last answer)
        raw_cpu: float | None = None
        for label, mode, n, python, extra in baselines:
            said, records, answers = _client(ctx, standin, mode, n, python=python, extra=extra)
            if mode == "raw-aiohttp":
                raw_cpu = said["cpu_seconds"]
            base_rate, base_span = span_rate(records)
            results[mode + ("-nothrottle" if extra else "")] = base_rate
            client_rates[mode + ("-nothrottle" if extra else "")] = n / said["seconds"]
            rows.append({"client": label, "count": n, "rate": base_rate, "span": base_span, "wall": said["seconds"],
                         "accepted": len(records), "answers": answers})
            figures.append(Figure("send", label, base_rate, "SMS/s", note=_ratio_note(ours, base_rate)))
        if apprise_python is None:
            figures.append(Figure("send", "Apprise Twilio plugin", None, "", note="not installed"))
            rows.append({"client": "Apprise Twilio plugin", "count": 0, "rate": None, "note": "not installed"})

        # e-mail: crisiscomms with the shipped (personalised) templates vs SendGrid's sync loop
        standin.reset()
        email_argv = send_argv(ctx, email_path, "--channels", "email", "--yes")
        ctx.note_command("send", email_argv)
        email_run = run(email_argv, cwd=fresh_dir(ctx, "email-send"), env=env)
        _check(email_run, "crisiscomms send (email)")
        email_record = standin.record()
        email_rate, email_span = span_rate(email_record["emails"])
        email_requests = email_record["requests"].get("sendgrid", 0)
        rows.append({"client": "crisiscomms send --channels email (shipped, personalised templates)",
                     "kind": "email", "count": email_count, "rate": email_rate, "span": email_span,
                     "wall": email_run.seconds, "requests": email_requests})
        figures.append(Figure("send", f"crisiscomms send, {email_count:,} e-mails (personalised, substitutions)",
                              email_rate, "mails/s", note=f"{email_requests} requests, concurrency 8"))
        said, records, _ = _client(ctx, standin, "sendgrid-sync", sync_count)
        sg_rate, sg_span = span_rate(records)
        rows.append({"client": f"SendGrid sync loop (SendGridAPIClient.send), {sync_count}", "kind": "email",
                     "count": sync_count,
                     "rate": sg_rate, "span": sg_span, "wall": said["seconds"]})
        figures.append(Figure("send", f"SendGrid sync loop, {sync_count} e-mails", sg_rate, "mails/s",
                              note=_ratio_note(email_rate, sg_rate, "crisiscomms e-mail")))

    raw = results.get("raw-aiohttp")
    raw_own = client_rates.get("raw-aiohttp")
    sdk = client_rates.get("twilio-sync")
    whole = count / result.seconds
    share = ours / raw if raw else None
    whole_share = whole / raw_own if raw_own else None
    times = whole / sdk if sdk else None
    figures += [
        Figure("send", "crisiscomms whole command ÷ raw aiohttp (its own first request to last answer)",
               whole_share, "×", "≥ 0.7 ×", whole_share >= 0.7 if whole_share else None,
               note=f"{whole:,.0f} against {raw_own:,.0f} SMS/s" if raw_own else ""),
        Figure("send", "crisiscomms first→last ÷ raw aiohttp first→last (at the stand-in)",
               share, "×", note="the send phase alone: start-up, planning and the summary left out"),
        Figure("send", "crisiscomms whole command ÷ Twilio SDK sync loop", times, "×", "≥ 60 ×",
               times >= 60 if times else None),
        *_send_ceiling(count, result, dry, raw_own, raw_cpu),
    ]
    ctx.details["send"] = {"count": count, "latency": LATENCY, "rows": rows, "ours": ours}
    return figures


def _send_ceiling(count: int, send: Run, dry: Run, raw_rate: float | None, raw_cpu: float | None) -> list[Figure]:
    """How far the whole command could go: its fixed part (the dry run of the same audience: start-up, the
    playbook, planning) followed by a send phase no dearer than raw aiohttp; and the CPU each side spends."""
    figures = [
        Figure("send", "  CPU of the whole command (user + system)", send.cpu_seconds, "s",
               note=f"{1e6 * send.cpu_seconds / count:,.0f} µs a message; wall {send.seconds:.2f} s"
               if send.cpu_seconds else ""),
        Figure("send", "  CPU of its dry run (start-up, playbook, planning; no ledger, no send)", dry.cpu_seconds,
               "s", note=f"wall {dry.seconds:.2f} s"),
    ]
    if raw_rate:
        raw_seconds = count / raw_rate
        figures += [
            Figure("send", "  CPU of raw aiohttp's process (start-up included)", raw_cpu, "s",
                   note=f"{1e6 * raw_cpu / count:,.0f} µs a request" if raw_cpu else ""),
            Figure("send", "ceiling: dry run + a send phase as fast as raw aiohttp, ÷ raw aiohttp",
                   raw_seconds / (dry.seconds + raw_seconds), "×",
                   note=f"{raw_seconds:.2f} s ÷ ({dry.seconds:.2f} s + {raw_seconds:.2f} s); the target 0.7× leaves "
                        f"{raw_seconds / 0.7 - raw_seconds:.2f} s for all but the requests"),
        ]
    return figures


def _ratio_note(ours: float | None, theirs: float | None, who: str = "crisiscomms") -> str:
    if not ours or not theirs:
        return ""
    return f"{who} = {ours / theirs:.2f}× this"


# --------------------------------------------------------------------------- 4. shared e-mail content


SHARED_SUBJECTS = {"Outage in Northern district": "en", "Avbrott i Norra distriktet": "sv"}

_SHARED_TEMPLATES = {
    "en": {
        "email_subject.txt": "Outage in {{ vars.area }}\n",
        "email.txt": "Hello,\n\nThere is an outage in {{ vars.area }}.\n\n{% for r in reach %}\n"
                     "- {{ r.label }}: {{ r.use.label }} {{ r.use.contact }}\n{% endfor %}\n\n"
                     "{{ links[0].title }}: {{ links[0].url }}\n",
        "email.html": '{% extends "_layouts/email.html" %}{% block content %}<p>Hello,</p>'
                      "<p>There is an outage in {{ vars.area }}.</p><ul>{% for r in reach %}<li>{{ r.label }}: "
                      "{{ r.use.label }} {{ r.use.contact }}</li>{% endfor %}</ul>{% endblock %}\n",
    },
    "sv": {
        "email_subject.txt": "Avbrott i {{ vars.area }}\n",
        "email.txt": "Hej,\n\nDet är avbrott i {{ vars.area }}.\n\n{% for r in reach %}\n"
                     "- {{ r.label }}: {{ r.use.label }} {{ r.use.contact }}\n{% endfor %}\n\n"
                     "{{ links[0].title }}: {{ links[0].url }}\n",
        "email.html": '{% extends "_layouts/email.html" %}{% block content %}<p>Hej,</p>'
                      "<p>Det är avbrott i {{ vars.area }}.</p><ul>{% for r in reach %}<li>{{ r.label }}: "
                      "{{ r.use.label }} {{ r.use.contact }}</li>{% endfor %}</ul>{% endblock %}\n",
    },
}


def shared_content_playbook(ctx: Context) -> Path:
    """A copy of tests/data/playbooks/minimal.yaml + tests/data/templates whose e-mails never mention the reader
    (no ``recipient``, nothing formatted in the reader's time zone)."""
    root = fresh_dir(ctx, "shared-playbook")
    shutil.copytree(REPO / "tests" / "data" / "playbooks", root / "playbooks")
    shutil.copytree(REPO / "tests" / "data" / "templates", root / "templates")
    for locale, files in _SHARED_TEMPLATES.items():
        for name, text in files.items():
            (root / "templates" / "outage" / locale / name).write_text(text, encoding="utf-8")
    return root / "playbooks" / "minimal.yaml"


def bench_email_batching(ctx: Context) -> list[Figure]:
    count = ctx.size(10_000, 2_000)
    path, _ = audience(ctx, count, clean=True)
    playbook = shared_content_playbook(ctx)
    validate_argv = [ctx.crisiscomms, "validate", str(playbook)]
    _check(run(validate_argv, cwd=ctx.work, env=cli_env()), "validate of the shared-content playbook")
    figures: list[Figure] = []
    with Standin(ctx, "email-batching", latency=LATENCY) as standin:
        env = cli_env(standin.url)
        dry_argv = send_argv(ctx, path, "--channels", "email", "--dry-run", "--format", "json",
                             playbook=playbook, notice="outage")
        dry = run(dry_argv, cwd=fresh_dir(ctx, "email-dry"), env=env)
        _check(dry, "dry run (shared e-mail)")
        planned = {loc: c["email"] for loc, c in json.loads(dry.stdout)["locales"].items()}
        standin.reset()
        argv = send_argv(ctx, path, "--channels", "email", "--yes", playbook=playbook, notice="outage")
        ctx.note_command("email-batching", argv)
        result = run(argv, cwd=fresh_dir(ctx, "email-shared"), env=env)
        _check(result, "crisiscomms send (shared e-mail)")
        record = standin.record()
    emails = record["emails"]
    per_locale: dict[str, set[str]] = {}
    delivered: Counter[str] = Counter()
    for entry in emails:
        locale = SHARED_SUBJECTS.get(entry["subject"], f"other: {entry['subject']}")
        per_locale.setdefault(locale, set()).add(entry["message_id"])
        delivered[locale] += 1
    total_requests = record["requests"].get("sendgrid", 0)
    table = []
    for locale in sorted(set(planned) | set(per_locale)):
        requests = len(per_locale.get(locale, ()))
        minimum = math.ceil(planned.get(locale, 0) / 1000)
        table.append({"locale": locale, "planned": planned.get(locale, 0), "delivered": delivered[locale],
                      "requests": requests, "minimum": minimum})
        figures.append(Figure("email-batching", f"requests for locale {locale} ({planned.get(locale, 0):,} e-mails)",
                              requests, "request(s)", "≤ 10", requests <= 10, note=f"minimum {minimum}"))
    all_delivered = len(emails) == count and len({e["to"].lower() for e in emails}) == count
    figures += [
        Figure("email-batching", f"all {count:,} e-mails delivered once", len(emails), "deliveries",
               f"= {count:,}", all_delivered),
        Figure("email-batching", "requests in total (SendGrid)", total_requests, "requests",
               note=f"whole command {result.seconds:.2f} s"),
    ]
    ctx.details["email_batching"] = {"count": count, "table": table, "total_requests": total_requests,
                                     "wall": result.seconds}
    return figures


# --------------------------------------------------------------------------- 4b. personalised e-mail


PERSONAL_LOCALES = ("en", "sv", "da", "nb", "nl", "el")
PERSONAL_NAMES = ("Anna Lindqvist", "Erik Johansson", "Mette Hansen", "Ole Nordmann", "Sanne de Vries",
                  "Νίκος Παπαδόπουλος", "Zoë O'Brien", "Åsa Öberg", "Jan & Co", "Konstantina Papadopoulou-Lindqvist")


def personalised_audience(ctx: Context, rows: int) -> Path:
    """``rows`` readers of the shipped storm notice by e-mail: names (3% none) in the six languages, all in
    the organisation's time zone (so readers differ only in their names: the case substitutions are for)."""
    path = ctx.work / "audiences" / f"personal-{rows}-s{SEED}.csv"
    if not path.exists():
        import csv
        import random

        path.parent.mkdir(parents=True, exist_ok=True)
        rng = random.Random(f"{SEED}:{rows}:personal")
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "name", "email", "locale"])
            for index in range(rows):
                name = "" if rng.random() < 0.03 else f"{rng.choice(PERSONAL_NAMES)} {index}"
                writer.writerow([f"p-{index:06d}", name, f"reader.{index}@example.se", rng.choice(PERSONAL_LOCALES)])
    return path


def _personalised_send(ctx: Context, standin: Standin, path: Path, count: int, *extra: str) -> dict[str, Any]:
    """One ``send --channels email`` of the shipped storm notice; the stand-in's view of it."""
    standin.reset()
    argv = send_argv(ctx, path, "--channels", "email", "--yes", *extra)
    ctx.note_command("email-personalised", argv)
    result = run(argv, cwd=fresh_dir(ctx, "email-personal"), env=cli_env(standin.url))
    _check(result, f"crisiscomms send (personalised e-mail{', ' + ' '.join(extra) if extra else ''})")
    record = standin.record()
    emails = record["emails"]
    if len(emails) != count or len({e["to"].lower() for e in emails}) != count:
        raise RuntimeError(f"expected {count} distinct e-mails at the stand-in, got {len(emails)}")
    rate, span = span_rate(emails)
    return {"count": count, "requests": record["requests"].get("sendgrid", 0), "rate": rate, "span": span,
            "wall": result.seconds, "substituted": sum(1 for e in emails if e.get("substitutions"))}


def bench_email_personalised(ctx: Context) -> list[Figure]:
    """10,000 personalised e-mails (shipped templates: "Hello {{ recipient.name }}") batched with SendGrid
    substitutions, and the old path (``--email-batch-size 1``) against the same stand-in in the same run."""
    count, old_count = ctx.size(10_000, 2_000), ctx.size(2_000, 300)
    path, old_path = personalised_audience(ctx, count), personalised_audience(ctx, old_count)
    with Standin(ctx, "email-personalised", latency=LATENCY) as standin:
        new = _personalised_send(ctx, standin, path, count)
        old = _personalised_send(ctx, standin, old_path, old_count, "--email-batch-size", "1")
    span_ratio = new["rate"] / old["rate"] if new["rate"] and old["rate"] else None
    wall_ratio = (count / new["wall"]) / (old_count / old["wall"])
    ctx.details["email_personalised"] = {"new": new, "old": old}
    return [
        Figure("email-personalised", f"{count:,} personalised e-mails: SendGrid requests", new["requests"],
               "requests", "≤ 20", new["requests"] <= 20,
               note=f"{new['substituted']:,} with substitutions, {count - new['substituted']:,} without"),
        Figure("email-personalised", "  batched: first→last accepted", new["rate"], "mails/s",
               note=f"span {new['span']:.2f} s"),
        Figure("email-personalised", "  batched: whole command (wall)", count / new["wall"], "mails/s",
               note=f"wall {new['wall']:.2f} s (start-up, plan, ledger, send, summary)"),
        Figure("email-personalised", f"old path (--email-batch-size 1), {old_count:,} e-mails: first→last accepted",
               old["rate"], "mails/s", note=f"{old['requests']:,} requests, span {old['span']:.2f} s"),
        Figure("email-personalised", "  old path: whole command (wall)", old_count / old["wall"], "mails/s",
               note=f"wall {old['wall']:.2f} s"),
        Figure("email-personalised", "batched ÷ old path, first→last accepted", span_ratio, "×", "≥ 20 ×",
               span_ratio >= 20 if span_ratio else None),
        Figure("email-personalised", "batched ÷ old path, whole command", wall_ratio, "×",
               note="start-up, planning and the ledger are the same fixed work on both paths"),
    ]


# --------------------------------------------------------------------------- 5. under a rate cap


def bench_rate_cap(ctx: Context) -> list[Figure]:
    count = ctx.size(2_000, 250)
    path, _ = audience(ctx, count, clean=True)
    cwd = fresh_dir(ctx, "rate-cap")
    runs: list[dict[str, Any]] = []
    with Standin(ctx, "rate-cap", latency=LATENCY, rate_cap=RATE_CAP) as standin:
        env = cli_env(standin.url)
        argv = send_argv(ctx, path, "--channels", "sms", "--yes")
        ctx.note_command("rate-cap", argv)
        first = run(argv, cwd=cwd, env=env, timeout=1200)
        _check(first, "crisiscomms send under a rate cap", codes=(0, 1))
        record = standin.record()
        runs.append({"exit": first.returncode, "wall": first.seconds, "accepted": len(record["sms"])})
        attempts = 1
        while first.returncode != 0 and attempts < 3:  # something ended failed/uncertain: run the same command again
            again = run(argv, cwd=cwd, env=env, timeout=1200)
            attempts += 1
            record = standin.record()
            runs.append({"exit": again.returncode, "wall": again.seconds, "accepted": len(record["sms"])})
            if again.returncode == 0:
                break
    first_run_sms = record["sms"][: runs[0]["accepted"]]
    rate, span = span_rate(first_run_sms)
    answers = record["answers"].get("twilio", {})
    total_answers = sum(answers.values())
    throttled = answers.get("429", 0)
    per_number = Counter(r["to"] for r in record["sms"])
    exactly_once = len(per_number) == count and set(per_number.values()) == {1}
    twice = sum(1 for n in per_number.values() if n > 1)
    ctx.details["rate_cap"] = {"count": count, "cap": RATE_CAP, "runs": runs, "answers": answers}
    return [
        Figure("rate-cap", f"{count:,} SMS, cap {RATE_CAP:.0f}/s: achieved rate (first run)", rate, "SMS/s",
               note=f"span {span:.2f} s"),
        Figure("rate-cap", "  as a share of the cap", (rate or 0) / RATE_CAP * 100, "%"),
        Figure("rate-cap", "  requests answered 429", throttled / total_answers * 100 if total_answers else None, "%",
               note=f"{throttled} of {total_answers}"),
        Figure("rate-cap", "every SMS delivered exactly once", len(per_number), "numbers", f"{count:,} × 1",
               exactly_once, note=f"after {attempts} run(s); {twice} twice; exit codes "
                                  + ",".join(str(r["exit"]) for r in runs)),
    ]


def _first_request_after(ctx: Context, plan_id: str, cwd: Path) -> float:
    """Seconds from the start of ``send --plan ID --yes`` to the first SMS the stand-in accepted."""
    with Standin(ctx, "plan-start", latency=0.0, rate_cap=20.0) as standin:
        env = {**cli_env(standin.url), "XDG_STATE_HOME": str(cwd / ".state")}
        argv = [ctx.crisiscomms, "send", "--plan", plan_id, "--yes"]
        ctx.note_command("plan-start", argv)
        started = time.time()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
        try:
            deadline = time.monotonic() + 120
            while True:
                sms = standin.record()["sms"]
                if sms:
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"send --plan sent nothing: {(process.stderr or StringIO()).read()[-1500:]}")
                time.sleep(0.01)
        finally:
            process.kill()
            process.wait(30)
        return min(dt.datetime.fromisoformat(r["created_at"]).timestamp() for r in sms) - started


def bench_plan_start(ctx: Context) -> list[Figure]:
    """A frozen plan's first request: how soon ``send --plan`` starts sending, by plan size."""
    figures: list[Figure] = []
    for rows, target in ((ctx.size(200_000, 20_000), 2.0), (ctx.size(1_000_000, 100_000), 3.0)):
        path, _ = audience(ctx, rows, clean=True)
        cwd = fresh_dir(ctx, f"plan-{rows}")
        argv = [ctx.crisiscomms, "plan", str(PLAYBOOK), "--notice", NOTICE, "--audience", str(path), "--at", AT,
                "--channels", "sms", "--format", "json"]
        ctx.note_command("plan-start", argv)
        planned = run(argv, cwd=cwd, env=cli_env(), measure_rss=True, timeout=3600)
        _check(planned, "crisiscomms plan")
        plan_id = json.loads(planned.stdout)["plan"]
        ledger_mb = sum(p.stat().st_size for p in (cwd / ".state").rglob("ledger.sqlite*")) / 1e6
        first = _first_request_after(ctx, plan_id, cwd)
        figures += [
            Figure("plan-start", f"plan, {rows:,} SMS into the ledger: recipients per second", rows / planned.seconds,
                   "rows/s", note=f"wall {planned.seconds:.1f} s, peak RSS {(planned.max_rss_kb or 0) / 1024:.0f} MB, "
                                  f"ledger {ledger_mb:.0f} MB"),
            Figure("plan-start", f"send --plan of {rows:,} messages: first request after", first, "s",
                   f"≤ {target:.0f} s", first <= target, note="from the command's start (process start included)"),
        ]
    return figures


def bench_plan_jobs(ctx: Context) -> list[Figure]:
    """Planning on every core: a dry run of recipients with a phone and an e-mail each (both planned), with
    ``--jobs 1`` and the default (one process per core), side by side; the two summaries must be equal."""
    rows = ctx.size(1_000_000, 100_000)
    path, _ = audience(ctx, rows, clean=True)
    runs: dict[str, Run] = {}
    for label, extra in (("one process (--jobs 1)", ["--jobs", "1"]), ("every core (default)", [])):
        argv = send_argv(ctx, path, "--channels", "sms,email", "--dry-run", "--format", "json", *extra)
        ctx.note_command("plan-jobs", argv)
        result = run_tree(argv, cwd=fresh_dir(ctx, "plan-jobs"), env=cli_env(), timeout=3600, every=0.1)
        _check(result, f"send --dry-run {' '.join(extra)}")
        runs[label] = result
    one, every = runs.values()
    same = _without_ledger(one.stdout) == _without_ledger(every.stdout)
    figures = []
    for label, result in runs.items():
        rate = rows / result.seconds
        pss, rss = (result.tree_pss_kb or 0) / 1024, (result.tree_rss_kb or 0) / 1024
        parallel = label.startswith("every")
        figures += [
            Figure("plan-jobs", f"dry run, {rows:,} people × sms+email, {label}: recipients per second", rate,
                   "rows/s", "≥ 40,000 rows/s" if parallel else "", rate >= 40_000 if parallel else None,
                   note=f"wall {result.seconds:.1f} s (process start included)"),
            Figure("plan-jobs", f"{label}: peak memory of all its processes (PSS)", pss, "MB",
                   "< 200 MB" if parallel else "", pss < 200 if parallel else None,
                   note=f"summed RSS {rss:.0f} MB (counts pages the forked workers share once per process)"),
        ]
    figures += [
        Figure("plan-jobs", "every core ÷ one process", one.seconds / every.seconds, "×",
               note=f"{os.cpu_count()} cores"),
        Figure("plan-jobs", "the two summaries are equal", 1.0 if same else 0.0, "", "equal", same,
               note="planned, skipped, deferred, locales, segments, cost"),
        *_phone_ceiling(ctx, path, rows / every.seconds),
    ]
    return figures


def _phone_ceiling(ctx: Context, path: Path, planned_rate: float) -> list[Figure]:
    """What phonenumbers alone allows: the same numbers through ``normalise_phone``, in one process and on
    every core (``bench/phones.py``), right after the planning runs."""
    from crisiscomms.processes import usable_cores

    rates: dict[int, float] = {}
    for jobs in sorted({1, usable_cores()}):
        argv = [ctx.python, str(BENCH_DIR / "phones.py"), str(path), "--jobs", str(jobs)]
        ctx.note_command("plan-jobs", argv)
        result = run(argv, cwd=ctx.work, env=cli_env(), timeout=1800)
        _check(result, f"bench/phones.py --jobs {jobs}")
        rates[jobs] = json.loads(result.stdout.strip().splitlines()[-1])["rate"]
    ceiling = rates[max(rates)]
    return [
        Figure("plan-jobs", "ceiling: phonenumbers alone (normalise_phone of the same numbers), one process",
               rates[1], "numbers/s", note="parse + number_type + E.164, nothing else"),
        Figure("plan-jobs", f"ceiling: phonenumbers alone, every core ({max(rates)} processes)", ceiling,
               "numbers/s", note="no planner that classifies with phonenumbers is faster here"),
        Figure("plan-jobs", "planning on every core ÷ that ceiling", planned_rate / ceiling, "×",
               note=f"the target 40,000/s is {40_000 / ceiling:.2f}× the ceiling"),
    ]


def _without_ledger(stdout: str) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(stdout)
    summary.pop("ledger", None)  # each run has a folder (and a ledger path) of its own
    return summary


BENCHES: dict[str, Callable[[Context], list[Figure]]] = {
    "startup": bench_startup,
    "dry-run": bench_dry_run,
    "send": bench_send,
    "email-batching": bench_email_batching,
    "email-personalised": bench_email_personalised,
    "rate-cap": bench_rate_cap,
    "plan-start": bench_plan_start,
    "plan-jobs": bench_plan_jobs,
    "team": bench_team,
}


# --------------------------------------------------------------------------- machine and doc


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    commit = subprocess.run(["git", "--no-optional-locks", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True, check=False).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory": memory, "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions, "commit": commit or "unknown",
            "dirty": bool(dirty), "load": os.getloadavg()}


def print_table(figures: Sequence[Figure]) -> None:
    table = Table(title="crisiscomms benchmarks", show_lines=False)
    for column in ("benchmark", "figure", "value", "target", "result", "note"):
        table.add_column(column, overflow="fold")
    for figure in figures:
        style = {"PASS": "green", "FAIL": "bold red"}.get(figure.verdict, "dim")
        table.add_row(figure.bench, figure.what, figure.shown(), figure.target or "—",
                      f"[{style}]{figure.verdict}[/]", figure.note)
    console.print(table)


def write_doc(path: Path, ctx: Context, figures: Sequence[Figure], info: dict[str, Any], command: str,
              started: dt.datetime, seconds: float, load_after: tuple[float, float, float]) -> None:
    lines: list[str] = []
    add = lines.append
    failed = [f for f in figures if f.passed is False]
    add("# Benchmarks")
    add("")
    add("Generated by `bench/run.py` (do not edit by hand; run it again). "
        + ("Quick mode: smaller sizes, for smoke checks only. " if ctx.quick else "")
        + f"**{sum(f.passed is True for f in figures)} targets pass, {len(failed)} fail.**")
    add("")
    add(f"- Command: `{command}` (from the repository root, with the dev venv's Python)")
    add(f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}; whole run {seconds / 60:.1f} min")
    add(f"- Commit: `{info['commit']}`" + (" (with uncommitted changes)" if info["dirty"] else ""))
    add(f"- Machine: {info['nproc']} CPU cores ({info['cpu']}), {info['memory']} RAM, {info['platform']}; "
        f"load average {info['load'][0]:.2f} at the start, {load_after[0]:.2f} at the end (shared machine)")
    add(f"- Python {info['python']}; " + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + (f"; apprise {ctx.details['apprise_version']} (separate venv)" if "apprise_version" in ctx.details else
           "; apprise not installed"))
    add("")
    add("## Results")
    add("")
    add("| benchmark | figure | value | target | result | note |")
    add("| --- | --- | --- | --- | --- | --- |")
    for figure in figures:
        verdict = f"**{figure.verdict}**" if figure.verdict == "FAIL" else figure.verdict
        what = figure.what.strip()
        add(f"| {figure.bench} | {what} | {figure.shown()} | {figure.target or '—'} | {verdict} | {figure.note} |")
    add("")
    if failed:
        add("**Failing targets:** " + "; ".join(f"{f.what.strip()} = {f.shown()} (target {f.target})" for f in failed)
            + ".")
        add("")
    add("## How it is measured")
    add("")
    add("- The machine has only 2 cores, shared by the measured client, the provider stand-in and the harness "
        "(and by other work on this shared host): client and server compete for the same CPUs, so absolute "
        "send rates are lower than with a remote provider. Compare figures as ratios taken in the same run.")
    add("- Every `crisiscomms` run is a subprocess of the installed entry point, in a fresh temporary working "
        "directory with its own `XDG_STATE_HOME` (so the per-user ledger is new), with `TWILIO_ACCOUNT_SID`, "
        "`TWILIO_AUTH_TOKEN`, `SENDGRID_API_KEY` set to the stand-in's defaults and `CRISISCOMMS_TWILIO_URL` / "
        "`CRISISCOMMS_SENDGRID_URL` pointing at it; `TWILIO_REGION`/`TWILIO_EDGE` unset.")
    add(f"- The stand-in (`python -m crisiscomms.testing.standin --port 0 --latency {LATENCY}`) runs in its own "
        "process, so it does not share the client's GIL; it answers every request after the latency.")
    add("- Audiences come from `bench/make_audience.py` (seeded, cached under the work folder): mixed locale "
        "spellings, phone numbers in many spellings for SE/NO/DK/NL/GR/GB, ~3% invalid numbers, ~2% fixed "
        "lines, ~2% duplicates in another spelling or case, mixed-case e-mails, time zones, a consent column "
        "and an opt-out list. The send benchmarks use its `--clean` variant (every row one valid, distinct, "
        "consenting person) so N rows are N messages.")
    add("- **Start-up**: wall time of the subprocess, median of several runs after one warm-up run. "
        "`validate` compiles every template; crisiscomms keeps compiled templates in `CRISISCOMMS_CACHE_DIR` "
        "(the bench points it into its work folder): *cold* runs get an empty cache each time (CI on a new "
        "machine), *warm* runs reuse it (a developer's pre-commit hook).")
    add("- **Dry run**: wall time of the subprocess; recipients per second = audience rows ÷ wall time; "
        "peak RSS from `/usr/bin/time -v` (maximum resident set size).")
    add("- **SMS send**: the rate is taken from the stand-in's record: accepted messages between the first and "
        "the last accepted one, (n − 1) ÷ (last `created_at` − first `created_at`). For crisiscomms that window "
        "excludes start-up, the planning/ledger pass before the send and the summary after it, but includes the "
        "second, streaming plan that feeds the dispatcher, the ledger writes and the progress display. The "
        "whole-command rate and the dispatch phase by subtraction (send wall − wall of a `--dry-run` of the "
        "same audience) are shown too. Every baseline runs against the same stand-in process in the same run "
        f"(record reset between them) with the same {CONCURRENCY} requests in flight where it has concurrency; "
        "sync loops and Apprise are capped at a small count and their rate extrapolated. Issue 14's ratios compare "
        "the whole command (SMS ÷ its wall time, process start included) with raw aiohttp's own rate (requests ÷ "
        "its time from the first request to the last answer) and with the SDK's sync loop.")
    add("- **Shared e-mail content**: a copy of `tests/data/playbooks/minimal.yaml` and `tests/data/templates` "
        "whose e-mail templates mention neither `recipient` nor anything formatted in the reader's time zone; "
        "requests are counted per locale as distinct SendGrid message ids per subject in the stand-in's record.")
    add("- **Personalised e-mail**: a generated audience of readers of the shipped storm notice (six languages, "
        "3% without a name, all in the organisation's time zone, so that readers differ only in their names), "
        "sent twice against one stand-in: batched (default) and with `--email-batch-size 1` (the path before "
        "batching: one request per e-mail, 8 in flight), on fewer e-mails as it is slow; rates as for SMS "
        "(first→last accepted at the stand-in) and for the whole command (e-mails ÷ wall time).")
    add(f"- **Rate cap**: a second stand-in with `--rate-cap {RATE_CAP:.0f}` (sliding one-second window, 429 with "
        "`Retry-After: 1` past it), same latency; the achieved rate is first→last accepted of the first run; "
        "the 429 share is from the stand-in's answer counters; if the first run leaves anything failed or "
        "uncertain (exit 1), the same command runs again (resume) before counting deliveries per number.")
    add("- **Planning on every core**: `send --dry-run --channels sms,email` of the `--clean` audience (everyone "
        "with a phone and an e-mail, both planned), with `--jobs 1` and with the default (one worker per core); "
        "recipients per second = rows ÷ wall time (process start included); memory = the peak of the summed PSS "
        "(and RSS) of the command and all its processes, sampled every 0.1 s from `/proc/PID/smaps_rollup`; "
        "the two JSON summaries are compared.")
    add("")
    if "dry_run" in ctx.details:
        summary = ctx.details["dry_run"]["summary"]
        add(f"### Dry-run plan of the {ctx.details['dry_run']['rows']:,}-row audience")
        add("")
        add(f"- planned: {json.dumps(summary['planned'])}")
        add(f"- skipped: {json.dumps(summary['skipped'])}")
        add("")
    if "send" in ctx.details:
        sms = ctx.details["send"]
        add(f"### Send rates ({LATENCY * 1000:.0f} ms stand-in latency, same run)")
        add("")
        add("| client | messages | rate (msg/s) | crisiscomms SMS ÷ this | time for 5,000 at this rate |")
        add("| --- | --- | --- | --- | --- |")
        for row in sms["rows"]:
            rate = row.get("rate")
            if rate is None:
                add(f"| {row['client']} | — | {row.get('note', 'n/a')} | — | — |")
                continue
            versus = "—" if row.get("kind") == "email" else f"{sms['ours'] / rate:.2f}×"
            add(f"| {row['client']} | {row['count']:,} | {_number(rate)} | {versus} | {5000 / rate:,.1f} s |")
        add("")
        add("E-mail rows are not compared with the SMS rate: the crisiscomms e-mail row uses the shipped templates, "
            "which greet each reader by name; those e-mails share requests through SendGrid substitutions (see "
            "*Personalised e-mail* below), 8 requests in flight by default.")
        add("")
    if "email_batching" in ctx.details:
        batching = ctx.details["email_batching"]
        add(f"### Shared e-mail content: requests per locale ({batching['count']:,} e-mails)")
        add("")
        add("| locale | e-mails planned | delivered | requests | minimum (1,000 per request) |")
        add("| --- | --- | --- | --- | --- |")
        for row in batching["table"]:
            add(f"| {row['locale']} | {row['planned']:,} | {row['delivered']:,} | {row['requests']} | "
                f"{row['minimum']} |")
        add("")
    if "email_personalised" in ctx.details:
        _personalised_section(add, ctx.details["email_personalised"])
    if "rate_cap" in ctx.details:
        capped = ctx.details["rate_cap"]
        add(f"### Rate cap: runs ({capped['count']:,} SMS, cap {capped['cap']:.0f}/s)")
        add("")
        for index, entry in enumerate(capped["runs"], start=1):
            add(f"- run {index}: exit {entry['exit']}, wall {entry['wall']:.1f} s, stand-in has "
                f"{entry['accepted']:,} SMS after it")
        add(f"- stand-in answers: {json.dumps(capped['answers'])}")
        add("")
    if "team" in ctx.details or "team_ledger" in ctx.details:
        team_section(add, ctx.details)
    add("## Commands")
    add("")
    add("`$WORK` is the benchmark's temporary work folder; paths are relative to the repository root.")
    add("")
    add("```")
    for bench, shown in ctx.commands:
        add(f"[{bench}] {shown}")
    add("```")
    add("")
    kept = _hand_written(path)
    path.write_text("\n".join(lines) + ("\n" + kept if kept else ""), encoding="utf-8")


#: Everything after this line of docs/benchmarks.md is written by hand (figures of other scripts, profiles,
#: reasons) and kept as it is when bench/run.py writes the file again.
HAND_WRITTEN = "<!-- Written by hand below this line: bench/run.py keeps it when it writes this file again. -->"


def _hand_written(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    at = text.find(HAND_WRITTEN)
    return text[at:] if at >= 0 else ""


def _personalised_section(add: Callable[[str], None], details: dict[str, Any]) -> None:
    new, old = details["new"], details["old"]
    add(f"### Personalised e-mail: SendGrid substitutions vs one request per e-mail ({LATENCY * 1000:.0f} ms "
        "stand-in latency, same run)")
    add("")
    add("| path | e-mails | requests | first→last accepted (mails/s) | span | whole command (mails/s) | wall |")
    add("| --- | --- | --- | --- | --- | --- | --- |")
    paths = (("batched (default `--email-batch-size 1000`)", new), ("old path (`--email-batch-size 1`)", old))
    for label, row in paths:
        rate = _number(row["rate"]) if row["rate"] else "n/a"
        add(f"| {label} | {row['count']:,} | {row['requests']:,} | {rate} | {row['span']:.2f} s | "
            f"{_number(row['count'] / row['wall'])} | {row['wall']:.2f} s |")
    add("")
    add("The shipped storm notice greets each reader by name (`{% if recipient.name %}Hello {{ recipient.name }},"
        "{% else %}Hello,{% endif %}`, in six languages). Batched, the templates are rendered once per language "
        "(and once more for readers without a name) with substitution keys, and each personalization carries "
        "the reader's name (a text and an HTML-escaped value): 6 languages × named or not = 12 shared renderings, "
        "the named ones in requests of up to 1,000. The whole-command figure includes start-up, planning and "
        "freezing the plan into the ledger (the same work for both paths) and compiling the templates of the "
        "plan's snapshot, which is why its ratio is lower than the first→last one.")
    add("")


# --------------------------------------------------------------------------- main


def _crisiscomms_script() -> str:
    beside = Path(sys.executable).parent / "crisiscomms"
    if beside.exists():
        return str(beside)
    found = shutil.which("crisiscomms")
    if found is None:
        raise SystemExit("crisiscomms is not installed in this Python's environment")
    return found


@contextlib.contextmanager
def _work_folder(keep: bool, given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    folder = Path(tempfile.gettempdir()) / "crisiscomms-bench"
    folder.mkdir(exist_ok=True)
    run_folder = Path(tempfile.mkdtemp(prefix="run-", dir=folder))
    (run_folder / "audiences").symlink_to(_shared_audiences(folder))
    try:
        yield run_folder
    finally:
        if not keep:
            shutil.rmtree(run_folder, ignore_errors=True)


def _shared_audiences(folder: Path) -> Path:
    shared = folder / "audiences"
    shared.mkdir(exist_ok=True)
    return shared


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="crisiscomms benchmarks", epilog=", ".join(BENCHES))
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute): a smoke check")
    parser.add_argument("--only", nargs="+", choices=list(BENCHES), metavar="NAME", help="run only these")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the dry run and the SMS send (cProfile; written to the work folder)")
    parser.add_argument("--doc", type=Path, help="write the results here (default: docs/benchmarks.md on full runs)")
    parser.add_argument("--no-doc", action="store_true", help="do not write the results doc")
    parser.add_argument("--apprise-python", default=os.environ.get("BENCH_APPRISE_PYTHON"),
                        help="a Python with apprise installed, if this one has none (env BENCH_APPRISE_PYTHON)")
    parser.add_argument("--work", type=Path, help="work folder (default: a new one under the temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)

    doc = None if args.no_doc else args.doc or (REPO / "docs" / "benchmarks.md"
                                                 if not args.quick and not args.only else None)
    names = args.only or list(BENCHES)
    command = shlex.join(["python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])])
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    info = machine()
    figures: list[Figure] = []
    keep = args.keep or args.profile
    with _work_folder(keep, args.work) as work:
        ctx = Context(quick=args.quick, work=work, python=sys.executable, crisiscomms=_crisiscomms_script(),
                      profile=args.profile, apprise_python=args.apprise_python)
        # compiled templates go to the work folder, not ~/.cache (inherited by every CLI run)
        os.environ["CRISISCOMMS_CACHE_DIR"] = str(work / "template-cache")
        console.log(f"work folder {work}; {info['nproc']} cores, load {info['load'][0]:.2f}")
        for name in names:
            console.log(f"[bold]{name}[/] ...")
            bench_started = time.perf_counter()
            try:
                figures += BENCHES[name](ctx)
            except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as error:
                console.log(f"[red]{name} failed: {error}[/]")
                figures.append(Figure(name, "benchmark did not complete", None, "", "completes", False,
                                      note=str(error).splitlines()[0][:200]))
            console.log(f"{name}: {time.perf_counter() - bench_started:.1f} s")
        seconds = time.perf_counter() - clock
        print_table(figures)
        if doc is not None:
            write_doc(doc, ctx, figures, info, command, started, seconds, os.getloadavg())
            console.log(f"wrote {doc}")
        for path in ctx.profiles:
            console.log(f"profile: {path}")
        if keep:
            console.log(f"kept {work}")
    console.log(f"total {seconds:.0f} s")
    return 1 if any(f.passed is False for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
