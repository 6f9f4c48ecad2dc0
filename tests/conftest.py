"""Bake projects through cookiecutter's Python API and run their own tooling."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from tests.docker_engine import docker_engine, ensure_stand_in_images
from tests.real_stack import (
    TIMINGS_FILE,
    VISIBILITY_TIMEOUT,
    ComposeStack,
    StackBake,
    StacksComingUp,
    record,
    recorded,
)
from tests.stack import free_port, stop_process_group, wait_for
from tests.tools import TEMPLATE, bake_project, bearer_token, uv_executable

Bake = Callable[..., Path]


class StackEndpoints(Protocol):
    """What the HTTP fixtures need from a stack, simulated (tests.stack) or in containers
    (tests.real_stack)."""

    project: Path

    def url(self, service: str) -> str: ...

    def variables(self) -> dict[str, str]: ...


# Jinja left in a generated file; `${{ ... }}` is GitHub Actions' own expression syntax.
UNRENDERED_JINJA = re.compile(r"(?<!\$)\{\{|\{%")


# What installing the project and running its tools add beside the files a bake wrote.
NOT_BAKED = {
    ".venv",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".git",
}


def generated_files(project: Path) -> list[Path]:
    """Every file a bake wrote, whether or not the project's checks have run in it since."""
    return [
        path
        for path in project.rglob("*")
        if path.is_file() and not NOT_BAKED & set(path.relative_to(project).parts)
    ]


def copied_without_render(project: Path, path: Path) -> bool:
    """True for the files cookiecutter copies as they are (``_copy_without_render``): the
    baked project's own Jinja templates."""
    patterns = json.loads((TEMPLATE / "cookiecutter.json").read_text())["_copy_without_render"]
    relative = path.relative_to(project)
    return any(relative.is_relative_to(pattern) or relative.match(pattern) for pattern in patterns)


def unrendered_jinja(project: Path) -> list[str]:
    """Files of ``project`` that still hold Jinja markers, its own templates left out."""
    return [
        str(path.relative_to(project))
        for path in generated_files(project)
        if not copied_without_render(project, path)
        and UNRENDERED_JINJA.search(path.read_text(errors="ignore"))
    ]


def tool(name: str) -> str:
    """A command from the template's own virtualenv first, then from PATH."""
    found = shutil.which(
        name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    if found is None:
        pytest.fail(f"{name} not found: run the tests with `make test`, which installs it")
    return found


# A baked project's suite takes 2-3 minutes alone on a slow 2-core machine and several times
# that beside the container tests: the limit only stops a run that hangs.
BAKED_RUN_TIMEOUT = 1500.0


def run_make(
    project: Path,
    *targets: str,
    env: dict[str, str] | None = None,
    timeout: float = BAKED_RUN_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run the baked project's own Makefile, with the uv these tests use."""
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(project), *targets, f"UV={uv_executable()}"],
        capture_output=True,
        text=True,
        env=os.environ | (env or {}),
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def bake(tmp_path: Path) -> Bake:
    """Bake the template with the given answers into a fresh directory; return the project."""

    def bake_with(**answers: Any) -> Path:
        return bake_project(tmp_path, **answers)

    return bake_with


def bake_installed(output_dir: Path, **answers: Any) -> Path:
    """Bake into ``output_dir`` and install the project from its lock (``make install``)."""
    project = bake_project(output_dir, **answers)
    result = run_make(project, "install")
    assert result.returncode == 0, result.stdout + result.stderr
    return project


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default bake, installed once and shared by the slow tests."""
    return bake_installed(tmp_path_factory.mktemp("default"))


def api_client(stack: StackEndpoints) -> httpx.Client:
    """A client on the stack's API carrying a writer's token from the project's own
    ``make token``: the one place its credentials go."""
    headers = {"Authorization": f"Bearer {bearer_token(stack.project)}"}
    return httpx.Client(base_url=stack.url("api"), headers=headers, timeout=10)


def flower_client(stack: StackEndpoints) -> httpx.Client:
    """A client on the stack's Flower, logged in with the project's .env credentials."""
    user, password = stack.variables()["FLOWER_BASIC_AUTH"].split(":", 1)
    return httpx.Client(base_url=stack.url("flower"), auth=(user, password), timeout=10)


@pytest.fixture
def api(stack: StackEndpoints) -> Iterator[httpx.Client]:
    """An authenticated client on the ``stack`` fixture's API (each stack test module
    defines ``stack``)."""
    with api_client(stack) as client:
        yield client


@pytest.fixture
def flower(stack: StackEndpoints) -> Iterator[httpx.Client]:
    with flower_client(stack) as client:
        yield client


@dataclass(frozen=True)
class Served:
    """A baked project's `make run`: its URL, an HTTP client on it, and what it printed."""

    url: str
    client: httpx.Client
    log: Path

    def output(self) -> str:
        return self.log.read_text()


def answers_health(base_url: str, server: subprocess.Popen[bytes]) -> bool:
    if server.poll() is not None:
        pytest.fail(f"make run exited with {server.returncode} before serving")
    try:
        return httpx.get(f"{base_url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def served(default_project: Path, tmp_path: Path) -> Iterator[Served]:
    """`make run` on a free port; its whole process group is stopped afterwards."""
    port = free_port()
    log = tmp_path / "make-run.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [
                "make",
                "--no-print-directory",
                "-C",
                str(default_project),
                "run",
                f"PORT={port}",
                f"UV={uv_executable()}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(partial(answers_health, base_url, server), "make run to answer /health")
        with httpx.Client(base_url=base_url, timeout=10) as client:
            yield Served(base_url, client, log)
    finally:
        stop_process_group(server, grace=15)


def claim_the_engine_for_this_process() -> None:
    """Fail at once, saying why, when the container tests were split over two processes:
    both would install packages and start dockerd at the same time."""
    claim = Path(os.environ[TIMINGS_FILE]).parent / "engine.lock"
    handle = claim.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pytest.fail("container tests run in two processes: their xdist group was lost")
    ENGINE_CLAIMS.append(handle)  # held until this process exits


ENGINE_CLAIMS: list[Any] = []


@pytest.fixture(scope="session")
def container_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A Docker engine with the stand-in images the generated files name; skips, saying why,
    where none can be had."""
    claim_the_engine_for_this_process()
    ENGINE_STARTED.append(time.monotonic())
    with docker_engine(tmp_path_factory.mktemp("engine")):
        started = time.monotonic()
        default_python = json.loads((TEMPLATE / "cookiecutter.json").read_text())["python_version"]
        ensure_stand_in_images({default_python})
        record("stand-in images (built, or found current)", time.monotonic() - started)
        yield


ENGINE_STARTED: list[float] = []
CONTAINER_SPAN = "the real-container tests: engine start to the end of the last one"
FINAL_DOWN = "default bake: make down, at the session's end"


def uses_containers(item: pytest.Item | None) -> bool:
    return item is not None and "container_engine" in getattr(item, "fixturenames", ())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """The container tests run one after another in one process (below), other tests after
    them: the span ends with the last of them, so it counts no other test's time."""
    yield
    if uses_containers(item) and not uses_containers(nextitem):
        record(CONTAINER_SPAN, time.monotonic() - ENGINE_STARTED[0])


# The bakes whose stacks the container tests run, by the fixture that hands each one out;
# the first is built alone (StacksComingUp).
STACK_BAKES = {
    "default_compose_stack": StackBake(
        "default bake", settings={"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT)}
    ),
    "per_queue_compose_stack": StackBake(
        "per-queue workers, no Flower, manifest bootstrap",
        answers={"worker_per_queue": "yes", "use_flower": "no", "worker_bootstrap": "manifest"},
    ),
    "rabbitmq_compose_stack": StackBake("broker=rabbitmq", answers={"broker": "rabbitmq"}),
}


@pytest.fixture(scope="session")
def compose_stacks(
    container_engine: None, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StacksComingUp]:
    """Every stack this run's tests use, all coming up from the first one's request on."""
    wanted = {
        fixture: bake
        for fixture, bake in STACK_BAKES.items()
        if any(fixture in getattr(item, "fixturenames", ()) for item in request.session.items)
    }
    stacks = StacksComingUp(tmp_path_factory.mktemp("stacks"), wanted)
    yield stacks
    stacks.close()


@pytest.fixture(scope="session")
def default_compose_stack(compose_stacks: StacksComingUp) -> Iterator[ComposeStack]:
    """The default bake's stack, up for the whole run: most container tests use it."""
    yield compose_stacks.healthy("default_compose_stack")
    taking_down = time.monotonic()
    compose_stacks.take_down("default_compose_stack")
    record(FINAL_DOWN, time.monotonic() - taking_down)


@pytest.fixture(scope="module")
def per_queue_compose_stack(compose_stacks: StacksComingUp) -> Iterator[ComposeStack]:
    """One worker per queue, no Flower, the manifest bootstrap; down after its module."""
    yield compose_stacks.healthy("per_queue_compose_stack")
    compose_stacks.take_down("per_queue_compose_stack")


@pytest.fixture(scope="module")
def rabbitmq_compose_stack(compose_stacks: StacksComingUp) -> Iterator[ComposeStack]:
    """broker=rabbitmq; down after its module."""
    yield compose_stacks.healthy("rabbitmq_compose_stack")
    compose_stacks.take_down("rabbitmq_compose_stack")


def pytest_configure() -> None:
    """The run's timings file, named once by the main process; the test processes inherit it."""
    if TIMINGS_FILE not in os.environ:
        timings = Path(tempfile.mkdtemp(prefix="loom-timings-")) / "timings.jsonl"
        os.environ[TIMINGS_FILE] = str(timings)


def process_group(item: pytest.Item) -> str:
    """Tests that share a module's bake run in one process; each supported combination of
    test_options.py is a bake of its own, so the combinations spread over both processes."""
    callspec = getattr(item, "callspec", None)
    combination = callspec.params.get("combination") if callspec else None
    return f"{item.path.name}::{combination}" if combination else item.path.name


# First: xdist reads the groups in a hook of its own, and a group added after it is lost.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that drive the one Docker engine run one after another in a process of
    their own, and first: they are the longest chain, the rest shares the other process."""
    for item in items:
        if uses_containers(item):
            item.add_marker(pytest.mark.xdist_group("containers"))
        else:
            item.add_marker(pytest.mark.xdist_group(process_group(item)))
    items.sort(key=lambda item: (not uses_containers(item), container_order(item)))


# The order the container tests run in: the first entry an item's id starts with. The
# default stack's worker is killed mid-job early: Redis gives the job back only at the
# first sweep after its visibility timeout, about 100 s later, and the other bakes' stacks
# (up by then) are tested meanwhile, away from the stack that is waiting.
CONTAINER_ORDER = (
    "tests/test_make_up_port_check.py",
    "tests/test_real_stack_faults.py::test_worker_killed_in_the_middle_of_a_job_is_restarted",
    "tests/test_real_stack_other_options.py",
    "tests/test_real_stack_rabbitmq.py",
    "tests/test_real_stack_faults.py::test_the_job_a_killed_worker_held_runs_again",
    "tests/test_real_stack.py",
    "tests/test_real_stack_faults.py",
)


def container_order(item: pytest.Item) -> int:
    starts = (
        index for index, prefix in enumerate(CONTAINER_ORDER) if item.nodeid.startswith(prefix)
    )
    return next(starts, len(CONTAINER_ORDER))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The durations measured on the real containers, for the record: printed, and the file
    removed, by the main process only (xdist's test processes end with this hook too)."""
    if "PYTEST_XDIST_WORKER" in os.environ:
        return
    timings = recorded()
    shutil.rmtree(Path(os.environ[TIMINGS_FILE]).parent, ignore_errors=True)
    if timings:
        terminalreporter.section("real-container timings")
        for what, seconds in timings:
            terminalreporter.write_line(f"{seconds:7.1f} s  {what}")
        spans = dict(timings)
        if CONTAINER_SPAN in spans and FINAL_DOWN in spans:
            total = spans[CONTAINER_SPAN] + spans[FINAL_DOWN]
            terminalreporter.write_line(f"{total:7.1f} s  the real-container part in all")
