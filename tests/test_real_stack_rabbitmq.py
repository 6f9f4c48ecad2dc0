"""broker=rabbitmq in real containers: `make up` with the rabbitmq service, the job flow and
Flower over AMQP, the management UI, a worker crash, the broker stopped under load, then
`make down`."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest

from tests.broker_outage import assert_nothing_was_held_or_lost, dispatch_through_an_outage
from tests.flows import (
    EMAIL,
    category_becomes,
    flower_lists_the_job_and_its_callback,
    new_product,
)
from tests.real_stack import ComposeStack, docker, record, run_smoke
from tests.stack import wait_for

# The bound on a crashed worker's job running again, counted from the restart.
REDELIVERY_BOUND = 30.0


@pytest.fixture
def stack(rabbitmq_compose_stack: ComposeStack) -> ComposeStack:
    return rabbitmq_compose_stack


@pytest.fixture
def management(stack: ComposeStack) -> Iterator[httpx.Client]:
    """The management HTTP API, logged in as the broker user of the project's .env."""
    variables = stack.variables()
    login = (variables["RABBITMQ_DEFAULT_USER"], variables["RABBITMQ_DEFAULT_PASS"])
    with httpx.Client(
        base_url=f"{stack.url('rabbitmq-management')}/api", auth=login, timeout=10
    ) as client:
        yield client


def queue(stack: ComposeStack, management: httpx.Client, name: str) -> dict[str, Any]:
    vhost = quote(stack.variables()["RABBITMQ_DEFAULT_VHOST"], safe="")
    response = management.get(f"/queues/{vhost}/{name}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_every_service_is_healthy_with_rabbitmq_and_redis(stack: ComposeStack) -> None:
    assert sorted(stack.long_running()) == [
        "api",
        "beat",
        "flower",
        "postgres",
        "rabbitmq",
        "redis",
        "worker",
    ]
    assert stack.all_healthy()


def test_rabbitmq_has_the_env_user_and_vhost_and_refuses_anonymous_calls(
    stack: ComposeStack, management: httpx.Client
) -> None:
    vhosts = [vhost["name"] for vhost in management.get("/vhosts").json()]

    assert vhosts == [stack.variables()["RABBITMQ_DEFAULT_VHOST"]]
    anonymous = httpx.get(f"{stack.url('rabbitmq-management')}/api/overview", timeout=10)
    assert anonymous.status_code == 401


def test_restock_email_runs_and_its_callback_tags_the_product(api: httpx.Client) -> None:
    product_id = new_product(api)

    accepted = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)

    assert accepted.status_code == 202
    category_becomes(api, product_id, "kitchen-restock-notified")


def test_queues_are_priority_queues(
    stack: ComposeStack, api: httpx.Client, management: httpx.Client
) -> None:
    product_id = new_product(api)
    api.post("/products/jobs/sync-erp", json={"productIds": [product_id]})

    for name in ("default", "notifications", "analytics", "erp"):
        assert queue(stack, management, name)["arguments"] == {"x-max-priority": 10}, name


def test_flower_lists_the_job_and_callback_tasks(api: httpx.Client, flower: httpx.Client) -> None:
    flower_lists_the_job_and_its_callback(api, flower)


def test_smoke_flow_of_the_generated_ci_passes_against_the_stack(stack: ComposeStack) -> None:
    smoke = run_smoke(stack, flower=True)

    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "job flow ok" in smoke.stdout
    assert "Flower ok" in smoke.stdout


def stack_database(stack: ComposeStack, autocommit: bool = False) -> psycopg.Connection[Any]:
    """The stack's own database, through its published port, as its superuser."""
    variables = stack.variables()
    return psycopg.connect(
        host="127.0.0.1",
        port=int(variables["POSTGRES_PORT"]),
        user="postgres",
        password=variables["POSTGRES_PASSWORD"],
        dbname=variables["APP_DB_NAME"],
        autocommit=autocommit,
    )


@contextmanager
def products_lock(stack: ComposeStack) -> Iterator[psycopg.Connection[Any]]:
    """The products table held by an open transaction in the stack's PostgreSQL: a job
    reading a product waits until it is rolled back."""
    with stack_database(stack) as connection:
        connection.execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        try:
            yield connection
        finally:
            connection.rollback()


def a_job_waits_on_the_lock(stack: ComposeStack) -> bool:
    with stack_database(stack, autocommit=True) as observer:
        waiting = observer.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND wait_event_type = 'Lock'",
            (stack.variables()["APP_DB_USER"],),
        ).fetchone()
    return waiting is not None and waiting[0] > 0


def test_worker_crash_mid_job_gives_the_job_back_and_the_restarted_worker_runs_it(
    stack: ComposeStack, api: httpx.Client, management: httpx.Client
) -> None:
    product_id = new_product(api)
    worker = stack.container("worker")
    # Stopped while the job is sent, so it starts only once the test holds the table.
    assert docker("stop", worker).returncode == 0
    api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)
    with products_lock(stack) as lock:
        assert docker("start", worker).returncode == 0
        wait_for(lambda: a_job_waits_on_the_lock(stack), "the job to be running", timeout=60)
        # The management API's counts are sampled every 5 s.
        wait_for(
            lambda: queue(stack, management, "notifications")["messages_unacknowledged"] == 1,
            "RabbitMQ to count the job as delivered, unacknowledged",
            timeout=15,
        )
        before = stack.inspect("worker")

        os.kill(before["State"]["Pid"], signal.SIGKILL)  # a crash, unlike `docker kill`

        lock.rollback()
    wait_for(
        lambda: stack.inspect("worker")["RestartCount"] > before["RestartCount"],
        "the restart policy to restart the worker",
        timeout=60,
    )
    restarted = time.monotonic()
    category_becomes(api, product_id, "kitchen-restock-notified")
    ran_after_restart = time.monotonic() - restarted
    record("broker=rabbitmq worker crash: restart to the held job done", ran_after_restart)
    assert ran_after_restart < REDELIVERY_BOUND


# Last in this module: the fixture's own teardown runs `make down` again, harmlessly.
def test_with_rabbitmq_stopped_dispatches_answer_at_once_and_every_job_runs_once_it_is_back(
    stack: ComposeStack, api: httpx.Client
) -> None:
    outage = dispatch_through_an_outage(stack, api, "rabbitmq")

    assert_nothing_was_held_or_lost(outage)
    stack.wait_until_healthy("every service to be healthy again", timeout=120)


def test_make_down_removes_the_containers_and_the_volumes(stack: ComposeStack) -> None:
    down = stack.make("down", "ARGS=-v", timeout=300)

    assert down.returncode == 0, down.stderr
    assert stack.project_containers() == []
    assert stack.project_volumes() == []
