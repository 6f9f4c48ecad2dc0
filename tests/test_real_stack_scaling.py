"""Workers scale out on one host, in real containers: three replicas of the default bake's
worker compete for the same queues. Jobs spread over them and none runs twice; a replica
killed in the middle of a job and replicas stopped while running jobs (warm shutdown,
within the compose file's grace period) lose no job."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from tests.flows import EMAIL, flower_tasks, new_product
from tests.real_stack import VISIBILITY_TIMEOUT, ComposeStack, docker, record
from tests.stack import wait_for
from tests.test_real_stack_faults import REDELIVERY_SWEEP

REPLICAS = 3
# Replicas started together sweep for expired messages in step, every REDELIVERY_SWEEP
# seconds: when the killed replica's messages expire just after a sweep, the next one is a
# whole period away, and the restarted replica's own first sweep after its start comes
# about as late. Two periods bound the wait; the test records what it took.
KILLED_REPLICA_SWEEPS = 2
# How long each ERP sync of the mid-job tests runs once its 5 s countdown is over: long
# enough to be caught running, well inside the grace period.
JOB_SECONDS = 6.0
SUCCEEDED = re.compile(r"Task (loom\.job\.\w+)\[([0-9a-f-]{36})\] succeeded")


@pytest.fixture(scope="module")
def scaled_stack(default_compose_stack: ComposeStack) -> Iterator[ComposeStack]:
    """The default stack with three worker replicas for this module, back to one after."""
    scale(default_compose_stack, REPLICAS)
    yield default_compose_stack
    scale(default_compose_stack, 1)


@pytest.fixture
def stack(scaled_stack: ComposeStack) -> ComposeStack:
    """Every replica running and healthy: one a test stopped is started again, one it
    killed is back by its restart policy."""
    stopped = [
        container
        for container in scaled_stack.containers("worker")
        if inspect(container)["State"]["Status"] == "exited"
    ]
    if stopped:
        assert docker("start", *stopped).returncode == 0
    wait_for(
        lambda: healthy_workers(scaled_stack) == REPLICAS,
        f"{REPLICAS} healthy worker replicas",
        timeout=180,
    )
    return scaled_stack


def scale(stack: ComposeStack, replicas: int) -> None:
    started = time.monotonic()
    result = stack.make("scale", "SERVICE=worker", f"N={replicas}", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(
        lambda: healthy_workers(stack) == replicas,
        f"{replicas} healthy worker replicas",
        timeout=180,
    )
    record(f"scale: workers to {replicas} and healthy", time.monotonic() - started)


def healthy_workers(stack: ComposeStack) -> int:
    states = [inspect(container)["State"] for container in stack.containers("worker")]
    running = [state for state in states if state["Running"]]
    if len(running) != len(states):
        return -1
    return sum(state.get("Health", {}).get("Status") == "healthy" for state in running)


def inspect(container: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(docker("inspect", container).stdout)[0]
    return found


def runs_by_container(stack: ComposeStack) -> dict[str, Counter[str]]:
    """For each worker container, how many times it logged each job id as succeeded."""
    runs = {}
    for container in stack.containers("worker"):
        logged = docker("logs", container)
        runs[container] = Counter(
            job_id for _, job_id in SUCCEEDED.findall(logged.stdout + logged.stderr)
        )
    return runs


def all_ran(stack: ComposeStack, job_ids: set[str]) -> bool:
    ran = set().union(*runs_by_container(stack).values())
    return job_ids <= ran


def not_run(stack: ComposeStack, job_ids: set[str]) -> str:
    """Which jobs never succeeded, and what Redis still holds for redelivery (message ages in
    its unacknowledged index, the restore lock's time to live): a failure's evidence."""
    ran = set().union(*runs_by_container(stack).values())
    redis_cli = ("redis-cli", "--no-auth-warning")
    index = stack.exec("redis", *redis_cli, "ZRANGE", "unacked_index", "0", "-1", "WITHSCORES")
    now = float(stack.exec("redis", *redis_cli, "TIME").stdout.split()[0])
    tags_and_scores = index.stdout.split()
    ages = [round(now - float(score)) for score in tags_and_scores[1::2]]
    lock = stack.exec("redis", *redis_cli, "TTL", "unacked_mutex").stdout.strip()
    lists = stack.exec("redis", *redis_cli, "--scan", "--type", "list").stdout.split()
    lengths = {name: stack.exec("redis", *redis_cli, "LLEN", name).stdout.strip() for name in lists}
    results = {
        job_id: stack.exec(
            "redis", *redis_cli, "-n", "1", "GET", f"celery-task-meta-{job_id}"
        ).stdout.strip()[:200]
        for job_id in sorted(job_ids - ran)
    }
    return (
        f"not run: {sorted(job_ids - ran)}; unacknowledged message ages (s): {ages}; "
        f"restore lock time to live (s): {lock}; lists and lengths: {lengths}; "
        f"results kept: {results}"
    )


def dispatch_restock_emails(api: httpx.Client, count: int) -> set[str]:
    job_ids = set()
    for _ in range(count):
        accepted = api.post(f"/products/{new_product(api)}/jobs/restock-email", json=EMAIL)
        assert accepted.status_code == 202, accepted.text
        job_ids.add(accepted.json()["jobId"])
    return job_ids


def dispatch_erp_syncs(api: httpx.Client, count: int) -> set[str]:
    """``count`` ERP syncs, each running JOB_SECONDS after its 5 s countdown."""
    product_ids = [new_product(api) for _ in range(count)]
    sync = {"productIds": product_ids, "holdSeconds": JOB_SECONDS}
    accepted = api.post("/products/jobs/sync-erp", json=sync)
    assert accepted.status_code == 202, accepted.text
    return set(accepted.json()["jobIds"])


def running_on(flower: httpx.Client, stack: ComposeStack, job_ids: set[str]) -> dict[str, str]:
    """The worker container of each of ``job_ids`` that Flower shows running now."""
    containers = {
        f"worker@{inspect(container)['Config']['Hostname']}": container
        for container in stack.containers("worker")
    }
    tasks = flower_tasks(flower, "loom.job.SyncProductToErpJob")
    return {
        job_id: containers[task["worker"]]
        for job_id, task in tasks.items()
        if job_id in job_ids and task.get("state") == "STARTED"
    }


@dataclass(frozen=True)
class InHand:
    """Jobs seen running on one of some containers, and a moment (a Unix time, as
    ``docker logs --since`` takes it) at which they had not finished yet."""

    jobs: set[str]
    container: str
    since: str


def jobs_running_on(
    flower: httpx.Client, stack: ComposeStack, job_ids: set[str], containers: list[str]
) -> InHand:
    """Wait until one of ``containers`` runs some of ``job_ids``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        since = f"{time.time():.3f}"  # taken first: the jobs seen below end after it
        running = running_on(flower, stack, job_ids)
        for container in containers:
            jobs = {job for job, on in running.items() if on == container}
            if jobs:
                return InHand(jobs, container, since)
        time.sleep(0.2)
    pytest.fail(f"no ERP sync seen running on {containers} within 30 s")


def grace_period(stack: ComposeStack) -> str:
    """The worker's ``stop_grace_period`` from the compose file, as docker stop takes it."""
    config = yaml.safe_load(stack.compose("config").stdout)
    period = str(config["services"]["worker"]["stop_grace_period"])
    assert period.endswith("s"), period
    return period.removesuffix("s")


def succeeded_since(container: str, since: str) -> set[str]:
    logged = docker("logs", "--since", since, container)
    return {job_id for _, job_id in SUCCEEDED.findall(logged.stdout + logged.stderr)}


def test_jobs_spread_over_the_replicas_and_none_runs_twice(
    stack: ComposeStack, api: httpx.Client
) -> None:
    job_ids = dispatch_restock_emails(api, 24)

    wait_for(lambda: all_ran(stack, job_ids), "every job to succeed", timeout=60)
    runs = runs_by_container(stack)
    workers_used = [container for container, ran in runs.items() if job_ids & set(ran)]
    assert len(workers_used) > 1, runs
    total = sum((ran for ran in runs.values()), Counter())
    assert {job_id: total[job_id] for job_id in job_ids} == dict.fromkeys(job_ids, 1)


def test_replicas_stopped_mid_job_finish_it_and_lose_no_job(
    stack: ComposeStack, api: httpx.Client, flower: httpx.Client
) -> None:
    job_ids = dispatch_erp_syncs(api, 12)
    leaving = stack.containers("worker")[1:]
    in_hand = jobs_running_on(flower, stack, job_ids, leaving)
    finishing, since = in_hand.jobs, in_hand.since

    stopped = docker("stop", "--time", grace_period(stack), *leaving, timeout=120)

    assert stopped.returncode == 0, stopped.stderr
    assert [inspect(container)["State"]["ExitCode"] for container in leaving] == [0, 0]
    finished_there = set().union(*(succeeded_since(container, since) for container in leaving))
    assert finishing <= finished_there  # the warm shutdown let the jobs in hand finish
    wait_for(lambda: all_ran(stack, job_ids), "every ERP sync to succeed", timeout=60)
    total = sum(runs_by_container(stack).values(), Counter())
    assert {job_id: total[job_id] for job_id in job_ids} == dict.fromkeys(job_ids, 1)


def test_a_replica_killed_mid_job_loses_no_job(
    stack: ComposeStack, api: httpx.Client, flower: httpx.Client
) -> None:
    job_ids = dispatch_erp_syncs(api, 12)
    victim = jobs_running_on(flower, stack, job_ids, stack.containers("worker")).container
    killed = time.monotonic()

    os.kill(inspect(victim)["State"]["Pid"], signal.SIGKILL)

    wait_for(
        lambda: all_ran(stack, job_ids),
        "every ERP sync to succeed, the killed replica's after the visibility timeout",
        timeout=VISIBILITY_TIMEOUT + KILLED_REPLICA_SWEEPS * REDELIVERY_SWEEP + 30,
        diagnose=lambda: not_run(stack, job_ids),
    )
    record("scale: a killed replica's jobs all ran", time.monotonic() - killed)
    total = sum(runs_by_container(stack).values(), Counter())
    assert {job_id: total[job_id] for job_id in job_ids} == dict.fromkeys(job_ids, 1)
