"""A baked project's compose stack in real containers, driven through the project's own
Makefile (``make up``, ``make ps``, ``make logs``, ``make down``).

Each stack gets a private compose project name, its own image tag and free host ports,
all written into the project's ``.env`` (the variables a user moves them with), so it runs
beside this machine's PostgreSQL and Redis and beside other runs. It is taken down with its
volumes, and its image untagged, also on failure.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.compose import read_env_file
from tests.stack import free_port, wait_for
from tests.tools import bake_project, bearer_token

# .env variable and container port of each published port, as in docker-compose.yml, by
# service (rabbitmq publishes two). Every variable is set, whether the bake has the service
# or not.
PUBLISHED = {
    "api": ("API_PORT", 8000),
    "flower": ("FLOWER_PORT", 5555),
    "postgres": ("POSTGRES_PORT", 5432),
    "redis": ("REDIS_PORT", 6379),
    "rabbitmq": ("RABBITMQ_PORT", 5672),
    "rabbitmq-management": ("RABBITMQ_MANAGEMENT_PORT", 15672),
}
# Three stacks starting at once on a slow 2-core machine took up to 283 s to get healthy:
# the limit only stops a stack that never gets there, and the timings file shows the real
# figure of each run.
HEALTHY_TIMEOUT = 480.0
# Seconds before Redis hands a dead worker's unacknowledged jobs out again, for the test
# stacks: the generated rule (longer than the longest soft time limit plus its countdown,
# 30 s + 5 s) kept, but well under the 600 s default so a crash test can wait it out.
VISIBILITY_TIMEOUT = 40
# Measured durations go to this file (one JSON line each), which the test run's closing
# summary prints (see conftest): a file, because the tests run in parallel processes.
TIMINGS_FILE = "REAL_STACK_TIMINGS_FILE"


def record(what: str, seconds: float) -> None:
    with Path(os.environ[TIMINGS_FILE]).open("a") as timings:
        timings.write(json.dumps([what, seconds]) + "\n")


def recorded() -> list[tuple[str, float]]:
    timings = Path(os.environ[TIMINGS_FILE])
    if not timings.exists():
        return []
    return [tuple(json.loads(line)) for line in timings.read_text().splitlines()]


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass
class ComposeStack:
    """One running compose project, addressed the way its user addresses it."""

    project: Path
    name: str

    def variables(self) -> dict[str, str]:
        return read_env_file(self.project / ".env")

    def image(self) -> str:
        """The service image this stack's ``make up`` builds (the .env's IMAGE_TAG)."""
        return f"{self.project.name}:{self.name}"

    def url(self, service: str) -> str:
        variable, _ = PUBLISHED[service]
        return f"http://127.0.0.1:{self.variables()[variable]}"

    def make(self, *targets: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """The project's own Makefile (its stack targets need no virtualenv)."""
        return subprocess.run(
            ["make", "--no-print-directory", "-C", str(self.project), *targets],
            capture_output=True,
            text=True,
            # A wide terminal: docker-compose 1.29 wraps its tables at the terminal's width.
            env=os.environ | {"COLUMNS": "250"},
            timeout=timeout,
            check=False,
        )

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """docker-compose in the project, for what its Makefile has no target for."""
        return subprocess.run(
            ["docker-compose", *args],
            cwd=self.project,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def services(self) -> list[str]:
        result = self.compose("config", "--services", timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    def long_running(self) -> list[str]:
        """Every service but the one-shot migrate."""
        return [service for service in self.services() if service != "migrate"]

    def containers(self, service: str) -> list[str]:
        """Every container of ``service``, running or not (more than one once scaled)."""
        return docker(
            "ps",
            "-a",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={self.name}",
            "--filter",
            f"label=com.docker.compose.service={service}",
        ).stdout.split()

    def container(self, service: str) -> str:
        listed = self.containers(service)
        assert len(listed) == 1, f"{service}: expected one container, found {listed}"
        return listed[0]

    def inspect(self, service: str) -> dict[str, Any]:
        result = docker("inspect", self.container(service))
        assert result.returncode == 0, result.stderr
        document: dict[str, Any] = json.loads(result.stdout)[0]
        return document

    def health(self, service: str) -> str:
        state = self.inspect(service)["State"]
        return str(state.get("Health", {}).get("Status", state["Status"]))

    def all_healthy(self) -> bool:
        return all(self.health(service) == "healthy" for service in self.long_running())

    def wait_until_healthy(self, what: str, timeout: float) -> None:
        """Wait for every service to be healthy; fail with :meth:`unhealthy_report` if not."""
        wait_for(self.all_healthy, what, timeout=timeout, diagnose=self.unhealthy_report)

    def unhealthy_report(self) -> str:
        """Why the stack is not healthy: each service that is not, with its state, its
        last health check's output and the end of its log."""
        lines = []
        for service in self.long_running():
            for container in self.containers(service):
                state = json.loads(docker("inspect", container).stdout or "[{}]")[0].get(
                    "State", {}
                )
                health = state.get("Health", {})
                status = health.get("Status", state.get("Status"))
                if status == "healthy":
                    continue
                checks = health.get("Log") or [{}]
                log = docker("logs", "--tail", "30", container)
                lines += [
                    f"--- {service} {container[:12]}: {status}, exit {state.get('ExitCode')}",
                    f"last health check: {str(checks[-1].get('Output', '')).strip()[-800:]}",
                    (log.stdout + log.stderr)[-3000:],
                ]
        return "\n".join(lines)

    def exec(self, service: str, *command: str) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.container(service), *command)

    def logs(self, service: str) -> str:
        result = docker("logs", self.container(service))
        return result.stdout + result.stderr

    def project_containers(self) -> list[str]:
        return docker(
            "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={self.name}"
        ).stdout.split()

    def project_volumes(self) -> list[str]:
        return docker(
            "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={self.name}"
        ).stdout.split()


# Host ports already written into a stack's .env by this process: stacks isolated one
# after another bind theirs only later, so the OS alone could hand one out twice.
_PORTS_HANDED_OUT: set[int] = set()


def unused_port() -> int:
    while (port := free_port()) in _PORTS_HANDED_OUT:
        pass
    _PORTS_HANDED_OUT.add(port)
    return port


def isolate(project: Path, **settings: str) -> ComposeStack:
    """Give the project a private compose name, image tag and free host ports in .env."""
    name = f"loomtest{secrets.token_hex(4)}"
    values = (
        {"COMPOSE_PROJECT_NAME": name, "IMAGE_TAG": name}
        | {variable: str(unused_port()) for variable, _ in PUBLISHED.values()}
        | settings
    )
    with (project / ".env").open("a") as env:
        env.write("".join(f"{key}={value}\n" for key, value in values.items()))
    return ComposeStack(project, name)


def take_down(stack: ComposeStack) -> None:
    """The project's own ``make down`` with its volumes, then its image untagged (its layers
    stay as the next run's build cache). What it leaves behind is removed, then reported:
    a ``make down`` that does not clean up fails the run."""
    down = stack.make("down", "ARGS=-v", timeout=300)
    left = stack.project_containers() + stack.project_volumes()
    if left:
        stack.compose("down", "-v", "--remove-orphans", timeout=300)
    docker("rmi", "--no-prune", stack.image())
    assert down.returncode == 0, f"make down failed:\n{down.stdout[-2000:]}{down.stderr[-2000:]}"
    assert not left, f"make down left {left}"


@dataclass(frozen=True)
class StackBake:
    """A bake whose stack the tests run: its name in the timings, its answers, and the
    tests' own .env settings."""

    label: str
    answers: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)


def bring_up(stack: ComposeStack, label: str) -> ComposeStack:
    """``make up``, then wait until every service is healthy; a stack that does not get
    there is taken down before its failure is raised."""
    try:
        started = time.monotonic()
        up = stack.make("up")
        record(f"{label}: make up returned", time.monotonic() - started)
        if up.returncode != 0:
            pytest.fail(f"make up failed:\n{up.stdout[-4000:]}\n{up.stderr[-4000:]}")
        stack.wait_until_healthy("every service to be healthy", timeout=HEALTHY_TIMEOUT)
        record(f"{label}: make up to every service healthy", time.monotonic() - started)
    except BaseException:
        take_down(stack)
        raise
    return stack


class StacksComingUp:
    """The stacks a run needs, each brought up by its own ``make up`` in a thread, so that
    one stack's build and wait for health overlap the tests of another. The first bake
    builds its image alone; the others start once that image exists and take its
    dependency layer from the build cache, instead of each installing the lock file at
    the same time. Tests take a stack with :meth:`healthy` and give it back with
    :meth:`take_down`; :meth:`close` takes down whatever no test took."""

    def __init__(self, output: Path, bakes: dict[str, StackBake]) -> None:
        self._bakes = bakes
        self._stacks = {
            key: isolate(bake_project(output / key, **bake.answers), **bake.settings)
            for key, bake in bakes.items()
        }
        self._pool = ThreadPoolExecutor(max_workers=max(len(bakes), 1))
        self._coming: dict[str, Future[ComposeStack]] = {}
        for key in self._stacks:  # the first one first: the others wait for its image
            self._coming[key] = self._pool.submit(self._bring_up, key)

    def _bring_up(self, key: str) -> ComposeStack:
        first = next(iter(self._stacks))
        if key != first:
            image = self._stacks[first].image()
            wait_for(
                lambda: (
                    self._coming[first].done() or docker("image", "inspect", image).returncode == 0
                ),
                "the first stack's image",
                timeout=HEALTHY_TIMEOUT,
            )
        return bring_up(self._stacks[key], self._bakes[key].label)

    def healthy(self, key: str) -> ComposeStack:
        """The stack of bake ``key`` once every service is healthy (its failure if not)."""
        return self._coming[key].result()

    def take_down(self, key: str) -> None:
        coming = self._coming.pop(key)
        if coming.exception() is None:  # one that did not come up was taken down then
            take_down(coming.result())

    def close(self) -> None:
        try:
            for key in list(self._coming):
                self.take_down(key)
        finally:
            self._pool.shutdown()


def run_smoke(stack: ComposeStack, *, flower: bool) -> subprocess.CompletedProcess[str]:
    """The generated CI's smoke script (``deploy/smoke.py``) against the running stack."""
    args = ["--api", stack.url("api"), *(["--flower", stack.url("flower")] if flower else [])]
    env = {"API_TOKEN": bearer_token(stack.project)}
    if flower:
        env["FLOWER_BASIC_AUTH"] = stack.variables()["FLOWER_BASIC_AUTH"]
    return subprocess.run(
        ["python3", "deploy/smoke.py", *args],
        cwd=stack.project,
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
