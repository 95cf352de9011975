"""Reaching the PostgreSQL ledger: the event-loop thread its async pool runs on, and what a failure means.

The :class:`~crisiscomms.ledger.base.Ledger` interface is synchronous, psycopg's pool is async: a
:class:`LoopThread` runs an event loop of its own, and every call submits a coroutine to it and waits with
a timeout. Credentials are libpq's business (the URL's password, ``PGPASSWORD``, ``~/.pgpass``); the
conninfo is handed over as given and never shown — every text here names the ledger by its masked URL,
and any text from the server passes through :meth:`PgTarget.scrub` before it is shown.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import getpass
import logging
import re
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import PoolTimeout

from ..errors import LedgerError
from .base import LedgerUnavailable

T = TypeVar("T")

_POOL_LOG = logging.getLogger("psycopg.pool")  # its reconnect attempts would print libpq's texts on the terminal;
_POOL_LOG.addHandler(logging.NullHandler())  # crisiscomms says what a lost connection means itself
_POOL_LOG.propagate = False

CONNECT_TIMEOUT_SECONDS = 5
CALL_TIMEOUT_SECONDS = 60.0
CONNECTION_OPTIONS: dict[str, Any] = {
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
    "tcp_user_timeout": 10_000,  # ms: unacknowledged data for this long means the server is gone
    "application_name": "crisiscomms",
    "autocommit": True,
}


@dataclass(frozen=True)
class PgTarget:
    """A database URL as libpq reads it, and the masked text people see."""

    conninfo: str
    shown: str

    def parts(self) -> dict[str, str]:
        try:
            return {key: str(value) for key, value in conninfo_to_dict(self.conninfo).items() if value is not None}
        except psycopg.ProgrammingError:
            return {}

    @property
    def user(self) -> str:
        return self.parts().get("user") or getpass.getuser()

    @property
    def database(self) -> str:
        return self.parts().get("dbname") or self.user

    def scrub(self, text: str) -> str:
        """A server's text without any password it might echo (it should not; this makes sure)."""
        written = re.search(r"://[^/@?]*?:([^/@?]+)@", self.conninfo)  # parts() cannot read a malformed URL
        for secret in (self.parts().get("password"), written.group(1) if written else None):
            if secret:
                text = text.replace(secret, "***")
        return text


class LoopThread:
    """An event loop on a daemon thread; :meth:`run` waits for one coroutine on it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except BaseException:  # a timeout, or Ctrl-C while waiting: the work is cancelled (rolled back), not left
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


def opening_problem(target: PgTarget, error: BaseException) -> LedgerError:
    """Why the ledger cannot be opened, for the operator (exit 3; nothing has been sent)."""
    if isinstance(error, LedgerError):
        return error
    text = target.scrub(str(error))
    lowered = text.lower()
    where = f"the ledger {target.shown}"
    if "password authentication failed" in lowered or "no password supplied" in lowered \
            or "password is required" in lowered:
        return LedgerError(f"{where} refused the password of user {target.user} (password authentication failed). "
                           "Nothing was sent. Check the password in the URL, PGPASSWORD or ~/.pgpass.")
    if "does not exist" in lowered and "database" in lowered:
        return LedgerError(f"{where}: database {target.database} does not exist on that server. Nothing was sent. "
                           f"Create it (createdb {target.database}) or correct the URL.")
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        first = text.splitlines()[0] if text else "permission denied"
        return LedgerError(f"{where}: user {target.user} cannot create the ledger's tables in database "
                           f"{target.database} ({first}); ask the database owner to GRANT CREATE ON SCHEMA public "
                           f"TO {target.user}, or create the schema with a user who can. Nothing was sent.")
    if isinstance(error, psycopg.OperationalError | TimeoutError | concurrent.futures.TimeoutError | OSError):
        return LedgerError(f"cannot reach {where}: {unreachable_reason(text)}. Nothing was sent. Check the host "
                           "and port in the URL, that the server runs, and that this machine may connect to it.")
    return LedgerError(f"cannot use {where}: {text}. Nothing was sent.")


def unreachable_reason(text: str) -> str:
    lowered = text.lower()
    if "connection refused" in lowered:
        return "connection refused"
    if "timeout" in lowered or "timed out" in lowered or not text:
        return f"no answer within {CONNECT_TIMEOUT_SECONDS} s"
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return "unknown host name"
    return text.splitlines()[0].removeprefix("connection failed: ")


def lost_connection(target: PgTarget, error: BaseException) -> LedgerUnavailable:
    """The ledger stopped answering mid-run: stop dispatching (what is in flight stays in flight)."""
    if isinstance(error, PoolTimeout):
        reason = f"no connection to the server within {CONNECT_TIMEOUT_SECONDS} s"
    elif isinstance(error, TimeoutError | concurrent.futures.TimeoutError):
        reason = f"no answer within {CALL_TIMEOUT_SECONDS:.0f} s"
    else:
        reason = unreachable_reason(target.scrub(str(error))) if str(error) else "the connection was lost"
    return LedgerUnavailable(
        f"lost the connection to the ledger {target.shown} ({reason}); sending stopped at once. Messages already "
        "marked in flight stay so and are treated as uncertain by the next run; nothing is resent blindly. "
        "Resume with the same command when the database answers again.")


def write_problem(target: PgTarget, error: psycopg.Error) -> LedgerError:
    first = target.scrub(str(error)).splitlines()[0] if str(error) else type(error).__name__
    return LedgerError(f"cannot write the ledger {target.shown}: {first}")
