"""Faults in the containers of the default bake's stack: a worker crash, Redis stopped and
started again, the API container restarted. Each measures how long recovery takes."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

from tests.flows import EMAIL, category_becomes, flower_tasks, new_product
from tests.real_stack import VISIBILITY_TIMEOUT, ComposeStack, docker, record
from tests.stack import wait_for

# Kombu's Redis transport looks for unacknowledged messages older than the visibility
# timeout when a worker starts and then every tenth tick of a 10 s timer: a held job comes
# back at the first such sweep after the timeout, up to about 100 s later.
REDELIVERY_SWEEP = 100.0
REDIS_DOWN_FOR = 5.0


@pytest.fixture
def stack(default_compose_stack: ComposeStack) -> ComposeStack:
    return default_compose_stack


def task_state(flower: httpx.Client, job_id: str) -> object:
    return flower_tasks(flower, "loom.job.SyncProductToErpJob").get(job_id, {}).get("state")


def test_worker_killed_by_its_pid_is_restarted_and_the_job_it_held_still_runs(
    stack: ComposeStack, api: httpx.Client, flower: httpx.Client
) -> None:
    product_id = new_product(api)
    dispatched = time.monotonic()
    (job_id,) = api.post("/products/jobs/sync-erp", json={"productIds": [product_id]}).json()[
        "jobIds"
    ]
    # The worker holds the job, unacknowledged, through its 5 s countdown.
    wait_for(lambda: task_state(flower, job_id) == "RECEIVED", "the worker to hold the job", 5)
    worker = stack.inspect("worker")

    os.kill(worker["State"]["Pid"], signal.SIGKILL)  # a crash, unlike `docker kill`

    killed = time.monotonic()
    wait_for(
        lambda: stack.inspect("worker")["RestartCount"] > worker["RestartCount"],
        "the restart policy to restart the worker",
        timeout=60,
    )
    wait_for(lambda: stack.health("worker") == "healthy", "the worker to be healthy", 120)
    record("worker crash: kill to restarted and healthy", time.monotonic() - killed)
    wait_for(
        lambda: task_state(flower, job_id) == "SUCCESS",
        "the held job to run after the visibility timeout",
        timeout=VISIBILITY_TIMEOUT + REDELIVERY_SWEEP + 30,
    )
    waited = time.monotonic() - dispatched
    record(f"worker crash: held job ran again (visibility timeout {VISIBILITY_TIMEOUT} s)", waited)
    assert waited >= VISIBILITY_TIMEOUT  # Redis gave it back only once the timeout passed


def test_api_keeps_answering_reads_while_redis_is_down_and_dispatches_once_it_is_back(
    stack: ComposeStack, api: httpx.Client
) -> None:
    product_id = new_product(api)
    api_before = stack.inspect("api")
    reads: list[int] = []
    done = threading.Event()

    def read_continuously() -> None:
        with httpx.Client(base_url=stack.url("api"), headers=api.headers, timeout=5) as reader:
            while not done.is_set():
                try:
                    reads.append(reader.get(f"/products/{product_id}").status_code)
                except httpx.TransportError:
                    reads.append(0)
                time.sleep(0.2)

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        assert docker("stop", stack.container("redis")).returncode == 0
        time.sleep(REDIS_DOWN_FOR)
        reads_while_down = len(reads)
        assert docker("start", stack.container("redis")).returncode == 0
        back = time.monotonic()

        def dispatch_accepted() -> bool:
            response = api.post(f"/products/{product_id}/jobs/restock-email", json=EMAIL)
            return response.status_code == 202

        wait_for(dispatch_accepted, "a dispatch to be accepted again", timeout=60)
        record("redis restart: start to first accepted dispatch", time.monotonic() - back)
        category_becomes(api, product_id, "kitchen-restock-notified")
        record("redis restart: start to job and callback done", time.monotonic() - back)
    finally:
        done.set()
        reader.join(timeout=10)

    assert reads_while_down > 0
    assert set(reads) == {200}
    api_after = stack.inspect("api")
    assert api_after["State"]["StartedAt"] == api_before["State"]["StartedAt"]
    assert api_after["RestartCount"] == api_before["RestartCount"]
    wait_for(stack.all_healthy, "every service to be healthy again", timeout=120)
    record("redis restart: start to every service healthy", time.monotonic() - back)


def test_api_container_restarted_serves_again(stack: ComposeStack, api: httpx.Client) -> None:
    product_id = new_product(api)
    started_before = stack.inspect("api")["State"]["StartedAt"]

    def answers() -> bool:
        try:
            return api.get(f"/products/{product_id}").status_code == 200
        except httpx.TransportError:
            return False

    restart = time.monotonic()
    assert docker("restart", stack.container("api")).returncode == 0

    wait_for(answers, "the API to answer again", timeout=60)
    record("api restart: restart command to serving again", time.monotonic() - restart)
    assert stack.inspect("api")["State"]["StartedAt"] != started_before
    wait_for(lambda: stack.health("api") == "healthy", "the API to be healthy", timeout=60)
    record("api restart: restart command to healthy", time.monotonic() - restart)
