"""``make doctor``: what would stop the stack or lose a job, found with no service running.

Why: a secret missing from ``.env``, a compose file Docker rejects, a production setting
loom refuses, a job the worker never registers: each otherwise shows up only once
``make up`` fails, or never (the job just does not run). Every check reads the project's
files and boots the apps in memory, as the compose services would (their environment,
values from ``.env``), without connecting to a database, broker or Docker daemon.

One line per finding, ``ERROR <check>: ...`` or ``WARN <check>: ...``, else ``ok <check>``;
the exit status is 1 when any line is an ERROR. A check is a function of the project
directory returning its findings, a plain string being an error: one entry in ``CHECKS``
adds one (``("schedule", lambda root: schedule_problems(root / "config"))``).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from celery import Celery
from dotenv import dotenv_values
from loom.celery.config import JobConfig
from loom.core.config.errors import ConfigError
from loom.core.config.overrides import load_application_config
from loom.core.job.job import Job

from {{ cookiecutter.package_name }}.auth import PLACEHOLDER
from {{ cookiecutter.package_name }}.runtime import JobRuntime, Process, config_paths, create_api
from {{ cookiecutter.package_name }}.schedule import schedule_problems

PACKAGE = "{{ cookiecutter.package_name }}"
COMPOSE_FILE = "docker-compose.yml"
# The compose services whose environment each app is checked with.
API_SERVICE = "api"
WORKER_SERVICE = {{ ("worker-" ~ cookiecutter.default_queue if cookiecutter.worker_per_queue == "yes" else "worker") | tojson }}
# Modules that boot an app when imported: never imported to look for job classes.
ENTRY_POINTS = frozenset({"main", "worker_main", "beat_main", "doctor"})
# Where a job the worker misses must be named, for this project's worker bootstrap.
{%- if cookiecutter.worker_bootstrap == "explicit" %}
REGISTRATION_HINT = "add it to jobs= in worker_main.py"
{%- elif cookiecutter.worker_bootstrap == "manifest" %}
REGISTRATION_HINT = "add it to JOBS in manifest.py"
{%- else %}
REGISTRATION_HINT = "list its module under app.discovery.modules.include in config/base.yaml"
{%- endif %}
# Variables a subprocess needs from this shell; everything else comes from the service.
KEPT_VARIABLES = ("PATH", "HOME", "TMPDIR")
SUBPROCESS_TIMEOUT = 120  # seconds
# Prints, last, the task names of the worker as its entry point boots it.
WORKER_TASKS = (
    f"import json; from {PACKAGE}.worker_main import celery_app; "
    "print(json.dumps(sorted(celery_app.tasks)))"
)

# Compose's interpolation: `$$` is a literal `$`; `${NAME}`, `${NAME:?error}` and
# `${NAME?error}` need the variable; `:-`/`-` give a default, `:+`/`+` an alternative.
INTERPOLATION = re.compile(r"\$(?:\$|\{(?P<name>\w+)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\})")


class Level(StrEnum):
    ERROR = "ERROR"
    WARN = "WARN"


class Finding(NamedTuple):
    level: Level
    message: str


def warn(message: str) -> Finding:
    return Finding(Level.WARN, message)


Check = Callable[[Path], Sequence[str | Finding]]


def one_line(text: str) -> str:
    return " ".join(text.split())


# --- the compose file and .env, read as compose reads them ---------------------------------


def compose_document(root: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((root / COMPOSE_FILE).read_text())
    return document


def dotenv(root: Path) -> dict[str, str | None]:
    return dotenv_values(root / ".env") if (root / ".env").is_file() else {}


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def required_variables(document: object) -> list[str]:
    """Variables the compose file uses without a default, in order of first use."""
    names = (
        match["name"]
        for text in _strings(document)
        for match in INTERPOLATION.finditer(text)
        if match["name"] and (match["op"] or "?").endswith("?")
    )
    return list(dict.fromkeys(names))


def interpolate(text: str, values: Mapping[str, str | None]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        if name is None:
            return "$"
        value = values.get(name)
        is_set = value is not None and (value != "" or not op.startswith(":"))
        if op.endswith("-"):
            return value if is_set and value is not None else arg
        if op.endswith("+"):
            return arg if is_set else ""
        return value or ""

    return INTERPOLATION.sub(substitute, text)


def service_environment(root: Path, service: str) -> dict[str, str]:
    """The environment compose gives ``service``'s container, values from ``.env``."""
    environment = compose_document(root)["services"][service].get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    values = dotenv(root)
    return {
        name: interpolate("" if value is None else str(value), values)
        for name, value in environment.items()
    }


@contextmanager
def service_process(root: Path, service: str, **overrides: str) -> Iterator[dict[str, str]]:
    """``os.environ`` as in ``service``'s container, with this project's ``config/``."""
    environment = service_environment(root, service) | overrides
    environment["LOOM_CONFIG_DIR"] = str(root / "config")
    kept = {name: os.environ[name] for name in KEPT_VARIABLES if name in os.environ}
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(kept | environment)
    try:
        yield kept | environment
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def quiet() -> Iterator[None]:
    """Send this process's output to a scratch file: a boot logs every use case it compiles."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, original in zip((1, 2), saved, strict=True):
                os.dup2(original, fd)
                os.close(original)


def tool(name: str) -> str:
    """A command installed beside this interpreter (the dev tools), else from PATH."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=path)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed: `make doctor` installs the dev tools")
    return found


def run(
    command: list[str], root: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )


def compose_command() -> list[str] | None:
    """Docker's compose plugin, else docker-compose, as the Makefile picks them."""
    if shutil.which("docker") and run(["docker", "compose", "version"], Path.cwd()).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def job_classes() -> dict[str, type[Job[Any]]]:
    """Every job class this package defines, whether or not anything lists it."""
    package = importlib.import_module(PACKAGE)
    for module in pkgutil.walk_packages(package.__path__, f"{PACKAGE}."):
        if module.name.rpartition(".")[2] not in ENTRY_POINTS:
            importlib.import_module(module.name)
    pending, found = list(Job.__subclasses__()), {}
    while pending:
        job = pending.pop()
        pending.extend(job.__subclasses__())
        if job.__module__.startswith(f"{PACKAGE}."):
            found[job.__name__] = job
    return found


def start_worker() -> Celery:
    """The worker as its entry point boots it (``worker_main``), booted again each call."""
    name = f"{PACKAGE}.worker_main"
    module = sys.modules.get(name)
    module = importlib.reload(module) if module else importlib.import_module(name)
    celery_app: Celery = module.celery_app
    return celery_app


def start_error(start: Callable[[], object]) -> str | None:
    """Why ``start`` fails, in one line, or None. Any exception counts: whatever stops an
    app from starting is what this check is for."""
    with quiet():
        try:
            start()
        except (Exception, SystemExit) as exc:
            return one_line(str(exc)).removeprefix("ERROR: ") or type(exc).__name__
    return None


# --- the checks ---------------------------------------------------------------------------


def env_problems(root: Path) -> list[str]:
    """Every variable the compose file needs is in ``.env``, not empty nor a placeholder."""
    if not (root / ".env").is_file():
        return [".env is missing: copy .env.example to .env and fill in every value"]
    values = dotenv(root)
    problems = []
    for name in required_variables(compose_document(root)):
        value = values.get(name)
        if name not in values:
            problems.append(f"{name} is not set in .env ({COMPOSE_FILE} needs it)")
        elif not value:
            problems.append(f"{name} is empty in .env")
        elif PLACEHOLDER in value:
            problems.append(f"{name} in .env is the .env.example placeholder {PLACEHOLDER!r}")
    return problems


def compose_problems(root: Path) -> list[str | Finding]:
    """The compose file against the compose specification, then the compose tool itself."""
    try:
        compose_document(root)
    except yaml.YAMLError as exc:
        return [f"{COMPOSE_FILE} is not valid YAML: {one_line(str(exc))}"]
    schema = run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            "-o",
            "json",
            COMPOSE_FILE,
        ],
        root,
    )
    try:
        report = json.loads(schema.stdout)
    except ValueError:
        return [f"check-jsonschema failed: {one_line(schema.stderr)}"]
    problems: list[str | Finding] = [
        f"compose specification: {error['path']}: {error['message']}"
        for error in report.get("errors", [])
    ]
    problems += [
        f"compose specification: {error['message']}" for error in report.get("parse_errors", [])
    ]
    compose = compose_command()
    if compose is None:
        return [*problems, warn("no `docker compose` nor docker-compose: `config -q` skipped")]
    result = run([*compose, "-f", COMPOSE_FILE, "config", "-q"], root)
    if result.returncode != 0:
        problems.append(f"{' '.join(compose)} config: {one_line(result.stderr)}")
    return problems


def deploy_problems(root: Path) -> list[str | Finding]:
    """``loom check --deploy`` on the production API's own config files and environment.

    Findings the template accepts on purpose are listed, with the reason, under
    ``checks.silenced`` in config/production.yaml, where loom itself reads them.
    """
    with service_process(root, API_SERVICE) as environment:
        paths = config_paths(Process.API)
    result = run([tool("loom"), "check", "--deploy", *paths], root, env=environment)
    problems: list[str | Finding] = []
    for line in result.stdout.splitlines():
        level, _, finding = line.partition(" ")
        if level == "ERROR":
            problems.append(finding)
        elif level == "WARNING":
            problems.append(warn(finding))
    if result.returncode != 0 and not problems:
        problems.append(one_line(result.stderr) or f"loom check exited with {result.returncode}")
    return problems


def boot_problems(root: Path) -> list[str]:
    """The API builds in every job runtime and the worker boots, in their services' setting."""
    problems = []
    for runtime in JobRuntime:
        with service_process(root, API_SERVICE, JOB_RUNTIME=runtime.value):
            error = start_error(create_api)
        if error:
            problems.append(f"the API ({runtime.value} jobs) does not start: {error}")
    with service_process(root, WORKER_SERVICE):
        error = start_error(start_worker)
    if error:
        problems.append(f"the worker does not start: {error}")
    return problems


def jobs_problems(root: Path) -> list[str]:
    """``jobs:`` (config/jobs.yaml) and the job classes name each other, on known queues."""
    with service_process(root, WORKER_SERVICE):
        config = load_application_config(*config_paths(Process.WORKER))
    entries: dict[str, Any] = config.raw("jobs", {}) or {}
    queues = list(config.raw("celery.queues", []) or [])
    jobs = job_classes()
    problems = [
        f"jobs.{name} names no job class (known: {', '.join(sorted(jobs))})"
        for name in sorted(set(entries) - set(jobs))
    ]
    for name, job in sorted(jobs.items()):
        if name not in entries:
            problems.append(f"{name} has no entry under jobs: in config/jobs.yaml")
            continue
        try:
            entry = config.section(f"jobs.{name}", JobConfig)
        except ConfigError as exc:
            problems.append(f"jobs.{name}: {one_line(str(exc))}")
            continue
        queue = entry.queue or job.__queue__
        if queue not in queues:
            problems.append(f"{name} goes to queue {queue!r}, not in celery.queues {queues}")
    return problems


def registration_problems(root: Path) -> list[str]:
    """The worker, booted by its entry point, registers a task for every job class.

    Asked of a fresh interpreter: Celery shares the tasks of every worker app a process
    has built with the apps built after it, so one booted here could list a task its own
    bootstrap never registered.
    """
    jobs = job_classes()
    with service_process(root, WORKER_SERVICE) as environment:
        result = run([sys.executable, "-c", WORKER_TASKS], root, env=environment)
    if result.returncode != 0:
        error = one_line(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "")
        return [f"the worker does not start, so no job is registered: {error}"]
    tasks = set(json.loads(result.stdout.splitlines()[-1]))
    return [
        f"{name} is not registered with the worker: {REGISTRATION_HINT}"
        for name in sorted(jobs)
        if f"loom.job.{name}" not in tasks
    ]


CHECKS: tuple[tuple[str, Check], ...] = (
    ("env", env_problems),
    ("compose", compose_problems),
    ("deploy", deploy_problems),
    ("boot", boot_problems),
    ("jobs", jobs_problems),
    ("registration", registration_problems),
    ("schedule", lambda root: schedule_problems(root / "config")),
)


def findings(check: Check, root: Path) -> list[Finding]:
    try:
        found = check(root)
    except (Exception, SystemExit) as exc:  # a check that cannot run is a finding, not a crash
        return [Finding(Level.ERROR, f"{type(exc).__name__}: {one_line(str(exc))}")]
    return [item if isinstance(item, Finding) else Finding(Level.ERROR, item) for item in found]


def main(argv: Sequence[str] = ()) -> int:
    """Run every check on the project in ``argv[0]`` (default: here); 1 on any error."""
    root = Path(argv[0] if argv else ".").resolve()
    failed = False
    for name, check in CHECKS:
        found = findings(check, root)
        for finding in found:
            print(f"{finding.level.value} {name}: {finding.message}", flush=True)
        if not found:
            print(f"ok {name}", flush=True)
        failed = failed or any(finding.level is Level.ERROR for finding in found)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
