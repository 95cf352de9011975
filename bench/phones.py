"""The ceiling phonenumbers puts on planning: the audience's phone numbers alone, on every core.

    python bench/phones.py AUDIENCE.csv --jobs N [--region SE]

Planning classifies each person's number once, with :func:`crisiscomms.audience.normalise_phone`
(phonenumbers' ``parse`` + ``number_type`` + E.164 ``format_number``, as the planner calls it). This reads the
``phone`` column first, then times only that call for every number: in this process (``--jobs 1``) or in
``N`` forked processes at once, each taking every ``N``-th number. No planner can be faster than this on the
same machine while phonenumbers does the classifying.

Prints one JSON object: ``{"numbers", "jobs", "seconds", "rate"}`` (``seconds``: from the first call to the
last process's end).
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import sys
import time
from pathlib import Path

from crisiscomms.audience import normalise_phone


def read_phones(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as stream:
        return [row.get("phone") or "" for row in csv.DictReader(stream)]


def classify(phones: list[str], region: str, start: int, step: int) -> int:
    done = 0
    for index in range(start, len(phones), step):
        normalise_phone(phones[index], region)
        done += 1
    return done


def timed(phones: list[str], region: str, jobs: int) -> float:
    """Seconds to classify every number with ``jobs`` processes."""
    started = time.perf_counter()
    if jobs == 1:
        classify(phones, region, 0, 1)
        return time.perf_counter() - started
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=classify, args=(phones, region, index, jobs)) for index in range(jobs)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if any(worker.exitcode != 0 for worker in workers):
        raise SystemExit("a worker failed")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("audience", type=Path)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--region", default="SE", help="the default region, as the shipped playbook's")
    args = parser.parse_args(argv)
    phones = read_phones(args.audience)
    seconds = timed(phones, args.region, max(1, args.jobs))
    print(json.dumps({"numbers": len(phones), "jobs": args.jobs, "seconds": seconds,
                      "rate": len(phones) / seconds if seconds else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
