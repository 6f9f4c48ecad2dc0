"""The job flow on PostgreSQL with a real Celery worker consuming from Redis.

Runs when INTEGRATION_DATABASE_URL (a PostgreSQL login allowed to create databases) and
INTEGRATION_REDIS_URL are set, as in CI; without them it is skipped, saying so. Each run
uses a database of its own, dropped afterwards, and Redis databases 14 and 15.
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
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.package_name }}.runtime import create_api

ADMIN_URL = os.environ.get("INTEGRATION_DATABASE_URL", "")
REDIS_URL = os.environ.get("INTEGRATION_REDIS_URL", "")
EMAIL = {"recipientEmail": "buyer@example.com"}
TIMEOUT = 30.0

pytestmark = pytest.mark.skipif(
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
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(autouse=True)
def celery_environment(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("JOB_RUNTIME", "celery")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CELERY_BROKER_URL", f"{REDIS_URL}/14")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", f"{REDIS_URL}/15")


@pytest.fixture
def api() -> Iterator[TestClient]:
    """The API on PostgreSQL; starting it creates the tables."""
    with TestClient(create_api()) as client:
        yield client


@pytest.fixture
def worker(api: TestClient, tmp_path: Path) -> Iterator[None]:
    """A Celery worker process on every queue, stopped by its PID afterwards."""
    node = f"itest-{secrets.token_hex(3)}@localhost"
    celery = [sys.executable, "-m", "celery"]
    app = "{{ cookiecutter.package_name }}.worker_main:celery_app"
    log = (tmp_path / "worker.log").open("wb")
    queues = "--queues={{ cookiecutter.queues }}"
    process = subprocess.Popen(
        [*celery, "-A", app, "worker", "--pool=solo", f"--hostname={node}", queues],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        ping = [*celery, "--broker", os.environ["CELERY_BROKER_URL"], "inspect", "ping", "-d", node]
        deadline = time.monotonic() + TIMEOUT
        while subprocess.run(ping, capture_output=True, check=False).returncode != 0:
            assert process.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker did not answer ping"
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def category_of(api: TestClient, product_id: int, expected: str) -> str:
    deadline = time.monotonic() + TIMEOUT
    category: str = api.get(f"/products/{product_id}").json()["category"]
    while category != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        category = api.get(f"/products/{product_id}").json()["category"]
    return category


def out_of_stock_product(api: TestClient) -> int:
    body = {"sku": secrets.token_hex(4), "name": "Kettle", "category": "kitchen", "priceCents": 1}
    product_id: int = api.post("/products/", json=body | {"stock": 0}).json()["id"]
    return product_id


@pytest.mark.usefixtures("worker")
def test_worker_sends_the_email_and_the_callback_tags_the_product(api: TestClient) -> None:
    product_id = out_of_stock_product(api)

    accepted = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    assert accepted.status_code == 202
    assert category_of(api, product_id, "kitchen-restock-notified") == "kitchen-restock-notified"


@pytest.mark.usefixtures("worker")
def test_failing_job_ends_in_the_failure_callback(api: TestClient) -> None:
    product_id = out_of_stock_product(api)

    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL | {"forceFail": True})

    assert category_of(api, product_id, "kitchen-restock-failed") == "kitchen-restock-failed"
