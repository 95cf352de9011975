"""Planning on several cores (``--jobs N``): worker processes normalise and check rows, the planner settles them.

Most of a plan's time goes into what one row needs alone: phonenumbers' parse and classification, the
e-mail check, the locale and time zone, targeting, suppression, the reader's view and the SMS segment
count (:meth:`Planner.prepare`). Only "was this address planned by an earlier row" depends on the order.
So each of ``N`` forked workers reads the audience file itself (the records are cheap to read) and prepares
every ``N``-th block of :data:`BLOCK_RECORDS` records; the planning process takes the blocks back in file
order and settles them (:meth:`Planner.settle`: dedupe, quiet hours, the planned message). The result is
the single-process plan, item for item: same counts, same skips on the same lines, same rows in the same
order (so the same plan id).

Memory stays flat: a worker waits while its finished block is not taken (one pipe each), and the
planning process keeps only the dedupe keys. A worker that fails stops the plan with its error; one
that dies stops it with a :class:`PlanningWorkerLost`; either way nothing is written to the ledger.
"""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
import signal
import sys
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING

from .audience import Audience, MalformedRow, make_recipient
from .errors import CrisisCommsError
from .processes import can_fork, usable_cores

if TYPE_CHECKING:
    from .plan import Planner, Prepared

#: Records a worker prepares at a time (and the planning process takes back at a time).
BLOCK_RECORDS = 1000
#: Without ``--jobs``, a file this big or bigger is planned on every core; a smaller one in this process
#: (starting workers costs more than it saves below about ten thousand rows).
AUTO_MIN_BYTES = 1 << 20
#: At most this many workers: beyond it the planning process, which settles every row, is the limit.
MAX_JOBS = 16

_DONE = b"."
_FAILED = b"!"
_BUG = b"?"


class PlanningWorkerLost(CrisisCommsError):
    """A planning worker process ended without finishing its share (killed, out of memory)."""


def jobs_for(requested: int | None, audience: Path) -> int:
    """How many worker processes plan ``audience``: ``requested`` (``--jobs``), else one per core for a big
    file; 1 (this process alone) where processes cannot be forked."""
    if not can_fork():
        return 1
    if requested is not None:
        return max(1, min(requested, MAX_JOBS))
    try:
        big = audience.stat().st_size >= AUTO_MIN_BYTES
    except OSError:
        big = False
    return min(usable_cores(), MAX_JOBS) if big else 1


def prepared_in_workers(planner: Planner, audience: Audience, jobs: int) -> Iterator[list[Prepared]]:
    """Each row's prepared messages, in file order, from ``jobs`` forked workers reading ``audience``."""
    context = multiprocessing.get_context("fork")
    sys.stdout.flush()  # a forked child must not write out the parent's buffered text again
    sys.stderr.flush()
    workers: list[tuple[BaseProcess, Connection]] = []
    try:
        for index in range(jobs):
            receiving, sending = context.Pipe(duplex=False)
            process = context.Process(target=_work, args=(planner, audience, index, jobs, sending),
                                      name=f"crisiscomms-plan-{index + 1}", daemon=True)
            process.start()
            sending.close()
            workers.append((process, receiving))
        for block in itertools.count():
            worker, pipe = workers[block % jobs]
            rows = _receive(worker, pipe)
            if rows is None:
                return
            yield from rows
    finally:
        _stop(workers)


def _receive(process: BaseProcess, receiving: Connection) -> list[list[Prepared]] | None:
    """The worker's next block (None: the records have ended), or its error raised here."""
    try:
        data = receiving.recv_bytes()
    except (EOFError, OSError):
        process.join(timeout=5)
        raise PlanningWorkerLost(f"planning stopped: worker process {process.pid} ended without finishing its "
                                 f"share ({_how_it_ended(process.exitcode)}); nothing was planned or sent. Run "
                                 "the command again; --jobs 1 plans in one process") from None
    if data == _DONE:
        return None
    if data[:1] == _FAILED:
        raise pickle.loads(data[1:])
    if data[:1] == _BUG:
        raise RuntimeError(f"a planning worker failed:\n{data[1:].decode('utf-8', 'replace')}")
    rows: list[list[Prepared]] = pickle.loads(data)
    return rows


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is None:
        return "it does not answer"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def _stop(workers: list[tuple[BaseProcess, Connection]]) -> None:
    for process, receiving in workers:
        receiving.close()
        if process.is_alive():
            process.terminate()
    for process, _ in workers:
        process.join(timeout=5)


# -- in the worker --------------------------------------------------------------------------------------------


def _work(planner: Planner, audience: Audience, index: int, jobs: int, sending: Connection) -> None:
    """Prepare blocks ``index``, ``index + jobs``, … of the audience's records and send each back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the planning process stops us
    try:
        options = planner.audience_options()
        prepare = planner.prepare

        def mine(position: int) -> bool:
            return (position // BLOCK_RECORDS) % jobs == index

        with audience.reopen() as people:  # the planner's file, with an offset of its own
            rows: list[list[Prepared]] = []
            for position, record in enumerate(people.records(mine)):
                if not mine(position):
                    continue
                assert record is not None
                rows.append(prepare(record if isinstance(record, MalformedRow)
                                    else make_recipient(options, record[0], record[1])))
                if len(rows) == BLOCK_RECORDS:  # a whole block: blocks are contiguous runs of records
                    sending.send_bytes(pickle.dumps(rows, pickle.HIGHEST_PROTOCOL))
                    rows = []
            if rows:
                sending.send_bytes(pickle.dumps(rows, pickle.HIGHEST_PROTOCOL))
        sending.send_bytes(_DONE)
    except CrisisCommsError as error:
        sending.send_bytes(_FAILED + _pickled(error))
    except BrokenPipeError:
        pass  # the planning process stopped first (an error of its own, Ctrl-C): nothing to tell
    except BaseException:  # a bug: its traceback goes to the planning process's crash file
        sending.send_bytes(_BUG + traceback.format_exc().encode("utf-8", "replace"))
    finally:
        sending.close()


def _pickled(error: CrisisCommsError) -> bytes:
    try:
        text = pickle.dumps(error, pickle.HIGHEST_PROTOCOL)
        pickle.loads(text)
    except Exception:  # an error whose class cannot be rebuilt: the same message and exit code
        fallback = CrisisCommsError(str(error))
        fallback.exit_code = error.exit_code
        return pickle.dumps(fallback, pickle.HIGHEST_PROTOCOL)
    return text
