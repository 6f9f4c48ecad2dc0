"""broker=rabbitmq on the real stack: the compose services run as local processes against
this machine's RabbitMQ (a private vhost and user per run), PostgreSQL and a private Redis,
which keeps the results."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from tests.conftest import BAKED_RUN_TIMEOUT, bake_installed
from tests.flows import EMAIL, JOB_TIMEOUT, category_becomes, flower_tasks, new_product
from tests.stack import (
    PG_ADMIN,
    PG_HOST,
    PG_PORT,
    Stack,
    Vhost,
    integration_environment,
    private_redis,
    private_vhost,
    running_stack,
    wait_for,
)
from tests.tools import uv_executable

# The worker serves callbacks (default) and notifications; erp stays unconsumed, so its
# messages can be read in the order RabbitMQ hands them out.
WORKER_QUEUES = "default,notifications"
# The bound on a crashed worker's job running again, counted from the restart.
REDELIVERY_BOUND = 30.0


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake_installed(tmp_path_factory.mktemp("rabbitmq"), broker="rabbitmq")


@pytest.fixture(scope="module")
def stack(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("rabbitmq-logs")
    with running_stack(project, logs, WORKER_QUEUES) as running:
        yield running


@pytest.fixture
def vhost(stack: Stack) -> Vhost:
    assert stack.vhost is not None
    return stack.vhost


def sync_erp(api: httpx.Client, product_id: int) -> str:
    accepted = api.post("/products/jobs/sync-erp", json={"productIds": [product_id]})
    assert accepted.status_code == 202, accepted.text
    (job_id,) = accepted.json()["jobIds"]
    return str(job_id)


def wait_for_ready(vhost: Vhost, queue: str, count: int) -> None:
    """The API publishes after the commit, in the background: wait for what it sent."""
    wait_for(
        lambda: vhost.queues().get(queue, {}).get("messages_ready", 0) >= count,
        f"{count} message(s) ready in {queue}",
        timeout=30,
    )


def test_api_worker_and_flower_use_rabbitmq_as_their_broker(stack: Stack, vhost: Vhost) -> None:
    for service in ("api", "worker"):
        assert (
            stack.services[service]
            .environment["CELERY_BROKER_URL"]
            .startswith(f"amqp://{vhost.user}:")
        )
        assert stack.services[service].environment["CELERY_RESULT_BACKEND"].startswith("redis://")
    assert f"--broker=amqp://{vhost.user}:" in " ".join(stack.services["flower"].command)


def test_restock_email_runs_on_the_worker_and_its_callback_tags_the_product(
    api: httpx.Client,
) -> None:
    product_id = new_product(api)

    accepted = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    assert accepted.status_code == 202
    category_becomes(api, product_id, "kitchen-restock-notified")


def test_job_result_is_kept_on_redis(api: httpx.Client, stack: Stack) -> None:
    product_id = new_product(api)
    job_id = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL).json()["jobId"]
    category_becomes(api, product_id, "kitchen-restock-notified")

    results = redis.Redis(port=stack.redis_port, db=1, password=stack.variables()["REDIS_PASSWORD"])

    assert results.exists(f"celery-task-meta-{job_id}")


def test_forced_failure_reaches_the_failure_callback(api: httpx.Client) -> None:
    product_id = new_product(api)

    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL | {"forceFail": True})

    category_becomes(api, product_id, "kitchen-restock-failed")


def test_every_queue_is_a_priority_queue(api: httpx.Client, vhost: Vhost) -> None:
    sync_erp(api, new_product(api))  # the API declares erp, which no worker here consumes
    wait_for_ready(vhost, "erp", 1)

    queues = vhost.queues()

    for name in ("default", "notifications", "erp"):
        assert queues[name]["arguments"] == {"x-max-priority": 10}, name


def test_erp_sync_carries_the_yaml_priority_and_countdown(api: httpx.Client, vhost: Vhost) -> None:
    vhost.drain("erp")
    sent_at = datetime.now(UTC)

    job_id = sync_erp(api, new_product(api))

    wait_for_ready(vhost, "erp", 1)
    (message,) = vhost.drain("erp")
    assert message.headers["id"] == job_id
    assert message.headers["task"] == "loom.job.SyncProductToErpJob"
    assert message.properties["priority"] == 5
    eta = datetime.fromisoformat(message.headers["eta"])
    assert timedelta(seconds=4) < eta - sent_at < timedelta(seconds=6)


def test_rabbitmq_hands_out_the_erp_job_before_an_earlier_lower_priority_message(
    api: httpx.Client, vhost: Vhost
) -> None:
    sync_erp(api, new_product(api))  # erp exists, declared by the API
    wait_for_ready(vhost, "erp", 1)
    vhost.drain("erp")
    vhost.publish("erp", {"bulk": True}, priority=0)

    job_id = sync_erp(api, new_product(api))

    wait_for_ready(vhost, "erp", 2)  # the job is published just after the answer
    first, second = vhost.drain("erp")
    assert first.headers["id"] == job_id
    assert second.payload == {"bulk": True}


@contextmanager
def products_lock(stack: Stack) -> Iterator[psycopg.Connection[Any]]:
    """An open transaction holding the products table: a job reading a product waits until
    it is rolled back, so the test decides how long the job runs."""
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_ADMIN, dbname=stack.database
    ) as connection:
        connection.execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        try:
            yield connection
        finally:
            connection.rollback()


def job_waits_on_the_lock(stack: Stack, admin: psycopg.Connection[Any]) -> bool:
    waiting = admin.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = %s AND usename = %s AND wait_event_type = 'Lock'",
        (stack.database, stack.login),
    ).fetchone()
    return waiting is not None and waiting[0] > 0


def test_job_of_a_killed_worker_is_given_back_at_once_and_runs_soon_after_the_restart(
    api: httpx.Client,
    stack: Stack,
    vhost: Vhost,
    record_property: Any,
) -> None:
    product_id = new_product(api)
    stack.stop("worker")
    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)
    with (
        psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_ADMIN, dbname=stack.database, autocommit=True
        ) as observer,
        products_lock(stack) as lock,
    ):
        stack.start("worker")
        wait_for(lambda: job_waits_on_the_lock(stack, observer), "the job to be running")
        assert vhost.queues()["notifications"]["messages_unacknowledged"] == 1

        killed_at = time.monotonic()
        stack.kill("worker")
        wait_for(
            lambda: vhost.queues()["notifications"]["messages_ready"] == 1,
            "RabbitMQ to take the killed worker's message back",
            timeout=10,
        )
        given_back = time.monotonic() - killed_at
        lock.rollback()

    restarted_at = time.monotonic()
    stack.start("worker")
    category_becomes(api, product_id, "kitchen-restock-notified")
    ran_after_restart = time.monotonic() - restarted_at

    record_property("message back in the queue after SIGKILL (s)", round(given_back, 2))
    record_property("job done after the worker's restart (s)", round(ran_after_restart, 2))
    print(
        f"given back {given_back:.2f} s after SIGKILL; done {ran_after_restart:.2f} s after restart"
    )
    assert ran_after_restart < REDELIVERY_BOUND
    wait_for(lambda: stack.healthy("worker"), "the restarted worker's healthcheck")


def test_flower_refuses_requests_without_credentials(stack: Stack) -> None:
    assert httpx.get(f"{stack.url('flower')}/api/workers", timeout=10).status_code == 401


def test_flower_lists_the_job_and_callback_tasks(api: httpx.Client, flower: httpx.Client) -> None:
    product_id = new_product(api)
    job_id = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL).json()["jobId"]
    category_becomes(api, product_id, "kitchen-restock-notified")

    wait_for(
        lambda: bool(flower_tasks(flower, "loom.callback.RestockEmailSuccessCallback")),
        "Flower to list the success callback",
        timeout=JOB_TIMEOUT,
    )
    wait_for(
        lambda: (
            flower_tasks(flower, "loom.job.SendRestockEmailJob").get(job_id, {}).get("state")
            == "SUCCESS"
        ),
        "Flower to record the job's success",
        timeout=JOB_TIMEOUT,
    )


def test_baked_integration_tests_pass_with_the_jobs_on_rabbitmq(project: Path) -> None:
    """The project's own integration tests, as its CI runs them: PostgreSQL, results on a
    private Redis, jobs on a vhost of their own."""
    with private_redis() as redis_port, private_vhost() as vhost:
        result = subprocess.run(
            [uv_executable(), "run", "--no-sync", "pytest", "tests/integration"],
            cwd=project,
            env=os.environ
            | integration_environment(redis_port)
            | {"INTEGRATION_BROKER_URL": vhost.url()},
            capture_output=True,
            text=True,
            timeout=BAKED_RUN_TIMEOUT,
            check=False,
        )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "skipped" not in result.stdout.splitlines()[-1]
