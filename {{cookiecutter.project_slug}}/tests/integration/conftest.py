"""PostgreSQL and a real broker for the tests in this folder.

They run when INTEGRATION_DATABASE_URL (a PostgreSQL login allowed to create databases)
and INTEGRATION_REDIS_URL are set, as in CI; without them they are skipped, saying so.
Each module gets a database of its own, dropped afterwards, and Redis databases 13 (the
cache, emptied for each module: product ids start again at 1), 14 and 15.
INTEGRATION_BROKER_URL, when set, is the broker instead of Redis database 14 (RabbitMQ:
``amqp://user:password@host:5672/vhost``); results stay on Redis.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.package_name }}.runtime import create_api

ADMIN_URL = os.environ.get("INTEGRATION_DATABASE_URL", "")
REDIS_URL = os.environ.get("INTEGRATION_REDIS_URL", "")
BROKER_URL = os.environ.get("INTEGRATION_BROKER_URL") or f"{REDIS_URL}/14"
CACHE_URL = f"{REDIS_URL}/13"

TIMEOUT = 30.0

requires_services = pytest.mark.skipif(
    not (ADMIN_URL and REDIS_URL),
    reason="set INTEGRATION_DATABASE_URL and INTEGRATION_REDIS_URL to run against real services",
)


async def _execute(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(statement))
    await engine.dispose()


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    name = f"itest_{secrets.token_hex(4)}"
    asyncio.run(_execute(ADMIN_URL, f'CREATE DATABASE "{name}"'))
    redis.Redis.from_url(CACHE_URL).flushdb()
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(autouse=True)
def celery_environment(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("JOB_RUNTIME", "celery")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CELERY_BROKER_URL", BROKER_URL)
    monkeypatch.setenv("CELERY_RESULT_BACKEND", f"{REDIS_URL}/15")
    monkeypatch.setenv("CACHE_URL", CACHE_URL)


@pytest.fixture
def api() -> Iterator[TestClient]:
    """The API on PostgreSQL; starting it creates the tables."""
    with TestClient(create_api()) as client:
        yield client


def passes_its_healthcheck(heartbeat: Path) -> bool:
    """The worker's compose and Kubernetes healthcheck, run here."""
    check = [sys.executable, "-m", "{{ cookiecutter.package_name }}.heartbeat", str(heartbeat)]
    return subprocess.run(check, capture_output=True, check=False).returncode == 0


@contextmanager
def running_worker(log_path: Path, **environment: str) -> Iterator[Path]:
    """A Celery worker process on every queue, with ``environment`` over this process's,
    ready once it passes its healthcheck and stopped by its PID afterwards; yields the
    file its output goes to. Its heartbeat file lies beside it (``.heartbeat``)."""
    node = f"itest-{secrets.token_hex(3)}@localhost"
    celery = [sys.executable, "-m", "celery"]
    app = "{{ cookiecutter.package_name }}.worker_main:celery_app"
    log = log_path.open("wb")
    queues = "--queues=default,notifications,analytics,erp"
    heartbeat = log_path.with_suffix(".heartbeat")
    process = subprocess.Popen(
        [*celery, "-A", app, "worker", "--pool=solo", f"--hostname={node}", queues],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ | {"WORKER_HEARTBEAT_FILE": str(heartbeat)} | environment,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not passes_its_healthcheck(heartbeat):
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the worker did not pass its healthcheck"
            time.sleep(0.2)
        yield log_path
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture
def worker(api: TestClient, tmp_path: Path) -> Iterator[Path]:
    """A worker on every queue, started once the API has created the tables; its log."""
    with running_worker(tmp_path / "worker.log") as log:
        yield log
