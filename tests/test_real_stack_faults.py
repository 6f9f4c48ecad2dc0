"""Faults in the containers of the default bake's stack: a worker killed in the middle of a
job, Redis stopped and started again while dispatches keep arriving, the API killed right
after a commit, the API container restarted. Each measures how long recovery takes."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.broker_outage import assert_nothing_was_held_or_lost, dispatch_through_an_outage
from tests.conftest import api_client, flower_client
from tests.flows import EMAIL, category_becomes, flower_tasks, new_product
from tests.real_stack import VISIBILITY_TIMEOUT, ComposeStack, docker, record
from tests.stack import wait_for

# Kombu's Redis transport looks for unacknowledged messages older than the visibility
# timeout when a worker starts and then every tenth tick of a 10 s timer: a held job comes
# back at the first such sweep after the timeout, up to about 100 s later.
REDELIVERY_SWEEP = 100.0
# Seconds the ERP sync pretends to take, so the worker can be killed in the middle of it.
SLOW_JOB = 8.0


@pytest.fixture
def stack(default_compose_stack: ComposeStack) -> ComposeStack:
    return default_compose_stack


def task_state(flower: httpx.Client, job_id: str) -> object:
    return flower_tasks(flower, "loom.job.SyncProductToErpJob").get(job_id, {}).get("state")


@dataclass(frozen=True)
class KilledMidJob:
    """The ERP sync a worker was running when it was killed, the worker as it was just
    before, and when the kill happened (a Unix time, as Flower's task events give)."""

    job_id: str
    worker_before: dict[str, Any]
    killed_at: float


@pytest.fixture(scope="session")
def worker_killed_mid_job(default_compose_stack: ComposeStack) -> KilledMidJob:
    """The default stack's worker killed by its PID in the middle of a job. Once per run:
    the two tests below share it, and the run's order (conftest) lets other stacks' tests
    pass the time until Redis gives the job back."""
    stack = default_compose_stack
    with api_client(stack) as api, flower_client(stack) as flower:
        sync = {"productIds": [new_product(api)], "holdSeconds": SLOW_JOB}
        (job_id,) = api.post("/products/jobs/sync-erp", json=sync).json()["jobIds"]
        # After its 5 s countdown the job runs for SLOW_JOB seconds: kill the worker then.
        wait_for(lambda: task_state(flower, job_id) == "STARTED", "the job to start", timeout=20)
    worker = stack.inspect("worker")

    os.kill(worker["State"]["Pid"], signal.SIGKILL)  # a crash, unlike `docker kill`

    return KilledMidJob(job_id, worker, time.time())


def test_worker_killed_in_the_middle_of_a_job_is_restarted_by_its_restart_policy(
    stack: ComposeStack, worker_killed_mid_job: KilledMidJob
) -> None:
    restarts_before = worker_killed_mid_job.worker_before["RestartCount"]

    wait_for(
        lambda: stack.inspect("worker")["RestartCount"] > restarts_before,
        "the restart policy to restart the worker",
        timeout=60,
    )
    wait_for(lambda: stack.health("worker") == "healthy", "the worker to be healthy", 120)
    took = time.time() - worker_killed_mid_job.killed_at
    record("worker killed mid-job: kill to restarted and healthy", took)


def test_the_job_a_killed_worker_held_runs_again_to_completion_after_the_visibility_timeout(
    flower: httpx.Client, worker_killed_mid_job: KilledMidJob
) -> None:
    job_id = worker_killed_mid_job.job_id

    wait_for(
        lambda: task_state(flower, job_id) == "SUCCESS",
        "the killed job to run again to completion",
        timeout=VISIBILITY_TIMEOUT + REDELIVERY_SWEEP + 30,
    )

    succeeded_at = flower_tasks(flower, "loom.job.SyncProductToErpJob")[job_id]["succeeded"]
    waited = succeeded_at - worker_killed_mid_job.killed_at
    record(f"worker killed mid-job: kill to job done (visibility {VISIBILITY_TIMEOUT} s)", waited)
    assert waited >= VISIBILITY_TIMEOUT - SLOW_JOB  # Redis gave it back only after the timeout


def test_with_redis_stopped_dispatches_answer_at_once_and_every_job_runs_once_it_is_back(
    stack: ComposeStack, api: httpx.Client
) -> None:
    outage = dispatch_through_an_outage(stack, api, "redis")

    assert_nothing_was_held_or_lost(outage)
    stack.wait_until_healthy("every service to be healthy again", timeout=120)


def test_api_killed_right_after_a_commit_publishes_the_job_once_restarted(
    stack: ComposeStack, api: httpx.Client
) -> None:
    product_id = new_product(api)
    assert docker("stop", stack.container("redis")).returncode == 0
    # Committed, but its publish cannot happen: the broker is down.
    accepted = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)
    assert accepted.status_code == 202
    api_before = stack.inspect("api")

    os.kill(api_before["State"]["Pid"], signal.SIGKILL)  # a crash: the restart policy acts

    killed = time.monotonic()
    assert docker("start", stack.container("redis")).returncode == 0
    wait_for(
        lambda: stack.inspect("api")["RestartCount"] > api_before["RestartCount"],
        "the restart policy to restart the API",
        timeout=60,
    )
    wait_for(lambda: answers(api, product_id), "the API to answer again", timeout=60)
    category_becomes(api, product_id, "kitchen-restock-notified")
    record(
        "api killed after a commit: kill to the job's callback landed", time.monotonic() - killed
    )
    stack.wait_until_healthy("every service to be healthy again", timeout=120)


def answers(api: httpx.Client, product_id: int) -> bool:
    try:
        return api.get(f"/products/{product_id}").status_code == 200
    except httpx.TransportError:
        return False


def test_api_container_restarted_serves_again(stack: ComposeStack, api: httpx.Client) -> None:
    product_id = new_product(api)
    started_before = stack.inspect("api")["State"]["StartedAt"]

    restart = time.monotonic()
    assert docker("restart", stack.container("api")).returncode == 0

    wait_for(lambda: answers(api, product_id), "the API to answer again", timeout=60)
    record("api restart: restart command to serving again", time.monotonic() - restart)
    assert stack.inspect("api")["State"]["StartedAt"] != started_before
    wait_for(lambda: stack.health("api") == "healthy", "the API to be healthy", timeout=60)
    record("api restart: restart command to healthy", time.monotonic() - restart)
