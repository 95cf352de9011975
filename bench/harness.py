"""The benchmarks' shared harness: figures, the work context, CLI subprocesses, the stand-in, audiences.

``bench/run.py`` and the benchmark modules beside it (``team.py``) import it; it runs nothing by itself.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import resource
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import make_audience  # noqa: E402 - a sibling script, importable once bench/ is on the path

PLAYBOOK = REPO / "playbooks" / "nordvind-storm.yaml"
NOTICE = "storm-outage"
AT = "2026-12-02T10:00+01:00"
LATENCY = 0.05
CONCURRENCY = 100
RATE_CAP = 200.0
SEED = 42

DEFAULT_TWILIO_SID = "AC" + "5a" * 16  # crisiscomms.testing.standin.DEFAULT_TWILIO_SID
DEFAULT_TWILIO_TOKEN = "standin-twilio-auth-token"
DEFAULT_SENDGRID_KEY = "SG.standin.sendgrid-api-key"

console = Console() if sys.stdout.isatty() else Console(width=200)


# --------------------------------------------------------------------------- results


@dataclass
class Figure:
    """One line of the results table."""

    bench: str
    what: str
    value: float | None
    unit: str
    target: str = ""  # e.g. "< 0.3 s"; empty: for information
    passed: bool | None = None  # None: no target
    note: str = ""

    def shown(self) -> str:
        if self.value is None:
            return self.note or "n/a"
        return f"{_number(self.value)} {self.unit}".strip()

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "info"
        return "PASS" if self.passed else "FAIL"


def _number(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if float(value).is_integer() and magnitude < 1000:
        return str(int(value))
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


@dataclass
class Context:
    quick: bool
    work: Path
    python: str
    crisiscomms: str
    profile: bool
    apprise_python: str | None
    commands: list[tuple[str, str]] = field(default_factory=list)  # (bench, command)
    details: dict[str, Any] = field(default_factory=dict)  # extra tables for the doc
    profiles: list[Path] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)  # stand-in URL → placeholder in the commands shown

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def note_command(self, bench: str, argv: Sequence[str]) -> None:
        shown = shlex.join(self.urls.get(str(a), _shorten(str(a), self.work)) for a in argv)
        if (bench, shown) not in self.commands:
            self.commands.append((bench, shown))


def _shorten(text: str, work: Path) -> str:
    text = text.replace(str(work), "$WORK")
    text = text.replace(str(REPO) + "/", "")
    return text


# --------------------------------------------------------------------------- processes


def cli_env(url: str | None = None) -> dict[str, str]:
    """The CLI's environment: stand-in credentials and URLs, no proxies, no Twilio routing."""
    env = {k: v for k, v in os.environ.items()
           if k.upper() not in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "TWILIO_REGION", "TWILIO_EDGE")}
    env.update(TWILIO_ACCOUNT_SID=DEFAULT_TWILIO_SID, TWILIO_AUTH_TOKEN=DEFAULT_TWILIO_TOKEN,
               SENDGRID_API_KEY=DEFAULT_SENDGRID_KEY, NO_PROXY="127.0.0.1,localhost", COLUMNS="100",
               PYTHONUNBUFFERED="1")
    if url is not None:
        env.update(CRISISCOMMS_TWILIO_URL=url, CRISISCOMMS_SENDGRID_URL=url)
    return env


@dataclass
class Run:
    argv: list[str]
    returncode: int
    seconds: float
    stdout: str
    stderr: str
    max_rss_kb: int | None = None
    tree_rss_kb: int | None = None  # peak of the summed RSS of the command and all its processes (run_tree)
    tree_pss_kb: int | None = None  # the same for PSS (shared pages divided among the processes sharing them)
    cpu_seconds: float | None = None  # user + system CPU of the command and every process it waited for


def _children_cpu() -> float:
    """User + system CPU seconds of this process's ended (waited-for) children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _children(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc/*/stat)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB, from /proc/PID/smaps_rollup; (0, 0) once it is gone."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def run_tree(argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 900,
             every: float = 0.05) -> Run:
    """Run a command; wall time around it; the peak of its processes' summed RSS and PSS, sampled every
    ``every`` seconds (workers it forks included)."""
    env = {**(env if env is not None else os.environ), "XDG_STATE_HOME": str(cwd / ".state")}
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        cpu_before = _children_cpu()
        started = time.perf_counter()
        process = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        peak_rss = peak_pss = 0
        while process.poll() is None:
            if time.perf_counter() - started > timeout:
                process.kill()
                raise RuntimeError(f"{argv[0]} ran past {timeout} s")
            totals = [_memory_kb(pid) for pid in [process.pid, *_children(process.pid)]]
            peak_rss = max(peak_rss, sum(rss for rss, _ in totals))
            peak_pss = max(peak_pss, sum(pss for _, pss in totals))
            time.sleep(every)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return Run(list(argv), process.returncode, seconds, out.read(), err.read(), tree_rss_kb=peak_rss or None,
                   tree_pss_kb=peak_pss or None, cpu_seconds=_children_cpu() - cpu_before)


def run(argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 900,
        measure_rss: bool = False) -> Run:
    """Run a command; wall time around it; with ``measure_rss`` its peak RSS (``/usr/bin/time -v``,
    else ``ru_maxrss`` of the children of a fresh Python wrapper)."""
    rss_file = Path(tempfile.mkstemp(prefix="rss-", dir=cwd)[1]) if measure_rss else None
    full = list(argv)
    if rss_file is not None:
        if Path("/usr/bin/time").exists():
            full = ["/usr/bin/time", "-v", "-o", str(rss_file), *full]
        else:
            wrapper = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
                       "open(sys.argv[1], 'w').write('Maximum resident set size (kbytes): %d\\n' % "
                       "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")
            full = [sys.executable, "-c", wrapper, str(rss_file), *full]
    env = {**(env if env is not None else os.environ), "XDG_STATE_HOME": str(cwd / ".state")}  # a ledger per folder
    cpu_before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(full, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.perf_counter() - started
    result = Run(list(argv), done.returncode, seconds, done.stdout, done.stderr,
                 cpu_seconds=_children_cpu() - cpu_before)
    if rss_file is not None:
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", rss_file.read_text())
        result.max_rss_kb = int(match.group(1)) if match else None
        rss_file.unlink()
    return result


def _check(result: Run, what: str, *, codes: Sequence[int] = (0,)) -> None:
    if result.returncode not in codes:
        tail = (result.stderr or result.stdout)[-2000:]
        raise RuntimeError(f"{what} exited {result.returncode}:\n{tail}")


class Standin:
    """``python -m crisiscomms.testing.standin`` in its own process."""

    def __init__(self, ctx: Context, bench: str, *, latency: float, rate_cap: float | None = None) -> None:
        self.ctx = ctx
        self.bench = bench
        self.argv = [ctx.python, "-m", "crisiscomms.testing.standin", "--port", "0", "--latency", str(latency)]
        if rate_cap is not None:
            self.argv += ["--rate-cap", str(rate_cap)]
        self.dump = ctx.work / f"standin-dump-{os.getpid()}-{time.monotonic_ns()}.json"
        self.argv += ["--dump", str(self.dump)]
        self.process: subprocess.Popen[str] | None = None
        self.log: Path | None = None
        self._log_file: Any = None
        self.url = ""
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __enter__(self) -> Standin:
        self.log = self.ctx.work / f"standin-{self.bench}-{time.monotonic_ns()}.log"
        self._log_file = open(self.log, "w", encoding="utf-8")  # closed in __exit__
        self.process = subprocess.Popen(self.argv, cwd=self.ctx.work, env=cli_env(), stdout=subprocess.PIPE,
                                        stderr=self._log_file, text=True)
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 20)
        line = self.process.stdout.readline().strip() if ready else ""
        if not line.startswith("http://"):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the stand-in did not start (said {line!r})")
        self.url = line
        self.ctx.urls[line] = "$STANDIN_URL"
        self.ctx.note_command(self.bench, self.argv[: self.argv.index("--dump")])
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._log_file is not None:
            self._log_file.close()
        self.dump.unlink(missing_ok=True)

    def _call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.url + path, method=method, data=b"{}" if method == "POST" else None,
                                         headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(request, timeout=120) as response:
                return json.loads(response.read())
        except OSError as error:
            process = self.process
            status = "running" if process is not None and process.poll() is None else \
                f"exited with {process.returncode if process is not None else '?'}"
            said = self.log.read_text(encoding="utf-8")[-300:].strip() if self.log is not None else ""
            raise RuntimeError(f"the stand-in did not answer {path} ({error}); its process {status}"
                               + (f"; it said: {said}" if said else "")) from error

    def record(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_standin/record")
        return result

    def reset(self) -> None:
        self._call("POST", "/_standin/reset")


def span_rate(records: Sequence[dict[str, Any]]) -> tuple[float | None, float]:
    """(messages per second between the first and the last accepted message, that span in seconds)."""
    if len(records) < 2:
        return None, 0.0
    times = sorted(dt.datetime.fromisoformat(r["created_at"]).timestamp() for r in records)
    span = times[-1] - times[0]
    return ((len(times) - 1) / span if span > 0 else None), span


# --------------------------------------------------------------------------- inputs


def audience(ctx: Context, rows: int, *, clean: bool, suppress: bool = False) -> tuple[Path, Path | None]:
    """A generated audience (cached by size, seed and generator version)."""
    folder = ctx.work / "audiences"
    stem = f"{'clean' if clean else 'mixed'}-{rows}-s{SEED}-v{make_audience.GENERATOR_VERSION}"
    path = folder / f"{stem}.csv"
    opt_out = folder / f"{stem}.suppress.txt" if suppress else None
    shown = [ctx.python, str(BENCH_DIR / "make_audience.py"), str(path), "--rows", str(rows), "--seed", str(SEED),
             *(["--clean"] if clean else []), *(["--suppress", str(opt_out)] if opt_out else [])]
    ctx.note_command("audience", shown)
    if not path.exists() or (opt_out is not None and not opt_out.exists()):
        started = time.perf_counter()
        make_audience.generate(path, rows, seed=SEED, clean=clean, suppress=opt_out)
        console.log(f"generated {path.name} in {time.perf_counter() - started:.1f} s")
    return path, opt_out


def fresh_dir(ctx: Context, name: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=ctx.work))
    return path


def send_argv(ctx: Context, audience_path: Path, *extra: str, playbook: Path = PLAYBOOK,
              notice: str = NOTICE) -> list[str]:
    return [ctx.crisiscomms, "send", str(playbook), "--notice", notice, "--audience", str(audience_path),
            "--at", AT, *extra]
