"""A throwaway PostgreSQL cluster for tests and benchmarks: ``initdb`` + ``pg_ctl`` on a free loopback port.

The cluster lives in a temporary folder (its unix socket too), is run by an unprivileged user when the tests
run as root (PostgreSQL refuses root), accepts TCP connections with scram-sha-256 passwords only (so password
tests are real), and is stopped and removed at the end of the session. Without the server binaries the
PostgreSQL tests are skipped with the reason, never faked.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

SUPERUSER = "crisis_admin"
_BINARIES = ("initdb", "pg_ctl", "postgres")


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str
    socket_dir: Path
    bin_dir: Path
    run_as: str | None
    data_dir: Path
    options: str  # the postgres options it was started with

    def stop(self) -> None:
        """Stop the server (fast shutdown: its connections are cut), keeping its data."""
        _run(self.bin_dir, self.run_as, "pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def start(self) -> None:
        """Start it again after :meth:`stop`, on the same port with the same data."""
        _run(self.bin_dir, self.run_as, "pg_ctl", "-D", str(self.data_dir), "-o", self.options, "-l",
             str(self.data_dir.parent / "log"), "-w", "start")

    def url(self, database: str = "postgres", *, user: str | None = None, password: str | None = None) -> str:
        """A URL without the password (the tests pass it through PGPASSWORD unless they give one)."""
        who = user or self.user
        secret = f":{quote(password, safe='')}" if password else ""
        return f"postgresql://{who}{secret}@{self.host}:{self.port}/{database}"

    def admin_conninfo(self, database: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} password={self.password} dbname={database}"

    def execute(self, *statements: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.admin_conninfo(database), autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)  # type: ignore[arg-type,unused-ignore]  # literal SQL of tests


def find_bin_dir() -> Path | None:
    """The folder with initdb, pg_ctl and postgres: PATH first, then Debian's /usr/lib/postgresql/*/bin."""
    found = [shutil.which(name) for name in _BINARIES]
    if all(found):
        return Path(str(found[1])).resolve().parent  # pg_ctl's real folder (Debian links it into PATH)
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if all((Path(folder) / name).exists() for name in _BINARIES):
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(bin_dir: Path, run_as: str | None, *args: str) -> None:
    command = [str(bin_dir / args[0]), *args[1:]]
    result = subprocess.run(command, user=run_as, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}")


def _prepare(folder: Path, run_as: str | None) -> None:
    if run_as is None:
        return
    entry = pwd.getpwnam(run_as)
    for path in (folder, *folder.rglob("*")):
        os.chown(path, entry.pw_uid, entry.pw_gid)


@contextlib.contextmanager
def running_server(*, durable: bool = False) -> Iterator[PgServer | str]:
    """A started cluster, or the reason there is none (yielded as text). Tests run it without fsync (fast);
    ``durable`` keeps PostgreSQL's defaults (fsync, synchronous commit), for benchmarks of the ledger."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        yield "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in /usr/lib/postgresql"
        return
    run_as = "nobody" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="crisiscomms-pg-"))
    folder.chmod(0o755)
    data, sockets = folder / "data", folder / "socket"
    sockets.mkdir()
    password = secrets.token_urlsafe(16)
    (folder / "pwfile").write_text(password + "\n", encoding="utf-8")
    _prepare(folder, run_as)
    port = free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={sockets} -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    server = PgServer("127.0.0.1", port, SUPERUSER, password, sockets, bin_dir, run_as, data, options)
    started = False
    try:
        _run(bin_dir, run_as, "initdb", "-D", str(data), "-U", SUPERUSER, f"--pwfile={folder / 'pwfile'}",
             "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")
        server.start()
        started = True
        yield server
    finally:
        if started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                _run(bin_dir, run_as, "pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


