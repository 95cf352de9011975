"""Templates cannot reach Python internals, the environment or the file system.

Each attempt replaces one template of the minimal project and goes through ``validate``, ``preview``
and ``send --dry-run``: it must fail cleanly (1, 3, 3: a message, no traceback) and nothing secret may
appear: not the credentials, not a sentinel environment variable, not a file outside ``templates/``.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import secrets
import shutil
from pathlib import Path

import pytest
from jinja2.bccache import bc_magic

from crisiscomms.testing.standin import Standin

from ..conftest import Result, run_cli
from .conftest import AT, Credentials, environment, leaks, make_project, run_bounded

TEMPLATE = "outage/en/email_subject.txt"
ATTEMPTS = {
    "os-environ": "{{ os.environ }}",
    "config": "{{ config.items() }}",
    "request": "{{ request.environ }}",
    "builtins": "{{ __builtins__.open('/etc/passwd').read() }}",
    "self-globals": "{{ self.__init__.__globals__ }}",
    "self-context": "{{ self._TemplateReference__context.environment }}",
    "lipsum-os": "{{ lipsum.__globals__['os'].environ }}",
    "cycler-os": "{{ cycler.__init__.__globals__.os.environ }}",
    "joiner-os": "{{ joiner.__init__.__globals__.os.environ }}",
    "namespace-os": "{{ namespace.__init__.__globals__.os.environ }}",
    "range-self-builtins": "{{ range.__self__.open('/etc/passwd').read() }}",
    "subclasses": "{{ ().__class__.__base__.__subclasses__() }}",
    "format-globals": "{{ '{0.__init__.__globals__[os].environ}'.format(cycler) }}",
    "attr-filter": "{{ cycler|attr('__init__')|attr('__globals__') }}",
    "vars-class": "{{ vars.__class__.__init__ }}",
    "datetime-class": "{{ notice.expires.__class__.__init__.__globals__ }}",
    "get-globals-via-macro": "{% macro m() %}{% endmacro %}{{ m.__globals__ }}",
    "include-etc-passwd": "{% include '/etc/passwd' %}",
    "include-dotdot": "{% include '../../../../../../../../etc/passwd' %}",
    "include-proc-environ": "{% include '/proc/self/environ' %}",
    "include-secret-beside": "{% include '../secret.txt' %}",
    "include-first-found": "{% include ['nope.txt', '../secret.txt'] %}",
    "import-secret": "{% import '../secret.txt' as s %}{{ s }}",
    "extends-secret": "{% extends '../secret.txt' %}",
}


@pytest.fixture
def project(tmp_path: Path, credentials: Credentials, standin: Standin, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(tmp_path / "project")
    for name, value in environment(standin, credentials, tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CRISISCOMMS_SANDBOX_SENTINEL", "sentinel-" + secrets.token_hex(12))
    (root / "secret.txt").write_text("secret-file-" + secrets.token_hex(12), encoding="utf-8")
    (root / "templates" / "secret.txt").unlink(missing_ok=True)
    monkeypatch.chdir(root)
    return root


def secrets_of(project: Path, credentials: Credentials) -> dict[str, str]:
    return {**credentials.secrets, "environment sentinel": os.environ["CRISISCOMMS_SANDBOX_SENTINEL"],
            "file outside templates/": (project / "secret.txt").read_text(encoding="utf-8"),
            "/etc/passwd": "root:x:0:0", "/proc/self/environ": "CRISISCOMMS_SANDBOX_SENTINEL="}


def assert_clean(results: dict[str, Result], project: Path, credentials: Credentials) -> None:
    haystacks = {f"{name} {stream}": getattr(result, stream).encode()
                 for name, result in results.items() for stream in ("stdout", "stderr")}
    assert leaks(haystacks, secrets_of(project, credentials)) == []
    for name, result in results.items():
        assert "Traceback" not in result.stdout + result.stderr, name
        assert "internal error" not in result.stderr, name
    crash = project.parent / "crash"
    assert not crash.exists() or not any(crash.iterdir())


def three_commands() -> dict[str, Result]:
    return {
        "validate": run_cli("validate", "playbooks/p.yaml"),
        "preview": run_cli("preview", "playbooks/p.yaml", "--notice", "outage", "--at", AT, "--format", "json"),
        "dry run": run_cli("send", "playbooks/p.yaml", "--notice", "outage", "--audience", "audience.csv",
                           "--at", AT, "--dry-run", "--format", "json"),
    }


@pytest.mark.parametrize("source", list(ATTEMPTS.values()), ids=list(ATTEMPTS))
def test_template_cannot_reach_internals_environment_or_files(project: Path, credentials: Credentials,
                                                              standin: Standin, source: str) -> None:
    (project / "templates" / TEMPLATE).write_text(source, encoding="utf-8")
    results = three_commands()
    assert [r.code for r in results.values()] == [1, 3, 3], {k: r.stdout + r.stderr for k, r in results.items()}
    assert f"templates/{TEMPLATE}:1: error: " in results["validate"].stdout
    assert_clean(results, project, credentials)
    assert standin.requests["twilio"] + standin.requests["sendgrid"] == 0


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_symlink_inside_templates_cannot_pull_in_a_file_outside(project: Path, credentials: Credentials,
                                                                 what: str) -> None:
    if what == "file":
        target = project / "templates" / TEMPLATE
        target.unlink()
        target.symlink_to(project / "secret.txt")
    else:
        outside = project / "elsewhere"
        shutil.copytree(project / "templates" / "outage" / "en", outside)
        shutil.copy(project / "secret.txt", outside / "email_subject.txt")
        shutil.rmtree(project / "templates" / "outage" / "en")
        (project / "templates" / "outage" / "en").symlink_to(outside, target_is_directory=True)
    results = three_commands()
    assert_clean(results, project, credentials)
    assert results["validate"].code == 1


def test_a_planted_template_cache_file_cannot_run_code(tmp_path: Path, credentials: Credentials,
                                                       standin: Standin) -> None:
    root = make_project(tmp_path / "project")
    shared = tmp_path / "shared-cache"  # e.g. CRISISCOMMS_CACHE_DIR=/tmp/crisiscomms-cache on a CI runner
    (shared / "templates").mkdir(parents=True)
    shared.chmod(0o777)
    (shared / "templates").chmod(0o777)
    marker = tmp_path / "code-ran-outside-the-sandbox"
    name = TEMPLATE
    filename = os.path.normpath(os.path.join(str((root / "templates").resolve()), *name.split("/")))
    key = hashlib.sha1(name.encode())
    key.update(f"|{filename}".encode())

    class Payload:  # serialised here, only ever unpickled by the CLI subprocess
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (exec, (f"open({str(marker)!r}, 'w').write('pwned')",))

    (shared / "templates" / f"__jinja2_{key.hexdigest()}.cache").write_bytes(bc_magic + pickle.dumps(Payload(), 2))
    env = {**environment(standin, credentials, tmp_path), "CRISISCOMMS_CACHE_DIR": str(shared)}
    result = run_bounded(["validate", "playbooks/p.yaml"], root, env, memory=None)
    assert result.returncode in (0, 1, 3)
    assert not marker.exists(), "a file from the shared cache folder ran as Python code"
