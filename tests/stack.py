"""Run a baked project's compose services as local processes against real PostgreSQL and Redis
(and RabbitMQ, when the project was baked with it).

Each stack gets a private database and login (made by the project's own postgres init
script) on this machine's PostgreSQL, a private redis-server on a free port and, with
RabbitMQ, a private vhost and user on this machine's RabbitMQ. Every process is started in
its own process group and stopped by its PID, also on failure.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from kombu.connection import Connection
from kombu.entity import Queue
from kombu.message import Message

from tests.compose import Service, load_services, read_env_file
from tests.tools import bearer_token

PG_HOST, PG_PORT, PG_ADMIN = "127.0.0.1", 5432, "postgres"
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
STARTUP_TIMEOUT = 90.0
RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(
    condition: Callable[[], bool],
    what: str,
    timeout: float = STARTUP_TIMEOUT,
    diagnose: Callable[[], str] | None = None,
) -> None:
    """Poll ``condition`` every 0.2 s; fail the test with ``what`` after ``timeout`` seconds,
    and with what ``diagnose`` finds then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    found = f"\n{diagnose()}" if diagnose else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{found}")


def admin_connection() -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(
            host=PG_HOST,
            port=PG_PORT,
            user=PG_ADMIN,
            dbname="postgres",
            autocommit=True,
            connect_timeout=3,
        )
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} as {PG_ADMIN} ({exc}). "
            f"Start it with: {PG_START}"
        )


def stop_process_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to the group ``process`` leads (started with ``start_new_session``), then
    SIGKILL if it has not exited within ``grace`` seconds."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def private_redis(password: str | None = None) -> Iterator[int]:
    """A redis-server of our own on a free loopback port, keeping nothing on disk; with
    ``password`` it refuses every client that does not send it, as the stack's does."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: apt-get install redis-server")
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            *(["--requirepass", password] if password else []),
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        client = redis.Redis(port=port, password=password, socket_connect_timeout=1)
        wait_for(lambda: _answers(client), f"redis-server on port {port}", timeout=10)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


@dataclass(frozen=True)
class Vhost:
    """A vhost of this machine's RabbitMQ and the one user allowed in it."""

    name: str
    user: str
    password: str

    def url(self) -> str:
        return f"amqp://{self.user}:{self.password}@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{self.name}"

    def connection(self) -> Connection:
        return Connection(self.url(), connect_timeout=5)  # type: ignore[no-untyped-call]

    def publish(self, queue: str, body: dict[str, Any], priority: int) -> None:
        """Send ``body`` straight to ``queue`` (it must exist) through the default exchange."""
        with self.connection() as connection:
            producer = connection.Producer()
            producer.publish(body, exchange="", routing_key=queue, priority=priority, retry=False)

    def drain(self, queue: str) -> list[Message]:
        """Take every message of ``queue``, in the order RabbitMQ hands them out."""
        taken = []
        with self.connection() as connection:
            bound = Queue(queue, no_declare=True)(connection.default_channel)  # type: ignore[no-untyped-call]
            while (message := bound.get(no_ack=True)) is not None:  # type: ignore[no-untyped-call]
                taken.append(message)
        return taken

    def queues(self) -> dict[str, dict[str, Any]]:
        """Each queue of the vhost: its arguments and its ready and unacknowledged counts."""
        listed = rabbitmqctl(
            "list_queues",
            "--vhost",
            self.name,
            "name",
            "arguments",
            "messages_ready",
            "messages_unacknowledged",
            "--formatter",
            "json",
        )
        queues = {queue["name"]: queue for queue in json.loads(listed)}
        for queue in queues.values():
            # rabbitmqctl lists arguments as [name, AMQP type, value] triples
            queue["arguments"] = {name: value for name, _, value in queue["arguments"]}
        return queues


def rabbitmqctl(*args: str) -> str:
    """RabbitMQ's own administration command (the management HTTP API is not always on)."""
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("rabbitmqctl is not installed: apt-get install rabbitmq-server")
    done = subprocess.run(
        ["rabbitmqctl", "--quiet", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"rabbitmqctl {' '.join(args)}: {done.stderr}"
    return done.stdout


def integration_environment(redis_port: int) -> dict[str, str]:
    """What a baked project's integration tests need: this machine's PostgreSQL (each test
    module makes a database of its own there) and the Redis on ``redis_port``."""
    return {
        "INTEGRATION_DATABASE_URL": f"postgresql+asyncpg://{PG_ADMIN}@{PG_HOST}:{PG_PORT}/postgres",
        "INTEGRATION_REDIS_URL": f"redis://127.0.0.1:{redis_port}",
    }


@contextmanager
def private_vhost() -> Iterator[Vhost]:
    """A vhost and user of our own on this machine's RabbitMQ, deleted afterwards (with
    every queue and message in it), as the rabbitmq image makes them from the .env."""
    try:
        socket.create_connection((RABBITMQ_HOST, RABBITMQ_PORT), timeout=3).close()
    except OSError as exc:
        pytest.fail(
            f"RabbitMQ is not reachable on {RABBITMQ_HOST}:{RABBITMQ_PORT} ({exc}). "
            "Start it with: service rabbitmq-server start"
        )
    suffix = secrets.token_hex(4)
    vhost = Vhost(f"stack_{suffix}", f"stack_{suffix}", secrets.token_urlsafe(16))
    rabbitmqctl("add_vhost", vhost.name)
    try:
        rabbitmqctl("add_user", vhost.user, vhost.password)
        rabbitmqctl("set_permissions", "--vhost", vhost.name, vhost.user, ".*", ".*", ".*")
        yield vhost
    finally:
        rabbitmqctl("delete_vhost", vhost.name)
        with suppress(AssertionError):
            rabbitmqctl("delete_user", vhost.user)


def _answers(client: redis.Redis[bytes]) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def _republish(arg: str, container_port: int, local_port: int) -> str:
    """Point an argument at the free local port that stands for a container port."""
    if arg == str(container_port):
        return str(local_port)
    return arg.replace(f"={container_port}", f"={local_port}").replace(
        f"127.0.0.1:{container_port}", f"127.0.0.1:{local_port}"
    )


@dataclass
class Stack:
    """The services of one baked project's docker-compose.yml, run on this machine."""

    project: Path
    redis_port: int
    database: str
    login: str
    password: str
    worker_queues: str
    log_dir: Path
    vhost: Vhost | None = None
    # Variables set in the shell that runs compose: they win over .env, as in compose.
    shell: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    host_ports: dict[tuple[str, int], int] = field(default_factory=dict)

    def variables(self) -> dict[str, str]:
        """What compose would interpolate with: the project's .env, then our overrides."""
        rabbitmq = (
            {
                "RABBITMQ_DEFAULT_USER": self.vhost.user,
                "RABBITMQ_DEFAULT_PASS": self.vhost.password,
                "RABBITMQ_DEFAULT_VHOST": self.vhost.name,
            }
            if self.vhost
            else {}
        )
        return (
            read_env_file(self.project / ".env")
            | {
                "APP_DB_NAME": self.database,
                "APP_DB_USER": self.login,
                "APP_DB_PASSWORD": self.password,
                "WORKER_QUEUES": self.worker_queues,
            }
            | rabbitmq
            | self.shell
        )

    @cached_property
    def services(self) -> dict[str, Service]:
        return load_services(self.project / "docker-compose.yml", self.variables())

    def _localise(self, service: Service, text: str) -> str:
        """Service host names to loopback, published container ports to free host ports,
        and /tmp to a folder of the service's own, as each container has its own /tmp."""
        if text.startswith("/tmp/"):
            private_tmp = self.log_dir / f"{service.name}-tmp"
            private_tmp.mkdir(exist_ok=True)
            text = str(private_tmp / text.removeprefix("/tmp/"))
        text = text.replace("@postgres:5432/", f"@{PG_HOST}:{PG_PORT}/")
        text = text.replace("@redis:6379/", f"@127.0.0.1:{self.redis_port}/")
        text = text.replace("@rabbitmq:5672/", f"@{RABBITMQ_HOST}:{RABBITMQ_PORT}/")
        return text.replace("0.0.0.0", "127.0.0.1")

    def host_port(self, service: str, container_port: int) -> int:
        return self.host_ports.setdefault((service, container_port), free_port())

    def command(self, service: Service, command: list[str] | None = None) -> list[str]:
        args = [self._localise(service, arg) for arg in (command or service.command)]
        for _, container_port in service.ports:
            local = self.host_port(service.name, container_port)
            args = [_republish(arg, container_port, local) for arg in args]
        return args

    def environment(self, service: Service) -> dict[str, str]:
        """The service's environment; its programs come from the project's virtualenv when
        its image is built from the project, else from these tests' own (which has flower)."""
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("LOOM")}
        venv = (
            self.project / ".venv" if service.builds_project else Path(sys.executable).parent.parent
        )
        return (
            inherited
            | {key: self._localise(service, value) for key, value in service.environment.items()}
            | {
                "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
                "HOSTNAME": socket.gethostname(),
                "VIRTUAL_ENV": str(venv),
            }
        )

    def run(self, name: str, command: list[str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a one-shot service (or another command in its environment) to completion."""
        service = self.services[name]
        return subprocess.run(
            self.command(service, command),
            cwd=self.project,
            env=self.environment(service),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self, name: str) -> None:
        service = self.services[name]
        log = (self.log_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            self.command(service),
            cwd=self.project,
            env=self.environment(service),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def healthy(self, name: str) -> bool:
        """The service's own compose healthcheck, run here."""
        process = self.processes.get(name)
        if process is not None and process.poll() is not None:
            log = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"{name} exited with {process.returncode}:\n{log}")
        service = self.services[name]
        assert service.healthcheck is not None, f"{name} declares no healthcheck"
        kind, *test = service.healthcheck
        command = ["sh", "-c", test[0]] if kind == "CMD-SHELL" else test
        checked = subprocess.run(
            self.command(service, command),
            cwd=self.project,
            env=self.environment(service),
            capture_output=True,
            timeout=30,
            check=False,
        )
        return checked.returncode == 0

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        stop_process_group(process, grace=20)

    def kill(self, name: str) -> None:
        """SIGKILL the service's whole process group, as a crash would: nothing is cleaned up."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def broker(self) -> redis.Redis[bytes]:
        """A client on the stack's Redis, with the password from the project's .env."""
        return redis.Redis(port=self.redis_port, password=self.variables()["REDIS_PASSWORD"])

    def api_client(self) -> httpx.Client:
        """An HTTP client on the stack's API, authenticated as a writer."""
        headers = {"Authorization": f"Bearer {bearer_token(self.project)}"}
        return httpx.Client(base_url=self.url("api"), headers=headers, timeout=10)

    def url(self, service: str) -> str:
        (_, container_port), *_ = self.services[service].ports
        return f"http://127.0.0.1:{self.host_port(service, container_port)}"


@contextmanager
def private_database(project: Path) -> Iterator[tuple[str, str, str]]:
    """A database and login of our own, made by the project's postgres init script."""
    suffix = secrets.token_hex(4)
    database, login, password = f"stack_{suffix}", f"stack_{suffix}_app", secrets.token_urlsafe(16)
    with admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        init = subprocess.run(
            ["bash", str(project / "deploy" / "postgres" / "10-app-role.sh")],
            env=os.environ
            | {
                "PGHOST": PG_HOST,
                "PGPORT": str(PG_PORT),
                "POSTGRES_USER": PG_ADMIN,
                "POSTGRES_DB": database,
                "APP_DB_USER": login,
                "APP_DB_PASSWORD": password,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert init.returncode == 0, init.stderr
        yield database, login, password
    finally:
        with admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            with suppress(psycopg.Error):
                admin.execute(f'DROP ROLE IF EXISTS "{login}"')


# Stood in for by this machine's PostgreSQL and RabbitMQ and a private redis-server.
INFRASTRUCTURE = frozenset({"postgres", "redis", "rabbitmq"})


@contextmanager
def running_stack(
    project: Path, log_dir: Path, worker_queues: str, shell: dict[str, str] | None = None
) -> Iterator[Stack]:
    """The one-shot services (migrate) to completion, then every long-running one, each
    waited for by its own healthcheck; ``shell`` holds variables as if exported before
    ``make up``."""
    env = read_env_file(project / ".env")
    with (
        private_redis(env["REDIS_PASSWORD"]) as redis_port,
        private_database(project) as (database, login, password),
        private_vhost() if "RABBITMQ_DEFAULT_VHOST" in env else nullcontext() as vhost,
    ):
        stack = Stack(project, redis_port, database, login, password, worker_queues, log_dir, vhost)
        stack.shell.update(shell or {})
        services = [name for name in stack.services if name not in INFRASTRUCTURE]
        try:
            for name in services:
                if stack.services[name].one_shot:
                    finished = stack.run(name)
                    assert finished.returncode == 0, finished.stdout + finished.stderr
            long_running = [name for name in services if not stack.services[name].one_shot]
            for name in long_running:
                stack.start(name)
            for name in long_running:
                wait_for(partial(stack.healthy, name), f"{name} to pass its healthcheck")
            yield stack
        finally:
            stack.stop_all()


def json_log(stack: Stack, service: str) -> list[dict[str, Any]]:
    """The service's log records; Celery prints its banner and shutdown notice as text."""
    return [json.loads(line) for line in stack.log(service).splitlines() if line.startswith("{")]
